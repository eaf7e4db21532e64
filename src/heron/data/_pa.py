"""Arrow arrays to and from numpy and Python lists, without pyarrow's pandas bridge.

``pa.array``, ``pa.scalar`` and ``Array.to_numpy`` look for pandas on every
call and import it when it is installed: about 50 MiB of resident memory that
Heron never uses. The conversions on Heron's paths build arrays from their
buffers instead, and read fixed-width values straight from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

_ARROW_OF: dict[np.dtype[Any], pa.DataType] = {
    np.dtype(np.bool_): pa.bool_(),
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.int16): pa.int16(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.uint8): pa.uint8(),
    np.dtype(np.uint16): pa.uint16(),
    np.dtype(np.uint32): pa.uint32(),
    np.dtype(np.uint64): pa.uint64(),
    np.dtype(np.float16): pa.float16(),
    np.dtype(np.float32): pa.float32(),
    np.dtype(np.float64): pa.float64(),
}
_NUMPY_OF: dict[pa.DataType, np.dtype[Any]] = {t: d for d, t in _ARROW_OF.items()}
#: The Arrow types whose values `to_numpy` reads straight from their buffers, with their numpy dtypes.
NUMPY_OF = _NUMPY_OF
_INT32_MAX = 2**31 - 1


def _validity(valid: np.ndarray | None, n: int) -> tuple[pa.Buffer | None, int]:
    if valid is None:
        return None, 0
    valid = np.asarray(valid, dtype=bool)
    nulls = n - int(np.count_nonzero(valid))
    if nulls == 0:
        return None, 0
    return pa.py_buffer(np.packbits(valid, bitorder="little")), nulls


def from_numpy(values: Any, type: pa.DataType | None = None, valid: np.ndarray | None = None) -> pa.Array:
    """A fixed-width Arrow array over a numpy array (no copy when the layout allows); `valid` marks non-nulls."""
    a = np.asarray(values)
    if type is None:
        type = _ARROW_OF[a.dtype]
    a = np.ascontiguousarray(a.reshape(-1), dtype=_NUMPY_OF[type])
    n = len(a)
    validity, nulls = _validity(valid, n)
    data = np.packbits(a, bitorder="little") if type == pa.bool_() else a
    return pa.Array.from_buffers(type, n, [validity, pa.py_buffer(data)], null_count=nulls)


def strings(values: Sequence[Any] | np.ndarray) -> pa.StringArray:
    """A string array of `values` (str or None); `pa.ArrowTypeError` names the first value that is neither."""
    n = len(values)
    items = values.tolist() if isinstance(values, np.ndarray) else values
    nulls = items.count(None) if isinstance(items, list) else sum(v is None for v in items)  # type: ignore[union-attr]
    valid = None
    if nulls:
        valid = np.fromiter((v is not None for v in items), dtype=bool, count=n)
        items = ["" if v is None else v for v in items]
    try:
        joined = "".join(items)
    except TypeError:
        i = next(i for i, v in enumerate(items) if not isinstance(v, str))
        raise pa.ArrowTypeError(f"expected a string at position {i}, got {type(items[i]).__name__}") from None
    if joined.isascii():
        data = joined.encode("ascii")
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=n)
    else:
        try:
            encoded = [v.encode("utf-8") for v in items]
        except UnicodeEncodeError as exc:
            raise pa.ArrowInvalid(f"a string that is not valid UTF-8: {exc}") from None
        data = b"".join(encoded)
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=n)
    if len(data) > _INT32_MAX:
        raise pa.ArrowInvalid(f"{len(data)} bytes of strings in one array; at most {_INT32_MAX} fit")
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity, _ = _validity(valid, n)
    arr = pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)
    assert isinstance(arr, pa.StringArray)
    return arr


def small_strings(arr: pa.Array) -> pa.StringArray:
    """A string, large_string or string_view array as a string array (32-bit offsets), its text not copied.

    `pa.ArrowInvalid` if its text is too long for 32-bit offsets.
    """
    if arr.type == pa.string():
        return arr
    if not pa.types.is_large_string(arr.type):
        return arr.cast(pa.string())
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8) if n else np.zeros(1, np.int64)
    size = int(offsets[-1] - offsets[0])
    if size > _INT32_MAX:
        raise pa.ArrowInvalid(f"{size} bytes of strings in one array; at most {_INT32_MAX} fit")
    data = bufs[2].slice(int(offsets[0]), size) if bufs[2] is not None else pa.py_buffer(b"")
    validity, nulls = _validity(valid_mask(arr), n)
    out = pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer((offsets - offsets[0]).astype(np.int32)), data],
                                null_count=nulls)
    assert isinstance(out, pa.StringArray)
    return out


def valid_mask(arr: pa.Array) -> np.ndarray | None:
    """Which slots of `arr` hold a value (None when all do)."""
    if arr.null_count == 0:
        return None
    if arr.type == pa.null():
        return np.zeros(len(arr), dtype=bool)
    buf = arr.buffers()[0]
    bits = np.frombuffer(buf, dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little", count=arr.offset + len(arr))[arr.offset :].astype(bool)


def to_numpy(arr: pa.Array | pa.ChunkedArray, fill: Any = 0) -> np.ndarray:
    """The values of a fixed-width array as numpy (read-only when shared); null slots hold `fill`."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    dtype = _NUMPY_OF[arr.type]
    n = len(arr)
    buf = arr.buffers()[1] if n else None
    if buf is None:
        out = np.zeros(n, dtype=dtype)
    elif arr.type == pa.bool_():
        bits = np.frombuffer(buf, dtype=np.uint8)
        out = np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset :].astype(bool)
    else:
        out = np.frombuffer(buf, dtype=dtype, count=n, offset=arr.offset * dtype.itemsize)
    valid = valid_mask(arr)
    if valid is not None:
        out = out.copy()
        out[~valid] = fill
    return out


def lists(values: Sequence[Any], element: pa.DataType) -> pa.ListArray:
    """A list array of `values` (lists of `element` values, or None)."""
    n = len(values)
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
    lengths = np.fromiter((0 if v is None else len(v) for v in values), dtype=np.int64, count=n)
    flat = [x for v in values if v is not None for x in v]
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    child = strings(flat) if element == pa.string() else from_numpy(np.asarray(flat, dtype=_NUMPY_OF[element]), element)
    validity, nulls = _validity(valid, n)
    arr = pa.Array.from_buffers(
        pa.list_(element), n, [validity, pa.py_buffer(offsets)], null_count=nulls, children=[child]
    )
    assert isinstance(arr, pa.ListArray)
    return arr


def string_scalar(value: str) -> pa.StringScalar:
    """`value` as an Arrow string scalar, for compute functions that compare against it."""
    s = strings([value])[0]
    assert isinstance(s, pa.StringScalar)
    return s


def objects(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Python values of `arr` (None for nulls) as a 1-d object array."""
    out = np.empty(len(arr), dtype=object)
    out[:] = arr.to_pylist()
    return out


#: Up to this many rows, `values_at_rows` reads values one by one rather than through ``take``.
FEW_ROWS = 16


def values_at_rows(values: pa.Array | pa.ChunkedArray, rows: np.ndarray) -> list[Any]:
    """Python values of ``values`` at positions ``rows``, as ``values.take(rows).to_pylist()`` gives them.

    A ``take`` costs about 5 us on an array and 30 us on a chunked one whatever
    the number of rows; for a few rows (a get by id) reading each value is cheaper.
    """
    if len(rows) <= FEW_ROWS:
        return [values[i].as_py() for i in rows.tolist()]
    return values.take(from_numpy(rows, pa.int64())).to_pylist()
