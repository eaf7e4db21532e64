"""What `compact`'s options ask beyond removing deleted rows: clustering and a target segment size.

Clustering compaction (Milvus's majorCompaction) sorts data by the collection's
clustering key; a collection without one is refused with Milvus's error 2304, as
Milvus refuses it. With a clustering key there is nothing further to lay out:
every segment is searched whole, so the call compacts as the plain one does.

A target size merges adjacent sealed segments of each partition, in their
order, while the two segment files together stay within it (the merged file
holds the same rows and columns, so its size is about their sum).

Sealing merges each new segment into the one before it (`Maintenance._merge`);
a close, a crash or a full disk in the middle of a long run of them leaves
segments apart that would have been one, and nothing sealed later would merge
them. An open merges them (`merge_neighbours`) in the background.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import _requests as rq
from .._errors import HeronError
from .._types import DataType

if TYPE_CHECKING:
    from ._collection import Collection
    from ._maintenance import Maintenance

#: Milvus's ErrClusteringCompactionCollectionNotSupport.
CLUSTERING_NOT_SUPPORTED = 2304


def check_clustering(coll: Collection, r: rq.Compact) -> None:
    """Refuse a clustering compaction of a collection without a clustering key, as Milvus does."""
    if r.is_clustering and not any(f.is_clustering_key for f in coll.schema.fields):
        raise HeronError(f"collection not support clustering compaction: collection {coll.name!r} has no "
                         "clustering key (set is_clustering_key=True on a scalar field)",
                         code=CLUSTERING_NOT_SUPPORTED)


def merge_to_target(m: Maintenance, coll: Collection, target_mb: int) -> int:
    """Merge adjacent persisted sealed segments while their files together fit ``target_mb``; merges made."""
    if target_mb <= 0:
        return 0
    limit = target_mb << 20
    files = m.engine.dir
    merged = 0
    for p in list(coll.partitions.values()):
        i = 1
        while i < len(p.sealed):
            base, seg = p.sealed[i - 1], p.sealed[i]
            if base.persisted and seg.persisted and _size(files.segment_path(coll.id, base.id)) \
                    + _size(files.segment_path(coll.id, seg.id)) <= limit and m._merge(coll, p, base, seg):
                merged += 1  # the merged segment sits at i - 1: try it with the next one
                m.engine.wait_background()
            else:
                i += 1
    return merged


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 1 << 62  # no file to measure: never merged by size


def merge_neighbours(coll: Collection, m: Maintenance) -> None:
    """Merge adjacent persisted sealed segments of each partition while they fit `Maintenance.merge_limit`.

    Oldest first, as sealing would have; stops when the collection is dropped
    or the engine closes (a merge under way stops too), or at the first
    failure (`Maintenance.try_merge`: both segments stay as they are).
    """
    limit = m.merge_limit(coll)
    for p in list(coll.partitions.values()):
        i = 1
        while i < len(p.sealed) and not m.unwanted(coll):
            base, seg = p.sealed[i - 1], p.sealed[i]
            if base.persisted and seg.persisted and base.n + seg.n <= limit:
                merged = m.try_merge(coll, p, base, seg)
                if merged is None:
                    return
                if merged:
                    continue  # the merged segment sits at i - 1: try it with the next one
            i += 1


def vector_bytes(dtype: DataType, dim: int | None) -> int:
    """Bytes a row's vector of this type takes (an estimate for sparse vectors)."""
    d = dim or 0
    if dtype is DataType.FLOAT_VECTOR:
        return 4 * d
    if dtype in (DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        return 2 * d
    if dtype is DataType.BINARY_VECTOR:
        return max(1, d // 8)
    if dtype is DataType.INT8_VECTOR:
        return d
    return 512
