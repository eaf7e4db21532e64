"""A graph index grown merge after merge is built again from all its rows once the merges into it stop.

A merge grows the older segment's HNSW graph with the newer segment's rows
(`index._grow`) rather than building a graph for all of them, so that a load
is searched through an index all along and indexing costs about what the new
rows alone cost. A graph grown that way finds less than one built from all its
rows in one go. faiss's build links the rows of the graph's upper levels
first, among themselves, and the base level's rows join them after
(`index._layout.hubs_first`); grown a segment at a time, each segment's
upper-level rows join a graph that is already dense. faiss alone, 1M x 128
clustered rows, M 16, efConstruction 64, one thread: recall@10 0.902 / 0.937
at ef 64 / 128 built from all rows, 0.842 / 0.890 grown by 65,536 rows at a
time from a first 65,536, and 0.845 / 0.892 in slices of 4,096 as merges add
them. At 200k rows the loss is small (0.992 against 0.984). It is small too
where the rows are linked with a wider search (`bench/grow_loss.py`, the same
rows, two threads, one call against calls of 65,536, at ef 64 / 128):
efConstruction 64 0.902 / 0.937 against 0.862 / 0.903; 96 0.924 / 0.969
against 0.931 / 0.965; 128 0.954 / 0.994 against 0.946 / 0.976; 160 0.962 /
0.993 against 0.965 / 0.992; 200 (AUTOINDEX's) 0.973 / 0.996 against 0.977 /
0.996. From 96 on the two differ by 0.02 at most, either way, while a rebuild
costs minutes of a core (175 s of two threads at 200).

So once a segment's graph, built with an efConstruction under
`REBUILD_EF_BELOW`, holds at least `REBUILD_MIN_ROWS` rows, of which
`REBUILD_SHARE` or more were added by growing it, and no newer segment waits
to merge into it (`settled`), it is built again from the segment's rows in
the background: the merges of a load all grow the graph, and the graph the
load ends with is built once. Meanwhile the segment answers from the grown
graph's index file (`Maintenance._stand_in`), so the heap holds one graph. A
segment sealed meanwhile stops the build at its next slice: that segment's
merge grows the graph again, and the check runs once more after it. An open
checks every sealed segment (an index file records the rows it was grown by),
so a rebuild that a close stopped is done again. Only plain HNSW graphs of at
least `index._layout.LAYOUT_MIN_ROWS` rows are built again: their build adds
the upper levels' rows first, and a rebuild of the others adds rows in the
order they came, as growing did.
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from ._collection import Collection, Partition
from ._faults import fault_point
from ._segment import Segment
from ._segment_map import _MappedBuffer
from .index._base import BuildCancelled, VectorIndex
from .index._dense import DenseIndex
from .index._faiss import faiss
from .index._grow import grows_in_place
from .index._layout import LAYOUT_MIN_ROWS
from .index._vector_index import build_index
from .storage._prefault import drop_mapped

if TYPE_CHECKING:
    from ._maintenance import Maintenance

log = logging.getLogger("heron.engine")

#: A graph is built again once this share of its rows came by growing it ...
REBUILD_SHARE = float(os.environ.get("HERON_REBUILD_SHARE", "0.2"))
#: ... and it holds at least this many rows (below, growing loses little: see the module docstring) ...
REBUILD_MIN_ROWS = LAYOUT_MIN_ROWS
#: ... and it was built with an efConstruction under this (from it on, growing loses little: see the module docstring).
REBUILD_EF_BELOW = int(os.environ.get("HERON_REBUILD_EF_BELOW", "96"))


def wants_rebuild(index: VectorIndex) -> bool:
    """Whether `index` is a plain HNSW graph grown enough to be built again (see the module docstring)."""
    return (isinstance(index, DenseIndex) and type(index._index) is faiss.IndexHNSWFlat
            and index.ntotal >= max(REBUILD_MIN_ROWS, 1) and index.grown > 0
            and index.grown >= REBUILD_SHARE * index.ntotal
            and index._index.hnsw.efConstruction < REBUILD_EF_BELOW)


def settled(m: Maintenance, coll: Collection, p: Partition, seg: Segment) -> bool:
    """Whether `seg` is a sealed, persisted segment of `p` that no newer sealed segment would merge into."""
    if coll.dropped or coll.partitions.get(p.name) is not p or not seg.persisted:
        return False
    sealed = p.sealed
    try:
        i = sealed.index(seg)
    except ValueError:
        return False
    return i == len(sealed) - 1 or seg.n + sealed[i + 1].n > m.merge_limit(coll)


def rebuild_grown(m: Maintenance, coll: Collection, p: Partition, seg: Segment) -> None:
    """Build again each vector index of `seg` that `wants_rebuild`, while `seg` stays `settled`; then save it."""
    e = m.engine
    for d in list(coll.indexes.values()):
        f = coll.schema.field(d.field_name)
        cur = seg.vindex.get(d.field_name)
        if f is None or cur is None or cur[0] != d.signature or not wants_rebuild(cur[1]):
            continue
        if e.closing or not settled(m, coll, p, seg):
            return
        # The grown graph answers from its file while the new one is built, unless it already does.
        if grows_in_place(cur[1]) and not m._stand_in(coll, seg, d.field_name, cur):
            continue
        serving = seg.vindex.get(d.field_name)
        what = f"rebuilding segment {seg.id} field {f.name} ({cur[1].grown} of {cur[1].ntotal} rows added by merges)"
        del cur  # the grown graph in memory goes once no search holds it
        vectors = seg.snapshot().vectors(f.name)
        t0 = time.perf_counter()
        try:
            idx = build_index(f.dtype, f.dim or 0, d.index_type, d.metric_type, d.params, vectors,
                              cancelled=partial(_stop, m, coll, p, seg), busy=e.busy,
                              progress=partial(_progress, m, coll.name, what, vectors,
                                               isinstance(seg.cols.get(f.name), _MappedBuffer)))
        except BuildCancelled:  # a newer segment sealed, a drop or a close: the grown graph stays
            log.debug("%s: stopped", what)
            return
        except Exception:  # derived data: the grown graph stays
            log.exception("%s failed", what)
            continue
        fault_point("rebuild.before_install")
        with coll.write_lock:
            if not settled(m, coll, p, seg) or seg.vindex.get(d.field_name) is not serving:
                return
            seg.vindex[d.field_name] = (d.signature, idx)
        log.debug("%s in %.2fs", what, time.perf_counter() - t0)
        m.save_index(coll, seg, d.field_name, idx)


def _progress(m: Maintenance, name: str, what: str, vectors: np.ndarray, mapped: bool, done: int, total: int) -> None:
    """Report a slice of the build; the pages of the segment file's vectors it read leave the process (not the page cache)."""
    if mapped:
        drop_mapped(vectors.ctypes.data, vectors.nbytes)
    m.engine.progress.report("index", name, done, total, what)


def _stop(m: Maintenance, coll: Collection, p: Partition, seg: Segment) -> bool:
    return m.unwanted(coll) or not settled(m, coll, p, seg)

