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
    """The rows' struct lists, checked; None where a row is null.

    The rows' shape is checked row by row (they are dicts); each sub-field's
    values are then checked for the whole batch at once.
    """
    out = np.empty(len(values), dtype=object)
    names = [s.name for s in f.fields]
    wanted = set(names)
    kept: list[int] = []
    lens: list[int] = []
    elems: list[dict[str, Any]] = []
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
            if e.keys() != wanted:
                missing, extra = sorted(wanted - set(e)), sorted(set(e) - wanted)
                what = f"missing sub-field(s) {missing}" if missing else f"unknown sub-field(s) {extra}"
                raise fail(f, i, e, f"each element with exactly the sub-fields {names} ({what})")
        kept.append(i)
        lens.append(len(v))
        elems.extend(v)
    owner = np.repeat(np.asarray(kept, dtype=np.int64), np.asarray(lens, dtype=np.int64))
    cols = [_sub_values(f, s, owner, [e[s.name] for e in elems]) for s in f.fields]
    built = [dict(zip(names, t)) for t in zip(*cols)]
    k = 0
    for i, n in zip(kept, lens):
        out[i] = built[k:k + n]
        k += n
    return out


def _sub_values(f: StructFieldSchema, s: FieldSchema, owner: np.ndarray, vals: list[Any]) -> list[Any]:
    """One sub-field's values over every element of the batch, checked; `DataError` names the first bad row."""
    where = f"sub-field {s.name!r}: "
    t = s.dtype

    def bad(j: int, expected: str) -> Exception:
        return fail(f, int(owner[j]), vals[j], where + expected)

    if t is DataType.FLOAT_VECTOR:
        try:
            arr = np.asarray(vals, dtype=np.float32)
        except (ValueError, TypeError):
            arr = None
        if arr is None or (vals and (arr.ndim != 2 or arr.shape[1] != s.dim)):
            for j, v in enumerate(vals):
                try:
                    ok = np.asarray(v, dtype=np.float32).shape == (s.dim,)
                except (ValueError, TypeError):
                    ok = False
                if not ok:
                    raise bad(j, f"vectors of dim {s.dim}")
        assert arr is not None
        if vals:
            finite = np.isfinite(arr).all(axis=1)
            if not finite.all():
                raise bad(int(np.flatnonzero(~finite)[0]), "finite numbers (no NaN or infinity)")
        return arr.tolist()
    if t is DataType.VARCHAR:
        for j, v in enumerate(vals):
            if not isinstance(v, str) or not is_utf8(v):
                raise bad(j, "a string (valid UTF-8)")
            if len(v) * 4 > (s.max_length or 0) and len(v.encode()) > (s.max_length or 0):
                raise fail(f, int(owner[j]), short(v), where + f"a string of at most max_length={s.max_length} bytes")
        return vals
    if t is DataType.BOOL:
        for j, v in enumerate(vals):
            if not isinstance(v, (bool, np.bool_)):
                raise bad(j, "BOOL values")
        return [bool(v) for v in vals]
    for j, v in enumerate(vals):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or \
                (t.is_integer and not isinstance(v, (int, np.integer))):
            raise bad(j, f"{t.name} values")
    if t.is_integer:
        info = np.iinfo(NUMPY_DTYPES[t])
        for j, v in enumerate(vals):
            if not info.min <= v <= info.max:
                raise bad(j, f"{t.name} values in {info.min}..{info.max}")
        return [int(v) for v in vals]
    return np.asarray(vals, dtype=NUMPY_DTYPES[t]).tolist()
