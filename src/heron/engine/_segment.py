"""Segments: runs of rows of one partition, stored column by column.

A growing segment takes appends (under its collection's write lock) into
buffers that grow by doubling; readers hold a `SegmentView` of the first
``n`` rows, which later appends never change. Each row carries the sequence
number of the write that added it and, once deleted, the sequence number of
the delete: a row is visible to a snapshot at ``s`` when
``seq <= s < deleted_at``. Sealing freezes the buffers; a sealed segment
only ever changes its ``deleted_at`` column.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import pyarrow as pa

from .._schema import META_FIELD, CollectionSchema
from .._types import DataType
from ..data import _sparse as sp
from ..data._batch import Batch
from ..data._column import Column
from ..data._fill import filled_column
from ..data._pa import small_strings, strings, to_numpy
from ._buffer import _Buffer
from ._latest import key_prints
from ._marks import LIVE, DeleteMarks
from .index._text_index import TextIndexes

#: Filter results remembered per sealed segment (one bool per row each).
FILTER_MEMO = 8


class _Chunks:
    """Append-only list of chunks (Arrow arrays or CSR matrices), joined on demand and cached.

    Arrow chunks are held as ``pa.string()`` whatever string type they come as (large_string and
    string_view too, as `heron.data._column` allows): the chunks of one column must share a type.
    """

    def __init__(self, kind: str, width: int = 1) -> None:
        self.kind = kind
        self.chunks: list[Any] = []
        self.bounds: list[int] = [0]
        self._joined: tuple[int, Any] | None = None
        self._lock = threading.Lock()
        self.width = width

    def append(self, chunk: Any) -> None:
        if self.kind == "arrow" and chunk.type != pa.string():
            chunk = small_strings(chunk)  # the text is not copied
        self.chunks.append(chunk)
        self.bounds.append(self.bounds[-1] + chunk.shape[0] if self.kind == "csr" else self.bounds[-1] + len(chunk))

    def truncate(self, n: int) -> None:
        """Drop the chunks past row ``n`` (a chunk boundary)."""
        with self._lock:
            while self.bounds[-1] > n:
                self.chunks.pop()
                self.bounds.pop()
            self._joined = None

    def compact(self) -> None:
        """Join the chunks into one (Arrow): taking rows from one array is much faster than from many."""
        with self._lock:
            try:
                joined = pa.chunked_array(self.chunks, type=pa.string()).combine_chunks()
            except (pa.ArrowInvalid, pa.ArrowCapacityError):  # past 2 GiB of text: stay chunked
                return
            self.chunks = [joined]
            self.bounds = [0, len(joined)]
            self._joined = None

    def view(self, n: int) -> Any:
        joined = self._joined
        if joined is not None and joined[0] == n:
            return joined[1]
        with self._lock:
            k = next(i for i, b in enumerate(self.bounds) if b >= n)
            parts = self.chunks[:k]
            if self.kind == "csr":
                width = max([self.width] + [p.shape[1] for p in parts])
                parts = [sp.csr_matrix((p.data, p.indices, p.indptr), shape=(p.shape[0], width)) for p in parts]
                value = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, width), dtype=np.float32)
                value = value[:n] if value.shape[0] != n else value
            else:
                value = pa.chunked_array(parts, type=pa.string())[:n] if parts else pa.chunked_array([], pa.string())
            self._joined = (n, value)
            return value


class Segment:
    """Rows of one partition; see the module docstring for the visibility rule."""

    def __init__(self, segment_id: int, partition_id: int, schema: CollectionSchema) -> None:
        self.id = segment_id
        self.partition_id = partition_id
        self.schema = schema
        self.sealed = False
        self.persisted = False
        self.n = 0
        self.max_seq = 0
        self.deleted = 0
        self._key_index: tuple[np.ndarray, np.ndarray] | None = None
        self._print_index: tuple[np.ndarray, np.ndarray] | None = None
        self.seq = _Buffer(np.int64)
        self.deleted_at = DeleteMarks()
        self.cols: dict[str, Any] = {}
        self.valid: dict[str, _Buffer | None] = {}
        #: JSON columns' texts, as written to the log: persisting the segment does not encode them
        #: again. None for a column once a batch came without them (then they are encoded).
        self.texts: dict[str, _Chunks | None] = {}
        self.vindex: dict[str, Any] = {}
        self.sq_norms: dict[str, _Buffer] = {
            f.name: _Buffer(np.float32)
            for f in schema.fields
            if f.dtype in (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.INT8_VECTOR)
        }
        self.sindex: dict[str, Any] = {}
        self.interim: dict[str, Any] = {}  # fresh rows' interim indexes by field, until `vindex` has one
        self.text = TextIndexes(schema)  # token indexes of the enable_match fields
        self._filter_memo: OrderedDict[tuple[int, int], tuple[Any, np.ndarray]] = OrderedDict()
        self._view: SegmentView | None = None  # a sealed segment's last view, while it still holds
        self.retired = False
        self._memo_lock = threading.Lock()
        self.pk_name = schema.primary_field.name
        for f in schema.fields:
            self._add_store(f.name, f.dtype, f.dim, f.element_type)
        if schema.enable_dynamic_field:
            self._add_store(META_FIELD, DataType.JSON, None, None)
        self.element_types = {f.name: f.element_type for f in schema.fields}
        self.dtypes = {f.name: f.dtype for f in schema.fields}
        self.dtypes[META_FIELD] = DataType.JSON

    def filter_result(self, plan: Any, view: SegmentView) -> np.ndarray:
        """``plan.evaluate(view)``, read-only, remembered while the segment is sealed.

        A sealed segment's rows never change (deletes are kept apart, in
        ``deleted_at``), so a filter that comes back is answered without
        reading its columns again. Plans are cached by expression, so the
        same filter arrives as the same plan object; the entry holds the plan,
        which keeps its ``id`` from being reused while the entry lives.
        """
        if not self.sealed:
            return np.asarray(plan.evaluate(view), dtype=bool)
        key = (id(plan), view.n)
        with self._memo_lock:
            hit = self._filter_memo.get(key)
            if hit is not None and hit[0] is plan:
                self._filter_memo.move_to_end(key)
                return hit[1]
        mask = np.array(plan.evaluate(view), dtype=bool)
        mask.flags.writeable = False
        with self._memo_lock:
            self._filter_memo[key] = (plan, mask)
            while len(self._filter_memo) > FILTER_MEMO:
                self._filter_memo.popitem(last=False)
        return mask

    def _add_store(self, name: str, dtype: DataType, dim: int | None, et: DataType | None) -> None:
        from .._types import NUMPY_DTYPES

        if dtype is DataType.VARCHAR:
            self.cols[name] = _Chunks("arrow")
        elif dtype is DataType.SPARSE_FLOAT_VECTOR:
            self.cols[name] = _Chunks("csr")
        elif dtype in NUMPY_DTYPES:
            self.cols[name] = _Buffer(NUMPY_DTYPES[dtype])
        elif dtype in (DataType.JSON, DataType.ARRAY, DataType.GEOMETRY):
            self.cols[name] = _Buffer(object)
            if dtype is DataType.JSON:
                self.texts[name] = _Chunks("arrow")
        else:
            width = (dim or 0) // 8 if dtype is DataType.BINARY_VECTOR else dim
            vdt = {
                DataType.FLOAT_VECTOR: np.float32,
                DataType.FLOAT16_VECTOR: np.float16,
                DataType.BFLOAT16_VECTOR: np.uint16,
                DataType.INT8_VECTOR: np.int8,
                DataType.BINARY_VECTOR: np.uint8,
            }[dtype]
            self.cols[name] = _Buffer(vdt, width)
        self.valid[name] = None

    # -- writes (callers hold the collection's write lock) ------------------------
    def reserve(self, rows: int) -> None:
        """Room for `rows` rows in every buffer: a growing segment then fills up without copies.

        Pages of the room not yet written take no memory.
        """
        for b in [*self.cols.values(), self.seq, self.deleted_at, *self.sq_norms.values()]:
            if isinstance(b, _Buffer):
                b.reserve(rows)

    def start_from(self, base: SegmentView, total: int, skip: frozenset[str] | set[str] = frozenset()) -> None:
        """Begin an empty segment with the rows of sealed `base`, sized for `total` rows (a merge).

        Column buffers share `base`'s memory where it has room for `total`
        rows, so the rows of `base` are not copied; deletion marks are copied
        (the caller brings them up to date before the merged segment is used).
        The columns named in `skip` (and their norms) are left empty: the
        caller writes them from elsewhere.
        """
        src = base.segment
        n = base.n
        for name, store in self.cols.items():
            if name in skip:
                continue
            from_ = src.cols[name]
            if isinstance(store, _Buffer):
                store.share(from_, n, total)
            else:
                store.chunks = list(from_.chunks)
                store.bounds = list(from_.bounds)
        for name, own_texts in self.texts.items():
            theirs = src.texts.get(name)
            if own_texts is None or theirs is None:
                self.texts[name] = None
            else:
                own_texts.chunks = list(theirs.chunks)
                own_texts.bounds = list(theirs.bounds)
        for name, vb in src.valid.items():
            if vb is not None:
                own = self.valid[name] = _Buffer(bool)
                own.share(vb, n, total)
        for name, nb in self.sq_norms.items():
            if name not in skip:
                nb.share(src.sq_norms[name], n, total)
        self.seq.share(src.seq, n, total)
        self.text.start_from(src.text, n)
        self.deleted_at.reserve(total)
        self.deleted_at.append(np.asarray(base._deleted[:n]))
        self.max_seq = src.max_seq
        self.n = n

    def append(self, batch: Batch, seqs: np.ndarray) -> None:
        self.stage(batch, seqs)
        self.commit(batch.num_rows, seqs)

    def append_column(self, name: str, col: Any, n: int) -> None:
        """Append `n` rows of one scalar column (its values, validity and texts) past the segment's end."""
        store = self.cols.get(name)
        if store is None:
            return
        values = col.values
        if isinstance(store, _Chunks):
            store.append(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
        else:
            store.append(values)
        self._append_valid(name, col.valid, n)
        if name in self.texts:
            self._append_texts(name, col.texts)

    def stage(self, batch: Batch, seqs: np.ndarray) -> None:
        """Write the rows past the segment's end: readers stop at ``n``, so they see none of them yet.

        `commit` makes them rows of the segment, `unstage` forgets them.
        """
        k = batch.num_rows
        if k == 0:
            return
        for name, c in batch.columns.items():
            self.append_column(name, c, k)
        for name, v in batch.vectors.items():
            self.cols[name].append(v)
            norms = self.sq_norms.get(name)
            if norms is not None:
                v32 = np.asarray(v, dtype=np.float32)
                norms.append(np.einsum("ij,ij->i", v32, v32))
        self.seq.append(seqs)
        self.deleted_at.append_filled(k, LIVE)

    def commit(self, k: int, seqs: np.ndarray) -> None:
        if k:
            self.max_seq = max(self.max_seq, int(seqs.max()))
            self.n += k

    def unstage(self) -> None:
        """Forget the rows staged since the last `commit`."""
        stores = [*self.cols.values(), *self.valid.values(), *self.texts.values(), *self.sq_norms.values()]
        for store in [*stores, self.seq, self.deleted_at]:
            if store is not None:
                store.truncate(self.n)

    def _append_texts(self, name: str, texts: Any) -> None:
        store = self.texts[name]
        if store is None:
            return
        if texts is None:
            self.texts[name] = None
        elif isinstance(texts, pa.ChunkedArray):
            store.append(texts.combine_chunks())
        else:
            store.append(texts if isinstance(texts, pa.Array) else strings(texts))

    def json_texts(self, name: str, n: int) -> pa.ChunkedArray | None:
        """The texts of JSON column ``name`` for the first ``n`` rows, if the segment has them all."""
        store = self.texts.get(name)
        return None if store is None else store.view(n)

    def _append_valid(self, name: str, valid: np.ndarray | None, k: int) -> None:
        buf = self.valid.get(name)
        if valid is None and buf is None:
            return
        if buf is None:
            buf = _Buffer(bool)
            buf.append(np.ones(self.n, dtype=bool))
            self.valid[name] = buf
        buf.append(valid if valid is not None else np.ones(k, dtype=bool))

    def mark_deleted(self, pks: np.ndarray, seq: int) -> int:
        """Mark live rows whose key is in ``pks`` and that were written before ``seq``; return how many."""
        if self.n == 0 or len(pks) == 0:
            return 0
        keys = self.pk_values(self.n)
        hit = np.isin(keys, pks) if not isinstance(keys, pa.ChunkedArray) else _str_isin(keys, pks)
        hit &= (self.seq.data[: self.n] < seq) & (self.deleted_at.view(self.n) == LIVE)
        rows = np.flatnonzero(hit)
        if len(rows):  # the marks take memory from a segment's first delete on (`DeleteMarks`)
            self.deleted_at.data[rows] = seq
        self.deleted += len(rows)
        return len(rows)

    def mark_deleted_before(self, keys: np.ndarray, latest: np.ndarray) -> int:
        """Mark live rows whose key is in sorted ``keys`` and older than that key's ``latest`` delete."""
        if self.n == 0 or len(keys) == 0:
            return 0
        mine = self.pk_values(self.n)
        if isinstance(mine, pa.ChunkedArray):
            mine = np.asarray(mine.to_pylist(), dtype=object)
        pos = np.searchsorted(keys, mine)
        pos = np.minimum(pos, len(keys) - 1)
        when = latest[pos]
        hit = (keys[pos] == mine) & (self.seq.data[: self.n] < when) & (self.deleted_at.view(self.n) == LIVE)
        rows = np.flatnonzero(hit)
        if len(rows):
            self.deleted_at.data[rows] = when[rows]
        self.deleted += len(rows)
        return len(rows)

    def find_keys(self, pks: np.ndarray, n: int) -> np.ndarray:
        """Positions among the first ``n`` rows whose primary key is in ``pks`` (any version, sorted)."""
        if self.sealed:
            keys, order = self._sorted_keys()
            lo = keys.searchsorted(pks, side="left")
            hi = keys.searchsorted(pks, side="right")
            if len(pks) == 1:  # a get by one key: usually one row, already sorted
                return order[lo[0] : hi[0]].copy() if hi[0] - lo[0] < 2 else np.sort(order[lo[0] : hi[0]])
            return np.sort(np.concatenate([order[a:b] for a, b in zip(lo, hi)])) if len(pks) else lo
        keys = self.pk_values(n)
        if isinstance(keys, pa.ChunkedArray):
            return np.flatnonzero(_str_isin(keys, pks))
        if len(pks) == 1:
            return np.flatnonzero(keys == pks[0])
        return np.flatnonzero(np.isin(keys, pks))

    def _sorted_keys(self) -> tuple[np.ndarray, np.ndarray]:
        cached = self._key_index
        if cached is None:
            keys = self.pk_values(self.n)
            if isinstance(keys, pa.ChunkedArray):
                keys = np.asarray(keys.to_pylist(), dtype=object)
            order = np.argsort(keys, kind="stable")
            cached = self._key_index = (keys[order], order)
        return cached

    def sorted_prints(self) -> tuple[np.ndarray, np.ndarray]:
        """A sealed segment's key prints (see `_latest`) sorted, and the row of each; made once."""
        if self.dtypes[self.pk_name] is not DataType.VARCHAR:
            return self._sorted_keys()
        cached = self._print_index
        if cached is None:
            prints = key_prints(self.pk_values(self.n))
            order = np.argsort(prints)
            cached = self._print_index = (prints[order], order)
        return cached

    def freeze(self) -> None:
        """Seal: trim buffers to size; from now on only ``deleted_at`` changes."""
        for store in self.cols.values():
            if isinstance(store, _Buffer):
                store.freeze()
            elif store.kind == "arrow" and len(store.chunks) > 1:
                store.compact()
        for b in self.valid.values():
            if b is not None:
                b.freeze()
        self.seq.freeze()
        for nb in self.sq_norms.values():
            nb.freeze()
        self.sealed = True

    def _texts(self, name: str, start: int, stop: int) -> Any:
        return self.column(name, stop).values[start:stop]

    # -- reads ------------------------------------------------------------------
    def pk_values(self, n: int) -> Any:
        return self.view_store(self.pk_name, n)

    def view_store(self, name: str, n: int) -> Any:
        store = self.cols[name]
        return store.view(n)

    def column(self, name: str, n: int) -> Column:
        vb = self.valid.get(name)
        valid = None if vb is None else vb.view(n)
        return Column(self.dtypes[name], self.view_store(name, n), valid, self.element_types.get(name))

    def snapshot(self) -> SegmentView:
        """The segment's first ``n`` rows as readers see them now.

        A sealed segment's rows and buffers no longer change (only ``deleted_at``
        values do, and visibility reads them through the view), so its view is
        kept and handed out again, with the columns it has gathered, until its
        first delete. A segment's growing views are made afresh each time.
        """
        sealed = self.sealed  # frozen before the flag is set, so later reads see the final buffers
        n = self.n
        clean = self.deleted == 0
        v = self._view
        if v is not None and v.n == n and v.clean == clean:
            return v
        v = SegmentView(self, n, self.seq.view(n), self.deleted_at.view(n), self.max_seq if clean else None)
        if sealed and not self.retired:
            self._view = v
        return v

    def drop_view(self) -> None:
        """Forget the cached view (after a sealed column was swapped for the same rows read elsewhere)."""
        self._view = None

    def retire(self) -> None:
        """The segment left its partition (merged, compacted, dropped): stop caching its view.

        The cached view refers back to the segment; left in place, that cycle
        would keep the segment's memory until the next full garbage collection
        instead of freeing it when the last reader lets go.
        """
        self.retired = True
        self._view = None


def _str_isin(keys: pa.ChunkedArray, pks: np.ndarray) -> np.ndarray:
    import pyarrow.compute as pc

    mask = pc.is_in(keys, value_set=strings(list(pks)))
    return np.asarray(to_numpy(mask, fill=False), dtype=bool)


class SegmentView:
    """The first ``n`` rows of a segment as one reader sees them (a `ColumnSource`)."""

    def __init__(
        self, seg: Segment, n: int, seq: np.ndarray, deleted_at: np.ndarray, clean_max_seq: int | None = None
    ) -> None:
        self.segment = seg
        self.n = n
        self._seq = seq
        self._deleted = deleted_at
        self._clean_max_seq = clean_max_seq
        self._cache: dict[str, Column] = {}

    def visible_rows(self, rows: np.ndarray, snap: int) -> np.ndarray:
        """Which of ``rows`` are visible at ``snap`` (a mask over ``rows``)."""
        return (self._seq[rows] <= snap) & (self._deleted[rows] > snap)

    @property
    def seqs(self) -> np.ndarray:
        """The sequence number of each of the view's rows (read-only by contract: the segment's own array)."""
        return self._seq

    @property
    def clean(self) -> bool:
        """No row of the segment was deleted when the view was made."""
        return self._clean_max_seq is not None

    def all_visible(self, snap: int) -> bool:
        """True when every row of the view is visible at ``snap`` (no deletes, nothing newer): the fast path."""
        return self._clean_max_seq is not None and self._clean_max_seq <= snap

    @property
    def num_rows(self) -> int:
        return self.n

    def visible(self, snap: int) -> np.ndarray:
        return (self._seq <= snap) & (self._deleted > snap)

    def column(self, name: str) -> Column:
        col = self._cache.get(name)
        if col is None:
            if name not in self.segment.cols:
                # a segment made while a field was being added (a merge under way) reads its default
                f = self.segment.schema.field(name)
                if f is None or not f.added_seq or f.dtype.is_vector:
                    raise KeyError(name)
                col = self._cache[name] = filled_column(f, self.n)
                return col
            if self.segment.dtypes[name].is_vector:
                raise KeyError(name)
            col = self.segment.column(name, self.n)
            self._cache[name] = col
        return col

    def scalar_index(self, name: str) -> Any | None:
        if not self.segment.sealed:
            return None
        return self.segment.sindex.get(name)

    def text_index(self, name: str) -> Any | None:
        seg = self.segment
        return seg.text.get(name, self.n, seg._texts)

    def vectors(self, name: str) -> Any:
        return self.segment.view_store(name, self.n)

    def sq_norms(self, name: str) -> np.ndarray | None:
        """Squared norms of the rows' vectors, kept at insert (None for types without them)."""
        buf = self.segment.sq_norms.get(name)
        return None if buf is None else buf.view(self.n)
