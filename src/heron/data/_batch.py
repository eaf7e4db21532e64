"""Turning what users insert into columns that fit a schema.

`build_batch` accepts the shapes users have — a list of row dicts, a dict of
columns, a pandas DataFrame or a pyarrow Table — and returns a `Batch` whose
columns follow the representation in `heron.data._column`. Every check
happens here, before anything is written: a value that does not fit raises
`DataError` naming the field, the row, the value and what was expected, and
the whole batch is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError
from .._schema import META_FIELD, CollectionSchema, FieldSchema
from .._types import NUMPY_DTYPES, DataType
from . import _sparse as sp
from ._column import Column
from ._pa import from_numpy, objects, strings

_MISSING = object()
MAX_SPARSE_INDEX = 2**32 - 2


@dataclass
class Batch:
    """Rows in columnar form: scalar `Column`s plus vector arrays, all of one length."""

    num_rows: int
    columns: dict[str, Column] = field(default_factory=dict)
    vectors: dict[str, Any] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> Batch:
        """The rows at positions ``rows``, in that order."""
        cols = {name: take_column(c, rows) for name, c in self.columns.items()}
        vecs = {name: v[rows] for name, v in self.vectors.items()}
        return Batch(len(rows), cols, vecs)


def take_column(c: Column, rows: np.ndarray) -> Column:
    if isinstance(c.values, (pa.Array, pa.ChunkedArray)):
        values: Any = c.values.take(from_numpy(rows, pa.int64()))
    else:
        values = c.values[rows]
    valid = None if c.valid is None else c.valid[rows]
    texts = c.texts.take(from_numpy(rows, pa.int64())) if isinstance(c.texts, (pa.Array, pa.ChunkedArray)) else None
    return Column(c.dtype, values, valid, c.element_type, texts)


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _fail(f: FieldSchema | str, row: int | None, value: Any, expected: str) -> DataError:
    name = f if isinstance(f, str) else f.name
    where = f" in row {row}" if row is not None else ""
    return DataError(f"field {name!r}{where}: got {_short(value)}, expected {expected}")


# -- entry point ----------------------------------------------------------------


def build_batch(schema: CollectionSchema, data: Any, *, for_upsert: bool = False) -> Batch:
    """Convert ``data`` to a `Batch` for ``schema``; raise `DataError` if any value does not fit."""
    if isinstance(data, Mapping) and not _is_column_dict(data, schema):
        data = [data]
    if _is_tabular(data):
        columns, n, extra = _columns_from_table(data)
        if extra and not schema.enable_dynamic_field:
            raise DataError(f"unknown field {sorted(extra)[0]!r}: the schema has no such field and no dynamic field")
        get = _column_getter(columns, n)
        meta = _meta_from_columns(columns, extra, n) if extra else None
        meta_texts = None
    else:
        if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
            raise DataError(f"data: got {type(data).__name__}, expected a list of row dicts, a dict of columns, "
                            "a pandas DataFrame or a pyarrow Table")
        rows = list(data)
        if not all(type(r) is dict for r in rows):
            for i, r in enumerate(rows):
                if not isinstance(r, Mapping):
                    raise DataError(f"row {i}: got {_short(r)}, expected a dict of field values")
        n = len(rows)
        get, meta, meta_texts = _rows_access(schema, rows)
    batch = Batch(n)
    pk = schema.primary_field
    for f in schema.fields:
        raw = get(f.name)
        if f.is_primary and f.auto_id and not for_upsert:
            if raw is not None and not _all_missing(raw):
                raise DataError(f"field {f.name!r}: the primary key is auto_id; do not pass values for it")
            continue
        if f.dtype.is_vector:
            if raw is None:
                raise _fail(f, 0, "<missing>", f"a {f.dtype.name} value in every row")
            batch.vectors[f.name] = convert_vectors(f, raw, n)
        else:
            batch.columns[f.name] = convert_scalars(f, raw, n)
    if meta is not None:
        batch.columns[META_FIELD] = Column(DataType.JSON, meta, texts=meta_texts)
    elif schema.enable_dynamic_field:
        batch.columns[META_FIELD] = Column(DataType.JSON, np.full(n, None, dtype=object))
    if pk.name in batch.columns:
        check_unique_pks(pk, batch.columns[pk.name])
    return batch


def _is_column_dict(data: Mapping, schema: CollectionSchema) -> bool:
    if not data:
        return False
    vals = list(data.values())
    first = vals[0]
    if not isinstance(first, (list, tuple, np.ndarray, pa.Array, pa.ChunkedArray)):
        return False
    pk = schema.primary_field
    names = set(schema.field_names())
    if len(data) == 1 and pk.name in data and not isinstance(first, (list, np.ndarray)):
        return False
    # A single row whose vector field is a list looks like a column dict; tell them apart by the vector's shape.
    for f in schema.vector_fields:
        if f.name in data and f.dtype.is_dense_vector:
            v = data[f.name]
            arr = v if isinstance(v, np.ndarray) else None
            if arr is not None:
                return arr.ndim == 2
            if isinstance(v, (list, tuple)):
                return len(v) > 0 and isinstance(v[0], (list, tuple, np.ndarray, bytes))
    return bool(names & set(data)) and all(isinstance(v, (list, tuple, np.ndarray, pa.Array)) for v in vals) and \
        pk.name in data and isinstance(data[pk.name], (list, tuple, np.ndarray, pa.Array))


def _is_tabular(data: Any) -> bool:
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return True
    if isinstance(data, Mapping):
        return True
    mod = type(data).__module__
    return mod.startswith("pandas") and hasattr(data, "columns")


def _columns_from_table(data: Any) -> tuple[dict[str, Any], int, set[str]]:
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        cols = {name: data.column(name) for name in data.column_names}
        n = data.num_rows
    elif isinstance(data, Mapping):
        cols = dict(data)
        lens = {k: len(v) for k, v in cols.items()}
        n = next(iter(lens.values()), 0)
        for k, ln in lens.items():
            if ln != n:
                raise DataError(f"field {k!r}: column has {ln} values but other columns have {n}")
    else:
        cols = {str(c): data[c].to_numpy() if data[c].dtype != object else list(data[c]) for c in data.columns}
        n = len(data)
    return cols, n, set()


def _column_getter(columns: dict[str, Any], n: int):
    def get(name: str) -> Any:
        return columns.get(name)

    return get


def _meta_from_columns(columns: dict[str, Any], extra: set[str], n: int) -> np.ndarray:
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = {k: _to_py(columns[k][i]) for k in extra}
    return out


def _rows_access(schema: CollectionSchema, rows: list[Mapping]):
    names = set(schema.field_names())
    keys: set[str] = set().union(*rows) if rows else set()
    extra = keys - names
    if META_FIELD in extra:
        extra.discard(META_FIELD)
    meta = None
    meta_texts: list[str | None] | None = None
    if extra:
        if not schema.enable_dynamic_field:
            bad = sorted(extra)[0]
            row = next(i for i, r in enumerate(rows) if bad in r)
            raise DataError(f"field {bad!r} in row {row}: the schema has no such field and no dynamic field")
        meta = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):
            meta[i] = {k: v for k, v in r.items() if k not in names}
        meta_texts = [_check_json(META_FIELD, i, d) for i, d in enumerate(meta)]

    def get(name: str) -> Any:
        if name not in keys:
            return None
        return [r.get(name, _MISSING) for r in rows]

    return get, meta, meta_texts


def _all_missing(raw: Any) -> bool:
    return isinstance(raw, list) and all(v is _MISSING for v in raw)


def _to_py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# -- scalars --------------------------------------------------------------------


def _fill_missing(f: FieldSchema, raw: Any, n: int) -> tuple[list[Any], np.ndarray | None]:
    """Resolve missing and None values to defaults or nulls; return values and validity."""
    if raw is None:
        raw = [_MISSING] * n
    if not isinstance(raw, list):
        return raw, None
    if None not in raw and _MISSING not in raw:  # the common case, without a loop in Python
        return raw, None
    valid = None
    out = raw
    for i, v in enumerate(raw):
        if v is _MISSING or v is None:
            if out is raw:
                out = list(raw)
            if f.default_value is not None:
                out[i] = f.default_value
            elif f.nullable:
                if valid is None:
                    valid = np.ones(n, dtype=bool)
                valid[i] = False
                out[i] = None
            else:
                raise _fail(f, i, "<missing>" if v is _MISSING else None, f"a {f.dtype.name} value (the field is not nullable)")
    return out, valid


def convert_scalars(f: FieldSchema, raw: Any, n: int) -> Column:
    """One scalar field's values as a `Column`, or `DataError`."""
    if isinstance(raw, (pa.Array, pa.ChunkedArray)):
        valid = None if raw.null_count == 0 else np.asarray(raw.is_valid().to_numpy(zero_copy_only=False))
        raw = raw.to_numpy(zero_copy_only=False) if f.dtype in NUMPY_DTYPES else raw.to_pylist()
        if valid is not None and f.dtype in NUMPY_DTYPES:
            raw = [None if not ok else v for v, ok in zip(raw, valid)]
    t = f.dtype
    given: pa.Array | None = None  # the strings of a VARCHAR list as given, once built
    if isinstance(raw, list) and len(raw) == n:  # the usual lists, with nothing missing: no pass for defaults
        if t is DataType.JSON:
            fast = _json_documents(f, raw, None, n)
            if fast is not None:
                return fast
        elif t is DataType.VARCHAR:
            try:
                given = strings(raw)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # the general path names the bad value
            if given is not None and given.null_count == 0:
                return Column(t, _within_max_length(f, given), None)
    values, valid = _fill_missing(f, raw, n)
    if t in NUMPY_DTYPES:
        arr = _numeric(f, values, valid)
        return Column(t, arr, valid)
    if t is DataType.VARCHAR:
        if given is not None and f.default_value is None:  # nothing filled in: the strings built above
            return Column(t, _within_max_length(f, given), valid)
        return Column(t, _varchar(f, values), valid)
    if t is DataType.JSON:
        if values is not raw:  # defaults filled in; the values as given were tried above
            fast = _json_documents(f, values, valid, n)
            if fast is not None:
                return fast
        out = np.empty(n, dtype=object)
        texts: list[str | None] = [None] * n
        for i, v in enumerate(values):
            v = _to_py(v)
            if isinstance(v, (str, bytes)) and not (valid is not None and not valid[i]):
                v = _parse_json_text(f, i, v)
            if not (valid is not None and not valid[i]):
                texts[i] = _check_json(f.name, i, v)
            out[i] = v
        return Column(t, out, valid, texts=texts)
    if t is DataType.ARRAY:
        return Column(t, _array_values(f, values, valid), valid, f.element_type)
    raise _fail(f, None, t.name, "a supported scalar type")


def _json_documents(f: FieldSchema, values: Any, valid: np.ndarray | None, n: int) -> Column | None:
    """A JSON column whose values are all dicts, encoded without a loop in Python; None otherwise.

    Anything else (text to parse, numpy scalars, nulls, a value that does not
    encode) takes the general path, which also names the bad value.
    """
    if valid is not None or not isinstance(values, list) or set(map(type, values)) != {dict}:
        return None
    texts: Any = _json_list_texts(values) if _orjson is not None else None
    if texts is None:
        try:
            texts = list(map(dumps_json, values))
        except (TypeError, ValueError, RecursionError):
            return None
    out = np.empty(n, dtype=object)
    out[:] = values
    return Column(DataType.JSON, out, None, texts=texts)


def _json_list_texts(values: list[Any]) -> pa.Array | None:
    """The JSON texts of ``values`` as an Arrow string array, from one encoding of the whole list.

    orjson writes the list as ``[a,b,...]`` without spaces; the items are cut
    apart at the commas outside strings and at depth one, found with numpy.
    None where orjson cannot be used for this list: it writes NaN and
    infinities as ``null`` (any ``null`` sends the list to the general path,
    which refuses them), and subclasses, dates and dataclasses go to the
    general path too, which encodes them as ``json`` does or refuses them.
    """
    try:
        data = _orjson.dumps(values, default=_not_serialisable, option=_ORJSON_OPTIONS)
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return None
    if b"null" in data or len(data) >= 2**31:  # beyond 32-bit offsets: the general path
        return None
    b = np.frombuffer(data, dtype=np.uint8)
    quote = b == 34  # '"'
    slash = b == 92  # '\\'
    if slash.any():  # in a run of backslashes every other one escapes the byte after it
        at = np.arange(b.size)
        run = at - np.maximum.accumulate(np.where(slash, -1, at)) - 1
        escaping = slash & (run % 2 == 0)
        quote[1:] &= ~escaping[:-1]
    outside = ~np.logical_xor.accumulate(quote)  # False from an opening quote up to its closing one
    outside &= ~quote
    opens = np.flatnonzero(outside & ((b == 91) | (b == 123)))  # '[' '{'
    closes = np.flatnonzero(outside & ((b == 93) | (b == 125)))  # ']' '}'
    commas = np.flatnonzero(outside & (b == 44))  # ','
    depth = np.searchsorted(opens, commas) - np.searchsorted(closes, commas)  # brackets open before each
    cuts = commas[depth == 1]
    if cuts.size != len(values) - 1:
        return None
    starts = np.concatenate(([1], cuts + 1))
    ends = np.concatenate((cuts, [b.size - 1]))
    keep = np.ones(b.size, dtype=bool)
    keep[[0, -1]] = False
    keep[cuts] = False
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(ends - starts, out=offsets[1:])
    body = b[keep]
    return pa.StringArray.from_buffers(len(values), pa.py_buffer(offsets), pa.py_buffer(body))


def _numeric(f: FieldSchema, values: Any, valid: np.ndarray | None) -> np.ndarray:
    dtype = np.dtype(NUMPY_DTYPES[f.dtype])
    if valid is not None:
        values = [0 if not ok else v for v, ok in zip(values, valid)]
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = np.asarray(values, dtype=object)
    kind = arr.dtype.kind
    if f.dtype is DataType.BOOL:
        if kind != "b":
            i = _first_bad(values, lambda v: isinstance(v, (bool, np.bool_)))
            raise _fail(f, i, values[i], "a bool")
        return arr.astype(bool, copy=False)
    if f.dtype.is_integer:
        if kind not in "iub":
            i = _first_bad(values, lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool))
            raise _fail(f, i, values[i], f"an integer for {f.dtype.name}")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            bad = np.flatnonzero((arr < info.min) | (arr > info.max))[0]
            raise _fail(f, int(bad), _to_py(arr[bad]), f"an integer in {info.min}..{info.max} for {f.dtype.name}")
        return arr.astype(dtype, copy=False)
    if kind not in "iuf":
        i = _first_bad(values, lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
        raise _fail(f, i, values[i], f"a number for {f.dtype.name}")
    out = arr.astype(dtype, copy=False)
    if f.dtype is DataType.FLOAT and arr.size:
        with np.errstate(over="ignore"):
            bad = np.isinf(out) & np.isfinite(arr.astype(np.float64))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(f, i, _to_py(arr[i]), "a number that fits a 32-bit float")
    return out


def _first_bad(values: Any, ok) -> int:
    for i, v in enumerate(values):
        if not ok(v):
            return i
    return 0


def _varchar(f: FieldSchema, values: Any) -> pa.Array:
    try:
        arr = strings(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        i = _first_bad(values, lambda v: v is None or isinstance(v, str))
        raise _fail(f, i, values[i], "a string") from None
    return _within_max_length(f, arr)


def _within_max_length(f: FieldSchema, arr: pa.Array) -> pa.Array:
    if len(arr):
        lengths = _string_lengths(arr)
        limit = f.max_length or 0
        if lengths.max() > limit:
            i = int(np.flatnonzero(lengths > limit)[0])
            raise _fail(f, i, arr[i].as_py(), f"a string of at most max_length={limit} bytes")
    return arr


def _string_lengths(arr: pa.Array) -> np.ndarray:
    """Bytes of each string, straight from the array's offsets (no compute kernel: its first call costs ms)."""
    width = 8 if pa.types.is_large_string(arr.type) else 4
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if width == 8 else np.int32,
                            count=len(arr) + 1, offset=arr.offset * width)
    return np.diff(offsets)


def _parse_json_text(f: FieldSchema, i: int, v: str | bytes) -> Any:
    try:
        return json.loads(v)
    except ValueError:
        raise _fail(f, i, v, "valid JSON text or a JSON-serialisable value") from None


def _not_serialisable(o: Any) -> Any:
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _make_dumps() -> Any:
    """``json.dumps(v, allow_nan=False)`` with one C encoder made once, not once per value.

    ``json.dumps`` with any keyword builds a new encoder on every call, which costs
    more than encoding a small document; the text produced is the same.
    """
    from json import encoder

    make = getattr(encoder, "c_make_encoder", None)
    if make is None:  # pure-Python json: keep the documented call
        return lambda v: json.dumps(v, allow_nan=False)
    enc = make(None, _not_serialisable, encoder.encode_basestring_ascii, None, ": ", ", ", False, False, False)

    def dumps(v: Any) -> str:
        return "".join(enc(v, 0))

    return dumps


dumps_json = _make_dumps()

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # the general path encodes every value with json
    _orjson = None
    _ORJSON_OPTIONS = 0
else:
    _ORJSON_OPTIONS = _orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS


def _check_json(name: str, i: int, v: Any) -> str:
    try:
        return dumps_json(v)  # type: ignore[no-any-return]
    except (TypeError, ValueError, RecursionError):
        raise _fail(name, i, v, "a JSON-serialisable value (dict, list, str, number, bool or None)") from None


_ELEMENT_OK = {
    DataType.BOOL: lambda v: isinstance(v, (bool, np.bool_)),
    DataType.FLOAT: lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool),
    DataType.DOUBLE: lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool),
    DataType.VARCHAR: lambda v: isinstance(v, str),
}


def _array_values(f: FieldSchema, values: Any, valid: np.ndarray | None) -> np.ndarray:
    et = f.element_type
    assert et is not None
    ok = _ELEMENT_OK.get(et, lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool))
    info = np.iinfo(NUMPY_DTYPES[et]) if et.is_integer else None
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if valid is not None and not valid[i]:
            out[i] = None
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, (list, tuple)):
            raise _fail(f, i, v, f"a list of {et.name}")
        if len(v) > (f.max_capacity or 0):
            raise _fail(f, i, v, f"at most max_capacity={f.max_capacity} elements")
        for e in v:
            if not ok(e) or (info is not None and not info.min <= e <= info.max):
                raise _fail(f, i, v, f"a list of {et.name} (bad element {e!r})")
            if et is DataType.VARCHAR and len(e.encode()) > (f.max_length or 0):
                raise _fail(f, i, v, f"strings of at most max_length={f.max_length} bytes")
        out[i] = [_to_py(e) for e in v]
    return out


# -- vectors --------------------------------------------------------------------


_VECTOR_DTYPES = {
    DataType.FLOAT_VECTOR: np.float32,
    DataType.FLOAT16_VECTOR: np.float16,
    DataType.INT8_VECTOR: np.int8,
}


def convert_vectors(f: FieldSchema, raw: Any, n: int) -> Any:
    """One vector field's values: a 2-d numpy array, or a CSR matrix for sparse vectors."""
    if isinstance(raw, list) and any(v is _MISSING or v is None for v in raw):
        i = next(i for i, v in enumerate(raw) if v is _MISSING or v is None)
        raise _fail(f, i, "<missing>", f"a {f.dtype.name} value (vector fields are required)")
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return to_sparse_matrix(raw, f.name)
    if isinstance(raw, (pa.Array, pa.ChunkedArray)):
        raw = raw.to_pylist() if not isinstance(raw.type, pa.FixedSizeListType) else \
            np.asarray(pa.chunked_array([raw]).combine_chunks().flatten()).reshape(len(raw), -1)
    if f.dtype is DataType.BINARY_VECTOR:
        return _binary(f, raw, n)
    if f.dtype is DataType.BFLOAT16_VECTOR:
        arr = _dense(f, raw, np.float32, n)
        return float32_to_bfloat16_bits(arr)
    return _dense(f, raw, _VECTOR_DTYPES[f.dtype], n)


#: Rows converted per numpy call, so a long conversion lets other threads (an event loop) run between chunks.
_CHUNK = 2048


def _as_array(raw: Any, dtype: Any) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) <= _CHUNK:
        return np.asarray(raw, dtype=dtype)
    parts = [np.asarray(raw[i : i + _CHUNK], dtype=dtype) for i in range(0, len(raw), _CHUNK)]
    if any(p.ndim != parts[0].ndim or p.shape[1:] != parts[0].shape[1:] for p in parts):
        raise ValueError("ragged")
    return np.concatenate(parts)


def _dense(f: FieldSchema, raw: Any, dtype: Any, n: int) -> np.ndarray:
    dim = f.dim or 0
    try:
        arr = _as_array(raw, np.float64 if dtype is not np.float32 else np.float32)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != dim:
        for i, v in enumerate(raw):
            try:
                a = np.asarray(v, dtype=np.float64)
            except (ValueError, TypeError):
                raise _fail(f, i, v, f"a vector of {dim} numbers") from None
            if a.ndim != 1 or a.shape[0] != dim:
                raise _fail(f, i, f"a vector of {a.size} values", f"dim={dim}")
        raise _fail(f, None, raw, f"vectors of dim={dim}")
    if arr.shape[0] != n:
        raise _fail(f, None, f"{arr.shape[0]} vectors", f"{n}, one per row")
    if arr.size and not _all_finite(arr):
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise _fail(f, i, "a vector with NaN or infinity", "finite numbers")
    if dtype is np.int8:
        if arr.size and (np.any(arr != np.round(arr)) or arr.min() < -128 or arr.max() > 127):
            raise _fail(f, None, "values outside int8", "integers in -128..127")
    return np.ascontiguousarray(arr, dtype=dtype)


def _all_finite(arr: np.ndarray) -> bool:
    """Whether every value is finite: a NaN or an infinity makes the sum so; a sum that overflows is checked again."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(arr.sum())):
            return True
    return bool(np.isfinite(arr).all())


def float32_to_bfloat16_bits(arr: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even bfloat16 bit patterns of float32 values."""
    bits = np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)
    rounded = bits + (0x7FFF + ((bits >> 16) & 1))
    return (rounded >> 16).astype(np.uint16)


def bfloat16_bits_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _binary(f: FieldSchema, raw: Any, n: int) -> np.ndarray:
    nbytes = (f.dim or 0) // 8
    if isinstance(raw, np.ndarray) and raw.dtype == np.uint8 and raw.ndim == 2:
        arr = raw
    else:
        rows = []
        for i, v in enumerate(raw):
            if isinstance(v, (bytes, bytearray)):
                b = np.frombuffer(bytes(v), dtype=np.uint8)
            elif isinstance(v, np.ndarray) and v.dtype == np.uint8:
                b = v
            else:
                raise _fail(f, i, v, f"{nbytes} bytes (dim {f.dim} bits)")
            if b.size != nbytes:
                raise _fail(f, i, f"{b.size} bytes", f"{nbytes} bytes (dim {f.dim} bits)")
            rows.append(b)
        arr = np.vstack(rows) if rows else np.empty((0, nbytes), np.uint8)
    if arr.shape != (n, nbytes):
        raise _fail(f, None, f"shape {arr.shape}", f"({n}, {nbytes})")
    return np.ascontiguousarray(arr)


def to_sparse_matrix(raw: Any, name: str = "sparse vector") -> sp.csr_matrix:
    """Sparse rows (dicts {index: value}, scipy sparse rows or matrices, (index, value) pairs) → CSR float32."""
    if sp.issparse(raw):
        m = sp.csr_matrix(raw, dtype=np.float32)
        _check_sparse(m, name, None)
        return m
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    for i, v in enumerate(raw):
        idx, val = _sparse_row(v, name, i)
        indices.extend(idx)
        data.extend(val)
        indptr.append(len(indices))
    ind = np.asarray(indices, dtype=np.int64)
    if ind.size and (ind.min() < 0 or ind.max() > MAX_SPARSE_INDEX):
        raise _fail(name, None, int(ind.min() if ind.min() < 0 else ind.max()), f"sparse indices in 0..{MAX_SPARSE_INDEX}")
    width = int(ind.max()) + 1 if ind.size else 1
    m = sp.csr_matrix((np.asarray(data, dtype=np.float32), ind, np.asarray(indptr)), shape=(len(indptr) - 1, width))
    _check_sparse(m, name, None)
    return m


def _sparse_row(v: Any, name: str, i: int) -> tuple[list[int], list[float]]:
    if sp.issparse(v):
        r = sp.csr_matrix(v)
        if r.shape[0] != 1:
            raise _fail(name, i, f"a sparse matrix of {r.shape[0]} rows", "one sparse row")
        r.sum_duplicates()
        return r.indices.tolist(), r.data.tolist()
    if isinstance(v, Mapping):
        items = sorted(v.items())
    elif isinstance(v, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in v):
        items = sorted((p[0], p[1]) for p in v)
    else:
        raise _fail(name, i, v, "a sparse vector: {index: value} dict or a scipy sparse row")
    idx, val = [], []
    for k, x in items:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0 or k > MAX_SPARSE_INDEX:
            raise _fail(name, i, v, f"integer indices in 0..{MAX_SPARSE_INDEX}")
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(x):
            raise _fail(name, i, v, "finite float values")
        idx.append(int(k))
        val.append(float(x))
    return idx, val


def _check_sparse(m: sp.csr_matrix, name: str, row: int | None) -> None:
    if m.nnz and not np.isfinite(m.data).all():
        raise _fail(name, row, "NaN or infinity", "finite sparse values")
    if m.nnz and m.indices.min() < 0:
        raise _fail(name, row, int(m.indices.min()), "non-negative sparse indices")


# -- keys -----------------------------------------------------------------------


def check_unique_pks(f: FieldSchema, col: Column) -> None:
    """Refuse a batch that repeats a primary key."""
    v = col.values
    if isinstance(v, (pa.Array, pa.ChunkedArray)):
        arr = objects(v)
    else:
        arr = v
    if len(arr) < 2:
        return
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "iu" and (arr[1:] > arr[:-1]).all():
        return  # increasing, so no key twice: the usual batch of new ids, without a sort
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        dup = uniq[np.flatnonzero(counts > 1)[0]]
        raise DataError(f"field {f.name!r}: primary key {_to_py(dup)!r} appears more than once in the batch")


def normalize_pks(f: FieldSchema, ids: Any) -> np.ndarray:
    """Primary keys given to get/delete as a numpy array of the key's type."""
    if isinstance(ids, (int, str, np.integer)):
        ids = [ids]
    vals = list(ids)
    if f.dtype is DataType.INT64:
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise _fail(f, None, v, "INT64 primary keys")
        return np.asarray(vals, dtype=np.int64)
    for v in vals:
        if not isinstance(v, str):
            raise _fail(f, None, v, "VARCHAR primary keys")
    return np.asarray(vals, dtype=object)


def query_vectors(data: Any) -> Any:
    """Search inputs as a 2-d array (dense or packed binary) or a CSR matrix (sparse)."""
    if type(data) is np.ndarray and data.ndim == 2:  # the common case: one array of queries as it is
        return data
    if type(data) is not np.ndarray and sp.issparse(data):
        return sp.csr_matrix(data, dtype=np.float32)
    if isinstance(data, np.ndarray):
        if data.dtype == np.uint8 and data.ndim == 2:
            return data
        return np.atleast_2d(data)
    if isinstance(data, (bytes, bytearray)):
        return np.frombuffer(bytes(data), dtype=np.uint8)[None, :]
    items = list(data)
    if not items:
        raise DataError("data: got an empty list, expected at least one query vector")
    if all(sp.issparse(v) or isinstance(v, Mapping) for v in items):
        return to_sparse_matrix(items, "data")
    if all(isinstance(v, (bytes, bytearray)) for v in items):
        return np.vstack([np.frombuffer(bytes(v), dtype=np.uint8) for v in items])
    if isinstance(items[0], (int, float, np.number)):
        items = [items]
    try:
        arr = np.asarray(items, dtype=np.float32 if not isinstance(items[0], np.ndarray) or items[0].dtype.kind == "f" else None)
    except (ValueError, TypeError):
        raise DataError("data: query vectors must all have the same dimension and be numeric") from None
    if arr.ndim != 2:
        raise DataError(f"data: got an array of shape {arr.shape}, expected one vector per query")
    return arr
