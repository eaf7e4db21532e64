"""Columns of text (as a CSV file holds them) converted in one vectorised pass, where that is exact.

A CSV bulk file holds every value as text: numbers, ``True``/``False``, and
vectors as JSON lists (``[0.5, -1.25, ...]``). Converting value by value
through a JSON parser is exact but slow; the functions here convert a whole
Arrow string column at once: numbers and booleans with pyarrow's C++ kernels,
vectors by one JSON parse of all their text.

Each returns None when the column holds anything the fast conversion does
not take exactly as the value-by-value one would (a null vector, a number
written another way, a vector of another length, a non-finite number): the
caller then converts that column value by value, which names the bad row.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .._pool import Pool
from .._schema import FieldSchema
from .._types import DataType

#: A JSON integer and a JSON number, as a JSON parser reads them (no "+1", "01", ".5", "nan").
_INT = r"^-?(0|[1-9][0-9]*)$"
_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
#: A JSON list of JSON numbers written without spaces, as orjson and Milvus's bulk writer write vectors.
_COMPACT_LIST = (r"^\[-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"
                 r"(,-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)*\]$")
#: Vectors per slice converted on a thread of its own.
_SLICE = 2048
_SPACED = object()
_INTS = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)
_FLOATS = (DataType.FLOAT, DataType.DOUBLE)
_TEXTS = (DataType.VARCHAR, DataType.GEOMETRY, DataType.TIMESTAMPTZ, DataType.JSON)
_BOOLS = {"True": True, "False": False, "true": True, "false": False}


def text_column(f: FieldSchema | None, col: pa.Array) -> Any:
    """``col`` (strings, nulls for the null key) as field ``f``'s values; None where only value-by-value will do.

    Numbers become int64/float64 Arrow arrays (the batch builder checks their
    range), booleans a bool array, text fields stay as they are, float and
    int8 vectors a 2-d numpy array (`vector_texts`).
    """
    if f is None:
        return None
    t = f.dtype
    if t in _TEXTS:
        return col
    present = col.drop_null()
    if t in _INTS or t in _FLOATS:
        if len(present) and not pc.all(pc.match_substring_regex(present, _INT if t in _INTS else _NUMBER)).as_py():
            return None
        try:
            out = col.cast(pa.int64() if t in _INTS else pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None  # an integer past int64
        if t in _FLOATS and not pc.all(pc.is_finite(out.drop_null())).as_py() and len(present):
            return None
        return out
    if t is DataType.BOOL:
        if len(present) and not pc.all(pc.is_in(present, pa.array(list(_BOOLS)))).as_py():
            return None
        return pc.is_in(col, pa.array(["True", "true"])).to_numpy(zero_copy_only=False) if not col.null_count \
            else pa.array([None if v is None else _BOOLS[v] for v in col.to_pylist()], pa.bool_())
    if t in (DataType.FLOAT_VECTOR, DataType.INT8_VECTOR) and f.dim:
        return vector_texts(col, int(f.dim))
    return None


def vector_texts(col: pa.Array, dim: int) -> np.ndarray | None:
    """JSON lists of ``dim`` numbers, one per value of ``col``, as an (n, dim) float64 array; None if any is not.

    Lists written without spaces are checked by one regular expression (JSON
    numbers only), split at their commas and cast to float64 by pyarrow's
    kernels, which release the GIL: slices of the column are converted on
    threads of their own. Others (``[0.5, -1.25]``) are laid end to end as
    one flat JSON list and parsed by one `orjson.loads`, the parser the
    value-by-value reading uses. Either way a vector of another length, a nested value, a
    null or text that is not a number gives None.
    """
    n = len(col)
    if col.null_count or n == 0 or not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return None
    slices = [col.slice(i, _SLICE) for i in range(0, n, _SLICE)]
    if len(slices) > 1 and (os.cpu_count() or 1) > 1:
        with Pool(min(len(slices), os.cpu_count() or 1, 4)) as pool:
            parts = list(pool.map(_compact, slices, [dim] * len(slices)))
    else:
        parts = [_compact(c, dim) for c in slices]
    if any(p is _SPACED for p in parts):
        return _flat_json(col, dim)
    if any(p is None for p in parts):
        return None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]  # type: ignore[arg-type,return-value]


def _compact(col: pa.Array, dim: int) -> np.ndarray | object | None:
    """`vector_texts` of lists without spaces; `_SPACED` where some list has spaces (or is not a list at all)."""
    if not pc.all(pc.match_substring_regex(col, _COMPACT_LIST)).as_py():
        return _SPACED
    parts = pc.split_pattern(pc.utf8_slice_codeunits(col, 1, -1), ",")
    if not pc.all(pc.equal(pc.list_value_length(parts), dim)).as_py():
        return None  # a vector of another length
    out = np.asarray(parts.flatten().cast(pa.float64()).to_numpy()).reshape(len(col), dim)
    return out if np.isfinite(out).all() else None  # 1e999 overflows


def _flat_json(col: pa.Array, dim: int) -> np.ndarray | None:
    n = len(col)
    width = np.int64 if pa.types.is_large_string(col.type) else np.int32
    offsets = np.frombuffer(col.buffers()[1], dtype=width)[col.offset:col.offset + n + 1].astype(np.int64)
    data = np.frombuffer(col.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]].copy()
    starts, ends = offsets[:-1] - offsets[0], offsets[1:] - offsets[0] - 1
    if (ends <= starts).any() or (data[starts] != ord("[")).any() or (data[ends] != ord("]")).any():
        return None
    commas = np.flatnonzero(data == ord(","))
    if len(commas) != n * (dim - 1) or (np.searchsorted(commas, ends) != np.arange(1, n + 1) * (dim - 1)).any():
        return None  # a vector of another length
    data[starts], data[ends[:-1]], data[-1] = ord(" "), ord(","), ord("]")
    data[0] = ord("[")
    try:
        out = np.array(orjson.loads(memoryview(data)), dtype=np.float64)
    except (ValueError, TypeError):
        return None  # a value that is not a number, or a nested one
    if out.shape != (n * dim,) or not np.isfinite(out).all():
        return None  # a nested value, or a null
    return out.reshape(n, dim)
