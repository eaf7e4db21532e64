"""Resumable import jobs: a durable record of the row ranges already in, so a rerun finishes a job a crash cut short.

An import started with the option ``resume=1`` (``heron import`` asks for
it; Milvus ignores options it does not know) commits its rows chunk by chunk
and keeps ``DIR/imports/KEY.resume``, KEY naming the database, collection,
partition and files. Its first line holds each file's size and modification
time, the rows per chunk and the collection's id; then, synced to disk before each chunk's insert,
one line per chunk: its file group, first row, row count, the engine's last
sequence number before the insert and the chunk's first primary key.

An insert is one insert-log record, so after a crash either all rows of a
chunk are stored or none. Every chunk line but the last was inserted (the
next line is written only once the insert returned); whether the last one
was is read from the data: a row with the chunk's first key and a sequence
number above the one recorded. For an auto_id collection, whose keys are made
by the insert, it is a group of exactly that many rows with one sequence
number above the recorded one in the partition: exact unless another client
inserted a batch of the same size into that partition at that moment.

A rerun of the same import (same collection, partition and files) skips the
chunks in (they form a prefix of each file; its reader starts after it), and removes the record once all rows are flushed. It refuses when
the collection was dropped and created again since, or a file changed (size
or modification time), except the file whose bad row stopped the job: rows of
it before the failing chunk are taken as they were. Until the rerun, the rows imported so far stay visible. The option
``resume=abort`` drops the record (its rows stay), so that a later import of
the same files starts from the first row.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import ParamError
from ._collection import Partition
from .storage._files import fsync_dir

SUFFIX = ".resume"


def record_path(root: str, db: str, collection: str, partition: str, groups: list[list[str]]) -> str:
    """Where the record of an import of ``groups`` into ``db.collection`` (``partition``) is kept."""
    key = json.dumps([db, collection, partition, groups]).encode()
    return os.path.join(root, "imports", hashlib.sha256(key).hexdigest()[:24] + SUFFIX)


def fingerprints(groups: list[list[str]]) -> list[list[list[Any]]]:
    """(path, size, modification time in ns) of each file, group by group."""
    out = []
    for g in groups:
        out.append([[f, (st := os.stat(f)).st_size, st.st_mtime_ns] for f in g])
    return out


class ResumeRecord:
    """The record of one resumable job: the chunks it inserted, and ``stopped`` (the group a bad row stopped)."""

    def __init__(self, path: str, head: dict[str, Any], chunks: list[dict[str, Any]]) -> None:
        self.path, self.head, self.chunks = path, head, chunks
        #: The chunks in when the job (re)started, as `done` gives them.
        self.resumed: dict[tuple[int, int], int] = {}
        self._fh: Any = None

    @property
    def rows_per_chunk(self) -> int:
        return int(self.head["chunk"])

    @classmethod
    def load(cls, path: str) -> ResumeRecord | None:
        """The record at ``path``, or None when there is none; a line torn by a crash while it was written is left out."""
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return None
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except ValueError:
                break
        if not entries or "files" not in entries[0]:
            return None
        head = entries[0]
        chunks = [e for e in entries[1:] if "chunk" in e]
        for e in entries[1:]:
            if "stopped" in e:
                head["stopped"] = e["stopped"]
        return cls(path, head, chunks)

    def check_files(self, now: list[list[list[Any]]]) -> None:
        """`ParamError` naming the first file that changed since the job began (a stopped group may change)."""
        before = self.head["files"]
        stopped = self.head.get("stopped")
        for g, (old, new) in enumerate(zip(before, now, strict=True)):
            if g == stopped or old == new:
                continue
            for (path, size, mtime), (_, size2, mtime2) in zip(old, new, strict=True):
                if (size, mtime) != (size2, mtime2):
                    raise ParamError(
                        f"files: {path!r} changed since the interrupted import of these files began (size {size} -> "
                        f"{size2}, modified {mtime} -> {mtime2} ns); put the file back as it was and rerun to resume, "
                        "or drop the record with the option resume=abort (`heron import --abort`) and import again")

    def done(self, last_landed: bool) -> dict[tuple[int, int], int]:
        """(group, first row) -> rows of each chunk in; the last chunk only when ``last_landed``."""
        chunks = self.chunks if last_landed or not self.chunks else self.chunks[:-1]
        return {(int(c["chunk"][0]), int(c["chunk"][1])): int(c["chunk"][2]) for c in chunks}

    def start(self, files: list[list[list[Any]]], done: dict[tuple[int, int], int]) -> None:
        """Rewrite the record as the job (re)starts: today's file fingerprints and the chunks in, atomically."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        head = {k: v for k, v in self.head.items() if k != "stopped"}
        head["files"] = files
        lines = [head] + [{"chunk": [g, first, n]} for (g, first), n in sorted(done.items())]
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(e) + "\n" for e in lines))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fsync_dir(os.path.dirname(self.path))
        self.head, self.chunks, self.resumed = head, [], done
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the job's lifetime

    def begin(self, group: int, first: int, n: int, seq: int, key: Any) -> None:
        """Record, on disk, the chunk about to be inserted: after it returns, every row of it is in."""
        self._write({"chunk": [group, first, n], "seq": seq, "key": key})

    def stop(self, group: int) -> None:
        """Record that a bad row of ``group`` stopped the job (a rerun accepts that group's files changed)."""
        self._write({"stopped": group})

    def _write(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self, forget: bool = False) -> None:
        """Close the record; ``forget`` (all rows in and flushed, or an abort) also removes it."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if forget and os.path.exists(self.path):
            os.unlink(self.path)
            fsync_dir(os.path.dirname(self.path))


def new_record(path: str, files: list[list[list[Any]]], chunk: int, collection_id: int) -> ResumeRecord:
    """A record for a job starting from its first row, into the collection numbered ``collection_id``."""
    return ResumeRecord(path, {"files": files, "chunk": chunk, "collection_id": collection_id}, [])


def landed(partition: Partition, chunk: dict[str, Any], pk_is_auto: bool) -> bool:
    """Whether the chunk of the record's last line is stored in ``partition`` (see the module docstring)."""
    seq, n, key = int(chunk.get("seq", -1)), int(chunk["chunk"][2]), chunk.get("key")
    if seq < 0:
        return False
    if not pk_is_auto:
        keys = np.array([key], dtype=object if isinstance(key, str) else np.int64)
        for seg in partition.segments():
            rows = seg.find_keys(keys, seg.n)
            if len(rows) and bool((seg.seq.data[rows] > seq).any()):
                return True
        return False
    later = [s[s > seq] for s in (seg.seq.data[: seg.n] for seg in partition.segments())]
    newer = np.concatenate(later) if later else np.empty(0, np.int64)
    return bool(len(newer)) and int((newer == newer.min()).sum()) == n


def first_key(values: Any) -> Any:
    """The first primary key of a chunk's key column (numpy or Arrow) as a JSON value."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values[0].as_py()
    v = np.asarray(values[:1]).tolist()
    return v[0] if v else None
