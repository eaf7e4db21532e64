"""Bulk import: jobs inserting the rows of files on the engine's machine, as Milvus's bulk insert does.

A job (`ImportJob`) reads the files Milvus bulk insert reads -- Parquet,
row-based JSON (``{"rows": [...]}``), JSON lines, CSV, and numpy columns
(one ``.npy`` per field) -- in the column layout of pymilvus's
``LocalBulkWriter`` (`heron.data._bulk_layout`). It runs on a thread of its
own, in two passes: the first converts every chunk of every file and so
finds any bad value (the job fails naming the file, the field and the row,
and nothing is written); the second inserts the chunks (those the first
pass converted, while they fit in `HOLD_BYTES`; else read again). Should an insert
still fail (a full disk), the rows the job inserted are deleted again, so
a job adds all its rows or none.

Jobs live in memory: a restarted engine lists none. A job cut short by a
crash leaves no row: its journal (`heron.engine._import_journal`) names the
rows it had inserted, and the engine deletes them when it next opens.

A job started with the option ``resume=1`` (as ``heron import`` starts
them) is resumable instead (`heron.engine._import_resume`): one pass, each
chunk committed on its own and recorded, a bad row stopping it with the rows
before its chunk in, and a rerun of it skipping the chunks already in.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._errors import DataError, HeronError, ParamError
from .._requests_ops import IMPORT_STATE_NAMES
from .._schema import CollectionSchema
from ..data._batch import Batch, build_batch
from ._import_journal import Journal
from ._import_readers import read_ahead, read_group
from ._import_resume import ResumeRecord, fingerprints, first_key, landed, new_record, record_path

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("heron.import")

#: Rows per chunk read and inserted.
CHUNK = 8192
#: Checked batches up to this size are kept for inserting; a larger job reads its files a second time.
HOLD_BYTES = 256 << 20
#: Job states, with Milvus's numbers (``common.ImportState``).
PENDING, FAILED, STARTED, COMPLETED = 0, 1, 2, 6
_ROW = re.compile(r"\brow (\d+)")


class ImportJob:
    """One bulk import: its files, state, progress (0-100), rows imported and, once failed, the reason."""

    def __init__(self, job_id: int, db: str, collection: str, partition: str, files: list[list[str]]) -> None:
        self.id, self.db, self.collection, self.partition, self.files = job_id, db, collection, partition, files
        self.state, self.progress, self.rows, self.reason = PENDING, 0, 0, ""
        self.created = time.time()
        self.ids: list[Any] = []
        #: Rows a resumed job found already imported by the run a crash cut short, and skipped.
        self.skipped = 0
        #: File column -> field it fills ("" drops the column), from the ``column_map`` option.
        self.columns: dict[str, str] = {}

    def describe(self) -> dict[str, Any]:
        """The job as `GetImportProgress` answers: id, state (number and name), progress, rows, reason, files."""
        return {"job_id": self.id, "db_name": self.db, "collection_name": self.collection,
                "partition_name": self.partition, "state": self.state, "state_name": IMPORT_STATE_NAMES[self.state],
                "progress": self.progress, "imported_rows": self.rows, "skipped_rows": self.skipped,
                "reason": self.reason,
                "files": [list(f) for f in self.files], "create_ts": int(self.created)}


class Imports:
    """The engine's import jobs, by id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs: dict[int, ImportJob] = {}
        self._ids = itertools.count(int(time.time() * 1000) << 8)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: Record path -> id of the resumable job running on it (0 while it starts).
        self._resuming: dict[str, int] = {}

    def op_import(self, r: rq.ImportFiles) -> int:
        """Check the collection, partition and files, then start the job; its id.

        The option ``resume=1`` makes the job resumable (`heron.engine._import_resume`): `ParamError`
        when a file changed since an interrupted run of it; while a run of the same import still
        goes on (its caller went away), that job's id. ``resume=abort`` drops the record.
        """
        coll = self.engine.collection(r.db_name, r.collection_name)
        if r.partition_name:
            coll.partition(r.partition_name)
        if not r.files:
            raise ParamError("files: got none, expected the paths of the files to import")
        groups = group_files(list(r.files))
        mode = r.options.get("resume", "")
        if mode not in ("", "1", "abort"):
            raise ParamError(f"options.resume: got {mode!r}, expected 1 (a resumable job) or abort")
        path = record_path(self.engine.dir.path, r.db_name, coll.name, r.partition_name, groups) if mode else ""
        if path:
            with self._lock:
                running = self._resuming.get(path)
                if running is None:
                    self._resuming[path] = 0
            if running and mode == "1":
                return running  # the same import, still running (its caller went away): follow it
            if running is not None:
                raise ParamError(f"an import of these files into {coll.name!r} is running (job {running})")
        try:
            record = self._record(r, coll.name, groups, mode, path) if mode else None
            with self._lock:
                job = ImportJob(next(self._ids), r.db_name, coll.name, r.partition_name, groups)
                self.jobs[job.id] = job
                if mode == "1":
                    self._resuming[path] = job.id
            job.columns = column_map(r.options.get("column_map", ""))
        except BaseException:
            with self._lock:
                self._resuming.pop(path, None)
            raise
        sep, nullkey = r.options.get("sep", ","), r.options.get("nullkey", "")
        if mode == "abort":
            job.skipped = sum(record.resumed.values()) if record is not None else 0
            if record is not None:
                record.close(forget=True)
            with self._lock:
                self._resuming.pop(path, None)
            job.state, job.progress = COMPLETED, 100
            return job.id
        target = self._run if record is None else self._run_resumable
        args = (job, sep, nullkey) if record is None else (job, record, sep, nullkey)
        thread = threading.Thread(target=target, args=args, name=f"heron-import-{job.id}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return job.id

    def _record(self, r: rq.ImportFiles, name: str, groups: list[list[str]], mode: str,
                path: str) -> ResumeRecord | None:
        """The record of a resumable job: an interrupted run's (its files checked, its last chunk resolved) or new."""
        record = ResumeRecord.load(path)
        if mode == "abort":
            if record is not None:
                record.resumed = self._in(record, r.db_name, name, r.partition_name, abort=True)
            return record
        files = fingerprints(groups)
        text = r.options.get("chunk_rows", "") or str(CHUNK)
        chunk = int(text) if text.isdigit() else 0
        if chunk < 1:
            raise ParamError(f"options.chunk_rows: got {text!r}, expected a positive number of rows")
        if record is None:
            record = new_record(path, files, chunk, self.engine.collection(r.db_name, name).id)
            done: dict[tuple[int, int], int] = {}
        else:
            record.check_files(files)
            done = self._in(record, r.db_name, name, r.partition_name)
        record.start(files, done)
        return record

    def _in(self, record: ResumeRecord, db: str, name: str, partition: str,
            abort: bool = False) -> dict[tuple[int, int], int]:
        """The chunks of an interrupted run that are in, its last one looked up in the data."""
        coll = self.engine.collection(db, name)
        if record.head.get("collection_id", coll.id) != coll.id:
            if abort:
                return {}  # none of its rows are in this collection
            raise ParamError(f"collection {name!r} was dropped and created again since the interrupted import of "
                             "these files; drop its record with the option resume=abort (`heron import --abort`) "
                             "and import again")
        last = record.chunks[-1] if record.chunks else None
        auto = coll.schema.primary_field.auto_id
        with coll.write_lock:
            return record.done(last is not None and landed(coll.partition(partition), last, auto))

    def stop(self) -> None:
        """Wait for running jobs to stop (the engine is closing: their next call fails, leaving their journal)."""
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join()
        self._threads.clear()

    def op_progress(self, r: rq.GetImportProgress) -> dict[str, Any]:
        """The job's `ImportJob.describe`; `ParamError` for an unknown id."""
        job = self.jobs.get(int(r.job_id))
        if job is None:
            raise ParamError(f"import job {r.job_id}: no such job (jobs are kept until the engine closes)")
        return job.describe()

    def op_list(self, r: rq.ListImports) -> list[dict[str, Any]]:
        """The jobs of ``r.db_name`` (and of ``r.collection_name``, when given), oldest first."""
        jobs = [j.describe() for j in list(self.jobs.values()) if j.db == r.db_name
                and (not r.collection_name or j.collection == r.collection_name)]
        return jobs[-r.limit:] if r.limit > 0 else jobs

    # -- the job -----------------------------------------------------------------------------------------
    def _run(self, job: ImportJob, sep: str, nullkey: str) -> None:
        job.state = STARTED
        journal: Journal | None = None
        try:
            schema = self.engine.collection(job.db, job.collection).schema
            held: list[tuple[Batch, int]] | None = []  # the checked batches, while they fit in HOLD_BYTES
            total = size = 0
            for _, _, batch, n in self._batches(job, schema, sep, nullkey):  # pass 1: check everything
                total += n
                if held is not None:
                    held.append((batch, n))
                    size += batch_bytes(batch)
                    if size > HOLD_BYTES:
                        held = None  # read the files again to insert them
            job.progress = 50 if total else 90
            journal = Journal(self.engine.dir.path, job.id, job.db, job.collection, job.partition)
            pk = schema.primary_field
            again = (b[2:] for b in self._batches(job, schema, sep, nullkey))
            for batch, n in held if held is not None else again:
                given = batch.columns.get(pk.name)
                if given is not None:
                    journal.add(_keys(given.values))
                out = self.engine.execute(rq.Insert(job.db, job.collection, batch, job.partition))
                if given is None:
                    journal.add(list(out["ids"]))
                job.ids.extend(out["ids"])
                job.rows += n
                job.progress = 50 + int(40 * job.rows / max(total, 1))
            self.engine.execute(rq.Flush(job.db, job.collection))
            journal.close()
            journal = None
            job.state, job.progress = COMPLETED, 100
        except Exception as exc:  # the job fails with its reason; nothing of it stays
            job.reason = str(exc) or type(exc).__name__
            log.warning("import job %s into %s failed: %s", job.id, job.collection, job.reason)
            undone = self._undo(job)
            if journal is not None:
                journal.close(forget=undone)
            job.state = FAILED

    def _run_resumable(self, job: ImportJob, record: ResumeRecord, sep: str, nullkey: str) -> None:
        """Insert chunk by chunk, each recorded before its insert; a failure leaves the rows in and the record kept."""
        job.state = STARTED
        done = record.resumed
        if done:
            log.info("import job %s resumes: %d chunks of %d rows already in", job.id, len(done), record.rows_per_chunk)
        forget = False
        try:
            schema = self.engine.collection(job.db, job.collection).schema
            pk = schema.primary_field
            total = count_rows(job.files)
            for g, first, batch, n in self._batches(job, schema, sep, nullkey, record.rows_per_chunk, done):
                given = batch.columns.get(pk.name)
                record.begin(g, first, n, self.engine.last_seq, None if given is None else first_key(given.values))
                try:
                    out = self.engine.execute(rq.Insert(job.db, job.collection, batch, job.partition))
                except DataError as exc:  # refused by the insert's own checks: bad rows as well
                    raise _BadRow(g, f"file {_where(job.files[g])!r}, rows {first} to {first + n - 1}: {exc}") from None
                job.ids.extend(out["ids"])
                job.rows += n
                part = (job.rows + job.skipped) / total if total else g / len(job.files)  # by files if rows unknown
                job.progress = min(99, int(100 * part))
            self.engine.execute(rq.Flush(job.db, job.collection))
            forget = True
            job.state, job.progress = COMPLETED, 100
        except Exception as exc:  # the rows in stay, and the record says which: a rerun resumes
            job.reason = str(exc) or type(exc).__name__
            if isinstance(exc, _BadRow):
                record.stop(exc.group)
            job.reason += (f"; {job.rows + job.skipped} rows are in: rerun the import to resume it "
                           "(a file fixed after a bad row included)")
            log.warning("import job %s into %s stopped: %s", job.id, job.collection, job.reason)
            job.state = FAILED
        finally:
            record.close(forget=forget)
            with self._lock:
                self._resuming.pop(record.path, None)

    def _undo(self, job: ImportJob) -> bool:
        """Delete the rows the job inserted; whether that was done (else the journal is left for the next open)."""
        if not job.ids:
            return True
        try:
            for i in range(0, len(job.ids), 16384):
                self.engine.execute(rq.Delete(job.db, job.collection, ids=job.ids[i:i + 16384],
                                              partition_name=job.partition))
        except HeronError as exc:
            job.reason += f"; its {len(job.ids)} rows are deleted when the data directory next opens ({exc})"
            return False
        job.rows = 0
        return True

    def _batches(self, job: ImportJob, schema: CollectionSchema, sep: str, nullkey: str, chunk: int = 0,
                 skip: dict[tuple[int, int], int] | None = None) -> Iterator[tuple[int, int, Batch, int]]:
        """(group, first row, batch, rows) of each chunk of ``chunk`` rows; those in ``skip`` are not converted.

        The chunks are read and converted on a thread of their own, a little ahead of the caller.
        """
        return read_ahead(self._chunks(job, schema, sep, nullkey, chunk, skip))

    def _chunks(self, job: ImportJob, schema: CollectionSchema, sep: str, nullkey: str, chunk: int,
                skip: dict[tuple[int, int], int] | None) -> Iterator[tuple[int, int, Batch, int]]:
        for g, group in enumerate(job.files):
            where = _where(group)
            start = 0
            while skip and (g, start) in skip:  # the chunks in form a prefix: the reader starts after it
                start += skip[(g, start)]
            job.skipped += start
            chunks = read_group(schema, group, sep, nullkey, chunk or CHUNK, start)
            while True:
                if self.engine.closed:
                    raise HeronError("the engine closed before the import finished")
                try:
                    first, cols, n = next(chunks)
                except StopIteration:
                    break
                except DataError as exc:  # the readers name the file's rows
                    raise _BadRow(g, f"file {where!r}: {exc}") from None
                if skip and (g, first) in skip:
                    job.skipped += n
                    continue
                if job.columns:
                    cols = {job.columns.get(k, k): v for k, v in cols.items() if job.columns.get(k, k)}
                try:
                    batch = build_batch(schema, cols)
                except DataError as exc:  # build_batch counts the chunk's rows
                    raise _BadRow(g, f"file {where!r}: {_shift_rows(str(exc), first)}") from None
                yield g, first, batch, n


def _where(group: list[str]) -> str:
    """How errors name a file group: its file, or the folder of its .npy files."""
    return group[0] if len(group) == 1 else os.path.dirname(group[0]) or group[0]


class _BadRow(DataError):
    """A bad value in file group ``group``."""

    def __init__(self, group: int, message: str) -> None:
        super().__init__(message)
        self.group = group


def count_rows(groups: list[list[str]]) -> int:
    """The rows of ``groups`` where their files say it without being read (Parquet, numpy); 0 if one does not."""
    import pyarrow.parquet as pq

    total = 0
    for g in groups:
        try:
            if g[0].endswith(".parquet"):
                total += pq.ParquetFile(g[0]).metadata.num_rows
            elif g[0].endswith(".npy"):
                total += len(np.load(g[0], mmap_mode="r", allow_pickle=False))
            else:
                return 0
        except Exception:  # noqa: BLE001 - an unreadable file fails the job when it is read
            return 0
    return total


def _keys(values: Any) -> list[Any]:
    """Primary key values (numpy or Arrow) as a JSON-able list."""
    return values.to_pylist() if hasattr(values, "to_pylist") else np.asarray(values).tolist()  # type: ignore[no-any-return]


def batch_bytes(batch: Batch) -> int:
    """About how many bytes ``batch`` holds (numpy and Arrow buffers; Python objects count 8 bytes each)."""
    parts = [c.values for c in batch.columns.values()] + list(batch.vectors.values())
    return sum(int(getattr(p, "nbytes", 0) or 0) for p in parts)


def _shift_rows(text: str, first: int) -> str:
    return _ROW.sub(lambda m: f"row {first + int(m.group(1))}", text, count=1)


def column_map(text: str) -> dict[str, str]:
    """The ``column_map`` option (a JSON object of file column -> field, "" to drop one) as a dict."""
    if not text:
        return {}
    try:
        m = json.loads(text)
    except ValueError:
        m = None
    if not isinstance(m, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in m.items()):
        raise ParamError(f"options.column_map: got {text[:80]!r}, expected a JSON object of file column names "
                         "to field names, such as {\"emb\": \"vector\"} (\"\" drops a column)")
    return m


def group_files(files: list[str]) -> list[list[str]]:
    """``files`` as jobs read them: each file alone, except ``.npy`` files (and folders of them), read together."""
    npy = [f for f in files if f.endswith(".npy")]
    groups = [[f] for f in files if not f.endswith(".npy") and not os.path.isdir(f)]
    for d in (f for f in files if os.path.isdir(f)):
        inside = sorted(os.path.join(d, x) for x in os.listdir(d) if x.endswith(".npy"))
        if not inside:
            raise ParamError(f"files: folder {d!r} holds no .npy files")
        groups.append(inside)
    if npy:
        groups.append(npy)
    for g in groups:
        for f in g:
            if not os.path.isfile(f):
                raise ParamError(f"files: {f!r} does not exist on the server's machine")
            if not f.endswith((".parquet", ".json", ".jsonl", ".csv", ".npy")):
                raise ParamError(f"files: {f!r} is not a .parquet, .json, .jsonl, .csv or .npy file")
    return groups
