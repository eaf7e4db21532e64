"""One scalar field's values as a `Column`: defaults and nulls filled in, types and limits checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from .._schema import FieldSchema, StructFieldSchema
from .._types import NUMPY_DTYPES, DataType
from . import _pa
from ._check import MISSING, fail, to_py
from ._column import Column
from ._json import check_json, is_utf8, json_documents, parse_json_text
from ._pa import strings
from ._structs import struct_values
from ._typed import typed_column


def _fill_missing(f: FieldSchema, raw: Any, n: int) -> tuple[list[Any], np.ndarray | None]:
    """Resolve missing and None values to defaults or nulls; return values and validity."""
    if raw is None:
        raw = [MISSING] * n
    if not isinstance(raw, list):
        return raw, None
    if None not in raw and MISSING not in raw:  # the common case, without a loop in Python
        return raw, None
    valid = None
    out = raw
    for i, v in enumerate(raw):
        if v is MISSING or v is None:
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
                raise fail(f, i, "<missing>" if v is MISSING else None, f"a {f.dtype.name} value (the field is not nullable)")
    return out, valid


def convert_scalars(f: FieldSchema, raw: Any, n: int, zone: str = "UTC") -> Column:
    """One scalar field's values as a `Column`, or `DataError`.

    ``zone`` is the time zone of TIMESTAMPTZ values given without an offset.
    """
    if f.dtype in (DataType.TIMESTAMPTZ, DataType.GEOMETRY):
        if isinstance(raw, (pa.Array, pa.ChunkedArray)):
            raw = raw.to_pylist()
        return typed_column(f, *_fill_missing(f, raw, n), zone)
    if isinstance(raw, (pa.Array, pa.ChunkedArray)):
        col = _arrow_column(f, raw)
        if col is not None:
            return col
        raw = raw.to_pylist()
    t = f.dtype
    given: pa.Array | None = None  # the strings of a VARCHAR list as given, once built
    if isinstance(raw, list) and len(raw) == n:  # the usual lists, with nothing missing: no pass for defaults
        if t is DataType.JSON:
            fast = json_documents(f, raw, None, n)
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
            fast = json_documents(f, values, valid, n)
            if fast is not None:
                return fast
        out = np.empty(n, dtype=object)
        texts: list[str | None] = [None] * n
        for i, v in enumerate(values):
            v = to_py(v)
            if isinstance(v, (str, bytes)) and not (valid is not None and not valid[i]):
                v = parse_json_text(f, i, v)
            if not (valid is not None and not valid[i]):
                texts[i] = check_json(f.name, i, v)
            out[i] = v
        return Column(t, out, valid, texts=texts)
    if isinstance(f, StructFieldSchema):
        return Column(t, struct_values(f, values, valid), valid, f.element_type)
    if t is DataType.ARRAY:
        return Column(t, _array_values(f, values, valid), valid, f.element_type)
    raise fail(f, None, t.name, "a supported scalar type")


def _arrow_column(f: FieldSchema, raw: pa.Array | pa.ChunkedArray) -> Column | None:
    """An Arrow column of numbers (for a numeric field) or of strings (for VARCHAR) read from its buffers.

    Nulls get the field's default, stay nulls of a nullable field, or are
    refused naming the first one, as None in a list of rows is. None for
    other types, and for strings with nulls to fill: the Python values take
    the general path.
    """
    arr = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) and raw.num_chunks != 1 else \
        raw.chunk(0) if isinstance(raw, pa.ChunkedArray) else raw
    t = f.dtype
    if t in NUMPY_DTYPES and arr.type in _pa.NUMPY_OF:
        values = _pa.to_numpy(arr, fill=0)
        valid = _pa.valid_mask(arr)
        if valid is not None:
            if f.default_value is not None:
                values = np.where(valid, values, np.asarray(f.default_value))  # the wider type of the two
                valid = None
            elif not f.nullable:
                i = int(np.flatnonzero(~valid)[0])
                raise fail(f, i, None, f"a {t.name} value (the field is not nullable)")
        return Column(t, _numeric(f, values, None), valid)
    if t is DataType.VARCHAR and (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                                  or arr.type == pa.string_view()):
        try:
            arr = _pa.small_strings(arr)  # what segments hold
        except pa.ArrowInvalid:
            return None  # the general path names the limit
        valid = _pa.valid_mask(arr)
        if valid is None:
            return Column(t, _within_max_length(f, arr), None)
        if f.nullable and f.default_value is None:
            return Column(t, _within_max_length(f, arr, valid), valid)
    return None


def _numeric(f: FieldSchema, values: Any, valid: np.ndarray | None) -> np.ndarray:
    dtype = np.dtype(NUMPY_DTYPES[f.dtype])
    if valid is not None:
        filler = dtype.type(0)  # of the column's own type: a 0 in a BOOL column would read as a wrong value
        values = [v if ok else filler for v, ok in zip(values, valid)]
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError):
        arr = np.asarray(values, dtype=object)
    kind = arr.dtype.kind
    if f.dtype is DataType.BOOL:
        if kind != "b":
            i = _first_bad(values, lambda v: isinstance(v, (bool, np.bool_)))
            raise fail(f, i, to_py(values[i]), "a bool")
        return arr.astype(bool, copy=False)
    if f.dtype.is_integer:
        if kind not in "iub":
            i = _first_bad(values, lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool))
            raise fail(f, i, to_py(values[i]), f"an integer for {f.dtype.name}")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            bad = np.flatnonzero((arr < info.min) | (arr > info.max))[0]
            raise fail(f, int(bad), to_py(arr[bad]), f"an integer in {info.min}..{info.max} for {f.dtype.name}")
        return arr.astype(dtype, copy=False)
    if kind not in "iuf":
        i = _first_bad(values, lambda v: isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool))
        raise fail(f, i, to_py(values[i]), f"a number for {f.dtype.name}")
    out = arr.astype(dtype, copy=False)
    if f.dtype is DataType.FLOAT and arr.size:
        with np.errstate(over="ignore"):
            bad = np.isinf(out) & np.isfinite(arr.astype(np.float64))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise fail(f, i, to_py(arr[i]), "a number that fits a 32-bit float")
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
        bad = next((i for i, v in enumerate(values) if v is not None and not isinstance(v, str)), None)
        if bad is not None:
            raise fail(f, bad, values[bad], "a string") from None
        i = _first_bad(values, lambda v: v is None or is_utf8(v))  # all strings: one is not valid text
        raise fail(f, i, values[i], "valid UTF-8 text (a lone surrogate such as '\\udcff' cannot be stored)") from None
    return _within_max_length(f, arr)


def _within_max_length(f: FieldSchema, arr: pa.Array, valid: np.ndarray | None = None) -> pa.Array:
    if len(arr):
        lengths = _string_lengths(arr)
        if valid is not None:
            lengths = np.where(valid, lengths, 0)  # a null slot's bytes are not a value
        limit = f.max_length or 0
        if lengths.max() > limit:
            i = int(np.flatnonzero(lengths > limit)[0])
            raise fail(f, i, arr[i].as_py(), f"a string of at most max_length={limit} bytes")
    return arr


def _string_lengths(arr: pa.Array) -> np.ndarray:
    """Bytes of each string, straight from the array's offsets (no compute kernel: its first call costs ms)."""
    width = 8 if pa.types.is_large_string(arr.type) else 4
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64 if width == 8 else np.int32,
                            count=len(arr) + 1, offset=arr.offset * width)
    return np.diff(offsets)


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
            raise fail(f, i, v, f"a list of {et.name}")
        if len(v) > (f.max_capacity or 0):
            raise fail(f, i, v, f"at most max_capacity={f.max_capacity} elements")
        for e in v:
            if not ok(e) or (info is not None and not info.min <= e <= info.max):
                raise fail(f, i, v, f"a list of {et.name} (bad element {e!r})")
            if et is DataType.VARCHAR:
                if not is_utf8(e):
                    raise fail(f, i, e, "valid UTF-8 text (a lone surrogate such as '\\udcff' cannot be stored)")
                if len(e.encode()) > (f.max_length or 0):
                    raise fail(f, i, v, f"strings of at most max_length={f.max_length} bytes")
        out[i] = [to_py(e) for e in v]
    return out
