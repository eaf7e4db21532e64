"""Sealed segments whose columns are views of their mapped file (`storage._mapped`), not copies.

`mapped_segment` builds a sealed `Segment` from a `MappedFile`: fixed-width
columns without nulls (numbers, dense vectors, sequence numbers) and
strings become read-only views of the mapping, so their bytes stay in the
page cache and are read only when used; each is checked against the file's
checksum the first time it is used (`_MappedBuffer.data`). Other columns
(JSON, arrays, geometry, nullable ones) are checked and decoded at once, as
before. Deletion marks are the one part written later, so they live in
memory; squared vector norms (for exact scans) are computed on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from .._schema import META_FIELD, CollectionSchema
from .._types import NUMPY_DTYPES, DataType
from ..data._fill import filled_column
from ..data._pa import small_strings, valid_mask
from ._segment import LIVE, Segment, _Buffer, _Chunks
from .storage import _ipc as ar
from .storage import _prefault as prefault
from .storage._mapped import MappedFile, column_view

_VECTOR_DTYPES: dict[DataType, Any] = {
    DataType.FLOAT_VECTOR: np.float32,
    DataType.FLOAT16_VECTOR: np.float16,
    DataType.BFLOAT16_VECTOR: np.uint16,
    DataType.INT8_VECTOR: np.int8,
    DataType.BINARY_VECTOR: np.uint8,
}


class _Once:
    """Runs ``fn`` the first time it is asked to, and again after a failure."""

    __slots__ = ("_fn", "_done", "_lock")

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._done = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if self._done:
            return
        with self._lock:
            if not self._done:
                self._fn()
                self._done = True


#: Bytes of a column copied from its file at a time (`_MappedBuffer.copy_rows`).
COPY_STEP_BYTES = 1 << 20


class _MappedBuffer(_Buffer):
    """A sealed column seen in place in its file: `data` checks the column's blocks on first use."""

    def __init__(self, array: np.ndarray, check: Callable[[], None]) -> None:  # noqa: D107
        self._array = array
        self._check = check
        self.n = len(array)
        self._ahead = 0
        self._ready = self.n

    @property
    def data(self) -> np.ndarray:  # type: ignore[override]
        self._check()
        return self._array

    def view(self, n: int) -> np.ndarray:
        return self.data[:n]

    def freeze(self) -> np.ndarray:
        return self._array  # unchecked: sealing it again reads nothing

    def copy_rows(self, out: np.ndarray, n: int) -> None:
        """Copy the first `n` rows into `out` a piece at a time, each piece's pages let go of once copied.

        A merge starts its segment so from the larger one's file: read whole, the pages of its key, scalar and
        sequence columns (22 MB at 1M rows) stayed resident beside the copy, at one of the load's highest moments.
        """
        prefault.copy_dropping(out, self.data[:n], COPY_STEP_BYTES)

    def truncate(self, n: int) -> None:
        if n != self.n:
            raise RuntimeError("a sealed segment's columns do not change")

    def append(self, values: np.ndarray) -> None:
        raise RuntimeError("a sealed segment's columns do not change")

    reserve = append  # type: ignore[assignment]


def let_go_of_rows(seg: Segment, name: str, lo: int = 0, hi: int | None = None) -> None:
    """Rows ``lo..hi`` of `seg`'s column `name` leave the process's memory if the column is its file's mapping.

    Their pages stay in the page cache, and a read maps them again: only the
    process's resident memory shrinks. For the background steps that read a
    sealed segment's vectors once (an index build, an interim index catching
    up): left mapped, the segments of a 1M x 128 load kept up to 180 MB of
    file pages resident at once.
    """
    store = seg.cols.get(name)
    if isinstance(store, _MappedBuffer):
        rows = store.freeze()[lo:hi]  # unchecked: dropping pages reads nothing
        prefault.drop_mapped(rows.ctypes.data, rows.nbytes)


def let_go_of_segment(seg: Segment) -> None:
    """All of `seg`'s columns that are its file's mapping leave the process's memory (see `let_go_of_rows`).

    For a merge, once the two segments' rows are copied and again once the
    merged file is written (a vector column joined in memory after all, and
    searches, read their files meanwhile): their sequence numbers, keys and
    scalar columns were read through, and their pages (about 30 MB at 1M x
    128) otherwise stayed resident through the merged index's growth and
    renumbering, the highest moments of a load. Searches still on the old
    segments map again the few pages they read.
    """
    for store in (seg.seq, *seg.cols.values()):
        if isinstance(store, _MappedBuffer):
            rows = store.freeze()
            prefault.drop_mapped(rows.ctypes.data, rows.nbytes)


def serve_from_file(seg: Segment, mapped: Segment) -> None:
    """Serve persisted `seg`'s vectors, sequence numbers and plain fixed-width columns from `mapped`, its file.

    `mapped` is `mapped_segment` over the file `seg` was written to: the
    same rows, read in place. Their copies in memory go once no reader holds
    them (about 32 bytes a row for a key, one number field, the sequence
    numbers and the vectors' own), as a segment opened from its file never
    holds them. Columns with a validity mask and those not in the file as
    plain arrays stay as they are. The caller holds the collection's write lock.
    """
    for name, store in mapped.cols.items():
        own = seg.cols.get(name)
        if (isinstance(store, _MappedBuffer) and store.n == seg.n and type(own) is _Buffer
                and seg.valid.get(name) is None and own.data.dtype == store.freeze().dtype):
            seg.cols[name] = store
    if isinstance(mapped.seq, _MappedBuffer) and mapped.seq.n == seg.n and type(seg.seq) is _Buffer:
        seg.seq = mapped.seq
    seg.drop_view()


def rows_taken(seg: Segment, name: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` for an index taking `seg`'s rows of `name`: `let_go_of_rows` of the first `done`.

    A merge's index growth then drops the newer segment's vector pages slice by
    slice, not after the renumbering that follows (`index/_layout.lay_out`).
    """
    return lambda done, _total: let_go_of_rows(seg, name, 0, done)


class _LazyNorms(_Buffer):
    """Squared norms of a mapped vector column, computed the first time an exact scan asks for them."""

    def __init__(self, vectors: _MappedBuffer) -> None:  # noqa: D107
        self._vectors = vectors
        self._norms: np.ndarray | None = None
        self._lock = threading.Lock()
        self.n = vectors.n
        self._ahead = 0
        self._ready = self.n

    @property
    def data(self) -> np.ndarray:  # type: ignore[override]
        norms = self._norms
        if norms is None:
            with self._lock:
                norms = self._norms
                if norms is None:
                    v = np.asarray(self._vectors.data, dtype=np.float32)
                    norms = np.einsum("ij,ij->i", v, v)
                    norms.flags.writeable = False
                    self._norms = norms
        return norms

    def view(self, n: int) -> np.ndarray:
        return self.data[:n]

    def freeze(self) -> np.ndarray:
        return self.data if self._norms is not None else np.empty(0, np.float32)

    def truncate(self, n: int) -> None:
        pass


class _LazyBuffer(_Buffer):
    """A sealed column decoded from its file the first time it is used (JSON, arrays, nullable values)."""

    def __init__(self, n: int, make: Callable[[], np.ndarray]) -> None:  # noqa: D107
        self._make = make
        self._values: np.ndarray | None = None
        self._lock = threading.Lock()
        self.n = n
        self._ahead = 0
        self._ready = n

    @property
    def data(self) -> np.ndarray:  # type: ignore[override]
        values = self._values
        if values is None:
            with self._lock:
                values = self._values
                if values is None:
                    values = self._values = self._make()
        return values

    def view(self, n: int) -> np.ndarray:
        return self.data[:n]

    def freeze(self) -> np.ndarray:
        return self._values if self._values is not None else np.empty(0)

    def truncate(self, n: int) -> None:
        pass


class _MappedChunks(_Chunks):
    """A sealed string column seen in place in its file, checked on first use."""

    def __init__(self, arr: pa.Array, check: Callable[[], None]) -> None:  # noqa: D107
        super().__init__("arrow")
        self._arr = arr
        self._check = check
        self.bounds = [0, len(arr)]

    @property
    def chunks(self) -> list[Any]:
        self._check()
        return [self._arr]

    @chunks.setter
    def chunks(self, value: list[Any]) -> None:
        pass  # set by `_Chunks.__init__` only

    def compact(self) -> None:
        pass

    def view(self, n: int) -> Any:
        self._check()
        return super().view(n)


def mapped_segment(segment_id: int, partition_id: int, schema: CollectionSchema, mf: MappedFile) -> Segment:
    """A sealed, persisted segment over the rows of ``mf`` (see the module docstring).

    Raises `CorruptionError` if a column decoded at once is damaged, and
    ValueError/TypeError/KeyError if the file's columns are not this schema's.
    """
    table = mf.table
    n = table.num_rows
    cols = {name: table.column(name) for name in table.column_names}

    def once(arr: Any) -> _Once:
        return _Once(lambda: mf.check_array(arr))

    seg = Segment(segment_id, partition_id, schema)
    seq_view = column_view(cols[ar.SEQ], np.int64)
    if seq_view is None:
        raise TypeError(f"column {ar.SEQ} is not a column of sequence numbers")
    seg.seq = _MappedBuffer(seq_view, once(cols[ar.SEQ]))
    max_seq = 0
    if n and any(f.added_seq for f in schema.fields):
        max_seq = int(seg.seq.data.max())
    eager: dict[str, Any] = {}
    for f in schema.fields:
        if f.added_seq and not f.dtype.is_vector and (f.name not in cols or not n or max_seq < f.added_seq):
            eager[f.name] = filled_column(f, n)  # written before the field was added (or re-added)
            continue
        if f.name not in cols:
            continue
        arr = cols[f.name]
        if f.dtype in _VECTOR_DTYPES:
            width = (f.dim or 0) // 8 if f.dtype is DataType.BINARY_VECTOR else f.dim
            view = column_view(arr, _VECTOR_DTYPES[f.dtype], width)
            if view is not None:
                store = _MappedBuffer(view, once(arr))
                seg.cols[f.name] = store
                if f.name in seg.sq_norms:
                    seg.sq_norms[f.name] = _LazyNorms(store)
                continue
        elif f.dtype in NUMPY_DTYPES:
            view = column_view(arr, NUMPY_DTYPES[f.dtype])
            if view is not None:
                seg.cols[f.name] = _MappedBuffer(view, once(arr))
                continue
        elif f.dtype is DataType.VARCHAR and arr.num_chunks == 1 and arr.chunk(0).type == pa.string():
            seg.cols[f.name] = _MappedChunks(small_strings(arr.chunk(0)), once(arr))
            if arr.null_count:
                _lazy_valid(seg, f.name, mf, arr, n)
            continue
        if f.dtype in _DECODED and arr.num_chunks == 1:
            _lazy_column(seg, f.name, f.dtype, f.element_type, mf, arr, n)
            continue
        mf.check_array(arr)
        eager[f.name] = arr
    if META_FIELD in cols:
        _lazy_column(seg, META_FIELD, DataType.JSON, None, mf, cols[META_FIELD], n)
    _fill_eager(seg, schema, eager, n)
    seg.deleted_at.append_filled(n, LIVE)  # no memory until a row is deleted (`DeleteMarks`)
    seg.n = n
    seg.max_seq = int(seg.seq.data.max()) if n else 0
    seg.freeze()
    seg.persisted = True
    return seg


#: Types decoded into memory, once, by the first read of the column.
_DECODED = frozenset({DataType.JSON, DataType.ARRAY, DataType.GEOMETRY, *NUMPY_DTYPES})


def _lazy_column(seg: Segment, name: str, dtype: DataType, element_type: DataType | None, mf: MappedFile,
                 arr: pa.ChunkedArray, n: int) -> None:
    """Make column ``name`` decode ``arr`` (checked first) the first time its values or nulls are read."""
    chunk = arr.chunk(0)
    decoded: list[Any] = []
    lock = threading.Lock()

    def column() -> Any:
        with lock:
            if not decoded:
                mf.check_array(arr)
                decoded.append(ar.arrow_to_column(dtype, chunk, element_type))
            return decoded[0]

    seg.cols[name] = _LazyBuffer(n, lambda: column().values)
    if arr.null_count:
        seg.valid[name] = _LazyBuffer(n, lambda: column().valid)
    if seg.texts.get(name) is not None and chunk.type == pa.string():  # JSON: the file's texts, as written
        seg.texts[name] = _MappedChunks(chunk, _Once(lambda: mf.check_array(arr)))


def _lazy_valid(seg: Segment, name: str, mf: MappedFile, arr: pa.ChunkedArray, n: int) -> None:
    def valid() -> np.ndarray:
        mf.check_array(arr)
        mask = valid_mask(arr.chunk(0))
        assert mask is not None  # the column has nulls
        return mask

    seg.valid[name] = _LazyBuffer(n, valid)


def _fill_eager(seg: Segment, schema: CollectionSchema, eager: dict[str, Any], n: int) -> None:
    """Decode the columns that are not seen in place (already checked) into the segment's own buffers."""
    for name, value in eager.items():
        f = schema.field(name)
        if f is not None and f.dtype.is_vector:
            vectors = ar.arrow_to_vectors(f, value.combine_chunks() if isinstance(value, pa.ChunkedArray) else value)
            seg.cols[name].append(vectors)
            norms = seg.sq_norms.get(name)
            if norms is not None:
                v32 = np.asarray(vectors, dtype=np.float32)
                norms.append(np.einsum("ij,ij->i", v32, v32))
            continue
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks() if value.num_chunks != 1 else value.chunk(0)
        dtype = DataType.JSON if name == META_FIELD else f.dtype  # type: ignore[union-attr]
        col = value if not isinstance(value, pa.Array) else ar.arrow_to_column(
            dtype, value, None if f is None else f.element_type)
        seg.append_column(name, col, n)
