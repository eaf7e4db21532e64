"""The column layout of Milvus bulk-insert files, both ways.

Files are laid out as pymilvus's ``LocalBulkWriter`` writes them (and so as
Milvus's bulk insert reads them): one column per field, except an auto_id
primary key and function output fields (the database fills those in), plus
``$meta`` (a JSON object per row) for a schema with a dynamic field. In
Parquet: JSON and sparse vectors as JSON text, float/int8 vectors as lists
of their element type, binary and float16/bfloat16 vectors as lists of
their bytes (``uint8``), arrays as lists of their element type.

`rows_table` turns rows (as queries return them) into that layout;
`batch_columns` turns a table in that layout back into columns that
`heron.data._batch.build_batch` takes, checking each column's Arrow type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError
from .._schema import CollectionSchema, FieldSchema
from .._types import DataType

META = "$meta"

_SCALAR: dict[DataType, pa.DataType] = {
    DataType.BOOL: pa.bool_(), DataType.INT8: pa.int8(), DataType.INT16: pa.int16(), DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(), DataType.FLOAT: pa.float32(), DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(), DataType.JSON: pa.string(), DataType.GEOMETRY: pa.string(),
    DataType.TIMESTAMPTZ: pa.string(), DataType.SPARSE_FLOAT_VECTOR: pa.string(),
    DataType.FLOAT_VECTOR: pa.list_(pa.float32()), DataType.BINARY_VECTOR: pa.list_(pa.uint8()),
    DataType.FLOAT16_VECTOR: pa.list_(pa.uint8()), DataType.BFLOAT16_VECTOR: pa.list_(pa.uint8()),
    DataType.INT8_VECTOR: pa.list_(pa.int8()),
}


def file_fields(schema: CollectionSchema) -> list[FieldSchema]:
    """The fields that bulk files hold a column for, in schema order (``$meta`` not included)."""
    out = []
    for f in schema.fields:
        if (f.is_primary and f.auto_id) or getattr(f, "is_function_output", False):
            continue
        if f.dtype is DataType.ARRAY and f.element_type is DataType.STRUCT:
            raise DataError(f"field {f.name!r}: arrays of structs are not written to or read from bulk files yet")
        out.append(f)
    return out


def arrow_type(f: FieldSchema) -> pa.DataType:
    """The Arrow type of field ``f``'s column in a bulk file."""
    if f.dtype is DataType.ARRAY:
        assert f.element_type is not None
        return pa.list_(_SCALAR[f.element_type])
    try:
        return _SCALAR[f.dtype]
    except KeyError:
        raise DataError(f"field {f.name!r}: type {f.dtype.name} has no bulk file layout") from None


def file_schema(schema: CollectionSchema) -> pa.Schema:
    """The Arrow schema of a Parquet bulk file for ``schema``."""
    cols = [pa.field(f.name, arrow_type(f), nullable=True) for f in file_fields(schema)]
    if schema.enable_dynamic_field:
        cols.append(pa.field(META, pa.string()))
    return pa.schema(cols)


def _dumps(v: Any) -> str | None:
    return None if v is None else json.dumps(v, ensure_ascii=False, separators=(",", ":"))


def _sparse_text(v: Any) -> str | None:
    if v is None:
        return None
    return json.dumps({str(int(k)): float(x) for k, x in dict(v).items()}, separators=(",", ":"))


def _half_bytes(f: FieldSchema, values: list[Any]) -> pa.Array:
    """float16/bfloat16 vectors (float lists or raw bytes) as lists of their little-endian bytes."""
    dim = int(f.dim or 0)
    mask = np.array([v is None for v in values], dtype=bool)
    filled = [bytes(2 * dim) if v is None else v for v in values]
    if filled and isinstance(filled[0], (bytes, bytearray)):
        raw = np.frombuffer(b"".join(filled), dtype=np.uint8)
    else:
        f32 = np.asarray(filled, dtype=np.float32).reshape(len(filled), dim)
        if f.dtype is DataType.FLOAT16_VECTOR:
            raw = f32.astype("<f2").view(np.uint8).reshape(-1)
        else:  # bfloat16: the high half of float32, rounded to nearest even
            u: np.ndarray = f32.view(np.uint32).astype(np.uint64)
            rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
            raw = rounded.astype("<u2").view(np.uint8).reshape(-1)
    offsets = np.arange(0, len(values) * 2 * dim + 1, 2 * dim, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(raw, pa.uint8()),
                                    mask=pa.array(mask) if mask.any() else None)


def _column(f: FieldSchema, values: list[Any]) -> pa.Array:
    t = f.dtype
    if t is DataType.JSON:
        return pa.array([_dumps(v) for v in values], pa.string())
    if t is DataType.SPARSE_FLOAT_VECTOR:
        return pa.array([_sparse_text(v) for v in values], pa.string())
    if t in (DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        return _half_bytes(f, values)
    if t is DataType.BINARY_VECTOR:
        return pa.array([None if v is None else list(bytes(v)) for v in values], pa.list_(pa.uint8()))
    if t in (DataType.GEOMETRY, DataType.TIMESTAMPTZ):
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.array(values, arrow_type(f))


def rows_table(schema: CollectionSchema, rows: list[Mapping[str, Any]]) -> pa.Table:
    """``rows`` (dicts as queries return them) as a table in the bulk-file layout of ``schema``."""
    fields = file_fields(schema)
    cols = {f.name: _column(f, [r.get(f.name) for r in rows]) for f in fields}
    if schema.enable_dynamic_field:
        known = {f.name for f in schema.fields}
        cols[META] = pa.array([_dumps({k: v for k, v in r.items() if k not in known}) for r in rows], pa.string())
    return pa.table(cols, schema=file_schema(schema))


# -- reading back ------------------------------------------------------------------------------------------


def _texts(col: pa.ChunkedArray | pa.Array) -> list[Any]:
    return col.to_pylist()  # type: ignore[no-any-return]


def _parse_json(f: FieldSchema | str, values: list[Any], first_row: int) -> list[Any]:
    out = []
    for i, v in enumerate(values):
        if v is None or not isinstance(v, str):
            out.append(v)
            continue
        try:
            out.append(json.loads(v))
        except ValueError as exc:
            name = f if isinstance(f, str) else f.name
            raise DataError(f"field {name!r} in row {first_row + i}: {v[:40]!r} is not JSON ({exc})") from None
    return out


def _sparse_values(f: FieldSchema, values: list[Any], first_row: int) -> list[Any]:
    out: list[Any] = []
    for i, v in enumerate(_parse_json(f, values, first_row)):
        if isinstance(v, dict) and set(v) == {"indices", "values"}:
            v = dict(zip(v["indices"], v["values"], strict=False))
        if isinstance(v, dict):
            try:
                v = {int(k): float(x) for k, x in v.items()}
            except (TypeError, ValueError):
                raise DataError(f"field {f.name!r} in row {first_row + i}: {str(v)[:40]!r} is not a sparse "
                                "vector (a JSON object of integer indices to numbers)") from None
        out.append(v)
    return out


def _flat_vectors(f: FieldSchema, col: pa.ChunkedArray, width: int, dtype: Any, first_row: int) -> np.ndarray:
    """A list column of equal-length rows as an (n, width) array of ``dtype``; a `DataError` naming the first bad row."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if isinstance(arr, pa.FixedSizeListArray):
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, (len(arr) + 1) * arr.type.list_size, arr.type.list_size,
                                                          dtype=np.int32)), arr.flatten())
    lengths = np.asarray(arr.value_lengths().fill_null(-1))
    bad = np.flatnonzero(lengths != width)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"field {f.name!r} in row {first_row + i}: got {lengths[i] if lengths[i] >= 0 else 'null'} "
                        f"values, expected {width} ({f.dtype.name} of dim {f.dim})")
    flat = np.asarray(arr.flatten().to_numpy(zero_copy_only=False))
    return flat.astype(dtype, copy=False).reshape(len(arr), width)


def _vector_column(f: FieldSchema, col: pa.ChunkedArray, first_row: int) -> Any:
    dim = int(f.dim or 0)
    if f.dtype is DataType.FLOAT_VECTOR:
        return _flat_vectors(f, col, dim, np.float32, first_row)
    if f.dtype is DataType.INT8_VECTOR:
        return _flat_vectors(f, col, dim, np.int8, first_row)
    if f.dtype is DataType.BINARY_VECTOR:
        return _flat_vectors(f, col, dim // 8, np.uint8, first_row)
    child = col.type.value_type if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) else None
    if child is not None and pa.types.is_floating(child):  # float16 vectors given as float lists
        return _flat_vectors(f, col, dim, np.float32, first_row)
    raw = _flat_vectors(f, col, 2 * dim, np.uint8, first_row)
    if f.dtype is DataType.FLOAT16_VECTOR:
        return raw.view("<f2")
    return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)


def batch_columns(schema: CollectionSchema, table: pa.Table, first_row: int = 0) -> dict[str, Any]:
    """The columns of ``table`` (bulk-file layout) as `build_batch` takes them; ``$meta`` spread into keys.

    A column of the wrong shape raises `DataError` naming the field and the
    row (``first_row`` is the file row of the table's first row).
    """
    cols: dict[str, Any] = {}
    by_name = {f.name: f for f in schema.fields}
    for name in table.column_names:
        col = table.column(name)
        f = by_name.get(name)
        if name == META:
            continue
        if f is None:
            cols[name] = col
        elif f.dtype is DataType.JSON and not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            cols[name] = col.to_pylist()  # JSON text is parsed (and kept) by build_batch
        elif f.dtype is DataType.SPARSE_FLOAT_VECTOR:
            cols[name] = _sparse_values(f, _texts(col), first_row)
        elif f.dtype in (DataType.FLOAT_VECTOR, DataType.INT8_VECTOR, DataType.BINARY_VECTOR,
                         DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR) and col.null_count == 0 \
                and (pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type)
                     or pa.types.is_large_list(col.type)):
            cols[name] = _vector_column(f, col, first_row)
        else:
            cols[name] = col
    if META in table.column_names:
        metas = _parse_json(META, _texts(table.column(META)), first_row)
        keys: dict[str, None] = {}
        for i, m in enumerate(metas):
            if m is not None and not isinstance(m, dict):
                raise DataError(f"field '$meta' in row {first_row + i}: {str(m)[:40]!r} is not a JSON object")
            keys.update(dict.fromkeys(m or {}))
        for k in keys:
            if k in cols:
                raise DataError(f"field '$meta': key {k!r} is also a column of the file")
            cols[k] = [(m or {}).get(k) for m in metas]
    return cols
