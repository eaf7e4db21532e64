"""Growing a segment's vector index for a merge, while the segment keeps answering from an index meanwhile.

A merge extends the older segment's index with the newer segment's rows rather
than building one for all of them. faiss grows an index only in place, and a
graph index grows slowly (HNSW adds a few thousand 128-d rows per second and
core): grown in place with nothing standing in, the older segment would be
searched by an exact scan of all its rows until the merged segment takes its
place, which under a steady insert load is most of the time.

Where the index lives in memory, the older segment is first given a stand-in
(`file_stand_in`): the same index searched in place from its file, which costs
page cache rather than heap; the index in memory then grows in place. That
keeps one copy of the index in memory, and growing the same faiss index merge
after merge lets its arrays keep the room they doubled into instead of each
merge copying the whole index (a clone, then a reallocation as it grows; at
1M x 128 HNSW about 0.6 GB each). Where no stand-in can be had (an index
read from its file, or the file cannot be written), the merge grows a copy
(`grown_copy`), at the price of a second copy of the index in memory while it
runs (a segment's indexes are bounded by the merge limit,
`MERGE_VECTOR_BYTES` of vectors).

An HNSW index in memory that grows past the room faiss's arrays have moves
them (both held for the moment of the copy); before a merge grows it, the
arrays are read again from the stand-in's file with room for the new rows
(`rehouse`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ..storage._prefault import copy_dropping, drop_mapped, release, trim_heap
from ._base import IndexFileError, VectorIndex
from ._dense import DenseIndex
from ._faiss import faiss
from ._layout import ORDER_STEP
from ._mapped import owned_copy
from ._vector_index import load_index


def copies_on_growth(index: VectorIndex) -> bool:
    """Whether `grown_copy` leaves `index` as it is (any dense index); other families may grow in place."""
    return isinstance(index, DenseIndex)


def grown_copy(index: VectorIndex, vectors: Any, cancelled: Callable[[], bool] | None = None,
               busy: Callable[[], bool] | None = None,
               progress: Callable[[int, int], None] | None = None) -> VectorIndex | None:
    """`index` extended with `vectors`: a grown copy where `copies_on_growth`, else `index.extended`.

    None where the index cannot take the rows (the merged segment's index is then built from them).
    """
    if isinstance(index, DenseIndex) and index._index is not None:
        mapped = index._mapped
        raw = owned_copy(mapped) if mapped is not None else faiss.clone_index(index._index)
        copy = DenseIndex(index.dtype, index.dim, index.index_type, index.metric, dict(index.params), index=raw,
                          layout=index.layout)
        copy.grown = index.grown
        copy.list_bounds = index.list_bounds  # what the bounds of the rows before were (`extended` keeps them)
        return copy.extended(vectors, cancelled, busy, progress)
    return index.extended(vectors, cancelled, busy, progress)


def grows_in_place(index: VectorIndex) -> bool:
    """Whether a merge may grow `index` itself once its segment answers from a `file_stand_in`.

    True for a dense faiss index in memory (not one searched in place from its file).
    """
    return isinstance(index, DenseIndex) and index._index is not None and index._mapped is None


def file_stand_in(index: VectorIndex, path: str) -> VectorIndex:
    """`index` searched in place from its file at `path`, written there first unless it already holds it.

    The file is derived data (`VectorIndex.save`: atomic, so a crash leaves the
    old file or none). Raises `OSError` if it cannot be written and
    `IndexFileError` if what was written cannot be read back.
    """
    if os.path.exists(path):
        try:
            same = load_index(path)
            if _same_index(same, index):
                return same
        except IndexFileError:
            pass
    index.save(path)
    out = load_index(path)
    if not _same_index(out, index):
        raise IndexFileError(f"index file {path!r} does not hold the index just written to it")
    return out


def _same_index(a: VectorIndex, b: VectorIndex) -> bool:
    return (a.ntotal, a.index_type, a.metric, a.params) == (b.ntotal, b.index_type, b.metric, b.params)


#: An HNSW index in memory of at least this many rows is re-read from its stand-in's file before a merge
#: grows it (`rehouse`); a smaller one grows as it is.
REHOUSE_MIN_ROWS = 65_536
#: Bytes copied from the stand-in's file at a time (its pages leave the process behind the copy).
REHOUSE_STEP_BYTES = 8 << 20
#: Rows (and 16 times as many link slots) compared between the index and its stand-in before it is rehoused.
SAMPLE_ROWS = 16


def rehouse(index: VectorIndex, stand_in: VectorIndex, rows: int) -> bool:
    """Give `index` (a plain HNSW in memory) arrays read from `stand_in`'s file, with room for `rows` more rows.

    faiss keeps an HNSW index's vectors and links in growing C++ vectors: a
    merge that adds rows past their room allocates twice the room and copies
    the old arrays over, and for that moment both are held. At 1M x 128 the
    vectors are copied at 524,288 rows: 256 MB beside 256 MB, the peak of the
    whole load (1,638 MB, 220 MB above the moments around it). While the
    merge runs the segment answers from `stand_in` (the same index read in
    place from its file, `file_stand_in`), so the arrays in memory can go
    first and new ones be filled from the file, sized for the rows to come:
    the index then grows without reallocating. Returns False, leaving
    `index` as it is, where it is not such an index (or smaller than
    `REHOUSE_MIN_ROWS`).
    """
    if not isinstance(index, DenseIndex) or not isinstance(stand_in, DenseIndex) or index._mapped is not None:
        return False
    old, src = index._index, stand_in._index
    if type(old) is not faiss.IndexHNSWFlat or type(src) is not faiss.IndexHNSWFlat:
        return False
    n = int(old.ntotal)
    if n < REHOUSE_MIN_ROWS or int(src.ntotal) != n or int(src.d) != int(old.d) or rows <= 0:
        return False
    with index._growing():  # searches still on it end first; new ones go to the stand-in
        if index._index is not old or not _same_graph(index, stand_in, old, src):
            return False
        shape = _shape_of(old)
        if shape is None:
            return False
        index._index = None
        del old  # the stand-in answers meanwhile: the arrays in memory go before the new ones are filled
        trim_heap()  # and so does what the merge's steps so far left free in malloc's arenas
        try:
            index._index = _from_stand_in(shape, src, rows)
        except BaseException:
            index.ntotal = -1  # never searched again: the merge builds the merged index from its rows
            raise
    index._params_cache.clear()
    index._hot = None
    return True


def _shape_of(index: Any) -> dict[str, Any] | None:
    """What `_from_stand_in` needs of the faiss HNSW index it replaces, or None: a graph of another shape.

    Another shape: links per level other than faiss's default for its M.
    """
    h = index.hnsw
    fresh = faiss.IndexHNSWFlat(int(index.d), int(h.nb_neighbors(1)), index.metric_type)
    if (faiss.vector_to_array(fresh.hnsw.cum_nneighbor_per_level).tolist()
            != faiss.vector_to_array(h.cum_nneighbor_per_level).tolist()):
        return None
    out = {name: getattr(h, name) for name in ("efConstruction", "efSearch", "check_relative_distance",
                                                "search_bounded_queue", "entry_point", "max_level")}
    out.update(d=int(index.d), M=int(h.nb_neighbors(1)), metric=index.metric_type,
               per_row=int(h.nb_neighbors(0)) + int(h.nb_neighbors(1)))  # a new row's link slots, with room
    return out


def _from_stand_in(shape: dict[str, Any], src: Any, rows: int) -> Any:
    """A faiss HNSW index of `shape`, its arrays read from `src` (the same index, mapped), with room for `rows` more."""
    hs = src.hnsw
    n = int(src.ntotal)
    new = faiss.IndexHNSWFlat(shape["d"], shape["M"], shape["metric"])
    h = new.hnsw
    for name in ("efConstruction", "efSearch", "check_relative_distance", "search_bounded_queue",
                 "entry_point", "max_level"):
        setattr(h, name, shape[name])
    h.rng = faiss.RandomGenerator(1234 + n)  # levels of the rows to come: drawn afresh, as a new build's are
    for mine, theirs in ((h.levels, hs.levels), (h.offsets, hs.offsets)):  # the stand-in's own (not mapped)
        faiss.copy_array_to_vector(faiss.rev_swig_ptr(theirs.data(), int(theirs.size())), mine)  # no third copy
    _copy_with_room(h.neighbors, hs.neighbors, int(hs.neighbors.size()), rows * shape["per_row"])
    storage, ss = faiss.downcast_index(new.storage), faiss.downcast_index(src.storage)
    _copy_with_room(storage.codes, ss.codes, n * int(ss.code_size), rows * int(ss.code_size))
    storage.ntotal = n
    new.ntotal = n
    return new


def _copy_with_room(dst: Any, src: Any, size: int, room: int) -> None:
    """Fill faiss vector `dst` with the `size` items of `src` (a view of a mapped file), with room for `room` more.

    The room is written (faiss's vectors fill what they grow into) and then
    handed back, so it costs no memory until rows fill it; the file's pages
    leave the process behind the copy (they stay in the page cache).
    """
    dst.resize(size + room)
    out = faiss.rev_swig_ptr(dst.data(), size + room)
    inp = faiss.rev_swig_ptr(src.data(), size)
    copy_dropping(out, inp, REHOUSE_STEP_BYTES)
    dst.resize(size)  # the same memory: a C++ vector keeps its room when it shrinks
    release(out, size, size + room)


def _same_graph(index: DenseIndex, stand_in: DenseIndex, old: Any, src: Any) -> bool:
    """Whether the stand-in's file holds the index in memory: layout, entry, levels, a sample of rows and links."""
    a, b = index.layout, stand_in.layout
    if (a is None) != (b is None) or (a is not None and b is not None
                                      and not _same_order(a.order, b.order, stand_in._mapped is not None)):
        return False
    ho, hs = old.hnsw, src.hnsw
    slots = int(ho.neighbors.size())
    if (int(ho.entry_point) != int(hs.entry_point) or int(ho.max_level) != int(hs.max_level)
            or int(hs.neighbors.size()) != slots or int(hs.levels.size()) != int(ho.levels.size())
            or not np.array_equal(*(faiss.rev_swig_ptr(h.levels.data(), int(h.levels.size())) for h in (ho, hs)))):
        return False
    n, size = int(old.ntotal), int(faiss.downcast_index(old.storage).code_size)
    rows = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).astype(np.int64))
    mine, theirs = (faiss.rev_swig_ptr(faiss.downcast_index(x.storage).codes.data(), n * size).reshape(n, size)
                    for x in (old, src))
    at = np.unique(np.linspace(0, slots - 1, min(slots, SAMPLE_ROWS * 16)).astype(np.int64))
    links = faiss.rev_swig_ptr(hs.neighbors.data(), slots)
    return (np.array_equal(mine[rows], _sampled(theirs, rows))
            and np.array_equal(faiss.rev_swig_ptr(ho.neighbors.data(), slots)[at], _sampled(links, at)))


def _same_order(mine: np.ndarray, theirs: np.ndarray, mapped: bool) -> bool:
    """Whether two layouts' orders are equal, compared a piece at a time; the pages of `theirs` read leave the
    process behind each piece where it is a view of a `mapped` file."""
    if mine.shape != theirs.shape:
        return False
    for lo in range(0, mine.shape[0], ORDER_STEP):
        piece = theirs[lo : lo + ORDER_STEP]
        same = np.array_equal(mine[lo : lo + ORDER_STEP], piece)
        if mapped:
            drop_mapped(piece.ctypes.data, piece.nbytes)
        if not same:
            return False
    return True


#: Items `_sampled` reads between two drops of the pages they mapped.
SAMPLES_PER_DROP = 8


def _sampled(mapped: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A copy of ``mapped[at]`` (a view of a mapped file), the pages each few reads mapped let go of after them.

    One read of a mapped file maps the pages around it as well (a large folio
    of the page cache: about 350 KB a read on this index's file, 93 MB for 272
    reads spread over 1M x 128): dropped `SAMPLES_PER_DROP` reads at a time,
    they never add up.
    """
    parts = []
    for lo in range(0, at.shape[0], SAMPLES_PER_DROP):
        try:
            parts.append(mapped[at[lo : lo + SAMPLES_PER_DROP]])
        finally:
            drop_mapped(mapped.ctypes.data, mapped.nbytes)
    return np.concatenate(parts) if parts else mapped[at]
