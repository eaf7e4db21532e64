"""Growing a copy of a segment's vector index for a merge, so the segment keeps its own meanwhile.

A merge extends the older segment's index with the newer segment's rows rather
than building one for all of them. faiss grows an index only in place, and a
graph index grows slowly (HNSW adds a few thousand 128-d rows per second and
core): grown in place, the older segment would be searched by an exact scan of
all its rows until the merged segment takes its place, which under a steady
insert load is most of the time. Instead the merge grows a copy: the older
segment answers from its index until then, at the price of a second copy of
the index in memory while the merge runs (a segment's indexes are bounded by
the merge limit, `MERGE_VECTOR_BYTES` of vectors).
"""

from __future__ import annotations

from typing import Any

from ._base import VectorIndex
from ._dense import DenseIndex
from ._faiss import faiss
from ._mapped import owned_copy


def copies_on_growth(index: VectorIndex) -> bool:
    """Whether `grown_copy` leaves `index` as it is (any dense index); other families may grow in place."""
    return isinstance(index, DenseIndex)


def grown_copy(index: VectorIndex, vectors: Any) -> VectorIndex | None:
    """`index` extended with `vectors`: a grown copy where `copies_on_growth`, else `index.extended`.

    None where the index cannot take the rows (the merged segment's index is then built from them).
    """
    if isinstance(index, DenseIndex) and index._index is not None:
        mapped = index._mapped
        raw = owned_copy(mapped) if mapped is not None else faiss.clone_index(index._index)
        copy = DenseIndex(index.dtype, index.dim, index.index_type, index.metric, dict(index.params), index=raw)
        return copy.extended(vectors)
    return index.extended(vectors)
