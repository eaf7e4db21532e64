"""A large HNSW index's rows laid out near their neighbours in space, so that a search reads less memory.

faiss numbers an HNSW index's rows in the order they were added and keeps
their vectors and graph links in that order. Rows arrive in no order of
place, so the few thousand vectors one search compares lie all over the
index: at 1M x 128 (650 MB of vectors and links) nearly every one is a cache
miss. Once built, the index's rows are renumbered (the same graph, the
same hits: `_renumber` renumbers the vectors and the graph's links in place) so that rows near one
another in space lie near one another in memory: sorted by the nearest of
`LAYOUT_CELLS` k-means centres over a sample. Measured on 1M x 128 clustered
rows (COSINE, M 16, efConstruction 200, ef 128, one query per call, faiss's
own search): 410 µs per search before, 263 µs after (1,024 centres: 256 µs);
the layout took 0.7 s and the renumbering 1.0 s. Rows sorted that way before
the build instead would save the renumbering, but an HNSW graph built from
rows in that order finds less (recall@10 0.951 against 0.994 at ef 64 on
200k rows).

The index then numbers its rows in an order of its own; a `Layout` keeps the
segment's row at each number (`order`) and the number of each row (`place`),
and the dense index translates hits, filters and vector reads through it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from ..storage._prefault import drop_mapped, trim_heap, trim_heap_often
from ._faiss import build_threads, faiss

log = logging.getLogger("heron.engine")

#: Indexes with fewer rows are left in the order the rows came: their vectors and links fit in the caches.
LAYOUT_MIN_ROWS = 65_536
#: k-means centres whose cells order the rows (256 gave 263 µs a search at 1M, 1,024 256 µs in 3.6x the time).
LAYOUT_CELLS = 256
#: Sample rows per centre the centres are trained on, and the k-means rounds.
LAYOUT_SAMPLE_PER_CELL = 40
LAYOUT_ROUNDS = 5
#: Rows whose cells are found in one search (each row's distance and label: 12 bytes a row while it runs).
CELL_STEP = 65_536
#: Bytes of vectors or links written to or read from the temporary files at a time while the rows are renumbered.
STEP_BYTES = 2 << 20


class Layout:
    """Where a laid-out index keeps each row: ``order[i]`` is the segment's row at the index's number ``i``."""

    __slots__ = ("order", "_place", "_bits")

    def __init__(self, order: np.ndarray) -> None:
        self.order = order
        self._place: np.ndarray | None = None
        #: The last read-only filter result turned into a bitmap of numbers, and that bitmap.
        self._bits: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def place(self) -> np.ndarray:
        """The index's number of each row (the inverse of `order`), made when first asked for."""
        place = self._place
        if place is None:
            place = np.empty_like(self.order)
            place[self.order] = np.arange(self.order.shape[0], dtype=place.dtype)
            self._place = place
        return place

    def rows(self, found: np.ndarray) -> np.ndarray:
        """The rows of the numbers an index search `found` (-1, an unfilled slot, stays -1)."""
        out = self.order[found]
        out[found < 0] = -1
        return out

    def bits(self, allow: np.ndarray) -> np.ndarray:
        """`allow` (per row) as a bitmap per number, for faiss's ``IDSelectorBitmap``.

        A read-only `allow` (a sealed segment's remembered filter result) cannot change: its bitmap is kept.
        """
        hit = self._bits
        if hit is not None and hit[0] is allow:
            return hit[1]
        bits = np.packbits(allow[self.order], bitorder="little")
        if not allow.flags.writeable:
            self._bits = (allow, bits)
        return bits

    def grown(self, total: int) -> Layout:
        """This layout once rows ``len(order) .. total - 1`` are appended at the same numbers."""
        n = self.order.shape[0]
        dtype = np.promote_types(self.order.dtype, order_dtype(total))
        return Layout(np.concatenate([self.order.astype(dtype, copy=False), np.arange(n, total, dtype=dtype)]))


def order_dtype(n: int) -> np.dtype[Any]:
    """The integer type of an order of `n` rows: 4 bytes a row where the numbers fit (8 bytes at 1M rows, at the
    highest moments of a load, and 4 more for the order of the renumbering beside it)."""
    return np.dtype(np.int32) if n <= np.iinfo(np.int32).max else np.dtype(np.int64)


def layout_of(order: np.ndarray | None, ntotal: int, *, mapped: bool = False) -> Layout | None:
    """The `Layout` an index file's ``order`` member gives (None: none); ValueError unless it orders every row once."""
    if order is None:
        return None
    if order.dtype not in (np.int32, np.int64) or order.shape != (ntotal,) or not _names_each_once(order, mapped):
        raise ValueError(f"its row order ({order.dtype}, {order.shape}) does not name each of its {ntotal} rows once")
    return Layout(order)


#: Rows of an order checked at a time (`_names_each_once`).
ORDER_STEP = 1 << 16


def _names_each_once(order: np.ndarray, mapped: bool) -> bool:
    """Whether `order` (n numbers) names each of 0..n-1 once: a byte a row, a piece at a time.

    Where `order` is a view of a `mapped` file, the pages read leave the process behind each piece (not the page
    cache): a merge's stand-in holds its order so, beside the index it grows.
    """
    n = order.shape[0]
    seen = np.zeros(n, dtype=np.bool_)
    for lo in range(0, n, ORDER_STEP):
        piece = order[lo : lo + ORDER_STEP]
        if piece.min() < 0 or piece.max() >= n:
            return False
        seen[piece] = True
        if mapped:
            drop_mapped(piece.ctypes.data, piece.nbytes)
    return bool(seen.all())  # n numbers, each below n, none missing: none twice


class Hubs:
    """The order a large HNSW build adds rows in: rows of the graph's upper levels first (`hubs_first`).

    `order[j]` is the row (of the rows being added) added `j`-th, and
    `levels[j]` its level as faiss counts them (1: the base level only).
    """

    __slots__ = ("order", "levels")

    def __init__(self, order: np.ndarray, levels: np.ndarray) -> None:
        self.order = order
        self.levels = levels

    def preset(self, index: Any, lo: int, hi: int) -> None:
        """Give faiss the levels of the rows added `lo` to `hi`, before they are added (its own draw is skipped)."""
        h = index.hnsw
        n0 = int(h.levels.size())
        h.levels.resize(n0 + hi - lo)
        faiss.rev_swig_ptr(h.levels.data(), n0 + hi - lo)[n0:] = self.levels[lo:hi]


def hubs_first(index: Any, rows: int) -> Hubs | None:
    """The order to add `rows` rows to `index` in, upper levels first, or None (in the order they came).

    faiss's HNSW adds the rows of one call level by level, the upper levels'
    rows first: they are linked among themselves before the many rows of the
    base level join, and the graph finds more. Added in slices (so that a
    build can stop or yield between them), rows came in their own order, and
    the graph found much less: on 1M x 128 clustered rows (M 16,
    efConstruction 64) recall@10 0.750 at ef 64 and 0.817 at ef 128 in slices
    of 4,096, against 0.872 and 0.947 in one call. Each row's level is drawn
    here, from faiss's own level probabilities, and the rows are added
    highest level first: 0.869 and 0.943 in the same slices. A plain HNSW
    index built from at least `LAYOUT_MIN_ROWS` rows only (its numbers then
    go through a `Layout` anyway); an index grown by a merge takes its new
    rows in the order they came (`DenseIndex.extended`).
    """
    if type(index) is not faiss.IndexHNSWFlat or int(index.ntotal) + rows < LAYOUT_MIN_ROWS or rows <= 0:
        return None
    probas = faiss.vector_to_array(index.hnsw.assign_probas)
    rng = np.random.default_rng(1234 + int(index.ntotal))
    levels = rng.choice(len(probas), size=rows, p=probas / probas.sum()).astype(np.int32) + 1
    order = np.argsort(-levels, kind="stable").astype(order_dtype(int(index.ntotal) + rows))
    return Hubs(order, np.ascontiguousarray(levels[order]))


def lay_out(index: Any, layout: Layout | None, busy: Callable[[], bool] | None = None) -> Layout | None:
    """Renumber the rows of `index` (a plain faiss HNSW) by place and return its new `Layout`.

    `layout` is the index's layout so far (None: numbers are rows), whose
    order may stop short of the index's rows: the rows after it, added since,
    are at their own numbers (as `Layout.grown` puts them). An index
    of another kind, or of fewer than `LAYOUT_MIN_ROWS` rows, is left as it
    is and `layout` returned, grown to all its rows; so is one whose vectors and links find no room in
    temporary files (`_renumber`). While
    `busy()` (callers' requests coming in) it runs on `build_threads`, as the
    build before it does, leaving the callers a core.
    """
    n = int(index.ntotal)
    if type(index) is not faiss.IndexHNSWFlat or n < LAYOUT_MIN_ROWS:
        return _whole(layout, n)
    if busy is None:
        return _lay_out(index, layout, n)
    full = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(build_threads(full, busy()))
    try:
        return _lay_out(index, layout, n)
    finally:
        faiss.omp_set_num_threads(full)


def _lay_out(index: Any, layout: Layout | None, n: int) -> Layout | None:
    d = int(index.d)
    storage = faiss.downcast_index(index.storage)
    xb = faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
    step = max(1, n // (LAYOUT_CELLS * LAYOUT_SAMPLE_PER_CELL))
    km = faiss.Kmeans(d, max(1, min(LAYOUT_CELLS, n // LAYOUT_SAMPLE_PER_CELL)), niter=LAYOUT_ROUNDS, seed=1234)
    km.train(np.ascontiguousarray(xb[::step]))
    trim_heap()  # the sample and faiss's distance blocks leave the process before the cells are found
    cell = np.empty(n, dtype=np.min_scalar_type(int(km.k) - 1))  # a byte a row, not faiss's 12
    for lo in range(0, n, CELL_STEP):
        cell[lo : lo + CELL_STEP] = km.index.search(xb[lo : lo + CELL_STEP], 1)[1].ravel()
    trim_heap()  # and so do the searches' before the rows are sorted by cell
    perm = _by_cell(cell, int(km.k))
    del cell, km
    trim_heap()  # what the sort freed leaves the process before the renumbering
    try:
        _renumber(xb, index.hnsw, perm)
    except _NoRoom as exc:
        log.warning("an index of %d rows stays in the order its rows came: %s", n, exc.__cause__)
        del perm
        return _whole(layout, n)
    if layout is not None:  # each number's row: through the order so far, in place (no second row-sized array)
        order = layout.order
        m = order.shape[0]
        for lo in range(0, n, CELL_STEP):
            at = perm[lo : lo + CELL_STEP]
            perm[lo : lo + CELL_STEP] = np.where(at < m, order[np.minimum(at, m - 1)], at)
    return Layout(perm)


def _whole(layout: Layout | None, n: int) -> Layout | None:
    """`layout` for all `n` rows of its index: rows past its order are at their own numbers."""
    return layout if layout is None or layout.order.shape[0] == n else layout.grown(n)


def _by_cell(cell: np.ndarray, k: int) -> np.ndarray:
    """The rows sorted by cell, in the order they came within a cell: ``argsort(cell, kind="stable")``.

    Sorted `CELL_STEP` rows at a time, each piece's rows then placed after
    those of the pieces before in their cells: the answer is the only
    row-sized array made (numpy's stable sort of small integers holds a second).
    """
    n = cell.shape[0]
    counts = np.bincount(cell, minlength=k)
    cursor = np.cumsum(counts) - counts  # where each cell's next row goes
    perm = np.empty(n, dtype=order_dtype(n))
    for lo in range(0, n, CELL_STEP):
        piece = cell[lo : lo + CELL_STEP]
        by = np.argsort(piece, kind="stable")
        sorted_cells = piece[by]
        here = np.bincount(sorted_cells, minlength=k)
        first = np.cumsum(here) - here  # each cell's first place among this piece's sorted rows
        perm[cursor[sorted_cells] + np.arange(by.shape[0]) - first[sorted_cells]] = by + lo
        cursor += here
    return perm


class _NoRoom(Exception):
    """The rows could not be renumbered (no room for their temporary copy, or links of another shape); the index
    is as it was."""


def _renumber(xb: np.ndarray, hnsw: Any, perm: np.ndarray) -> None:
    """Renumber an HNSW index's rows in place: its number ``i`` goes to the row numbered ``perm[i]`` so far.

    What faiss's ``IndexHNSW.permute_entries`` does, without its second copy
    of the vectors (512 MB at 1M x 128) and of the graph's links (136 MB at
    1M rows, M 16), held while the merged index and the one it grew from are
    both held: that moment was the peak of a large load. The permuted vectors,
    links and levels pass through temporary files in pieces of `STEP_BYTES`;
    each new number's first link slot follows from its level. Every piece is
    written out before the first is read back over the old ones, so a failure
    to write, or links their levels do not give (`_NoRoom`), leaves the index
    untouched; a failure to read back what was written (`OSError`) leaves it
    half renumbered and the caller's index unusable.
    """
    n = xb.shape[0]
    links = faiss.rev_swig_ptr(hnsw.neighbors.data(), hnsw.neighbors.size())
    offsets = faiss.rev_swig_ptr(hnsw.offsets.data(), n + 1)
    levels = faiss.rev_swig_ptr(hnsw.levels.data(), n)
    per_level = faiss.vector_to_array(hnsw.cum_nneighbor_per_level).astype(np.int64)
    old_at = offsets.view(np.int64)  # each old row's first link slot (faiss's size_t offsets, read as signed)
    row_step = max(1, STEP_BYTES // max(1, xb.strides[0]))
    link_step = max(1, (STEP_BYTES // 48) // max(1, links.shape[0] // n))  # a slot's arrays below: ~48 bytes
    number = np.empty(n, dtype=np.int32)  # the new number of each old one
    for lo in range(0, n, link_step):
        hi = min(n, lo + link_step)
        number[perm[lo:hi]] = np.arange(lo, hi, dtype=np.int32)
        # a row's slots follow from its level (faiss's `prepare_level_tab`): the offsets are rebuilt from the levels
        if levels[lo:hi].min() < 1 or not np.array_equal(np.diff(old_at[lo : hi + 1]), per_level[levels[lo:hi]]):
            raise _NoRoom() from ValueError(f"rows {lo}..{hi} hold other link slot counts than their levels give")
    # Each pass reuses one set of arrays: temporaries of a new size each piece would land on fresh pages of the
    # heap's trimmed free space (20 MB of resident memory over the 1M rebuild's renumbering) until the next trim
    top = int(per_level[int(levels.max(initial=1))])  # the most slots a row holds
    rows_buf = np.empty((min(n, row_step), xb.shape[1]), dtype=xb.dtype)
    rows_at = np.empty(min(n, row_step), dtype=np.int64)  # numpy takes int64 numbers without a copy of its own
    buf = _LinkBuffers(min(n, link_step), min(n, link_step) * top)
    with tempfile.TemporaryFile(prefix="heron-layout-") as rows_f, \
            tempfile.TemporaryFile(prefix="heron-layout-") as links_f, \
            tempfile.TemporaryFile(prefix="heron-layout-") as levels_f:
        try:
            for lo in range(0, n, row_step):
                at = rows_at[: min(n - lo, row_step)]
                np.copyto(at, perm[lo : lo + row_step])
                rows_f.write(np.take(xb, at, axis=0, out=rows_buf[: at.shape[0]], mode="clip").data)
                trim_heap_often()
            del rows_buf
            for lo in range(0, n, link_step):
                # the slots of new numbers lo..hi, read from their old rows' slots, in the new order
                new, lev = buf.piece(perm[lo : lo + link_step], old_at, links, levels, number)
                links_f.write(new.data)
                levels_f.write(lev.data)
                trim_heap_often()
            del buf
            rows_f.flush()
            links_f.flush()
            levels_f.flush()
        except OSError as exc:
            raise _NoRoom() from exc
        _read_back(rows_f, xb.reshape(-1), STEP_BYTES // xb.itemsize, "rows")
        _read_back(links_f, links, STEP_BYTES // links.itemsize, "graph links")
        _read_back(levels_f, levels, STEP_BYTES // levels.itemsize, "levels")
    if hnsw.entry_point >= 0:
        hnsw.entry_point = int(number[hnsw.entry_point])
    del number
    for lo in range(0, n, link_step):  # each new number's first slot, from the levels in their new order
        hi = min(n, lo + link_step)
        np.cumsum(per_level[levels[lo:hi]], out=old_at[lo + 1 : hi + 1])
        old_at[lo + 1 : hi + 1] += old_at[lo]
    trim_heap()


class _LinkBuffers:
    """The arrays the links pass of `_renumber` fills for each piece of at most `rows` rows and `slots` link slots.

    Indexes are int64 and taken with ``mode="clip"``: numpy copies int32 indexes, and buffers ``out`` under its
    default mode, on every call. Every index is in range by then: the rows are a permutation, the slots follow
    from the levels (checked first), and each link is checked to name a row.
    """

    def __init__(self, rows: int, slots: int) -> None:
        self.rows = np.empty(rows, dtype=np.int64)  # the old rows, as int64
        self.first = np.empty(rows, dtype=np.int64)  # each row's first old slot
        self.count = np.empty(rows, dtype=np.int64)  # and its number of slots
        self.start = np.empty(rows, dtype=np.int64)  # where its slots start in the piece
        self.jump = np.empty(rows, dtype=np.int64)
        self.level = np.empty(rows, dtype=np.int32)
        self.at = np.empty(slots, dtype=np.int64)  # each slot's old place; then its link, by old number
        self.old = np.empty(slots, dtype=np.int32)  # its link, by old number
        self.new = np.empty(slots, dtype=np.int32)  # by new number
        self.unset = np.empty(slots, dtype=np.bool_)  # an empty slot (-1)

    def piece(self, rows_in: np.ndarray, old_at: np.ndarray, links: np.ndarray, levels: np.ndarray,
              number: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The links of old rows `rows_in` renumbered, in their order, and their levels: views of these arrays."""
        k = rows_in.shape[0]
        first, count, start, jump = self.first[:k], self.count[:k], self.start[:k], self.jump[: k - 1]
        rows = self.rows[:k]
        np.copyto(rows, rows_in)
        np.take(old_at, rows, out=first, mode="clip")
        np.add(rows, 1, out=start)
        np.take(old_at, start, out=count, mode="clip")
        count -= first
        np.cumsum(count, out=start)
        total = int(start[-1])
        start -= count
        # each slot's old place: its row's first slot plus its place among the row's slots. Every row holds at
        # least one slot (its level is 1 or more), so a row's first slot follows where the one before it ended.
        at = self.at[:total]
        at.fill(1)
        at[0] = first[0]
        np.subtract(first[1:], first[:-1], out=jump)
        jump -= count[:-1]
        jump += 1
        at[start[1:]] = jump
        np.cumsum(at, out=at)
        old, new, unset = self.old[:total], self.new[:total], self.unset[:total]
        np.take(links, at, out=old, mode="clip")
        if old.max() >= number.shape[0]:
            raise _NoRoom() from ValueError(f"a link names row {int(old.max())} of an index of {number.shape[0]}")
        np.less(old, 0, out=unset)
        np.maximum(old, 0, out=new)
        np.copyto(at, new)  # widened in place: a ufunc writing int64 from int32 buffers the cast
        np.take(number, at, out=new, mode="clip")
        np.copyto(new, old, where=unset)
        return new, np.take(levels, rows, out=self.level[:k], mode="clip")


def _read_back(f: Any, into: np.ndarray, step: int, what: str) -> None:
    """Fill the flat array `into` from the start of file `f`, `step` items at a time."""
    f.seek(0)
    for lo in range(0, into.shape[0], step):
        piece = into[lo : lo + step].data.cast("B")
        got = f.readinto(piece)
        if got != piece.nbytes:
            raise OSError(f"read {got} of {piece.nbytes} bytes of renumbered {what} back from a temporary file")
