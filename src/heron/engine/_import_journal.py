"""The journal of a running import job, so that a crash in the middle of one leaves none of its rows.

While a job inserts, ``DIR/imports/JOB.journal`` names its collection (first
line) and, one JSON line per chunk, the primary keys of the chunk, written
and synced before the chunk is inserted (for an auto_id collection, whose
keys are made by the insert, right after it). The journal is removed once
the job's rows are flushed. A journal found when the engine opens belongs
to a job cut short: `roll_back` deletes the rows it names, so rerunning the
import neither loses nor doubles a row. Deleting by key also deletes older
rows with the same keys: an import should not repeat keys already stored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

from .. import _requests as rq
from .._errors import HeronError

log = logging.getLogger("heron.import")


class Journal:
    """The journal of one job; `add` before (or, for auto_id, right after) each insert, `close` once flushed."""

    def __init__(self, root: str, job_id: int, db: str, collection: str, partition: str) -> None:
        folder = os.path.join(root, "imports")
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, f"{job_id}.journal")
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - open for the job's lifetime
        self._write({"db": db, "collection": collection, "partition": partition})

    def _write(self, entry: Any) -> None:
        self._fh.write(json.dumps(entry) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def add(self, pks: list[Any]) -> None:
        """Record the keys of rows about to be (or just) inserted."""
        self._write(pks)

    def close(self, forget: bool = True) -> None:
        """Close the journal; ``forget`` (the job is done, its rows flushed, or undone) also removes it."""
        self._fh.close()
        if forget:
            os.unlink(self.path)


def roll_back(root: str, execute: Callable[[Any], Any]) -> int:
    """Delete the rows of jobs cut short (journals left in ``root/imports``); the number of journals rolled back."""
    folder = os.path.join(root, "imports")
    if not os.path.isdir(folder):
        return 0
    done = 0
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not name.endswith(".journal"):
            continue
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
        head, chunks = _parsed(lines)
        if head is not None and chunks:
            pks = [k for c in chunks for k in c]
            try:
                for i in range(0, len(pks), 16384):
                    execute(rq.Delete(head["db"], head["collection"], ids=pks[i:i + 16384],
                                      partition_name=head["partition"]))
                execute(rq.Flush(head["db"], head["collection"]))
            except HeronError as exc:  # the collection is gone: nothing of the job to delete
                log.warning("import %s: rows of the interrupted job not deleted: %s", name, exc)
            log.warning("import %s: the job was interrupted; its %d rows were deleted", name[:-8], len(pks))
        os.unlink(path)
        done += 1
    return done


def _parsed(lines: list[str]) -> tuple[Any, list[Any]]:
    """A journal's head (None: torn while the job began, before any insert) and its whole chunk lines.

    A crash can tear the line being written (a write that a SIGKILL cuts
    short, or a line written in two): that line and anything after it are
    left out. A chunk's line of keys is written and synced before its insert,
    so a torn one's rows were never inserted; every whole line before it is
    still rolled back. (For auto_id, whose keys are written after the insert,
    the rows of a torn line stay.)
    """
    try:
        head = json.loads(lines[0])
    except (IndexError, ValueError):
        return None, []
    chunks = []
    for line in lines[1:]:
        try:
            chunks.append(json.loads(line))
        except ValueError:
            break
    return head, chunks
