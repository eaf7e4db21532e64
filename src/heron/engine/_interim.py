"""Interim indexes: fresh rows searched through small IVF indexes until their segment's own index is built.

A segment's vector index is built once the segment is sealed, and on a
100k-row load that build takes a minute; meanwhile an exact scan of every
fresh row answers each query. Milvus searches growing data through an
interim IVF index; so does Heron. Each run of ``HERON_INTERIM_ROWS`` rows
(default `INTERIM_ROWS`; 0 turns interim indexes off) of a segment that has
no index of its own yet gets an IVF_FLAT index of its own, built on a
background thread of its own as the rows arrive (sealed segments' last,
shorter run too, once it holds `INTERIM_MIN_ROWS`). A search then asks
those indexes (``nprobe`` `INTERIM_NPROBE` of `INTERIM_NLIST` lists) and
scans only the rows past them exactly. Interim indexes are derived data in
memory only: a crash loses nothing but them, and they are dropped once the
segment's own index is in (or its segment is merged away), unless newer
rows may still be merged into the segment (kept as a fallback while a merge
grows a copy of the segment's index, `index/_grow.py`).

Only float vector fields whose index is not FLAT get them (a FLAT index
promises exact results), and only for top-k searches; range searches scan
exactly. A search that passes ``{"interim": False}`` among its parameters
(indexes ignore keys they do not know) scans those rows exactly too.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from .._types import DataType
from .index._base import VectorIndex
from .index._dense import DenseIndex, make_faiss
from .index._exact import as_float32, empty_result, exact_search, normalized, select_topk
from .index._faiss import faiss

if TYPE_CHECKING:
    from ._collection import Collection, Partition
    from ._engine import Engine
    from ._segment import Segment, SegmentView

log = logging.getLogger("heron.engine")

#: Rows per interim index (``HERON_INTERIM_ROWS``; 0: no interim indexes).
INTERIM_ROWS = 16384
#: A sealed segment's last run of rows gets an interim index of its own from this many rows on
#: (or half of ``HERON_INTERIM_ROWS``, if that is less).
INTERIM_MIN_ROWS = 2048
#: IVF lists per interim index, and how many of them a search reads.
INTERIM_NLIST = 128
INTERIM_NPROBE = 24  # recall@10 0.96 on 64k MiniLM rows in 16k runs (16: 0.94, 32: 0.98)
#: Rows per list the lists are trained on (faiss's own lower bound for a good k-means).
TRAIN_PER_LIST = 39
_DENSE = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)
_METRICS = ("L2", "IP", "COSINE")

#: One field's interim indexes of one segment: the index definition's signature, and
#: ``(start, stop, index)`` runs of consecutive rows from row 0.
Runs = tuple[tuple[int, int, VectorIndex], ...]


def interim_rows() -> int:
    """``HERON_INTERIM_ROWS`` (default `INTERIM_ROWS`); ValueError if malformed."""
    raw = os.environ.get("HERON_INTERIM_ROWS", "").strip()
    if not raw:
        return INTERIM_ROWS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"HERON_INTERIM_ROWS={raw!r}: expected a whole number >= 0") from None
    if value < 0:
        raise ValueError(f"HERON_INTERIM_ROWS={raw!r}: expected a whole number >= 0")
    return value


def _eligible(coll: Collection) -> list[tuple[str, Any, DataType, int]]:
    """The (field, signature, dtype, dim) of `coll`'s vector fields that interim indexes serve."""
    out = []
    for d in list(coll.indexes.values()):
        f = coll.schema.field(d.field_name)
        if f is not None and f.dtype in _DENSE and d.metric_type in _METRICS and d.index_type != "FLAT":
            out.append((f.name, d.signature, f.dtype, int(f.dim or 0)))
    return out


class InterimIndexer:
    """Builds and drops the interim indexes of one engine's segments; see the module docstring."""

    def __init__(self, engine: Engine, rows: int) -> None:
        self.engine = engine
        #: Rows per interim index; 0: none are built.
        self.rows = rows
        self._pool: ThreadPoolExecutor | None = None
        self._queued: set[tuple[int, str]] = set()
        #: Segments and fields whose interim build raised: not tried again (their rows are scanned exactly).
        self._failed: set[tuple[int, str]] = set()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rows > 0

    @property
    def min_rows(self) -> int:
        """The fewest rows an interim index covers (a sealed segment's last run may be shorter than `rows`)."""
        return max(1, min(INTERIM_MIN_ROWS, self.rows // 2))

    def stop(self) -> None:
        """Stop building (a build under way finishes; queued ones are dropped)."""
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def look(self, coll: Collection) -> None:
        """Queue the interim indexes `coll`'s segments lack; drop those their segment's own index replaced."""
        if not self.enabled or coll.dropped:
            return
        fields = _eligible(coll)
        for p in list(coll.partitions.values()):
            for seg in p.segments():
                for name, sig, dtype, dim in fields:
                    built = seg.vindex.get(name)
                    if built is not None and built[0] == sig:
                        if seg.interim and not self._may_merge_into(coll, p, seg):
                            seg.interim.pop(name, None)
                        continue
                    have = seg.interim.get(name)
                    covered = have[1][-1][1] if have is not None and have[0] == sig and have[1] else 0
                    n = seg.n
                    ready = n - covered >= self.rows or (seg.sealed and n - covered >= self.min_rows)
                    if ready:
                        self._queue(coll, seg, name, sig, dtype, dim)

    def _may_merge_into(self, coll: Collection, p: Partition, seg: Segment) -> bool:
        """Whether rows sealed after `seg` may yet be merged into it.

        The merge grows a copy of `seg`'s index by those rows (`index/_grow.py`) and `seg` keeps
        answering from its own; its interim indexes are kept until then as a fallback.
        """
        sealed = p.sealed
        i = next((j for j, s in enumerate(sealed) if s is seg), None)
        if i is None:
            return False
        if any(not s.persisted for s in sealed[i + 1 :]):
            return True
        g = p.growing
        return i == len(sealed) - 1 and g is not None and g.n > 0 and \
            seg.n + g.n <= self.engine.maintenance.merge_limit(coll)

    def _queue(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        key = (seg.id, name)
        with self._lock:
            if key in self._queued or key in self._failed or self.engine.closing:
                return
            self._queued.add(key)
            if self._pool is None:
                # At the callers' priority: each build is short, and searches wait for it.
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heron-interim",
                                                initializer=_one_thread)
        try:
            self._pool.submit(self._build, coll, seg, name, sig, dtype, dim)
        except RuntimeError:  # shut down: the engine is closing
            with self._lock:
                self._queued.discard(key)

    def _build(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        """Index the next run of `seg`'s rows (or its last, shorter one if it is sealed)."""
        try:
            have = seg.interim.get(name)
            runs: Runs = have[1] if have is not None and have[0] == sig else ()
            start = runs[-1][1] if runs else 0
            n = seg.n
            stop = start + self.rows if n - start >= self.rows else (n if seg.sealed else start)
            if stop - start < self.min_rows or coll.dropped or self.engine.closing or seg.retired \
                    or name in seg.vindex:
                return
            d = coll.index_for(name)
            if d is None or d.signature != sig:
                return
            idx = build_ivf(dtype, dim, d.metric_type, seg.snapshot().vectors(name)[start:stop])
            if name not in seg.vindex:
                seg.interim[name] = (sig, (*runs, (start, stop, idx)))
        except Exception:  # derived data: the rows stay searched exactly
            log.exception("building an interim index on segment %s failed", seg.id)
            with self._lock:
                self._failed.add((seg.id, name))
        finally:
            with self._lock:
                self._queued.discard((seg.id, name))


def _one_thread() -> None:
    """faiss on the builder's own thread only (OpenMP's setting is per thread).

    A run of 16,384 x 384 builds in 0.08-0.12 s this way against 0.23-0.33 s
    on two threads, measured on 2 busy cores: the cores are the callers' and
    the index builds' already.
    """
    faiss.omp_set_num_threads(1)


def build_ivf(dtype: DataType, dim: int, metric: str, vectors: Any) -> DenseIndex:
    """An IVF_FLAT index over `vectors`, its lists trained on an even sample of `TRAIN_PER_LIST` rows per list.

    Training on every row would cost several times the rest of the build for
    no measurable recall: k-means converges on a sample of this size.
    """
    x = as_float32(dtype, vectors)
    if metric == "COSINE":
        x = normalized(x)
    nlist = max(1, min(INTERIM_NLIST, x.shape[0] // TRAIN_PER_LIST))
    params = {"nlist": nlist}
    idx = make_faiss("IVF_FLAT", dim, metric, params, x.shape[0])
    if idx is None:  # no rows
        raise ValueError("an interim index needs rows")
    step = max(1, x.shape[0] // (nlist * TRAIN_PER_LIST))
    idx.train(np.ascontiguousarray(x[::step][: nlist * TRAIN_PER_LIST]))
    idx.add(x)
    idx.make_direct_map()
    return DenseIndex(dtype, dim, "IVF_FLAT", metric, params, index=idx)


def _wanted(params: dict[str, Any]) -> bool:
    nested = params.get("params")
    flag = nested.get("interim", True) if isinstance(nested, dict) else True
    return params.get("interim", True) is not False and flag is not False


def interim_search(view: SegmentView, field: Any, d: Any, metric: str, queries: Any, k: int,
                   allow: np.ndarray | None, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-`k` over the view's rows through the segment's interim indexes, or None where there are none.

    Rows past the last interim index are scanned exactly; the results are
    merged best first, as `exact_search` returns them.
    """
    have = view.segment.interim.get(field.name)
    if have is None or d is None or have[0] != d.signature or not _wanted(params):
        return None
    n = view.n
    runs = [r for r in have[1] if r[1] <= n]
    if not runs:
        return None
    nq = queries.shape[0]
    parts_s, parts_r = [], []
    sparams = {"nprobe": INTERIM_NPROBE}
    for start, stop, idx in runs:
        sub = None if allow is None else allow[start:stop]
        if sub is not None and not sub.any():
            continue
        s, r = idx.search(queries, min(k, stop - start), allow=sub, params=sparams)
        parts_s.append(s)
        parts_r.append(np.where(r >= 0, r + start, -1))
    tail = runs[-1][1]
    if tail < n:
        sub = None if allow is None else allow[tail:n]
        if sub is None or sub.any():
            norms = view.sq_norms(field.name)
            s, r = exact_search(field.dtype, metric, view.vectors(field.name)[tail:n], queries, min(k, n - tail),
                                allow=sub, sq_norms=None if norms is None else norms[tail:n])
            parts_s.append(s)
            parts_r.append(np.where(r >= 0, r + tail, -1))
    if not parts_s:
        return empty_result(nq, k, metric)
    scores, rows = np.concatenate(parts_s, axis=1), np.concatenate(parts_r, axis=1)
    best_s, pos = select_topk(scores, min(k, scores.shape[1]), metric)
    best_r = np.take_along_axis(rows, pos, axis=1)
    out_s, out_r = empty_result(nq, k, metric)
    out_s[:, : best_s.shape[1]], out_r[:, : best_r.shape[1]] = best_s, best_r
    return out_s, out_r
