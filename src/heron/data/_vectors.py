"""One vector field's values, and query vectors: dense arrays, packed binary rows, CSR sparse matrices.

Dense values are checked for shape and finiteness, binary rows for their byte
count, sparse rows for their index range and finite values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .._errors import DataError
from .._schema import FieldSchema
from .._types import DataType
from . import _pa
from . import _sparse as sp
from ._check import MISSING, fail

MAX_SPARSE_INDEX = 2**32 - 2

_VECTOR_DTYPES = {
    DataType.FLOAT_VECTOR: np.float32,
    DataType.FLOAT16_VECTOR: np.float16,
    DataType.INT8_VECTOR: np.int8,
}


def convert_vectors(f: FieldSchema, raw: Any, n: int) -> Any:
    """One vector field's values: a 2-d numpy array, or a CSR matrix for sparse vectors."""
    if isinstance(raw, (pa.Array, pa.ChunkedArray)):
        dense = arrow_dense(f, raw) if f.dtype.is_dense_vector and f.dtype is not DataType.BINARY_VECTOR else None
        raw = dense if dense is not None else raw.to_pylist()
    if isinstance(raw, list) and any(v is MISSING or v is None for v in raw):
        i = next(i for i, v in enumerate(raw) if v is MISSING or v is None)
        raise fail(f, i, "<missing>", f"a {f.dtype.name} value (vector fields are required)")
    if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
        return to_sparse_matrix(raw, f.name)
    if f.dtype is DataType.BINARY_VECTOR:
        return _binary(f, raw, n)
    if f.dtype is DataType.BFLOAT16_VECTOR:
        arr = _dense(f, raw, np.float32, n)
        return float32_to_bfloat16_bits(arr)
    return _dense(f, raw, _VECTOR_DTYPES[f.dtype], n)


def arrow_dense(f: FieldSchema, raw: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """A list-typed Arrow column of numbers as one (rows, dim) array; None for any other Arrow type.

    Each chunk's values are viewed in place (flattened, reshaped, no copy) and
    the chunks joined by one concatenate, cast on the way to float32 for the
    float32-based vector types; a single chunk of the right type is not copied
    at all. A null vector, a null element or a vector of another length is
    refused naming its row, as it would be in a list of rows.
    """
    t = raw.type
    if not (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)):
        return None
    if t.value_type not in _pa.NUMPY_OF:
        return None
    dim = f.dim or 0
    chunks = raw.chunks if isinstance(raw, pa.ChunkedArray) else [raw]
    parts = []
    start = 0
    for c in chunks:
        m = len(c)
        if c.null_count:
            i = start + int(np.flatnonzero(~_pa.valid_mask(c))[0])  # type: ignore[operator]
            raise fail(f, i, "<missing>", f"a {f.dtype.name} value (vector fields are required)")
        if pa.types.is_fixed_size_list(t):
            lengths = np.full(min(m, 1), t.list_size)
        else:
            lengths = np.diff(_pa.to_numpy(c.offsets))
        if lengths.size and (lengths != dim).any():
            i = int(np.flatnonzero(lengths != dim)[0])
            raise fail(f, start + i, f"a vector of {int(lengths[i])} values", f"dim={dim}")
        values = c.flatten()
        if values.null_count:
            i = int(np.flatnonzero(~_pa.valid_mask(values))[0])  # type: ignore[operator]
            raise fail(f, start + i // max(dim, 1), "a vector with a null element", f"a vector of {dim} numbers")
        parts.append(_pa.to_numpy(values).reshape(m, dim))
        start += m
    want = np.float32 if f.dtype in (DataType.FLOAT_VECTOR, DataType.BFLOAT16_VECTOR) else None
    if len(parts) == 1 and (want is None or parts[0].dtype == want):
        return parts[0]
    if not parts:
        return np.empty((0, dim), dtype=want or np.float32)
    return np.concatenate(parts, dtype=want, casting="unsafe")


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
                raise fail(f, i, v, f"a vector of {dim} numbers") from None
            if a.ndim != 1 or a.shape[0] != dim:
                raise fail(f, i, f"a vector of {a.size} values", f"dim={dim}")
        raise fail(f, None, raw, f"vectors of dim={dim}")
    if arr.shape[0] != n:
        raise fail(f, None, f"{arr.shape[0]} vectors", f"{n}, one per row")
    if arr.size and not _all_finite(arr):
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise fail(f, i, "a vector with NaN or infinity", "finite numbers")
    if dtype is np.int8:
        if arr.size and (np.any(arr != np.round(arr)) or arr.min() < -128 or arr.max() > 127):
            raise fail(f, None, "values outside int8", "integers in -128..127")
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
                raise fail(f, i, v, f"{nbytes} bytes (dim {f.dim} bits)")
            if b.size != nbytes:
                raise fail(f, i, f"{b.size} bytes", f"{nbytes} bytes (dim {f.dim} bits)")
            rows.append(b)
        arr = np.vstack(rows) if rows else np.empty((0, nbytes), np.uint8)
    if arr.shape != (n, nbytes):
        raise fail(f, None, f"shape {arr.shape}", f"({n}, {nbytes})")
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
        raise fail(name, None, int(ind.min() if ind.min() < 0 else ind.max()), f"sparse indices in 0..{MAX_SPARSE_INDEX}")
    width = int(ind.max()) + 1 if ind.size else 1
    m = sp.csr_matrix((np.asarray(data, dtype=np.float32), ind, np.asarray(indptr)), shape=(len(indptr) - 1, width))
    _check_sparse(m, name, None)
    return m


def _sparse_row(v: Any, name: str, i: int) -> tuple[list[int], list[float]]:
    if sp.issparse(v):
        r = sp.csr_matrix(v)
        if r.shape[0] != 1:
            raise fail(name, i, f"a sparse matrix of {r.shape[0]} rows", "one sparse row")
        r.sum_duplicates()
        return r.indices.tolist(), r.data.tolist()
    if isinstance(v, Mapping):
        items = sorted(v.items())
    elif isinstance(v, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in v):
        items = sorted((p[0], p[1]) for p in v)
    else:
        raise fail(name, i, v, "a sparse vector: {index: value} dict or a scipy sparse row")
    idx, val = [], []
    for k, x in items:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0 or k > MAX_SPARSE_INDEX:
            raise fail(name, i, v, f"integer indices in 0..{MAX_SPARSE_INDEX}")
        if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(x):
            raise fail(name, i, v, "finite float values")
        idx.append(int(k))
        val.append(float(x))
    return idx, val


def _check_sparse(m: sp.csr_matrix, name: str, row: int | None) -> None:
    if m.nnz and not np.isfinite(m.data).all():
        raise fail(name, row, "NaN or infinity", "finite sparse values")
    if m.nnz and m.indices.min() < 0:
        raise fail(name, row, int(m.indices.min()), "non-negative sparse indices")


def query_vectors(data: Any) -> Any:
    """Search inputs as a 2-d array (dense or packed binary) or a CSR matrix (sparse)."""
    if type(data) is np.ndarray and data.ndim == 2:  # the common case: one array of queries as it is
        return data
    if type(data) is not np.ndarray and sp.issparse(data):
        if type(data) is sp.csr_matrix and data.dtype == np.float32:
            return data  # as it is: the engine reads it into its own copy
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
