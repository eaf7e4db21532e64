"""Milvus protobuf ⇄ Heron: column data, query vectors, query rows and search hits.

Pure functions, no I/O. Insert columns (`FieldData`) become a `heron.data._batch.Batch`
through the same per-field converters `build_batch` uses, so a value that
does not fit the schema raises the same `DataError` on the server as it
would embedded; nothing is written.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
from pymilvus.grpc_gen import schema_pb2

from .._errors import DataError
from .._functions import output_field_names, output_given_error
from .._schema import META_FIELD, CollectionSchema, StructFieldSchema
from .._types import DataType
from ..data import _sparse as sp
from ..data._batch import Batch, check_unique_pks
from ..data._column import Column
from ..data._scalars import convert_scalars
from ..data._typed import PRESENTED, present
from ..data._vectors import bfloat16_bits_to_float32, convert_vectors, float32_to_bfloat16_bits
from . import _compat as compat
from ._struct_data import struct_field_data, struct_num_rows, struct_values_from_pb

COUNT = "count(*)"

_SCALAR_ATTR = {
    DataType.BOOL: "bool_data",
    DataType.INT8: "int_data",
    DataType.INT16: "int_data",
    DataType.INT32: "int_data",
    DataType.INT64: "long_data",
    DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
    DataType.STRING: "string_data",
    DataType.JSON: "json_data",
    DataType.ARRAY: "array_data",
    DataType.TIMESTAMPTZ: "string_data",  # ISO-8601 text, as pymilvus sends and reads it
    DataType.GEOMETRY: "geometry_wkt_data",
}
_BYTE_VECTORS = {
    DataType.BINARY_VECTOR: ("binary_vector", np.uint8),
    DataType.FLOAT16_VECTOR: ("float16_vector", np.float16),
    DataType.BFLOAT16_VECTOR: ("bfloat16_vector", np.uint16),
    DataType.INT8_VECTOR: ("int8_vector", np.int8),
}


def _byte_vector(dtype: DataType) -> tuple[str, Any]:
    """The VectorField attribute and element type of a byte-packed vector type."""
    attr, np_type = _BYTE_VECTORS[dtype]
    compat.require_field(schema_pb2.VectorField, attr, f"{dtype.name} data")
    return attr, np_type


# -- sparse rows -------------------------------------------------------------------------------


def sparse_to_contents(m: sp.csr_matrix) -> list[bytes]:
    """CSR rows as Milvus's sparse row bytes: interleaved little-endian (uint32 index, float32 value)."""
    m = sp.csr_matrix(m)
    out = []
    for i in range(m.shape[0]):
        lo, hi = m.indptr[i], m.indptr[i + 1]
        order = np.argsort(m.indices[lo:hi], kind="stable")
        row = np.empty(hi - lo, dtype=[("i", "<u4"), ("v", "<f4")])
        row["i"] = m.indices[lo:hi][order]
        row["v"] = m.data[lo:hi][order]
        out.append(row.tobytes())
    return out


def contents_to_sparse(contents: Any) -> sp.csr_matrix:
    """Milvus sparse row bytes as a float32 CSR matrix."""
    indptr = [0]
    idx: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for raw in contents:
        if len(raw) % 8:
            raise DataError(f"sparse vector row of {len(raw)} bytes: expected (uint32, float32) pairs")
        row = np.frombuffer(raw, dtype=[("i", "<u4"), ("v", "<f4")])
        idx.append(row["i"].astype(np.int64))
        val.append(row["v"].astype(np.float32))
        indptr.append(indptr[-1] + len(row))
    ind = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    width = int(ind.max()) + 1 if ind.size else 1
    data = np.concatenate(val) if val else np.zeros(0, np.float32)
    return sp.csr_matrix((data, ind, np.asarray(indptr)), shape=(len(indptr) - 1, width))


def _sparse_dicts(m: sp.csr_matrix) -> list[dict[int, float]]:
    return [
        dict(
            zip(
                m.indices[m.indptr[i] : m.indptr[i + 1]].tolist(),
                m.data[m.indptr[i] : m.indptr[i + 1]].tolist(),
            )
        )
        for i in range(m.shape[0])
    ]


# -- FieldData → Python values -------------------------------------------------------------------


def _array_cell(sf: schema_pb2.ScalarField) -> list[Any]:
    which = sf.WhichOneof("data")
    return [] if which is None else list(getattr(sf, which).data)


def _valid_only(fd: schema_pb2.FieldData, data: Any, n: int) -> list[Any]:
    """The values of the rows ``valid_data`` marks valid, from a full column (fillers at the nulls) or a compact one.

    A filler value where ``valid_data`` is False is never read: clients put
    placeholders there (0, "", b"") that need not fit the field.
    """
    valid = fd.valid_data
    if len(valid) != n:
        raise DataError(f"field {fd.field_name!r}: valid_data has {len(valid)} entries for {n} rows; "
                        "expected one per row")
    if len(data) == n:
        return [v for v, ok in zip(data, valid) if ok]
    kept = sum(1 for ok in valid if ok)
    if len(data) != kept:
        raise DataError(f"field {fd.field_name!r}: got {len(data)} values for {n} rows of which {kept} are "
                        f"valid; expected {n} (with fillers at the nulls) or {kept}")
    return list(data)


def _expand(values: list[Any], valid: Any, n: int) -> list[Any]:
    """The values of the valid rows spread over all ``n`` rows, None at the others."""
    if not len(valid):
        return values
    it = iter(values)
    return [next(it) if ok else None for ok in valid]


def _num_rows(fd: schema_pb2.FieldData) -> int:
    if len(fd.valid_data):
        return len(fd.valid_data)
    dtype = DataType(fd.type)
    if dtype is DataType._ARRAY_OF_STRUCT:
        return struct_num_rows(fd)
    if dtype.is_vector:
        v = fd.vectors
        if dtype is DataType.FLOAT_VECTOR:
            return len(v.float_vector.data) // max(1, v.dim)
        if dtype is DataType.SPARSE_FLOAT_VECTOR:
            return len(v.sparse_float_vector.contents)
        attr, np_type = _byte_vector(dtype)
        width = v.dim // 8 if dtype is DataType.BINARY_VECTOR else v.dim * np.dtype(np_type).itemsize
        return len(getattr(v, attr)) // max(1, width)
    sattr = _SCALAR_ATTR.get(dtype)
    return len(getattr(fd.scalars, sattr).data) if sattr else 0


def field_values(fd: schema_pb2.FieldData, n: int | None = None) -> Any:
    """One column as Python values: a list for scalars (None for nulls), arrays for vectors."""
    dtype = DataType(fd.type)
    n = _num_rows(fd) if n is None else n
    if dtype.is_vector:
        return _vector_values(fd, dtype, n)
    if dtype is DataType._ARRAY_OF_STRUCT:
        return struct_values_from_pb(fd, n)
    attr = _SCALAR_ATTR.get(dtype)
    if attr is None:
        raise DataError(f"field {fd.field_name!r}: data type {dtype.name} is not supported")
    data = getattr(fd.scalars, attr).data
    if len(fd.valid_data):
        data = _valid_only(fd, data, n)
    if dtype is DataType.JSON:
        values: list[Any] = _json_values(fd.field_name, data)
    elif dtype is DataType.ARRAY:
        values = [_array_cell(sf) for sf in data]
    else:
        values = list(data)
    return _expand(values, fd.valid_data, n)


def _json_values(name: str, data: Any) -> list[Any]:
    try:
        return [json.loads(b) if b else None for b in data]
    except ValueError:  # not UTF-8, or not JSON: name the row
        for i, b in enumerate(data):
            try:
                json.loads(b) if b else None
            except ValueError as exc:
                raise DataError(f"field {name!r} in row {i}: got {bytes(b)[:40]!r}, expected JSON text ({exc})") \
                    from None
        raise


def _vector_values(fd: schema_pb2.FieldData, dtype: DataType, n: int) -> Any:
    v = fd.vectors
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return contents_to_sparse(v.sparse_float_vector.contents)
    if dtype is DataType.FLOAT_VECTOR or (dtype is not DataType.BINARY_VECTOR and len(v.float_vector.data)):
        return (
            np.asarray(v.float_vector.data, dtype=np.float32).reshape(n, -1)
            if n
            else np.zeros((0, max(1, v.dim)), np.float32)
        )
    attr, np_type = _byte_vector(dtype)
    arr = np.frombuffer(getattr(v, attr), dtype=np_type)
    arr = arr.reshape(n, -1) if n else arr.reshape(0, max(1, v.dim // 8 if np_type is np.uint8 else v.dim))
    if dtype is DataType.BFLOAT16_VECTOR:
        return bfloat16_bits_to_float32(arr)
    return arr


# -- insert: FieldData ⇄ Batch -----------------------------------------------------------------------


def batch_from_fields(
    schema: CollectionSchema, fields: Any, num_rows: int, *, for_upsert: bool = False
) -> Batch:
    """Insert columns as a `Batch` for ``schema``; raises `DataError` naming the field on any mismatch."""
    by_name = {fd.field_name: fd for fd in fields if not fd.is_dynamic and fd.field_name != META_FIELD}
    dynamic = next((fd for fd in fields if fd.is_dynamic or fd.field_name == META_FIELD), None)
    n = int(num_rows) or (max((_num_rows(fd) for fd in fields), default=0))
    known = set(schema.field_names())
    for name in by_name:
        if name not in known:
            raise DataError(f"unknown field {name!r}: the schema has no such field")
    batch = Batch(n)
    outputs = output_field_names(schema)
    for f in schema.fields:
        fd = by_name.get(f.name)
        if f.name in outputs:  # the engine computes it from the function's input fields
            if fd is not None:
                raise output_given_error(f.name)
            continue
        if f.is_primary and f.auto_id and not for_upsert:
            if fd is not None and _num_rows(fd):
                raise DataError(f"field {f.name!r}: the primary key is auto_id; do not pass values for it")
            continue
        if f.dtype.is_vector:
            if fd is None:
                raise DataError(f"field {f.name!r}: missing; expected a {f.dtype.name} value in every row")
            _check_vector_count(f, fd, n)
            batch.vectors[f.name] = convert_vectors(f, field_values(fd, n), n)
        else:
            raw = None if fd is None else field_values(fd, n)
            if raw is not None and len(raw) != n:
                raise DataError(f"field {f.name!r}: column has {len(raw)} values but num_rows is {n}")
            batch.columns[f.name] = convert_scalars(f, raw, n, schema.properties.get("timezone") or "UTC")
    if schema.enable_dynamic_field:
        batch.columns[META_FIELD] = Column(DataType.JSON, _meta_column(dynamic, n))
    elif dynamic is not None and any(field_values(dynamic, n)):
        raise DataError("dynamic fields were sent but the schema has no dynamic field")
    pk = schema.primary_field
    if for_upsert and pk.name in batch.columns:  # an insert may repeat a key: reads see the latest row
        check_unique_pks(pk, batch.columns[pk.name])
    return batch


def _check_vector_count(f: Any, fd: schema_pb2.FieldData, n: int) -> None:
    """Refuse dense vectors whose values do not split into ``n`` rows of one width.

    The wire carries a column of vectors as one flat run of values, so a row
    of another dimension shows only as a total that ``n`` does not divide; a
    whole column of another dimension splits evenly and is named row by row
    by the converter, as an embedded insert is.
    """
    dtype = DataType(fd.type)
    if dtype is DataType.SPARSE_FLOAT_VECTOR or not n:
        return
    v = fd.vectors
    if dtype is DataType.FLOAT_VECTOR or (dtype is not DataType.BINARY_VECTOR and len(v.float_vector.data)):
        total, per_row, unit = len(v.float_vector.data), f.dim or 0, "values"
    elif dtype in _BYTE_VECTORS:
        attr, np_type = _byte_vector(dtype)
        total = len(getattr(v, attr))
        per_row = (f.dim or 0) // 8 if dtype is DataType.BINARY_VECTOR else (f.dim or 0) * np.dtype(np_type).itemsize
        unit = "bytes"
    else:
        return
    if total % n:
        raise DataError(
            f"field {f.name!r}: got {total} {unit} for {n} rows, expected dim={f.dim} in every row "
            f"({n * per_row} {unit}); a row has another dimension (the wire does not tell which: the vectors "
            "of a column travel as one run)")


def _meta_column(fd: schema_pb2.FieldData | None, n: int) -> np.ndarray:
    out = np.full(n, None, dtype=object)
    if fd is not None:
        for i, v in enumerate(field_values(fd, n)):
            if v is not None and not isinstance(v, dict):
                raise DataError(f"field {META_FIELD!r} in row {i}: got {v!r}, expected a JSON object")
            out[i] = v or None
    return out


def batch_to_fields(schema: CollectionSchema, batch: Batch) -> list[schema_pb2.FieldData]:
    """A `Batch` as insert columns (the inverse of `batch_from_fields`)."""
    out = []
    for f in schema.fields:
        if f.name in batch.vectors:
            out.append(vector_field_data(f.name, f.dtype, batch.vectors[f.name], f.dim or 0))
        elif f.name in batch.columns:
            c = batch.columns[f.name]
            out.append(struct_field_data(f, _column_list(c)) if isinstance(f, StructFieldSchema)
                       else scalar_field_data(f.name, f.dtype, _column_list(c), f.element_type))
    meta = batch.columns.get(META_FIELD)
    if meta is not None:
        fd = scalar_field_data(META_FIELD, DataType.JSON, [v or {} for v in _column_list(meta)])
        fd.is_dynamic = True
        out.append(fd)
    return out


def _column_list(c: Column) -> list[Any]:
    if c.dtype in PRESENTED:  # ISO-8601 text and WKT on the wire
        return present(c, np.arange(len(c)))
    if isinstance(c.values, (pa.Array, pa.ChunkedArray)):
        return c.values.to_pylist()
    vals = (
        c.values.tolist() if isinstance(c.values, np.ndarray) and c.values.dtype != object else list(c.values)
    )
    if c.valid is not None:
        vals = [v if ok else None for v, ok in zip(vals, c.valid)]
    return vals


# -- Python values → FieldData ----------------------------------------------------------------------


def _scalar_cell(et: DataType, values: list[Any]) -> schema_pb2.ScalarField:
    sf = schema_pb2.ScalarField()
    getattr(sf, _SCALAR_ATTR[et]).data.extend(values)
    return sf


def scalar_field_data(
    name: str, dtype: DataType, values: list[Any], element_type: DataType | None = None
) -> schema_pb2.FieldData:
    """A scalar column; None values become ``valid_data`` False (with placeholders, as Milvus returns them)."""
    fd = schema_pb2.FieldData(type=int(dtype), field_name=name)
    has_null = any(v is None for v in values)
    if has_null:
        fd.valid_data.extend(v is not None for v in values)
    if dtype is DataType.JSON:
        fd.scalars.json_data.data.extend(b"" if v is None else json.dumps(v).encode() for v in values)
    elif dtype is DataType.ARRAY:
        et = element_type or DataType.INT64
        fd.scalars.array_data.element_type = int(et)
        fd.scalars.array_data.data.extend(_scalar_cell(et, v or []) for v in values)
    else:
        text = dtype in (DataType.VARCHAR, DataType.TIMESTAMPTZ, DataType.GEOMETRY)
        placeholder: Any = "" if text else (False if dtype is DataType.BOOL else 0)
        data = [placeholder if v is None else v for v in values] if has_null else values
        getattr(fd.scalars, _SCALAR_ATTR[dtype]).data.extend(data)
    return fd


def vector_field_data(name: str, dtype: DataType, values: Any, dim: int) -> schema_pb2.FieldData:
    """A vector column from a 2-d array, a CSR matrix, or a list of per-row values."""
    fd = schema_pb2.FieldData(type=int(dtype), field_name=name)
    v = fd.vectors
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        m = values if sp.issparse(values) else _dicts_to_csr(values)
        v.sparse_float_vector.contents.extend(sparse_to_contents(m))
        v.sparse_float_vector.dim = int(m.shape[1])
        return fd
    if dtype is DataType.BINARY_VECTOR:
        arr = (
            np.vstack([np.frombuffer(bytes(b), np.uint8) for b in values])
            if isinstance(values, list) and values
            else np.asarray(values, dtype=np.uint8)
        )
        v.dim = dim or arr.shape[-1] * 8
        v.binary_vector = arr.tobytes()
        return fd
    arr = np.asarray(values)
    v.dim = dim or (arr.shape[1] if arr.ndim == 2 else 0)
    if dtype is DataType.FLOAT_VECTOR:
        v.float_vector.data.extend(arr.astype(np.float32).ravel().tolist())
    elif dtype is DataType.BFLOAT16_VECTOR:
        bits = arr if arr.dtype == np.uint16 else float32_to_bfloat16_bits(arr.astype(np.float32))
        v.bfloat16_vector = bits.tobytes()
    else:
        attr, np_type = _byte_vector(dtype)
        setattr(v, attr, arr.astype(np_type).tobytes())
    return fd


def _dicts_to_csr(rows: list[dict[int, float]]) -> sp.csr_matrix:
    indptr: list[int] = [0]
    ind: list[int] = []
    val: list[float] = []
    for r in rows:
        items = sorted(r.items())
        ind.extend(int(k) for k, _ in items)
        val.extend(float(x) for _, x in items)
        indptr.append(len(ind))
    width = max(ind) + 1 if ind else 1
    return sp.csr_matrix(
        (np.asarray(val, np.float32), np.asarray(ind, np.int64), indptr), shape=(len(rows), width)
    )


# -- query rows ⇄ FieldData ---------------------------------------------------------------------------


def rows_to_fields(
    schema: CollectionSchema, rows: list[dict[str, Any]], names: list[str]
) -> list[schema_pb2.FieldData]:
    """Result rows as columns: schema fields typed, other keys gathered in a dynamic ``$meta`` column."""
    cols = []
    dynamic = False
    for name in names:
        f = schema.field(name)
        if name == COUNT:
            cols.append(scalar_field_data(COUNT, DataType.INT64, [r[COUNT] for r in rows]))
        elif f is None:
            dynamic = True
        elif f.dtype.is_vector:
            vals = [r[name] for r in rows]
            if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
                cols.append(vector_field_data(name, f.dtype, _dicts_to_csr(vals), f.dim or 0))
            elif f.dtype is DataType.BINARY_VECTOR:
                cols.append(vector_field_data(name, f.dtype, vals, f.dim or 0))
            else:
                arr = np.asarray(vals, dtype=np.float32).reshape(len(vals), f.dim or 0)
                cols.append(vector_field_data(name, f.dtype, arr, f.dim or 0))
        elif isinstance(f, StructFieldSchema):
            cols.append(struct_field_data(f, [r.get(name) for r in rows]))
        elif f.dtype is DataType.TIMESTAMPTZ and any(isinstance(r.get(name), list) for r in rows):  # time_fields
            cols.append(scalar_field_data(name, DataType.ARRAY, [r.get(name) for r in rows], DataType.INT64))
        else:
            cols.append(scalar_field_data(name, f.dtype, [r.get(name) for r in rows], f.element_type))
    if dynamic:
        known = set(names) - {n for n in names if schema.field(n) is None}
        metas = [{k: v for k, v in r.items() if k not in known and schema.field(k) is None} for r in rows]
        fd = scalar_field_data(META_FIELD, DataType.JSON, metas)
        fd.is_dynamic = True
        cols.append(fd)
    return cols


def result_names(schema: CollectionSchema, rows: list[dict[str, Any]], requested: list[str]) -> list[str]:
    """The columns of a result: keys of the rows in order, or (no rows) the requested schema fields."""
    names: dict[str, None] = {}
    for r in rows:
        names.update(dict.fromkeys(r))
    if not rows:
        names[schema.primary_field.name] = None
        for n in requested:
            if n == "*":
                names.update(dict.fromkeys(schema.field_names()))
            elif schema.field(n) is not None or n == COUNT:
                names[n] = None
    return list(names)


def fields_to_rows(fields: Any) -> list[dict[str, Any]]:
    """Columns back to row dicts; a dynamic column's keys are merged into each row."""
    if not fields:
        return []
    n = max(_num_rows(fd) for fd in fields)
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for fd in fields:
        vals = _python_column(fd, n)
        if fd.is_dynamic:
            for row, meta in zip(rows, vals):
                row.update(meta or {})
        else:
            for row, v in zip(rows, vals):
                row[fd.field_name] = v
    return rows


def _python_column(fd: schema_pb2.FieldData, n: int) -> list[Any]:
    dtype = DataType(fd.type)
    vals = field_values(fd, n)
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return _sparse_dicts(vals)
    if dtype is DataType.BINARY_VECTOR:
        return [bytes(x) for x in vals]
    if dtype.is_vector:
        return vals.tolist()
    return vals


# -- search hits ⇄ SearchResultData ------------------------------------------------------------------


def hits_to_pb(
    schema: CollectionSchema, hits: list[list[dict[str, Any]]], output_fields: list[str]
) -> schema_pb2.SearchResultData:
    """Per-query hit lists as SearchResultData (ids, scores, topks, entity columns)."""
    pk = schema.primary_field
    flat = [h for q in hits for h in q]
    res = schema_pb2.SearchResultData(
        num_queries=len(hits),
        top_k=max((len(q) for q in hits), default=0),
        scores=[float(h["distance"]) for h in flat],
        topks=[len(q) for q in hits],
        primary_field_name=pk.name,
    )
    if pk.dtype is DataType.VARCHAR:
        res.ids.str_id.data.extend(h["id"] for h in flat)
    else:
        res.ids.int_id.data.extend(int(h["id"]) for h in flat)
    entities = [h.get("entity") or {} for h in flat]
    names = result_names(schema, entities, []) if entities else []
    if not entities:
        names = [n for n in output_fields if schema.field(n) is not None]
    if names:
        res.fields_data.extend(rows_to_fields(schema, entities, names))
    res.output_fields.extend(fd.field_name for fd in res.fields_data)
    return res


def hits_from_pb(res: schema_pb2.SearchResultData) -> list[list[dict[str, Any]]]:
    """SearchResultData back to per-query lists of ``{"id", "distance", "entity"}``."""
    which = res.ids.WhichOneof("id_field")
    ids = list(getattr(res.ids, which).data) if which else []
    scores = list(res.scores)
    entities = fields_to_rows(res.fields_data) if len(res.fields_data) else [{} for _ in ids]
    out, start = [], 0
    for k in res.topks:
        out.append(
            [{"id": ids[i], "distance": scores[i], "entity": entities[i]} for i in range(start, start + k)]
        )
        start += k
    return out
