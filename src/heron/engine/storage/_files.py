"""Files of a data directory: the process lock and sealed segment files (the insert log is `_insert_log`).

Segment files are written to a temporary name, fsynced, renamed into place
and the directory fsynced, so a file that exists under its final name is
complete. Vector index files are derived data and may be deleted at will.

Each segment file has a `FileChecksum` (its size and a CRC32 per MiB),
computed as it is written and recorded in the catalog in the transaction
that records the segment, so it cannot be lost with the file. A segment is
read only through `read_segment_file`, which checks every byte against it
before Arrow parses anything: damage, truncation or a missing file raise
`CorruptionError` naming the file and the first damaged byte. Files written
before checksums were recorded get a structural check instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa

from ..._errors import CorruptionError, DataDirLockedError, HeronError
from .._faults import fault_point
from . import _prefault as prefault

log = logging.getLogger("heron.engine")


class DataDir:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise HeronError(f"uri {path!r}: a file is in the way; expected a Heron data directory or a new path")
        os.makedirs(os.path.join(self.path, "segments"), exist_ok=True)
        self._lock_file: IO[str] | None = open(os.path.join(self.path, "LOCK"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise DataDirLockedError(
                f"data directory {self.path!r} is open for writing in another process; "
                "close it there, or connect to a server that owns it"
            ) from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    @property
    def catalog_path(self) -> str:
        return os.path.join(self.path, "catalog.db")

    @property
    def insert_log_path(self) -> str:
        return os.path.join(self.path, "log")

    def collection_dir(self, collection_id: int) -> str:
        d = os.path.join(self.path, "segments", f"c{collection_id}")
        os.makedirs(d, exist_ok=True)
        return d

    def segment_path(self, collection_id: int, segment_id: int) -> str:
        return os.path.join(self.collection_dir(collection_id), f"s{segment_id}.arrow")

    def index_path(self, collection_id: int, segment_id: int, field: str) -> str:
        return os.path.join(self.collection_dir(collection_id), f"s{segment_id}.{field}.index")

    def remove_collection(self, collection_id: int) -> None:
        shutil.rmtree(os.path.join(self.path, "segments", f"c{collection_id}"), ignore_errors=True)

    def leave_lock(self) -> None:
        """In a forked child: let go of the parent's lock without unlocking it.

        ``flock`` locks belong to the open file description, which the child
        shares: unlocking would free the parent's lock, and holding the
        descriptor would keep the lock alive once the parent is gone. The
        descriptor is replaced by one on ``/dev/null``, so a later close of
        the file object closes only that.
        """
        if self._lock_file is not None:
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            os.dup2(null, self._lock_file.fileno(), inheritable=False)
            os.close(null)

    def close(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Segment and index files being written are synced every this many bytes (see `PacedFile`).
SYNC_EVERY_BYTES = 1 << 20
#: How long a `PacedFile` waits after each step while its thread's callers are busy.
BUSY_PAUSE_SECONDS = 0.01

_pacing = threading.local()


def pace_while(busy: Callable[[], bool]) -> None:
    """Make the `PacedFile`s this thread writes wait between steps while ``busy()`` holds."""
    _pacing.busy = busy


class PacedFile(io.FileIO):
    """A new file written in steps of `SYNC_EVERY_BYTES`, each synced before the next.

    Written in one go, a segment or index file puts tens of MiB in the disk's
    queue at its final sync, and every insert acknowledged meanwhile waits
    behind them for its own log sync. In steps, an insert waits for one step
    at most. While callers are busy (`pace_while`), each step is followed by
    a pause, so a stream of inserts meets a step in the disk's queue now and
    then rather than at every sync (1,000-row inserts after a seal take ~2.2
    ms a call with the pauses, ~2.7 ms without). The file is derived data
    (the insert log holds the rows until it is written), so writing it later
    loses nothing.
    """

    def __init__(self, path: str, checksum: FileChecksum | None = None,
                 splices: dict[tuple[int, int], list[Piece]] | None = None,
                 check: Callable[[], None] | None = None) -> None:
        super().__init__(path, "wb")
        self._unsynced = 0
        self._checksum = checksum
        #: Called after each step: raises to give the file up (the merge it belongs to is no longer wanted).
        self._check = check
        #: Pieces written in place of a stand-in buffer, by the buffer's (address, size); see `write_segment_file`.
        self.splices = dict(splices or {})

    def write(self, data: Any) -> int:
        if self.splices and isinstance(data, pa.Buffer):
            pieces = self.splices.pop((data.address, data.size), None)
            if pieces is not None:
                done = 0
                for piece in pieces:
                    done += self._write(memoryview(piece.array).cast("B"), piece.mapped)  # type: ignore[arg-type]
                if done != data.size:
                    raise ValueError(f"spliced pieces hold {done} bytes in place of {data.size}")
                return done
        return self._write(memoryview(data).cast("B"))

    def _write(self, view: memoryview, mapped: bool = False) -> int:
        done = 0
        address = np.frombuffer(view, np.uint8).ctypes.data if mapped and len(view) else 0
        while done < len(view):
            step = super().write(view[done : done + SYNC_EVERY_BYTES - self._unsynced]) or 0
            if self._checksum is not None:
                self._checksum.update(view[done : done + step])
            if mapped:
                prefault.drop_mapped(address + done, step)
            done += step
            self._unsynced += step
            if self._unsynced >= SYNC_EVERY_BYTES:
                self.sync()
        return done

    def sync(self) -> None:
        os.fdatasync(self.fileno())
        self._unsynced = 0
        if self._check is not None:
            self._check()
        busy = getattr(_pacing, "busy", None)
        if busy is not None and busy():
            time.sleep(BUSY_PAUSE_SECONDS)


#: Segment files are checksummed in blocks of this many bytes, so damage is placed to within one.
CHECKSUM_BLOCK = 1 << 20
_CHECKSUM_HEAD = struct.Struct("<4sQI")  # magic, file size, block size; then one uint32 CRC per block
_CHECKSUM_MAGIC = b"HCK1"


class FileChecksum:
    """The size of a file and the CRC32 of each of its `CHECKSUM_BLOCK`-byte blocks.

    Built incrementally (`update`) while the file is written, or read back from
    its catalog form (`from_bytes`). zlib's CRC32 runs at 1.2-2.2 GB/s on a
    2-core VM and releases the GIL: checking a 100k x 128 segment (53 MB)
    costs 24-57 ms.
    """

    __slots__ = ("size", "block", "crcs", "_crc", "_filled")

    def __init__(self, block: int = CHECKSUM_BLOCK) -> None:
        self.size = 0
        self.block = block
        self.crcs: list[int] = []
        self._crc = 0
        self._filled = 0

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            take = min(len(view) - done, self.block - self._filled)
            self._crc = zlib.crc32(view[done : done + take], self._crc)
            self._filled += take
            done += take
            if self._filled == self.block:
                self.crcs.append(self._crc)
                self._crc, self._filled = 0, 0
        self.size += len(view)

    def finish(self) -> FileChecksum:
        """Close the last, partial block; returns self."""
        if self._filled:
            self.crcs.append(self._crc)
            self._crc, self._filled = 0, 0
        return self

    def to_bytes(self) -> bytes:
        """The form the catalog keeps."""
        self.finish()
        return _CHECKSUM_HEAD.pack(_CHECKSUM_MAGIC, self.size, self.block) + struct.pack(
            f"<{len(self.crcs)}I", *self.crcs
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> FileChecksum:
        """The checksum `to_bytes` wrote; `ValueError` if ``raw`` is not one."""
        if len(raw) < _CHECKSUM_HEAD.size:
            raise ValueError("checksum record too short")
        magic, size, block = _CHECKSUM_HEAD.unpack_from(raw)
        count = (len(raw) - _CHECKSUM_HEAD.size) // 4
        if magic != _CHECKSUM_MAGIC or block <= 0 or count != -(-size // block):
            raise ValueError("not a checksum record")
        out = cls(block)
        out.size = size
        out.crcs = list(struct.unpack_from(f"<{count}I", raw, _CHECKSUM_HEAD.size))
        return out

    def first_mismatch(self, data: Any) -> int | None:
        """The offset of the first block of ``data`` (the whole file) that differs, or None if all match.

        A file shorter or longer than recorded differs at its end (or the recorded end).
        """
        view = memoryview(data).cast("B")
        for i, want in enumerate(self.crcs):
            lo = i * self.block
            if lo >= len(view):
                return len(view)
            if zlib.crc32(view[lo : lo + self.block]) != want:
                return lo
        return None if len(view) == self.size else min(len(view), self.size)


@dataclass(frozen=True)
class Piece:
    """Part of a spliced buffer (`write_segment_file`): an array's bytes; ``mapped``: of a read-only file mapping.

    The pages of a mapped piece are dropped from the process as they are
    written (`_prefault.drop_mapped`), so copying a mapped file's column
    costs the page cache, not the heap.
    """

    array: np.ndarray
    mapped: bool = False


def write_segment_file(path: str, table: pa.RecordBatch, splices: dict[tuple[int, int], list[Piece]] | None = None,
                       check: Callable[[], None] | None = None) -> FileChecksum:
    """Write ``table`` to ``path`` atomically and durably; returns the file's checksum.

    ``splices`` maps a buffer of ``table`` (its address and size) to the
    pieces written in its place, in order: a column joined from several
    arrays is written from them without joining them in memory (the buffer
    itself is a stand-in, never read: memory never touched costs nothing).
    Every splice must be used, or ValueError. ``check`` (if given) is called
    after each step (`PacedFile`) and may raise to give the file up. On
    failure the error propagates and no file exists under ``path``.
    """
    tmp = path + ".tmp"
    checksum = FileChecksum()
    try:
        with PacedFile(tmp, checksum, splices, check) as fh:
            with pa.ipc.new_file(fh, table.schema) as w:
                w.write_batch(table)
            if fh.splices:
                raise ValueError(f"{len(fh.splices)} spliced buffer(s) of the table were never written")
            fh.sync()
        fault_point("segment.before_rename")
        os.replace(tmp, path)
        fault_point("segment.after_rename")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(path))
    return checksum.finish()


def read_segment_file(path: str, checksum: FileChecksum | None = None, num_rows: int | None = None) -> pa.Table:
    """The rows of a segment file, every byte checked against ``checksum`` before Arrow parses any.

    Raises `CorruptionError` (with ``path`` and the first damaged ``offset``)
    when the file is missing, shorter or longer than written, differs from
    its checksum, does not parse, or holds other than ``num_rows`` rows.
    Without a checksum (a file written before they were recorded), the file
    is checked for structure only, and a log line says so.
    """
    if checksum is None:
        log.warning("segment file %s has no checksum recorded (written by an older version): "
                    "checking its structure only", path)
    return check_segment_file(path, checksum, num_rows)


def check_segment_file(path: str, checksum: FileChecksum | None, num_rows: int | None = None) -> pa.Table:
    """`read_segment_file` without its log line (for ``heron verify``, which reports files itself)."""
    try:
        src = pa.memory_map(path, "r")
    except FileNotFoundError:
        raise CorruptionError(f"segment file {path!r} is missing", path=path, offset=0) from None
    except (OSError, pa.ArrowException) as exc:
        raise CorruptionError(f"segment file {path!r} cannot be read: {exc}", path=path, offset=0) from exc
    with src:
        buf = src.read_buffer()
        if checksum is not None:
            bad = checksum.first_mismatch(buf)
            if bad is not None:
                what, offset = describe_mismatch(checksum, buf.size, bad)
                raise CorruptionError(f"segment file {path!r} {what}", path=path, offset=offset)
        try:
            table = pa.ipc.open_file(buf).read_all()
            if checksum is None:
                table.validate(full=True)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise CorruptionError(f"segment file {path!r} is damaged: {exc}", path=path) from exc
    if num_rows is not None and table.num_rows != num_rows:
        raise CorruptionError(
            f"segment file {path!r} is damaged: it holds {table.num_rows} rows, the catalog records {num_rows}",
            path=path,
        )
    return table


def describe_mismatch(checksum: FileChecksum, size: int, bad: int) -> tuple[str, int]:
    """What `FileChecksum.first_mismatch` found (``bad``) in a file of ``size`` bytes, and the offset to name."""
    tail = min(size, checksum.size)
    if size != checksum.size and bad >= tail - tail % checksum.block:
        if size < checksum.size:
            return f"is truncated: {size} of {checksum.size} bytes", size
        return f"has {size - checksum.size} bytes more than the {checksum.size} written", checksum.size
    return f"is damaged: checksum mismatch in bytes {bad}..{min(size, bad + checksum.block) - 1}", bad
