"""The one exception hierarchy of Heron.

Every error carries a numeric ``code`` compatible with Milvus's status codes
where one exists, so code that inspects ``err.code`` keeps working, and the
server can map each class to one gRPC status.
"""

from __future__ import annotations


class HeronError(Exception):
    """Base of every error Heron raises on purpose.

    ``code`` is the Milvus status code of the class (or the one given), and
    ``message`` the text that `str()` shows.
    """

    code: int = 1

    def __init__(self, message: str = "", *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: (code={self.code}, message={self.message})>"


class ParamError(HeronError):
    """An argument is malformed or out of range; nothing was done."""

    code = 1100


class SchemaError(ParamError):
    """A schema or field definition is invalid."""


class DataError(ParamError):
    """A row or column does not fit the collection's schema; the batch wrote nothing."""


class FilterError(ParamError):
    """A filter expression could not be parsed, bound or evaluated.

    ``expr`` is the expression and ``position`` the offset of the offending
    token (or ``None``); the message shows both with a caret.
    """

    def __init__(self, message: str, expr: str = "", position: int | None = None) -> None:
        self.expr = expr
        self.position = position
        if expr and position is not None:
            message = f"{message}\n  {expr}\n  {' ' * position}^"
        elif expr:
            message = f"{message}\n  {expr}"
        super().__init__(message)


class NotFoundError(HeronError):
    """A named object does not exist."""


class CollectionNotFoundError(NotFoundError):
    """No collection (or alias) of that name in the database."""

    code = 100


class PartitionNotFoundError(NotFoundError):
    """No partition of that name in the collection."""

    code = 200


class IndexNotFoundError(NotFoundError):
    """No index of that name (or on that field) in the collection."""

    code = 700


class DatabaseNotFoundError(NotFoundError):
    """No database of that name."""

    code = 800


class AliasNotFoundError(NotFoundError):
    """No alias of that name in the database."""

    code = 1600


class AlreadyExistsError(HeronError):
    """An object with that name exists already."""

    code = 65535


class CollectionNotLoadedError(HeronError):
    """Search or query on a collection (or partition) that is released."""

    code = 101


class DataDirLockedError(HeronError):
    """Another process holds the data directory open for writing."""

    code = 2


class ClientClosedError(HeronError):
    """The client was closed; create a new one."""

    code = 1


class PermissionDeniedError(HeronError):
    """The authenticated user lacks the privilege the call needs; nothing was done."""

    code = 3


class AuthenticationError(HeronError):
    """The server refused the user and password or token."""

    code = 1800


class ServerBusyError(HeronError):
    """The server has as many calls in flight as it allows (``--max-inflight``); retry later."""

    code = 8


class StorageError(HeronError):
    """Reading or writing the data directory failed (an I/O error); the write was not acknowledged."""

    code = 5


class DiskFullError(StorageError):
    """The data directory's file system is full, or too full to keep writing safely; nothing was written.

    Writes resume once space is freed; reads keep working.
    """

    code = 7


class CorruptionError(StorageError):
    """A file of the data directory is damaged: its checksum or structure does not match what was written.

    ``path`` names the file and ``offset`` the first damaged byte where known;
    the message also says which collection is affected and what is lost.
    Heron never answers around damage: the data it covers is refused until
    repaired (``heron repair``) or restored.
    """

    code = 5

    def __init__(self, message: str, *, path: str = "", offset: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


__all__ = [
    "AliasNotFoundError",
    "AlreadyExistsError",
    "AuthenticationError",
    "ClientClosedError",
    "CollectionNotFoundError",
    "CollectionNotLoadedError",
    "CorruptionError",
    "DataDirLockedError",
    "DataError",
    "DatabaseNotFoundError",
    "DiskFullError",
    "FilterError",
    "HeronError",
    "IndexNotFoundError",
    "NotFoundError",
    "ParamError",
    "PartitionNotFoundError",
    "PermissionDeniedError",
    "SchemaError",
    "ServerBusyError",
    "StorageError",
]
