"""``heron export URI COLLECTION DIR``: a collection's rows as files Milvus bulk insert reads, plus its schema.

``DIR`` (created if missing; files of the same names are replaced) gets
``schema.json`` (the collection as ``describe_collection`` shows it, its
partitions and indexes, and which file holds which partition) and one data
file per partition (one in all for a collection with a partition key):

- ``--format parquet`` (default): ``PARTITION.parquet``, laid out as pymilvus's
  ``LocalBulkWriter`` writes Parquet;
- ``json``: ``PARTITION.json``, row-based ``{"rows": [...]}``;
- ``numpy``: a folder ``PARTITION/`` with one ``FIELD.npy`` per field
  (numpy files hold no nulls, sparse vectors or arrays: such a collection
  is refused, as Milvus refuses to read them from numpy);
- ``csv``: ``PARTITION.csv`` with a header row, vectors, JSON and arrays as
  JSON text, nulls as empty cells.

Rows are read a page at a time in primary-key order (``--filter`` keeps
those matching an expression) and written as they come, so memory stays
constant whatever the collection's size. An auto_id primary key and
function output fields are left out, as the bulk writer leaves them out:
bulk insert fills them in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._errors import HeronError
from .._schema import CollectionSchema
from .._types import DataType
from ..data._bulk_layout import META, file_fields, file_schema, rows_table
from ._bars import _Quiet, bar
from ._connect import open_client

FORMATS = ("parquet", "json", "numpy", "csv")
PAGE = 5000
#: Bytes of rows per Parquet row group (pymilvus's bulk writer aims at 32 MB, for the readers' memory).
ROW_GROUP_BYTES = 32 << 20
_NUMPY_TEXT = (DataType.VARCHAR, DataType.JSON, DataType.GEOMETRY, DataType.TIMESTAMPTZ)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``export`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "export", help="write a collection's rows as files Milvus bulk insert reads, plus its schema",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("uri", help="a data directory, or http://host:port of `heron serve`")
    s.add_argument("collection", help="the collection")
    s.add_argument("dir", help="the directory to write (created if missing)")
    s.add_argument("--format", choices=FORMATS, default="parquet", help="file format (default: parquet)")
    s.add_argument("--filter", default="", help="export only the rows matching this expression")
    s.add_argument("--db", default="", help="its database (default: default)")
    s.add_argument("--batch", type=int, default=PAGE, help=f"rows per page read (default: {PAGE})")
    s.add_argument("--token", default="", help="user:password for a server with --auth")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return s


def run(args: argparse.Namespace) -> int:
    """Export; 0 once every file is written."""
    kw = {"db_name": args.db} if args.db else {}
    with open_client(args.uri, args.token) as client:
        n, files = export(client, args.collection, args.dir, args.format, args.filter, kw,
                          batch=args.batch, quiet=args.quiet)
    print(f"heron export: {n:,} rows of {args.collection} written to {', '.join(files)} "
          f"(schema in {os.path.join(args.dir, 'schema.json')})")
    return 0


def export(client: Any, name: str, out_dir: str, fmt: str = "parquet", expr: str = "",
           kw: dict[str, Any] | None = None, *, batch: int = PAGE, quiet: bool = False) -> tuple[int, list[str]]:
    """Write ``name``'s rows (those matching ``expr``) to ``out_dir`` in ``fmt``; (rows written, data files)."""
    if fmt not in FORMATS:
        raise HeronError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    kw = kw or {}
    d = client.describe_collection(name, **kw)
    schema = CollectionSchema.from_dict(d)
    file_fields(schema)  # refuses what bulk files cannot hold before anything is written
    if fmt == "numpy":
        _check_numpy(schema)
    os.makedirs(out_dir, exist_ok=True)
    keyed = any(f.is_partition_key for f in schema.fields)
    parts = [""] if keyed else list(client.list_partitions(name, **kw))
    total = int(client.query(name, filter=expr, output_fields=["count(*)"], **kw)[0]["count(*)"])
    progress = _Quiet() if quiet else bar(total, name)
    written, files, layout = 0, [], {}
    try:
        for p in parts:
            stem = p or name
            pages = _pages(client, name, expr, p, batch, kw)
            path = _WRITERS[fmt](schema, os.path.join(out_dir, stem), pages, progress)
            files.append(path[0])
            written += path[1]
            layout[os.path.basename(path[0])] = p
    finally:
        progress.close()
    _write_schema(client, name, d, layout, fmt, out_dir, kw)
    return written, files


def _pages(client: Any, name: str, expr: str, partition: str, batch: int, kw: dict[str, Any]) -> Iterator[list[Any]]:
    it = client.query_iterator(name, batch_size=batch, filter=expr, output_fields=["*"],
                               partition_names=[partition] if partition else None, **kw)
    for page in it:
        if page:
            yield list(page)


def _write_schema(client: Any, name: str, d: dict[str, Any], layout: dict[str, str], fmt: str, out_dir: str,
                  kw: dict[str, Any]) -> None:
    indexes = []
    for index in client.list_indexes(name, **kw):
        indexes.append(dict(client.describe_index(name, index, **kw) or {}))
    doc = {"collection": {k: v for k, v in d.items() if k not in ("created_timestamp", "update_timestamp")},
           "partitions": list(client.list_partitions(name, **kw)), "indexes": indexes,
           "format": fmt, "files": layout}
    tmp = os.path.join(out_dir, ".schema.json.partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2, default=_plain)
    os.replace(tmp, os.path.join(out_dir, "schema.json"))


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (bytes, bytearray)):
        return list(o)
    if hasattr(o, "value") and hasattr(o, "name"):
        return o.value
    if isinstance(o, dict):
        return {str(k): v for k, v in o.items()}
    return str(o)


# -- formats ----------------------------------------------------------------------------------------------


def _parquet(schema: CollectionSchema, stem: str, pages: Iterator[list[Any]], progress: Any) -> tuple[str, int]:
    import pyarrow.parquet as pq

    path, n = stem + ".parquet", 0
    held: list[pa.Table] = []  # pages gathered into row groups of about ROW_GROUP_BYTES: tiny groups write slowly
    with pq.ParquetWriter(path + ".partial", file_schema(schema), use_dictionary=_dictionary_columns(schema)) as w:
        for rows in pages:
            held.append(rows_table(schema, rows))
            if sum(t.nbytes for t in held) >= ROW_GROUP_BYTES:
                w.write_table(pa.concat_tables(held), row_group_size=1 << 30)
                held = []
            n += len(rows)
            progress.update(len(rows))
        if held:
            w.write_table(pa.concat_tables(held), row_group_size=1 << 30)
    os.replace(path + ".partial", path)
    return path, n


def _dictionary_columns(schema: CollectionSchema) -> list[str]:
    """Columns worth dictionary-encoding: scalars; vectors' values repeat too rarely to pay for it."""
    return [f.name for f in file_fields(schema) if f.dtype < DataType.BINARY_VECTOR and f.dtype is not DataType.JSON]


def json_row(schema: CollectionSchema, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as a row of a row-based JSON bulk file (pymilvus ``LocalBulkWriter``'s JSON)."""
    out: dict[str, Any] = {}
    for f in file_fields(schema):
        v = row.get(f.name)
        if v is None:
            out[f.name] = None
        elif f.dtype is DataType.BINARY_VECTOR:
            out[f.name] = list(bytes(v))
        elif f.dtype is DataType.SPARSE_FLOAT_VECTOR:
            out[f.name] = {str(int(k)): float(x) for k, x in dict(v).items()}
        elif f.dtype in (DataType.GEOMETRY, DataType.TIMESTAMPTZ):
            out[f.name] = str(v)
        else:
            out[f.name] = v
    if schema.enable_dynamic_field:
        known = {f.name for f in schema.fields}
        out[META] = {k: v for k, v in row.items() if k not in known}
    return out


def _json(schema: CollectionSchema, stem: str, pages: Iterator[list[Any]], progress: Any) -> tuple[str, int]:
    path, n = stem + ".json", 0
    with open(path + ".partial", "w", encoding="utf-8") as fh:
        fh.write('{"rows": [')
        for rows in pages:
            text = ",\n".join(_dumps(json_row(schema, r)) for r in rows)
            fh.write(("\n" if n == 0 else ",\n") + text)
            n += len(rows)
            progress.update(len(rows))
        fh.write("\n]}\n")
    os.replace(path + ".partial", path)
    return path, n


def _csv(schema: CollectionSchema, stem: str, pages: Iterator[list[Any]], progress: Any) -> tuple[str, int]:
    import pyarrow.csv as pcsv

    names = [f.name for f in file_fields(schema)] + ([META] if schema.enable_dynamic_field else [])
    plain = {f.name for f in file_fields(schema) if f.dtype in (DataType.VARCHAR, DataType.GEOMETRY,
                                                                  DataType.TIMESTAMPTZ)}
    types = pa.schema([pa.field(c, pa.string()) for c in names])
    path, n = stem + ".csv", 0
    with pcsv.CSVWriter(path + ".partial", types) as w:
        for rows in pages:
            jrows = [json_row(schema, r) for r in rows]
            cols = {c: [_cell(r[c], c in plain) for r in jrows] for c in names}
            w.write_table(pa.table(cols, schema=types))
            n += len(rows)
            progress.update(len(rows))
    os.replace(path + ".partial", path)
    return path, n


def _cell(v: Any, plain: bool) -> str | None:
    if v is None:
        return None
    if plain:
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return _dumps(v)


def _dumps(v: Any) -> str:
    """``v`` as compact JSON text (numpy values as their Python values)."""
    return orjson.dumps(v, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _check_numpy(schema: CollectionSchema) -> None:
    for f in file_fields(schema):
        if f.dtype in (DataType.SPARSE_FLOAT_VECTOR, DataType.ARRAY) or f.nullable:
            why = "nullable fields" if f.nullable else f"{f.dtype.name} fields"
            raise HeronError(f"field {f.name!r}: numpy bulk files cannot hold {why} (Milvus does not read them "
                             "from numpy): export with --format parquet or json")


def _numpy(schema: CollectionSchema, stem: str, pages: Iterator[list[Any]], progress: Any) -> tuple[str, int]:
    """Pages spooled to an Arrow file (to learn the row count and string widths), then one .npy per column."""
    import pyarrow.ipc as ipc

    arrow_schema = file_schema(schema)
    widths = {c: 1 for c in arrow_schema.names}
    fd, spool = tempfile.mkstemp(prefix=".heron-export-", suffix=".arrow", dir=os.path.dirname(stem) or ".")
    os.close(fd)
    n = 0
    try:
        with ipc.new_file(spool, arrow_schema) as w:
            for rows in pages:
                t = rows_table(schema, rows)
                for c in arrow_schema.names:
                    if pa.types.is_string(t.schema.field(c).type) and len(t):
                        widths[c] = max(widths[c], int(pc.max(pc.utf8_length(t.column(c))).as_py() or 1))
                w.write_table(t)
                n += len(rows)
                progress.update(len(rows))
        folder = stem
        shutil.rmtree(folder + ".partial", ignore_errors=True)
        os.makedirs(folder + ".partial")
        with pa.memory_map(spool) as src:
            reader = ipc.open_file(src)
            for c in arrow_schema.names:
                _write_npy(os.path.join(folder + ".partial", c + ".npy"), reader, c, n, schema, widths[c])
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(folder + ".partial", folder)
    finally:
        os.unlink(spool)
    return folder, n


def _npy_shape(schema: CollectionSchema, name: str, n: int, width: int) -> tuple[np.dtype[Any], tuple[int, ...]]:
    f = next((x for x in schema.fields if x.name == name), None)
    if f is None or f.dtype in _NUMPY_TEXT:
        return np.dtype(f"<U{width}"), (n,)
    dim = int(f.dim or 0)
    vec = {DataType.FLOAT_VECTOR: (np.float32, dim), DataType.INT8_VECTOR: (np.int8, dim),
           DataType.BINARY_VECTOR: (np.uint8, dim // 8), DataType.FLOAT16_VECTOR: (np.uint8, 2 * dim),
           DataType.BFLOAT16_VECTOR: (np.uint8, 2 * dim)}
    if f.dtype in vec:
        t, w = vec[f.dtype]
        return np.dtype(t), (n, w)
    return np.dtype(file_schema(schema).field(name).type.to_pandas_dtype()), (n,)


def _write_npy(path: str, reader: Any, name: str, n: int, schema: CollectionSchema, width: int) -> None:
    dtype, shape = _npy_shape(schema, name, n, width)
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_2_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                  "fortran_order": False, "shape": shape})
        for i in range(reader.num_record_batches):
            col = reader.get_batch(i).column(name)
            if len(shape) == 2:
                values = np.asarray(col.flatten().to_numpy(zero_copy_only=False)).astype(dtype, copy=False)
            elif dtype.kind == "U":
                values = np.asarray(col.to_numpy(zero_copy_only=False), dtype=dtype)
            else:
                values = np.asarray(col.to_numpy(zero_copy_only=False)).astype(dtype, copy=False)
            fh.write(np.ascontiguousarray(values).tobytes())


_WRITERS = {"parquet": _parquet, "json": _json, "numpy": _numpy, "csv": _csv}
