"""The readers of import jobs: the chunks of a Parquet, JSON, JSON lines, CSV file or set of ``.npy`` columns.

Each chunk comes as (first row, columns as `heron.data._batch.build_batch`
takes them, number of rows); a bad value raises `DataError` naming its row.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

import numpy as np
import orjson

from .._errors import DataError
from .._schema import CollectionSchema
from .._types import DataType
from ..data._bulk_layout import META, batch_columns
from ..data._text_columns import text_column

T = TypeVar("T")
_END = object()


def read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items``, made on a thread of their own while the caller uses the previous ones.

    At most ``depth`` items wait made, so memory stays that of ``depth + 2``
    chunks. Reading and converting a file (pyarrow and numpy, which release
    the GIL) so overlap with inserting what was read. An exception raised
    while making an item is raised here, in that item's place; a caller that
    stops early (closing this generator) stops the thread after the item it
    is making.
    """
    q: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in items:
                if not put((x, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            put((None, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="heron-import-read", daemon=True)
    thread.start()
    try:
        while True:
            x, exc = q.get()
            if exc is not None:
                raise exc
            if x is _END:
                return
            yield x
    finally:
        stop.set()
        thread.join()


def read_group(schema: CollectionSchema, group: list[str], sep: str, nullkey: str, chunk: int,
               start: int = 0) -> Iterator[tuple[int, dict[str, Any], int]]:
    """The chunks of one file (or one set of .npy columns), each as (first row, columns, number of rows).

    Chunks hold ``chunk`` rows, the last fewer (CSV: at least ``chunk``, as
    pyarrow's blocks fall). ``start``, the first row of a chunk, skips the
    chunks before it: the same chunks follow as when reading from the first
    row, and those skipped are not converted (Parquet: row groups before it
    are not read).
    """
    path = group[0]
    if path.endswith(".npy"):
        yield from _numpy(schema, group, chunk, start)
    elif path.endswith(".parquet"):
        yield from _parquet(schema, path, chunk, start)
    elif path.endswith(".jsonl"):
        yield from _json_lines(schema, path, chunk, start)
    elif path.endswith(".json"):
        yield from _json(schema, path, chunk, start)
    else:
        yield from _csv(schema, path, sep, nullkey, chunk, start)


def _parquet(schema: CollectionSchema, path: str, chunk: int, start: int) -> Iterator[tuple[int, dict[str, Any], int]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"file {path!r}: not a readable Parquet file ({exc})") from None
    if not start:
        first = 0
        for rb in pf.iter_batches(batch_size=chunk):
            t = pa.Table.from_batches([rb])
            yield first, batch_columns(schema, t, first), t.num_rows
            first += t.num_rows
        return
    groups, at = list(range(pf.metadata.num_row_groups)), 0  # from the row group holding row `start`
    while groups and at + pf.metadata.row_group(groups[0]).num_rows <= start:
        at += pf.metadata.row_group(groups.pop(0)).num_rows
    drop, held, have = start - at, [], 0  # iter_batches' batches span row groups: cut chunks from `start`
    for rb in pf.iter_batches(batch_size=chunk, row_groups=groups) if groups else []:
        if drop >= rb.num_rows:
            drop -= rb.num_rows
            continue
        rb, drop = rb.slice(drop), 0
        held.append(rb)
        have += rb.num_rows
        while have >= chunk:
            t = pa.Table.from_batches(held)
            yield start, batch_columns(schema, t.slice(0, chunk), start), chunk
            held, have, start = t.slice(chunk).to_batches(), have - chunk, start + chunk
    if have:
        yield start, batch_columns(schema, pa.Table.from_batches(held), start), have


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


def _json(schema: CollectionSchema, path: str, chunk: int, start: int) -> Iterator[tuple[int, dict[str, Any], int]]:
    try:
        with open(path, "rb") as fh:
            doc = orjson.loads(fh.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"file {path!r}: not JSON ({exc})") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise DataError(f"file {path!r}: expected {{\"rows\": [...]}} (row-based JSON) or a list of rows")
    for first in range(start, len(rows), chunk):
        part = rows[first:first + chunk]
        yield first, row_columns(schema, part, first), len(part)


def _json_lines(schema: CollectionSchema, path: str, chunk: int,
                start: int) -> Iterator[tuple[int, dict[str, Any], int]]:
    with open(path, encoding="utf-8") as fh:
        first, part = 0, []
        for i, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                part.append(orjson.loads(line))
            except ValueError as exc:
                raise DataError(f"row {i}: not JSON ({exc})") from None
            if len(part) == chunk:
                if first >= start:
                    yield first, row_columns(schema, part, first), len(part)
                first, part = first + len(part), []
        if part and first >= start:
            yield first, row_columns(schema, part, first), len(part)


def _csv(schema: CollectionSchema, path: str, sep: str, nullkey: str, chunk: int,
         start: int) -> Iterator[tuple[int, dict[str, Any], int]]:
    """CSV as LocalBulkWriter writes it: a header, JSON text for vectors, JSON and arrays, ``nullkey`` for null."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=sep)).schema.names
    opts = pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True,
                               null_values=[nullkey], quoted_strings_can_be_null=False)
    reader = pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=sep), convert_options=opts,
                           read_options=pcsv.ReadOptions(block_size=1 << 22))
    first = 0
    for part in _gathered(reader, chunk):
        if first >= start:
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


def _numpy(schema: CollectionSchema, group: list[str], chunk: int, start: int) -> Iterator[tuple[int, dict[str, Any], int]]:
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
    for first in range(start, total, chunk):
        cols: dict[str, Any] = {}
        for name, a in arrays.items():
            part = np.asarray(a[first:first + chunk])
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
        n = min(chunk, total - first)
        yield first, cols, n
