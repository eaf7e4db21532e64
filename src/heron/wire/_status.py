"""Milvus ``Status`` ⇄ Heron errors: the one table both the server and the remote client use.

A Heron error travels as its own numeric code and message, with the Milvus
legacy ``error_code`` clients of older servers look at, and the Heron class
name in ``extra_info`` so that a Heron client raises the same class again.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2

from .. import _errors
from .._errors import HeronError
from ._messages import response_class

#: Heron error class → Milvus legacy error_code (the numeric ``code`` is the error's own).
_LEGACY = {
    _errors.CollectionNotFoundError: common_pb2.CollectionNotExists,
    _errors.IndexNotFoundError: common_pb2.IndexNotExist,
    _errors.ParamError: common_pb2.IllegalArgument,
    _errors.PermissionDeniedError: common_pb2.PermissionDenied,
    _errors.ServerBusyError: common_pb2.RateLimit,
}
#: Milvus's generic code ("unexpected error"): its replies say what went wrong only in the message.
GENERIC_CODE = 65535
#: Words of a Milvus message (lower case) → Heron error class, for the generic code and replies
#: without a numeric code (Milvus before 2.3 sends only the legacy ``error_code``); first match wins.
_BY_MESSAGE: tuple[tuple[str, type[HeronError]], ...] = (
    ("cannot parse expression", _errors.FilterError),
    ("failed to create query plan", _errors.FilterError),
    ("already exist", _errors.AlreadyExistsError),
    ("collection not found", _errors.CollectionNotFoundError),
    ("can't find collection", _errors.CollectionNotFoundError),
    ("partition not found", _errors.PartitionNotFoundError),
    ("index not found", _errors.IndexNotFoundError),
    ("database not found", _errors.DatabaseNotFoundError),
    ("collection not loaded", _errors.CollectionNotLoadedError),
)
#: Milvus numeric code → Heron error class, for replies without a Heron class name (a Milvus server's).
_BY_CODE = {
    100: _errors.CollectionNotFoundError,
    101: _errors.CollectionNotLoadedError,
    200: _errors.PartitionNotFoundError,
    700: _errors.IndexNotFoundError,
    800: _errors.DatabaseNotFoundError,
    1600: _errors.AliasNotFoundError,
    1601: _errors.AlreadyExistsError,
    1602: _errors.AlreadyExistsError,
    1100: _errors.ParamError,
    3: _errors.PermissionDeniedError,
    1800: _errors.AuthenticationError,
    8: _errors.ServerBusyError,
    7: _errors.DiskFullError,
}


def status_of(exc: BaseException) -> common_pb2.Status:
    """The Milvus Status for an exception; the Heron class name rides along in ``extra_info``."""
    if not isinstance(exc, HeronError):
        return common_pb2.Status(
            code=1,
            error_code=common_pb2.UnexpectedError,
            reason=f"internal error: {type(exc).__name__}: {exc}",
        )
    legacy = next((v for k, v in _LEGACY.items() if isinstance(exc, k)), common_pb2.UnexpectedError)
    return common_pb2.Status(
        code=int(exc.code),
        error_code=legacy,
        reason=exc.message,
        extra_info={"heron_error": type(exc).__name__},
    )


def error_of(status: common_pb2.Status) -> HeronError | None:
    """The Heron exception a non-success Status stands for, or None for success."""
    if status.code == 0 and status.error_code == common_pb2.Success:
        return None
    name = status.extra_info.get("heron_error", "")
    cls = getattr(_errors, name, None) if name else None
    if not (isinstance(cls, type) and issubclass(cls, HeronError)):
        cls = _milvus_class(status)
    if cls is None:
        return HeronError(status.reason or f"error code {status.code}", code=int(status.code or 1))
    if cls is _errors.FilterError:
        return _errors.FilterError(status.reason)
    err = cls(status.reason)
    if status.code and status.code != err.code:
        err.code = int(status.code)
    return err


def _milvus_class(status: common_pb2.Status) -> type[HeronError] | None:
    """The Heron class of a Milvus server's error: by its specific code, else by its message, else None
    (a plain `HeronError` that keeps the code)."""
    cls = _BY_CODE.get(status.code)
    if cls is not None:
        return cls
    if status.code in (0, GENERIC_CODE):
        reason = status.reason.lower()
        found = next((c for words, c in _BY_MESSAGE if words in reason), None)
        if found is not None:
            return found
    if status.code == 0 and status.error_code == common_pb2.CollectionNotExists:
        return _errors.CollectionNotFoundError
    return None


def reply_status(reply: Any) -> common_pb2.Status:
    """The Status of a reply: the reply itself for RPCs that answer a bare Status."""
    if isinstance(reply, common_pb2.Status):
        return reply
    return reply.alter_status if _STATUS_FIELD in reply.DESCRIPTOR.fields_by_name else reply.status


def error_reply(rpc: str, exc: BaseException) -> Any:
    """The reply of ``rpc`` that carries ``exc`` as its Status (some RPCs answer a bare Status)."""
    status = status_of(exc)
    cls = response_class(rpc)
    if cls is common_pb2.Status:
        return status
    return cls(alter_status=status) if _STATUS_FIELD in cls.DESCRIPTOR.fields_by_name else cls(status=status)


#: The status field of the replies that do not call it ``status`` (AlterCollectionSchemaResponse).
_STATUS_FIELD = "alter_status"
