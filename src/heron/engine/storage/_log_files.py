"""The insert log's files as bytes: the record format, checking a file, salvaging one, and the manifest.

A record is a header and the payload, padded with zeros to a multiple of 4 KiB::

    magic "HIL3" | crc32 | payload length | seq | collection id | partition id | payload | padding

The CRC covers everything after itself up to the padding; the padding must
be zeros, and is checked at open (a flipped bit there is damage like any
other, though no data is lost: `heron repair` rewrites the file). Older
files hold records without a tail ("HIL2", see below) or unpadded records
("HIL1"), packed one after another.

A file of "HIL3" records always ends with at least `ALIGN` zero bytes after
its last record (the *tail*): the file is grown, and the growth synced,
before a record that would leave less, so a crash cannot leave a whole
last record without its tail, nor a torn one without the bytes it was to
fill and the tail after them. A file that ends sooner was cut off, which no
crash explains: damage, whether the cut lies at a record boundary or inside
the last record. Zeros up to the end of a file are its tail, not a record.

The manifest (``log/MANIFEST``, checksummed) lists the log files and, for
each, how many bytes of it were whole records when the manifest was last
written (at a clean close, whenever a file is collected, and whenever a new
file is started, before its first record). Opening checks against it: a
listed file that is gone (the newest one included), a file shorter than its length, or a bad record
within that length is damage, not a torn write. Only records after that
length, in the last file, can have been torn by a crash.

Nothing here changes a file except `write_manifest` and `write_records`.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..._errors import CorruptionError
from ._files import fsync_dir

Buffer = bytes | mmap.mmap | memoryview

MAGIC = b"HIL3"
PADDED = b"HIL2"  # padded records in a file with no tail: read, never written
PACKED = b"HIL1"  # unpadded records: read, never written
HEADER = struct.Struct("<4sIIqqq")  # magic, crc32, payload length, seq, collection id, partition id
#: Records start, and are padded to end, on multiples of this (the largest common block size).
ALIGN = 4096
SUFFIX = ".log"
MANIFEST = "MANIFEST"
_MANIFEST_HEAD = "heron insert log manifest 1"
_ZEROS = bytes(ALIGN)
_MIB_ZEROS = bytes(1 << 20)


@dataclass(frozen=True, slots=True)
class Record:
    seq: int
    collection_id: int
    partition_id: int
    file: str
    offset: int  # of the payload
    length: int


@dataclass
class FileScan:
    """What one log file holds, read without changing it.

    ``records`` are the whole records from the start up to ``end``; ``bad`` is
    the offset of the first record that is not whole (None: every byte up to
    the size is whole records), ``later`` the offset of a whole record after
    it (None: nothing whole follows, as after a torn write), and
    ``bad_padding`` the first non-zero padding byte after a whole record;
    ``tailed`` whether the last whole record is of a file that keeps a tail;
    ``short`` whether the file ends before the bad record's bytes and the tail
    after them (in a file that keeps a tail).
    """

    name: str
    size: int
    records: list[Record]
    end: int
    bad: int | None = None
    later: int | None = None
    bad_padding: int | None = None
    tailed: bool = False
    short: bool = False


@dataclass(frozen=True)
class Damage:
    """Damage to the insert log that a crash cannot explain."""

    name: str
    offset: int
    reason: str


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def log_files(path: str) -> list[str]:
    """The names of the log files in ``path``, oldest first."""
    return sorted(n for n in os.listdir(path) if n.endswith(SUFFIX))


def record_at(m: Buffer, pos: int, size: int, name: str) -> tuple[Record, int] | None:
    """The whole, intact record at ``pos`` and where the next one starts, or None."""
    if pos + HEADER.size > size:
        return None
    magic, crc, length, seq, coll, part = HEADER.unpack_from(m, pos)
    end = pos + HEADER.size + length
    if magic not in (MAGIC, PADDED, PACKED) or end > size:
        return None
    with memoryview(m)[pos + 8 : end] as body:
        if zlib.crc32(body) != crc:
            return None
    rec = Record(seq, coll, part, name, pos + HEADER.size, length)
    return rec, (end if magic == PACKED else pos + aligned(end - pos))


def next_record(m: bytes | mmap.mmap, start: int, size: int, name: str) -> int | None:
    """The offset of the first whole record at or after ``start``: padded ones on 4 KiB boundaries, packed anywhere."""
    best: int | None = None
    for magic in (MAGIC, PADDED, PACKED):
        pos = start
        while best is None or pos < best:
            pos = m.find(magic, pos)
            if pos < 0 or (best is not None and pos >= best):
                break
            if (magic == PACKED or pos % ALIGN == 0) and record_at(m, pos, size, name) is not None:
                best = pos
                break
            pos += 1
    return best


def scan_file(path: str, name: str) -> FileScan:
    """Read one log file (see `FileScan`); the file is not changed."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        out = FileScan(name, size, [], 0)
        if size == 0:
            return out
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            pos = 0
            while pos < size:
                found = record_at(m, pos, size, name)
                if found is None:
                    if not zeros(m, pos, size):  # zeros to the end are the tail
                        out.bad = pos
                        out.later = next_record(m, pos + 1, size, name)
                        out.short = _short(m, pos, size, out.tailed)
                    break
                rec, nxt = found
                out.records.append(rec)
                out.tailed = m[pos : pos + 4] == MAGIC
                stop, tail = rec.offset + rec.length, min(nxt, size)
                if out.bad_padding is None and m[stop:tail] != _ZEROS[: tail - stop]:
                    out.bad_padding = tail - len(m[stop:tail].lstrip(b"\0"))
                pos = nxt
    out.end = min(pos, size)
    return out


def _short(m: Buffer, pos: int, size: int, tailed: bool) -> bool:
    """Whether a file that keeps a tail ends before the bad record at ``pos`` and a tail after it could."""
    head = bytes(m[pos : pos + HEADER.size])
    magic = head[:4]
    if not tailed and magic != MAGIC:
        return False  # a file of an older kind, or whose kind cannot be told
    need = pos + ALIGN
    if magic == MAGIC and len(head) == HEADER.size:
        need = pos + aligned(HEADER.size + HEADER.unpack(head)[2]) + ALIGN
    return size < need


def zeros(m: Buffer, start: int, stop: int) -> bool:
    """Whether bytes ``start:stop`` of ``m`` are all zero."""
    step = 1 << 20
    for pos in range(start, stop, step):
        end = min(stop, pos + step)
        if m[pos:end] != _MIB_ZEROS[: end - pos]:
            return False
    return True


def judge(scans: list[FileScan], known: Mapping[str, int]) -> list[Damage]:
    """Damage that no crash explains, given the files' scans (oldest first) and the manifest's lengths.

    A bad record is a torn write only when it is in the last file, after the
    length the manifest vouches for, and no whole record follows it. A file
    that keeps a tail and has none was cut at a record boundary.
    """
    out = []
    present = {s.name for s in scans}
    for name in sorted(set(known) - present):
        out.append(Damage(name, 0, f"missing (the manifest lists it with {known[name]} bytes of records)"))
    for i, s in enumerate(scans):
        last = i == len(scans) - 1
        good = known.get(s.name, 0)
        if s.size < good:
            out.append(Damage(s.name, s.size, f"truncated at byte {s.size}, but {good} bytes of it were whole records"))
        elif s.bad is not None and s.short and s.later is None:
            out.append(Damage(s.name, s.size, f"cut off at byte {s.size}, inside the record at byte {s.bad} or the "
                              "zero tail every write leaves after it, which a crash cannot shorten: the record "
                              "and any written after it are gone"))
        elif s.bad is not None and (not last or s.bad < good or s.later is not None):
            why = ("whole records follow it" if s.later is not None else
                   "it is not in the last file" if not last else f"it lies within the {good} bytes the manifest vouches for")
            out.append(Damage(s.name, s.bad, f"damaged record at byte {s.bad} (not a torn final write: {why})"))
        elif s.bad is None and s.tailed and s.size - s.end < ALIGN:
            out.append(Damage(s.name, s.size, f"cut off at byte {s.size}, right after a whole record, without the "
                              "zero tail every write leaves: the records written after it are gone"))
        if s.bad_padding is not None:
            out.append(Damage(s.name, s.bad_padding, f"non-zero padding at byte {s.bad_padding}"))
    return out


def salvage(path: str, name: str) -> tuple[list[Record], int, bytes]:
    """Every whole record of a file, skipping damage; also how many bytes were not in one, and the bytes."""
    with open(path, "rb") as fh:
        data = fh.read()
    size = len(data)
    out: list[Record] = []
    lost = pos = 0
    while pos < size:
        found = record_at(data, pos, size, name)
        if found is None:
            nxt = next_record(data, pos + 1, size, name)
            stop = size if nxt is None else nxt
            lost += len(data[pos:stop].rstrip(b"\0")) if nxt is None else stop - pos
            pos = stop
            continue
        rec, pos = found
        out.append(rec)
    return out, lost, data


def encode(seq: int, collection_id: int, partition_id: int, payload: bytes) -> bytes:
    """One record, padded, as `InsertLog` writes it."""
    rest = HEADER.pack(MAGIC, 0, len(payload), seq, collection_id, partition_id)[8:] + payload
    body = MAGIC + struct.pack("<I", zlib.crc32(rest)) + rest
    return body + bytes(aligned(len(body)) - len(body))


def write_records(path: str, records: Iterable[tuple[int, int, int, bytes]]) -> int:
    """Write ``(seq, collection, partition, payload)`` records and the tail to a new file ``path``, synced.

    Returns the bytes of records (the size less the tail).
    """
    with open(path, "xb") as fh:
        for seq, coll, part, payload in records:
            fh.write(encode(seq, coll, part, payload))
        end = fh.tell()
        fh.write(_ZEROS)
        fh.flush()
        os.fsync(fh.fileno())
        return end


# -- the manifest ------------------------------------------------------------------------


def read_manifest(path: str) -> dict[str, int] | None:
    """The manifest of log directory ``path``: file name -> bytes of whole records; None if there is none.

    A damaged manifest raises `CorruptionError`.
    """
    full = os.path.join(path, MANIFEST)
    try:
        with open(full, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    body, _, crc = raw.rstrip(b"\n").rpartition(b"\n")
    try:
        lines = body.decode().split("\n")
        if lines[0] != _MANIFEST_HEAD or int(crc.decode(), 16) != zlib.crc32(body):
            raise ValueError("bad checksum")
        out = {}
        for line in lines[1:]:
            name, length = line.split(" ")
            out[name] = int(length)
    except ValueError as exc:
        raise CorruptionError(f"insert log manifest {full!r} is damaged ({exc}); run `heron repair` on the data "
                              "directory to rebuild it", path=full) from None
    return out


def write_manifest(path: str, files: Mapping[str, int]) -> None:
    """Replace the manifest of ``path`` atomically (a temporary file, synced, renamed, the directory synced)."""
    body = "\n".join([_MANIFEST_HEAD, *(f"{n} {files[n]}" for n in sorted(files))]).encode()
    tmp = os.path.join(path, MANIFEST + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(body + b"\n" + f"{zlib.crc32(body):08x}\n".encode())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, os.path.join(path, MANIFEST))
    fsync_dir(path)

