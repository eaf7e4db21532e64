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
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ._base import IndexFileError, VectorIndex
from ._dense import DenseIndex
from ._faiss import faiss
from ._mapped import owned_copy
from ._vector_index import load_index


def copies_on_growth(index: VectorIndex) -> bool:
    """Whether `grown_copy` leaves `index` as it is (any dense index); other families may grow in place."""
    return isinstance(index, DenseIndex)


def grown_copy(index: VectorIndex, vectors: Any, cancelled: Callable[[], bool] | None = None,
               busy: Callable[[], bool] | None = None) -> VectorIndex | None:
    """`index` extended with `vectors`: a grown copy where `copies_on_growth`, else `index.extended`.

    None where the index cannot take the rows (the merged segment's index is then built from them).
    """
    if isinstance(index, DenseIndex) and index._index is not None:
        mapped = index._mapped
        raw = owned_copy(mapped) if mapped is not None else faiss.clone_index(index._index)
        copy = DenseIndex(index.dtype, index.dim, index.index_type, index.metric, dict(index.params), index=raw,
                          layout=index.layout)
        copy.grown = index.grown
        return copy.extended(vectors, cancelled, busy)
    return index.extended(vectors, cancelled, busy)


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
