"""What the installed pymilvus protocol modules define, asked in one place.

Heron uses pymilvus's generated protobuf modules (`pymilvus.grpc_gen`), and
those of pymilvus 2.5.5 and later all work: the server and Heron's remote
clients run on whichever is installed. Later releases added messages,
fields, enum values and RPCs; code that touches one of those asks here
whether it exists (by the descriptor, never by the pymilvus version
string), so an older module degrades to "not sent" / "not set" instead of an
`AttributeError` or a `ValueError` from ``HasField``. What cannot travel at
all without the newer modules (an INT8_VECTOR column, the TruncateCollection
RPC) is refused with an error that says which module lacks what.

Proto3 enums are open, so a value the older modules do not name (the
placeholder type of int8 query vectors) is still sent and read by number.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from .._errors import ParamError

SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def _enum_number(enum: Any, name: str, number: int) -> int:
    return int(enum.Value(name)) if name in enum.keys() else number


#: PlaceholderType of int8 query vectors (named in the protocol modules of pymilvus 2.6 and later).
INT8_VECTOR_PLACEHOLDER = _enum_number(common_pb2.PlaceholderType, "Int8Vector", 105)
#: PlaceholderType of embedding-list queries of float vectors (named in pymilvus 2.6's modules and later).
EMB_LIST_FLOAT_PLACEHOLDER = _enum_number(common_pb2.PlaceholderType, "EmbListFloatVector", 301)


def pymilvus_version() -> str:
    """The installed pymilvus's version, for error messages."""
    try:
        return metadata.version("pymilvus")
    except metadata.PackageNotFoundError:  # pragma: no cover - pymilvus is a dependency
        return "unknown"


def has_rpc(rpc: str) -> bool:
    """Whether the installed MilvusService descriptor has this RPC."""
    return rpc in SERVICE.methods_by_name


def has_field(message: Any, name: str) -> bool:
    """Whether a protobuf message (class or instance) has a field of this name."""
    return name in message.DESCRIPTOR.fields_by_name


def field_set(msg: Any, name: str) -> bool:
    """Whether ``msg`` has the field ``name`` and it is set: present for message and optional
    fields, non-empty or non-zero otherwise. False where the installed modules lack the field."""
    field = msg.DESCRIPTOR.fields_by_name.get(name)
    if field is None:
        return False
    try:
        return bool(msg.HasField(name))
    except ValueError:  # a field without presence: set means not the default
        return bool(getattr(msg, name))


def require_rpc(rpc: str) -> None:
    """Raise `ParamError` when the installed protocol modules cannot send this RPC."""
    if not has_rpc(rpc):
        raise ParamError(
            f"the {rpc} RPC is not in the protocol modules of the installed pymilvus "
            f"{pymilvus_version()}; expected a pymilvus release that defines it (upgrade pymilvus)"
        )


def require_field(message: Any, name: str, what: str) -> None:
    """Raise `ParamError` when ``message`` lacks the field that carries ``what``."""
    if not has_field(message, name):
        raise ParamError(
            f"{what} cannot be carried: {message.DESCRIPTOR.name}.{name} is not in the protocol "
            f"modules of the installed pymilvus {pymilvus_version()}; expected pymilvus>=2.6"
        )
