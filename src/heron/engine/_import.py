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
import orjson

from .. import _requests as rq
from .._errors import DataError, HeronError, ParamError
from .._requests_ops import IMPORT_STATE_NAMES
from .._schema import CollectionSchema
from .._types import DataType
from ..data._batch import Batch, build_batch
from ..data._bulk_layout import META, batch_columns
from ..data._text_columns import text_column
from ._import_journal import Journal

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
        #: File column -> field it fills ("" drops the column), from the ``column_map`` option.
        self.columns: dict[str, str] = {}

    def describe(self) -> dict[str, Any]:
        """The job as `GetImportProgress` answers: id, state (number and name), progress, rows, reason, files."""
        return {"job_id": self.id, "db_name": self.db, "collection_name": self.collection,
                "partition_name": self.partition, "state": self.state, "state_name": IMPORT_STATE_NAMES[self.state],
                "progress": self.progress, "imported_rows": self.rows, "reason": self.reason,
                "files": [list(f) for f in self.files], "create_ts": int(self.created)}


class Imports:
    """The engine's import jobs, by id."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs: dict[int, ImportJob] = {}
        self._ids = itertools.count(int(time.time() * 1000) << 8)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def op_import(self, r: rq.ImportFiles) -> int:
        """Check the collection, partition and files, then start the job; its id."""
        coll = self.engine.collection(r.db_name, r.collection_name)
        if r.partition_name:
            coll.partition(r.partition_name)
        if not r.files:
            raise ParamError("files: got none, expected the paths of the files to import")
        groups = group_files(list(r.files))
        with self._lock:
            job = ImportJob(next(self._ids), r.db_name, coll.name, r.partition_name, groups)
            self.jobs[job.id] = job
        job.columns = column_map(r.options.get("column_map", ""))
        sep, nullkey = r.options.get("sep", ","), r.options.get("nullkey", "")
        thread = threading.Thread(target=self._run, args=(job, sep, nullkey), name=f"heron-import-{job.id}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()
        return job.id

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
            for batch, n in self._batches(job, schema, sep, nullkey):  # pass 1: check everything
                total += n
                if held is not None:
                    held.append((batch, n))
                    size += batch_bytes(batch)
                    if size > HOLD_BYTES:
                        held = None  # read the files again to insert them
            job.progress = 50 if total else 90
            journal = Journal(self.engine.dir.path, job.id, job.db, job.collection, job.partition)
            pk = schema.primary_field
            for batch, n in held if held is not None else self._batches(job, schema, sep, nullkey):
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

    def _batches(self, job: ImportJob, schema: CollectionSchema, sep: str, nullkey: str) -> Iterator[tuple[Batch, int]]:
        for group in job.files:
            where = group[0] if len(group) == 1 else os.path.dirname(group[0]) or group[0]
            chunks = read_group(schema, group, sep, nullkey)
            while True:
                if self.engine.closed:
                    raise HeronError("the engine closed before the import finished")
                try:
                    first, cols, n = next(chunks)
                except StopIteration:
                    break
                except DataError as exc:  # the readers name the file's rows
                    raise DataError(f"file {where!r}: {exc}") from None
                if job.columns:
                    cols = {job.columns.get(k, k): v for k, v in cols.items() if job.columns.get(k, k)}
                try:
                    batch = build_batch(schema, cols)
                except DataError as exc:  # build_batch counts the chunk's rows
                    raise DataError(f"file {where!r}: {_shift_rows(str(exc), first)}") from None
                yield batch, n


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


# -- readers: (first row, columns for build_batch, rows) per chunk ---------------------------------------


def read_group(schema: CollectionSchema, group: list[str], sep: str = ",", nullkey: str = "") -> Iterator[tuple[int, dict[str, Any], int]]:
    """The chunks of one file (or one set of .npy columns), each as (first row, columns, number of rows)."""
    path = group[0]
    if path.endswith(".npy"):
        yield from _numpy(schema, group)
    elif path.endswith(".parquet"):
        yield from _parquet(schema, path)
    elif path.endswith(".jsonl"):
        yield from _json_lines(schema, path)
    elif path.endswith(".json"):
        yield from _json(schema, path)
    else:
        yield from _csv(schema, path, sep, nullkey)


def _parquet(schema: CollectionSchema, path: str) -> Iterator[tuple[int, dict[str, Any], int]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"file {path!r}: not a readable Parquet file ({exc})") from None
    first = 0
    for rb in pf.iter_batches(batch_size=CHUNK):
        t = pa.Table.from_batches([rb])
        yield first, batch_columns(schema, t, first), t.num_rows
        first += t.num_rows


def row_columns(schema: CollectionSchema, rows: list[Any], first: int) -> dict[str, Any]:
    """Rows of a row-based JSON file as columns: binary vectors from byte lists, sparse keys as integers."""
    names: dict[str, None] = {}
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise DataError(f"row {first + i}: got {str(r)[:40]!r}, expected a JSON object")
        names.update(dict.fromkeys(r))
    return list_columns(schema, {name: [r.get(name) for r in rows] for name in names}, first, names)


def list_columns(schema: CollectionSchema, lists: dict[str, list[Any]], first: int, names: Any) -> dict[str, Any]:
    """Columns of Python values (from JSON) as `build_batch` takes them; ``$meta`` spread into keys.

    ``names`` are all the file's columns, which a ``$meta`` key may not repeat.
    """
    by_name = {f.name: f for f in schema.fields}
    cols: dict[str, Any] = {}
    for name, values in lists.items():
        f = by_name.get(name)
        if name == META:
            for i, m in enumerate(values):
                if m is not None and not isinstance(m, dict):
                    raise DataError(f"field '$meta' in row {first + i}: {str(m)[:40]!r} is not a JSON object")
            for k in dict.fromkeys(k for m in values for k in (m or {})):
                if k in names:
                    raise DataError(f"field '$meta': key {k!r} is also a field of the rows")
                cols[k] = [(m or {}).get(k) for m in values]
            continue
        if f is not None and f.dtype is DataType.BINARY_VECTOR:
            values = [bytes(v) if isinstance(v, list) and all(isinstance(x, int) and 0 <= x < 256 for x in v)
                      else v for v in values]
        elif f is not None and f.dtype is DataType.SPARSE_FLOAT_VECTOR:
            values = [_sparse(v) for v in values]
        cols[name] = values
    return cols


def _sparse(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"indices", "values"}:
        return dict(zip(v["indices"], v["values"], strict=False))
    if isinstance(v, dict):
        try:
            return {int(k): x for k, x in v.items()}
        except (TypeError, ValueError):
            return v  # build_batch names the bad key
    return v


def _json(schema: CollectionSchema, path: str) -> Iterator[tuple[int, dict[str, Any], int]]:
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"file {path!r}: not JSON ({exc})") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise DataError(f"file {path!r}: expected {{\"rows\": [...]}} (row-based JSON) or a list of rows")
    for first in range(0, len(rows), CHUNK):
        part = rows[first:first + CHUNK]
        yield first, row_columns(schema, part, first), len(part)


def _json_lines(schema: CollectionSchema, path: str) -> Iterator[tuple[int, dict[str, Any], int]]:
    with open(path, encoding="utf-8") as fh:
        first, part = 0, []
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                part.append(orjson.loads(line))
            except ValueError as exc:
                raise DataError(f"row {i}: not JSON ({exc})") from None
            if len(part) == CHUNK:
                yield first, row_columns(schema, part, first), len(part)
                first, part = first + len(part), []
        if part:
            yield first, row_columns(schema, part, first), len(part)


def _csv(schema: CollectionSchema, path: str, sep: str, nullkey: str) -> Iterator[tuple[int, dict[str, Any], int]]:
    """CSV as LocalBulkWriter writes it: a header, JSON text for vectors, JSON and arrays, ``nullkey`` for null."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=sep)).schema.names
    opts = pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                               null_values=[nullkey], quoted_strings_can_be_null=False)
    reader = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=sep), convert_options=opts,
                           read_options=pcsv.ReadOptions(block_size=1 << 22))
    first = 0
    for part in _gathered(reader, CHUNK):
        yield first, _csv_columns(schema, part, first), part.num_rows
        first += part.num_rows


def _gathered(reader: Any, rows: int) -> Iterator[Any]:
    """The record batches of ``reader`` gathered into tables of at least ``rows`` rows (the last may hold fewer)."""
    import pyarrow as pa

    held: list[Any] = []
    n = 0
    for rb in reader:
        held.append(rb)
        n += rb.num_rows
        if n >= rows:
            yield pa.Table.from_batches(held)
            held, n = [], 0
    if held:
        yield pa.Table.from_batches(held)


def _csv_columns(schema: CollectionSchema, part: Any, first: int) -> dict[str, Any]:
    """One chunk of CSV text columns: whole columns at once where exact, else value by value (naming the row)."""
    by_name = {f.name: f for f in schema.fields}
    fast: dict[str, Any] = {}
    slow: dict[str, list[Any]] = {}
    for name in part.column_names:
        f = by_name.get(name)
        col = part.column(name).combine_chunks()
        got = text_column(f, col) if name != META else None
        if got is not None:
            fast[name] = got
        else:
            slow[name] = [_csv_value(f, name, t, first + i) for i, t in enumerate(col.to_pylist())]
    return {**fast, **list_columns(schema, slow, first, part.column_names)}


def _csv_value(f: Any, name: str, text: str | None, row: int) -> Any:
    if text is None:
        return None
    if f is not None and f.dtype in (DataType.VARCHAR, DataType.GEOMETRY, DataType.TIMESTAMPTZ, DataType.JSON):
        return text
    if f is not None and f.dtype is DataType.BOOL and text in ("True", "False"):
        return text == "True"
    try:
        return orjson.loads(text)
    except ValueError:
        raise DataError(f"field {name!r} in row {row}: {text[:40]!r} is not a value of its type") from None


def _numpy(schema: CollectionSchema, group: list[str]) -> Iterator[tuple[int, dict[str, Any], int]]:
    by_name = {f.name: f for f in schema.fields}
    arrays: dict[str, np.ndarray] = {}
    for path in group:
        name = os.path.basename(path)[: -len(".npy")]
        try:
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"file {path!r}: not a numpy array file ({exc})") from None
    lengths = {k: len(a) for k, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"numpy files {sorted(group)}: the columns have different numbers of rows ({lengths})")
    total = next(iter(lengths.values()), 0)
    for first in range(0, total, CHUNK):
        cols: dict[str, Any] = {}
        for name, a in arrays.items():
            part = np.asarray(a[first:first + CHUNK])
            f = by_name.get(name)
            if part.dtype.kind == "U" and (name == META or (f is not None and f.dtype is DataType.JSON)):
                part = np.array([orjson.loads(s) for s in part.tolist()], dtype=object)
            elif f is not None and f.dtype is DataType.FLOAT16_VECTOR and part.dtype == np.uint8:
                part = part.view("<f2")
            elif f is not None and f.dtype is DataType.BFLOAT16_VECTOR and part.dtype == np.uint8:
                part = (part.view("<u2").astype(np.uint32) << 16).view(np.float32)
            cols[name] = part
        if META in cols:
            metas = cols.pop(META)
            for k in dict.fromkeys(k for m in metas for k in m):
                cols[k] = [m.get(k) for m in metas]
        n = min(CHUNK, total - first)
        yield first, cols, n
