"""A large HNSW index's rows laid out near their neighbours in space, so that a search reads less memory.

faiss numbers an HNSW index's rows in the order they were added and keeps
their vectors and graph links in that order. Rows arrive in no order of
place, so the few thousand vectors one search compares lie all over the
index: at 1M x 128 (650 MB of vectors and links) nearly every one is a cache
miss. Once built, the index's rows are renumbered (the same graph, the
same hits: faiss renumbers the links, `_permute_rows` the vectors) so that rows near one
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

from ._faiss import build_threads, faiss

log = logging.getLogger("heron.engine")

#: Indexes with fewer rows are left in the order the rows came: their vectors and links fit in the caches.
LAYOUT_MIN_ROWS = 65_536
#: k-means centres whose cells order the rows (256 gave 263 µs a search at 1M, 1,024 256 µs in 3.6x the time).
LAYOUT_CELLS = 256
#: Sample rows per centre the centres are trained on, and the k-means rounds.
LAYOUT_SAMPLE_PER_CELL = 40
LAYOUT_ROUNDS = 5
#: Bytes of rows written to or read from the temporary file at a time while the rows are renumbered.
STEP_BYTES = 32 << 20


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
        return Layout(np.concatenate([self.order, np.arange(n, total, dtype=np.int64)]))


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
    order = np.argsort(-levels, kind="stable").astype(np.int64)
    return Hubs(order, np.ascontiguousarray(levels[order]))


def lay_out(index: Any, layout: Layout | None, busy: Callable[[], bool] | None = None) -> Layout | None:
    """Renumber the rows of `index` (a plain faiss HNSW) by place and return its new `Layout`.

    `layout` is the index's layout so far (None: numbers are rows). An index
    of another kind, or of fewer than `LAYOUT_MIN_ROWS` rows, is left as it
    is and `layout` returned; so is one whose vectors find no room in a
    temporary file (`_permute_rows`). faiss renumbers the graph's links itself,
    with a second copy of them for a moment (128 MB at 1M rows, M 16). While
    `busy()` (callers' requests coming in) it runs on `build_threads`, as the
    build before it does, leaving the callers a core.
    """
    n = int(index.ntotal)
    if type(index) is not faiss.IndexHNSWFlat or n < LAYOUT_MIN_ROWS:
        return layout
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
    _, cell = km.index.search(xb, 1)
    perm = np.argsort(cell.ravel(), kind="stable").astype(np.int64)
    try:
        _permute_rows(xb, perm)
    except _NoRoom as exc:
        log.warning("an index of %d rows stays in the order its rows came: %s", n, exc.__cause__)
        return layout
    index.hnsw.permute_entries(faiss.swig_ptr(perm))
    return Layout(perm if layout is None else layout.order[perm])


class _NoRoom(Exception):
    """The temporary copy of the rows could not be written; the rows are as they were."""


def _permute_rows(xb: np.ndarray, perm: np.ndarray) -> None:
    """``xb[:] = xb[perm]`` in place, the rows passing through a temporary file in pieces of `STEP_BYTES`.

    faiss's own renumbering of the vectors would hold a second copy of them
    in memory (512 MB at 1M x 128) while the merged index and the one it
    grew from are both held: that moment is the peak of a large load. Every
    row is written out before the first is overwritten, so a failure to
    write (`_NoRoom`) leaves `xb` untouched; a failure to read back what was
    written (`OSError`) leaves it half renumbered and the caller's index unusable.
    """
    n = xb.shape[0]
    step = max(1, STEP_BYTES // max(1, xb.strides[0]))
    with tempfile.TemporaryFile(prefix="heron-layout-") as f:
        try:
            for lo in range(0, n, step):
                f.write(np.take(xb, perm[lo : lo + step], axis=0).data)
            f.flush()
        except OSError as exc:
            raise _NoRoom() from exc
        f.seek(0)
        for lo in range(0, n, step):
            piece = xb[lo : lo + step].data.cast("B")
            got = f.readinto(piece)
            if got != piece.nbytes:
                raise OSError(f"read {got} of {piece.nbytes} bytes of renumbered rows back from a temporary file")
