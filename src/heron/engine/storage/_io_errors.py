"""File-system failures as Heron errors, and the free-space check every write passes first.

At the boundaries where a write touches the disk (the insert log, the
catalog, segment files) an `OSError` or `sqlite3.Error` becomes a
`DiskFullError` (ENOSPC, EDQUOT, SQLite's "database or disk is full") or a
`StorageError` (any other I/O failure), with a message that names the
operation, the file and what to do. The write it interrupted was not
acknowledged and left nothing visible behind.

`Headroom` refuses inserts and upserts while the data directory's file system
has less than ``HERON_MIN_FREE_BYTES`` free (default `DEFAULT_MIN_FREE_BYTES`).
Inserted rows stay in the insert log until sealing writes them to a segment
file, and only then can the log be deleted: a disk filled by the log to the
last byte could never free it. The default, 64 MiB, holds the segment file of
a default-sized growing segment (65,536 rows of 128-d float32 vectors: 32 MiB
plus scalars) with room for the catalog's log to checkpoint; raise it for
wider vectors or many partitions growing at once. 0 turns the check off.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..._errors import CorruptionError, DiskFullError, HeronError, ParamError, StorageError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DEFAULT_MIN_FREE_BYTES = 64 << 20
MIN_FREE_ENV = "HERON_MIN_FREE_BYTES"

# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26
_IO_ERRORS = (OSError, sqlite3.DatabaseError)
#: What a failed write means, unless the caller says otherwise (background work does).
NOT_ACKNOWLEDGED = "the write was not acknowledged and nothing of it was kept"


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system (or the user's quota on it) is full."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return _sqlite_code(exc) == _SQLITE_FULL or "database or disk is full" in str(exc)
    return False


def as_storage_error(exc: BaseException, doing: str, path: str, outcome: str = NOT_ACKNOWLEDGED
                     ) -> StorageError | None:
    """The Heron error for an I/O failure while ``doing`` on ``path``, or None if ``exc`` is not one.

    A `StorageError` is returned as it is, any other Heron error is not an I/O failure. SQLite errors other than a full
    disk, an I/O error or damage (a constraint, SQL) are not I/O failures: None.
    """
    if isinstance(exc, HeronError):
        return exc if isinstance(exc, StorageError) else None
    where = getattr(exc, "filename", None) or path
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    retry = "then retry" if outcome is NOT_ACKNOWLEDGED else "Heron retries by itself"
    if is_disk_full(exc):
        return DiskFullError(
            f"{doing}: the file system holding {where!r} is full ({detail}); {outcome}. Free space there "
            f"(or move the data directory to a larger disk), {retry}; reads keep working meanwhile"
        )
    code = _sqlite_code(exc) if isinstance(exc, sqlite3.Error) else None
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return CorruptionError(f"{doing}: the catalog {where!r} is damaged ({detail}); "
                               "run `heron verify` on the data directory", path=where)
    if isinstance(exc, OSError) or code == _SQLITE_IOERR:
        return StorageError(
            f"{doing}: I/O error on {where!r} ({detail}); {outcome}. Check the disk and its file system "
            f"(the kernel log names the device), {retry}"
        )
    return None


def io_error_as(exc: BaseException, doing: str, path: str, outcome: str = NOT_ACKNOWLEDGED
                ) -> StorageError | None:
    """The Heron error for ``exc`` if it is an I/O failure (a `StorageError` is one already), else None."""
    if isinstance(exc, StorageError):
        return exc
    if not isinstance(exc, _IO_ERRORS):
        return None
    return as_storage_error(exc, doing, path, outcome)


@contextmanager
def removed_on_error(*paths: str) -> Iterator[None]:
    """Delete ``paths`` (those that exist) if the block fails: a file half written or not recorded."""
    try:
        yield
    except BaseException:
        for p in paths:
            try:
                os.unlink(p)
            except OSError:  # gone already, or the error being raised matters more (opening removes orphans)
                pass
        raise


@contextmanager
def storage_errors(doing: str, path: str) -> Iterator[None]:
    """Raise I/O failures inside the block as `DiskFullError` / `StorageError` (see `as_storage_error`)."""
    try:
        yield
    except _IO_ERRORS as exc:
        mapped = as_storage_error(exc, doing, path)
        if mapped is None:
            raise
        raise mapped from exc


def min_free_bytes() -> int:
    """The free space writes leave on the data directory's file system (``HERON_MIN_FREE_BYTES``)."""
    raw = os.environ.get(MIN_FREE_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MIN_FREE_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ParamError(f"{MIN_FREE_ENV}={raw!r}: expected a number of bytes >= 0 (0 turns the check off)")
    return value


class Headroom:
    """Refuses writes while the file system of ``path`` has less than ``min_free`` bytes available.

    One ``statvfs`` per check (about 1 µs): exact, and cheaper than anything
    that would have to guess how much other processes wrote meanwhile.
    """

    def __init__(self, path: str, min_free: int | None = None) -> None:
        self.path = path
        self.min_free = min_free_bytes() if min_free is None else min_free

    def free_bytes(self) -> int | None:
        """Bytes an unprivileged writer may still use there, or None if the file system does not say."""
        try:
            st = os.statvfs(self.path)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def check(self, kind: str, collection: str) -> None:
        """Raise `DiskFullError` if a ``kind`` write (into ``collection``) would leave less than the headroom free."""
        if self.min_free <= 0:
            return
        free = self.free_bytes()
        if free is not None and free < self.min_free:
            raise DiskFullError(
                f"{kind} into collection {collection!r}: refused, the file system holding {self.path!r} has {_mib(free)} free, less than "
                f"the {_mib(self.min_free)} Heron keeps so that logged rows can still be sealed and the log "
                f"deleted ({MIN_FREE_ENV}). Free space there, then retry; reads and deletes keep working"
            )


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
