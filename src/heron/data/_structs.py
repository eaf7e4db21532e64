"""Struct array values: each row a list of dicts with the struct's sub-fields.

A row's value is checked whole before anything is kept: a list (at most
``max_capacity`` elements) of dicts that hold exactly the sub-fields, each
value of its sub-field's type (numbers in range, strings within
``max_length``, vectors of ``dim`` numbers). A value that does not fit raises
`DataError` naming the field, the row, the sub-field and what was expected.
Stored values are plain Python (vectors as lists of float32 values), which is
what queries return; `arrow_type` is the on-disk type.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from .._schema import FieldSchema, StructFieldSchema
from .._types import NUMPY_DTYPES, DataType
from ._check import fail, short
from ._json import is_utf8

_ARROW_SCALARS = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
    DataType.FLOAT_VECTOR: pa.list_(pa.float32()),
}


def arrow_type(f: StructFieldSchema) -> pa.DataType:
    """The Arrow type of the field's column: a list of structs with one member per sub-field."""
    return pa.list_(pa.struct([pa.field(s.name, _ARROW_SCALARS[s.dtype]) for s in f.fields]))


def struct_values(f: StructFieldSchema, values: Any, valid: np.ndarray | None) -> np.ndarray:
    """The rows' struct lists, checked; None where a row is null."""
    out = np.empty(len(values), dtype=object)
    names = [s.name for s in f.fields]
    for i, v in enumerate(values):
        if valid is not None and not valid[i]:
            out[i] = None
            continue
        if isinstance(v, np.ndarray):
            v = v.tolist()
        if not isinstance(v, (list, tuple)):
            raise fail(f, i, v, "a list of dicts with the struct's sub-fields " + str(names))
        if len(v) > (f.max_capacity or 0):
            raise fail(f, i, f"{len(v)} elements", f"at most max_capacity={f.max_capacity} elements")
        for e in v:
            if not isinstance(e, dict):
                raise fail(f, i, e, f"each element a dict with the sub-fields {names}")
            if set(e) != set(names):
                missing, extra = sorted(set(names) - set(e)), sorted(set(e) - set(names))
                what = f"missing sub-field(s) {missing}" if missing else f"unknown sub-field(s) {extra}"
                raise fail(f, i, e, f"each element with exactly the sub-fields {names} ({what})")
        out[i] = _row(f, i, list(v))
    return out


def _row(f: StructFieldSchema, i: int, elems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cols = {s.name: _sub_values(f, s, i, [e[s.name] for e in elems]) for s in f.fields}
    return [{name: col[k] for name, col in cols.items()} for k in range(len(elems))]


def _sub_values(f: StructFieldSchema, s: FieldSchema, i: int, vals: list[Any]) -> list[Any]:
    where = f"sub-field {s.name!r}: "
    t = s.dtype
    if t is DataType.FLOAT_VECTOR:
        try:
            arr = np.asarray(vals, dtype=np.float32)
        except (ValueError, TypeError):
            raise fail(f, i, vals, where + f"vectors of {s.dim} numbers") from None
        if vals and (arr.ndim != 2 or arr.shape[1] != s.dim):
            raise fail(f, i, vals, where + f"vectors of dim {s.dim}")
        if vals and not np.isfinite(arr).all():
            raise fail(f, i, vals, where + "finite numbers (no NaN or infinity)")
        return arr.tolist()
    if t is DataType.VARCHAR:
        for v in vals:
            if not isinstance(v, str) or not is_utf8(v):
                raise fail(f, i, v, where + "a string (valid UTF-8)")
            if len(v.encode()) > (s.max_length or 0):
                raise fail(f, i, short(v), where + f"a string of at most max_length={s.max_length} bytes")
        return list(vals)
    if t is DataType.BOOL:
        if not all(isinstance(v, (bool, np.bool_)) for v in vals):
            raise fail(f, i, vals, where + "BOOL values")
        return [bool(v) for v in vals]
    numbers = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in vals)
    if t.is_integer:
        if not numbers or not all(isinstance(v, (int, np.integer)) for v in vals):
            raise fail(f, i, vals, where + f"{t.name} values")
        info = np.iinfo(NUMPY_DTYPES[t])
        if any(not info.min <= v <= info.max for v in vals):
            raise fail(f, i, vals, where + f"{t.name} values in {info.min}..{info.max}")
        return [int(v) for v in vals]
    if not numbers:
        raise fail(f, i, vals, where + f"{t.name} values")
    return np.asarray(vals, dtype=NUMPY_DTYPES[t]).tolist()
