"""The insert log: append-only files that hold each inserted batch until a sealed segment does.

An insert is the most frequent write and the largest, so it skips the
catalog: its batch (Arrow IPC bytes) is appended to the active log file and
the file is synced with ``fdatasync`` before the insert is acknowledged. That
is one write and one sync, where a transaction of the catalog's log writes the
batch into pages, then frames, then copies it again at a checkpoint.

Each record is a header and the payload, padded with zeros to a multiple of
4 KiB (the format, and how a file is checked, are in `_log_files`), and a
file always keeps a zero tail after its last record: it grows ahead of the
records, in steps (`GROW_BYTES`), each synced before a record goes into it,
so a file cut off at a record boundary is told from one a crash left,
at the cost of one extra sync per step, not per insert. Records
start on 4 KiB boundaries so that they can be written with ``O_DIRECT`` where the
file system allows it: the batch goes from one reused, aligned buffer to the
disk, instead of through fresh page-cache memory, and ``fdatasync`` then has
no dirty pages to find: on 0.6 MB records, write and sync take ~0.4 ms this
way against ~0.7 ms through the page cache. Records of older versions
(without a tail, or unpadded) are read too; a last file whose last record is
not of this version's kind gets no more records, and the next write starts a
new file.

A crash can leave only the last record of the last file short or damaged
(nothing after it was acknowledged), so opening zeroes that one record.
Anything else is damage, and opening refuses with `CorruptionError` naming
the file, the byte offset and the collections whose records the file holds,
without changing any file: a bad record with a whole record after it, a bad
record in an older file or within the bytes the manifest vouches for (those
written before the last clean close), non-zero padding, a file shorter than
the manifest says, a file without its tail, or a file the manifest lists
that is gone. ``heron
repair`` salvages every whole record of a damaged file.

Records are never rewritten. A record is *retired* once the rows it holds are
in a persisted segment file, or its collection or partition was dropped or
truncated; the catalog keeps those retirements as ranges of sequence numbers
(`Retired`), recorded in the same transaction as the segment or the drop.
A file other than the active one is deleted once all its records are retired.
Upserts and deletes stay in the catalog's log, whose records they rewrite.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..._errors import CorruptionError
from ._log_files import (
    ALIGN,
    HEADER,
    MAGIC,
    SUFFIX,
    Damage,
    FileScan,
    Record,
    judge,
    log_files,
    read_manifest,
    salvage,
    scan_file,
    write_manifest,
)
from ._log_files import aligned as _aligned

log = logging.getLogger("heron.engine")

__all__ = ["ALIGN", "HEADER", "MAGIC", "Held", "InsertLog", "Record", "Retired"]

#: The aligned buffer records are put together in is kept for the next record up to this size ...
KEEP_BUFFER_BYTES = 16 << 20
#: ... and until no record has been written for this many seconds (`InsertLog.release_idle`).
IDLE_BUFFER_SECONDS = 1.0
_DIRECT = getattr(os, "O_DIRECT", 0)
#: A log file is closed, and a new one started, once it holds this many bytes.
FILE_BYTES = 64 << 20
#: A file grows by its size, at least this much and at most 16 times this, ahead of the records.
GROW_BYTES = 1 << 20
#: A record of this many bytes or more has the file grown by allocating space, not writing zeros (`_grow`).
LARGE_RECORD_BYTES = 1 << 20
_SUFFIX = SUFFIX


@dataclass
class Retired:
    """Ranges of retired sequence numbers per collection; partition 0 stands for every partition."""

    ranges: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)

    def add(self, collection_id: int, partition_id: int, lo: int, hi: int) -> None:
        self.ranges.setdefault(collection_id, []).append((partition_id, lo, hi))

    def covers(self, r: Record) -> bool:
        for pid, lo, hi in self.ranges.get(r.collection_id, ()):
            if lo <= r.seq <= hi and (pid == 0 or pid == r.partition_id):
                return True
        return False


class InsertLog:
    """The log files of one data directory. Thread-safe; appends are serialised."""

    def __init__(
        self, path: str, retired: Retired, *, file_bytes: int | None = None, names: Mapping[int, str] | None = None
    ) -> None:
        """Open the log files of ``path`` (created if missing), checking every record.

        Damage (see the module docstring) raises `CorruptionError` naming the
        file, the offset and, through ``names`` (collection id -> name), the
        collections whose records the file holds; no file is changed then.
        Otherwise a torn final record is cut away, durably.
        """
        self.path = path
        self.retired = retired
        self.file_bytes = FILE_BYTES if file_bytes is None else file_bytes
        self._lock = threading.Lock()  # held from a write until its `Held` is kept or dropped
        os.makedirs(path, exist_ok=True)
        names_ = log_files(path)
        manifest = read_manifest(path)
        #: Whether the log had a manifest when it was opened (see `_consistency.reconcile`).
        self.had_manifest = manifest is not None
        self._known = manifest or {}
        scans = [scan_file(os.path.join(path, n), n) for n in names_]
        damage = judge(scans, self._known)
        if damage:
            raise _refusal(path, damage[0], scans, names or {})
        self._records: dict[str, list[Record]] = {s.name: s.records for s in scans}
        for s in scans:
            self._known.setdefault(s.name, 0)
        if scans and scans[-1].bad is not None:
            self._cut_torn(scans[-1])
        self._fd = -1
        self._direct = False
        self._active = ""
        self._size = 0  # where the next record goes
        self._alloc = 0  # the size of the active file: records, then the zero tail
        self._buf: mmap.mmap | None = None
        self._buf_used = 0.0  # when a record last used `_buf` (monotonic)
        self._zero_block: mmap.mmap | None = None
        self._zeros: mmap.mmap | None = None
        #: Whether `_grow` may allocate space for large records (False once the file system refused).
        self._can_allocate = hasattr(os, "posix_fallocate")
        if scans and (scans[-1].tailed or not scans[-1].records):
            self._open(scans[-1].name, scans[-1].end)  # otherwise (an older kind of file) the next write starts one

    # -- reading ------------------------------------------------------------------------
    def _cut_torn(self, scan: FileScan) -> None:
        """Zero the torn final record, leaving the tail: it was never acknowledged (see `judge`).

        Zeroing, where truncating would leave a file without its tail until
        the file grew again (and a crash in between would look like damage).
        """
        full = os.path.join(self.path, scan.name)
        log.warning("insert log %s: cutting a torn final record at byte %d (%d bytes)", full, scan.end,
                    scan.size - scan.end)
        with open(full, "r+b") as fh:
            data = os.pread(fh.fileno(), scan.size - scan.end, scan.end)
            used = _aligned(len(data.rstrip(b"\0")))
            os.pwrite(fh.fileno(), bytes(max(used, ALIGN)), scan.end)
            os.fsync(fh.fileno())

    def all_records(self) -> list[Record]:
        """Every record of every file, retired or not."""
        with self._lock:
            return [r for recs in self._records.values() for r in recs]

    def max_seq(self) -> int:
        return max((r.seq for recs in self._records.values() for r in recs), default=0)

    def records(self, collection_id: int) -> list[tuple[int, int, bytes]]:
        """``(seq, partition id, payload)`` of the collection's records that are not retired, in order."""
        with self._lock:
            wanted = [
                r for recs in self._records.values() for r in recs
                if r.collection_id == collection_id and not self.retired.covers(r)
            ]
        out = []
        for name in sorted({r.file for r in wanted}):
            with open(os.path.join(self.path, name), "rb") as fh:
                for r in (r for r in wanted if r.file == name):
                    out.append((r.seq, r.partition_id, os.pread(fh.fileno(), r.length, r.offset)))
        out.sort(key=lambda t: t[0])
        return out

    # -- writing ------------------------------------------------------------------------
    def append(self, seq: int, collection_id: int, partition_id: int, payload: Any) -> None:
        """Append one record and sync it; when this returns the record survives a crash.

        On any error the file is cut back to where it was, and the error raised.
        """
        self.write(seq, collection_id, partition_id, payload).keep()

    def write(self, seq: int, collection_id: int, partition_id: int, payload: Any) -> Held:
        """Append one record and sync it, then hold the log until `Held.keep` or `Held.drop`.

        The record is on disk when this returns; `Held.drop` cuts it away
        again (the caller failed to apply it). The I/O runs on the calling
        thread and releases the GIL, so other threads can prepare the rows
        meanwhile. On any error here the file is cut back and the error raised.
        """
        if hasattr(payload, "write_into"):  # writes itself into the buffer (`_arrow.IpcPayload`)
            size, fill = payload.size, payload.write_into
        else:
            view = memoryview(payload).cast("B")
            size = len(view)

            def fill(out: memoryview) -> None:
                out[:] = view

        end = HEADER.size + size
        total = _aligned(end)
        self._lock.acquire()
        start = -1
        try:
            if self._fd < 0 or self._size >= self.file_bytes:
                self._rotate(seq)
            if self._size + total + ALIGN > self._alloc:
                self._grow(self._size + total + ALIGN, allocate=total >= LARGE_RECORD_BYTES)
            start = self._size
            buf = self._buffer(total)
            with memoryview(buf) as mv:
                with mv[HEADER.size : end] as body:
                    fill(body)
                mv[end:total] = bytes(total - end)
                HEADER.pack_into(mv, 0, MAGIC, 0, size, seq, collection_id, partition_id)
                struct.pack_into("<I", mv, 4, zlib.crc32(mv[8:end]))
                self._write_at(mv[:total], start)
            os.fdatasync(self._fd)
        except BaseException:
            try:
                if start >= 0:
                    self._cut(start)
            finally:
                self._lock.release()
            raise
        return Held(self, start, Record(seq, collection_id, partition_id, self._active, start + HEADER.size, size), total)

    def _grow(self, need: int, allocate: bool = False) -> None:
        """Make the active file at least ``need`` bytes, reading as zeros, durably, before a record goes into it.

        Grows by the file's size (within `GROW_BYTES` .. 16x, and not much past `file_bytes`, where a new
        file starts) where the disk has room, else by what is needed. Zeros are written, not allocated:
        a record then overwrites written blocks, and its ``fdatasync`` has no block or extent to record
        (on ext4 that halves the cost of a small insert against writing into allocated, unwritten space).
        For a large record (``allocate``, `LARGE_RECORD_BYTES` and up) that saving is lost in the
        record's own bytes, and writing zeros first would write every byte twice: the space is allocated
        (``posix_fallocate``; it reads as zeros all the same) where the file system can, 5.3 MB records
        then take ~3.2 ms against ~5.3 ms each on ext4.
        """
        step = min(max(self._alloc, GROW_BYTES), 16 * GROW_BYTES)
        for target in (max(need, min(_aligned(self._alloc + step), _aligned(self.file_bytes) + ALIGN)), need):
            try:
                if not (allocate and self._allocate(target)):
                    self._write_zeros(target)
                break
            except OSError as exc:
                self._alloc = os.fstat(self._fd).st_size
                if exc.errno != errno.ENOSPC or target == need:
                    raise
        os.fdatasync(self._fd)
        self._alloc = os.fstat(self._fd).st_size

    def _allocate(self, target: int) -> bool:
        """Allocate the file up to ``target`` bytes; False where the file system cannot (zeros are written then).

        `OSError` ENOSPC when the disk has no room.
        """
        if not self._can_allocate or target <= self._alloc:
            return False
        try:
            os.posix_fallocate(self._fd, self._alloc, target - self._alloc)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            self._can_allocate = False  # EOPNOTSUPP, EINVAL: no fallocate here, nor an emulation of it
            return False
        return True

    def _write_zeros(self, target: int) -> None:
        if self._zeros is None:
            self._zeros = mmap.mmap(-1, GROW_BYTES)  # aligned, for O_DIRECT
        pos = self._alloc
        while pos < target:
            n = min(GROW_BYTES, target - pos)
            self._write_at(memoryview(self._zeros)[:n], pos)
            pos += n

    def _buffer(self, total: int) -> mmap.mmap:
        """A page-aligned buffer of at least ``total`` bytes; only one record uses it at a time (the lock)."""
        self._buf_used = time.monotonic()
        if self._buf is not None and len(self._buf) >= total:
            return self._buf
        buf = mmap.mmap(-1, max(total, 1 << 20))
        if len(buf) <= KEEP_BUFFER_BYTES:
            if self._buf is not None:
                self._buf.close()
            self._buf = buf
        return buf

    def release_idle(self, seconds: float | None = None) -> bool:
        """Give back the kept record buffer once no record has used it for `seconds`; whether it was.

        `seconds`: `IDLE_BUFFER_SECONDS` unless given.

        A load of 10,000-row inserts of 128-d vectors keeps a 5 MB buffer, memory held for nothing once the
        load has stopped. A write under way is never waited for (the next look tries again).
        """
        if self._buf is None or not self._lock.acquire(blocking=False):
            return False
        try:
            idle = time.monotonic() - self._buf_used
            if self._buf is None or idle < (IDLE_BUFFER_SECONDS if seconds is None else seconds):
                return False
            self._buf.close()
            self._buf = None
            return True
        finally:
            self._lock.release()

    def _write_at(self, data: memoryview, offset: int) -> None:
        size = len(data)
        try:
            written = self._pwrite(data, offset)
            while 0 < written < size:  # write the rest: a full disk then says so (ENOSPC)
                with data[written:] as rest:
                    more = self._pwrite(rest, offset + written)
                if more <= 0:
                    break
                written += more
        finally:
            data.release()
        if written != size:
            raise OSError(f"short write to the insert log ({written} of {size} bytes)")

    def _pwrite(self, data: memoryview, start: int) -> int:
        try:
            return os.pwrite(self._fd, data, start)
        except OSError as exc:
            if not (self._direct and exc.errno == errno.EINVAL):
                raise
        # The file system took O_DIRECT at open but refuses it for writes: write through the page cache.
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~_DIRECT)
        self._direct = False
        return os.pwrite(self._fd, data, start)

    def _cut(self, start: int) -> None:
        """Take the record at ``start`` away, durably: zero its first block (best effort: the error being raised
        matters more). The rest of it is overwritten by the next record, or zeroed at the next open."""
        try:
            if self._zero_block is None:
                self._zero_block = mmap.mmap(-1, ALIGN)  # aligned, for O_DIRECT
            with memoryview(self._zero_block) as zero:
                self._write_at(zero, start)
            os.fdatasync(self._fd)
        except OSError:
            log.warning("could not cut the insert log %s back to %d bytes", self._active, start, exc_info=True)

    def _open(self, name: str, end: int = 0) -> None:
        full = os.path.join(self.path, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        self._direct = False
        if _DIRECT:
            try:
                self._fd = os.open(full, flags | _DIRECT, 0o644)
                self._direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: this file system has no O_DIRECT
                    raise
        if not self._direct:
            self._fd = os.open(full, flags, 0o644)
        self._active = name
        self._size = end
        self._alloc = os.fstat(self._fd).st_size
        self._records.setdefault(name, [])

    def _rotate(self, seq: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        done, done_size = self._active, self._size
        self._open(f"{seq:020d}{_SUFFIX}")
        if done:
            self._known[done] = done_size
        self._known[self._active] = self._size
        # The manifest lists the new file (and vouches for the one just finished) before a record goes into
        # it: a newest file deleted whole is then missing, not a log that never rotated. One write (~7 ms,
        # its directory sync included) per rotation, on the insert that rotates.
        write_manifest(self.path, self._known)
        self._collect()

    def prepare(self, next_seq: int) -> None:
        """Have a file open for records from ``next_seq`` on, so that the first insert does not create one."""
        with self._lock:
            if self._fd < 0:
                self._rotate(next_seq)

    # -- retiring -----------------------------------------------------------------------
    def retire(self, collection_id: int, partition_id: int, lo: int, hi: int) -> None:
        """Note a retirement the catalog has committed, and delete files with nothing left to replay."""
        with self._lock:
            self.retired.add(collection_id, partition_id, lo, hi)
            self._collect()

    def _collect(self) -> None:
        """Delete the files with nothing left to replay; the manifest drops them first (see `_log_files`).

        The active file goes too once it holds records and all are retired: its
        space is freed now rather than once it grows to `file_bytes` (on a nearly
        full disk it may not grow again); the next record starts a new file.
        """
        gone = [n for n, recs in self._records.items()
                if (recs or n != self._active) and all(self.retired.covers(r) for r in recs)]
        if not gone:
            return
        for name in gone:
            del self._records[name]
            self._known.pop(name, None)
        write_manifest(self.path, self._known)
        for name in gone:
            if name == self._active:
                os.close(self._fd)
                self._fd, self._active, self._size = -1, "", 0
            os.unlink(os.path.join(self.path, name))

    def save_manifest(self) -> None:
        """Write the manifest as the log stands (the files, and the lengths it vouches for)."""
        with self._lock:
            write_manifest(self.path, self._known)

    def files(self) -> list[str]:
        with self._lock:
            return sorted(self._records)

    def close(self) -> None:
        """Close the files; the manifest then vouches for every record written (none of them may be torn)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
                self._known[self._active] = self._size
                try:
                    write_manifest(self.path, self._known)
                except OSError:  # the records are on disk; the next open checks them with less to go on
                    log.warning("could not write the insert log manifest of %s", self.path, exc_info=True)
            for buf in (self._buf, self._zero_block, self._zeros):
                if buf is not None:
                    buf.close()
            self._buf = self._zero_block = self._zeros = None


class Held:
    """A record written to the insert log and synced; the log is locked until it is kept or dropped."""

    __slots__ = ("_log", "_start", "_record", "_total")

    def __init__(self, log: InsertLog, start: int, record: Record, total: int) -> None:
        self._log = log
        self._start = start
        self._record = record
        self._total = total

    def keep(self) -> None:
        """The record stays: the log moves past it."""
        lg = self._log
        try:
            r = self._record
            lg._size = self._start + self._total
            lg._records[r.file].append(r)
        finally:
            lg._lock.release()

    def drop(self) -> None:
        """The write failed elsewhere: cut the record away again."""
        try:
            self._log._cut(self._start)
        finally:
            self._log._lock.release()


def _refusal(path: str, damage: Damage, scans: list[FileScan], names: Mapping[int, str]) -> CorruptionError:
    """The error that refuses to open a damaged log: the file, the offset, and whose records the file holds."""
    full = os.path.join(path, damage.name)
    present = any(s.name == damage.name for s in scans)
    ids = {r.collection_id for r in salvage(full, damage.name)[0]} if present else set()
    if present:  # the damaged record's own header, where it still reads as one of a known collection
        with open(full, "rb") as fh:
            head = os.pread(fh.fileno(), HEADER.size, damage.offset)
        if len(head) == HEADER.size and head[:4] == MAGIC and HEADER.unpack(head)[4] in names:
            ids.add(HEADER.unpack(head)[4])
    if ids:
        held = "; it holds records of " + ", ".join(
            f"collection {i}" + (f" ({names[i]})" if i in names else "") for i in sorted(ids))
    else:
        held = "; which collections its records belong to is unknown"
    return CorruptionError(
        f"insert log file {full!r}: {damage.reason}{held}. Nothing was changed; run `heron repair "
        f"{os.path.dirname(path)}` to keep every intact record, or restore the directory from a backup",
        path=full, offset=damage.offset,
    )

