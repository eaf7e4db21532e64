"""Interim indexes: fresh rows searched through an IVF index of their segment until its own index is built.

A segment's vector index is built once the segment is sealed, and on a
100k-row load that build takes a minute; meanwhile an exact scan of every
fresh row answers each query. Milvus searches growing data through an
interim IVF index; so does Heron. Once a segment that has no index of its
own holds ``HERON_INTERIM_ROWS`` rows (default `INTERIM_ROWS`; 0 turns
interim indexes off; a sealed segment from `INTERIM_MIN_ROWS` on), one IVF
index per vector field is trained on a sample of them, on a background
thread, and from then on kept current as rows arrive: every insert asks the
thread to add the new rows. The first index trained for a field is kept,
empty, as its template: the field's later segments start from a copy of it,
so they need no training and are indexed from their first row on.

Adding a row is cheap: its list is chosen in a `PCA_DIM`-dimensional
projection of the vectors (principal components of the training sample;
the lists are the k-means clusters of the projected sample), and it is
stored as 4-bit product codes in faiss's fast-scan layout, a few dozen
bytes a row. A search brings an index that fell more than `TAIL_SCAN` rows
behind up to date itself, scans exactly only the rows past it, reads
``nprobe`` lists, and scores the best candidates again exactly, so the
scores are those an exact scan gives.

Interim indexes are derived data in memory only: a crash loses nothing but
them, and they are dropped once the segment's own index is in (or its
segment is merged away), unless newer rows may still be merged into the
segment: the merge takes its index away while it grows it, and the interim
index answers meanwhile (the merged segment comes in with its index built).

Only float vector fields whose index is not FLAT get them (a FLAT index
promises exact results), and only for top-k searches; range searches scan
exactly. A search that passes ``{"interim": False}`` among its parameters
(indexes ignore keys they do not know) scans those rows exactly too.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from .._types import DataType
from .index._exact import as_float32, empty_result, exact_search, normalized, select_topk
from .index._faiss import faiss, threads_for
from .index._subset_cache import mask_facts

if TYPE_CHECKING:
    from ._collection import Collection, Partition
    from ._engine import Engine
    from ._segment import Segment, SegmentView

log = logging.getLogger("heron.engine")

#: Rows a growing segment holds before its interim index is trained (``HERON_INTERIM_ROWS``; 0: none).
INTERIM_ROWS = 16384
#: A sealed segment gets an interim index from this many rows on (or half of ``HERON_INTERIM_ROWS``, if less).
INTERIM_MIN_ROWS = 2048
#: The most IVF lists an interim index has, and the training rows per list.
INTERIM_NLIST = 512
TRAIN_PER_LIST = 32
#: The share of lists a search reads: 64 of 512 gives recall@10 0.96 on 100k MiniLM rows.
NPROBE_SHARE = 1 / 8
#: The fewest lists a search reads (small segments' indexes have few lists, and reading them costs little).
MIN_NPROBE = 16
#: A search reads at least this many rows' codes, however few lists that takes (IVF recall drops on small
#: segments otherwise, and reading codes costs little).
MIN_READ_ROWS = 4096
#: Dimensions of the projection that assigns rows to lists.
PCA_DIM = 64
#: Rows past the index a search scans exactly; when more wait, the search adds them to the index first.
TAIL_SCAN = 512
#: Dimensions per 4-bit product code (2 for fields of fewer than `FINE_CODES_BELOW`), and the rows the
#: codebooks are trained on.
DIMS_PER_CODE = 4
FINE_CODES_BELOW = 128
PQ_TRAIN_ROWS = 2048
#: Rows added per step (searches read the lists between steps).
ADD_CHUNK = 4096
#: Candidates per query scored again exactly: ``max(RERANK_MIN, RERANK_TIMES * k)``.
RERANK_MIN = 100
RERANK_TIMES = 4
#: Threads that train and grow interim indexes (each on one core).
WORKERS = 2
_DENSE = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)
_METRICS = ("L2", "IP", "COSINE")


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


class FreshIndex:
    """One field's interim index of one segment: an IVF over its rows ``0..covered``, grown in place.

    Rows are stored as 4-bit product codes (faiss's fast-scan layout, one
    sub-quantizer per `DIMS_PER_CODE` dimensions), so a search reads a few
    dozen bytes per row; its candidates are then scored exactly by the
    caller. Thread-safe: one thread adds rows at a time, and searches never
    see a list while it grows.
    """

    def __init__(self, dtype: DataType, dim: int, metric: str, ivf: Any) -> None:
        self.dtype, self.dim, self.metric = dtype, dim, metric
        self._ivf = ivf
        self.nlist = int(ivf.nlist)
        #: Lists a search reads.
        self.nprobe = min(self.nlist, max(MIN_NPROBE, int(np.ceil(self.nlist * NPROBE_SHARE))))
        #: Rows ``0..covered`` of the segment are in the index.
        self.covered = 0
        self._lists = _ListsLock()  # adds against searches
        self._adding = threading.Lock()  # one add at a time

    @classmethod
    def trained(cls, dtype: DataType, dim: int, metric: str, sample: Any) -> FreshIndex:
        """An empty index whose lists and codes are fitted to `sample`."""
        self = cls.__new__(cls)
        self.dtype, self.dim, self.metric = dtype, dim, metric
        x = self._prep(sample)
        if x.shape[0] == 0:
            raise ValueError("an interim index needs rows")
        pdim = min(PCA_DIM, dim)
        pca = faiss.PCAMatrix(dim, pdim)
        pca.train(x)
        z = pca.apply_py(x)
        nlist = max(1, min(INTERIM_NLIST, x.shape[0] // TRAIN_PER_LIST))
        flat = faiss.IndexFlatL2(pdim)
        if nlist > 1:
            km = faiss.Kmeans(pdim, nlist, niter=8, seed=1234,
                              min_points_per_centroid=TRAIN_PER_LIST // 2, max_points_per_centroid=256)
            km.train(z)
            flat.add(km.centroids)
        else:
            flat.add(z.mean(axis=0, keepdims=True))
        # Lists are chosen in the projection; the quantizer comes trained and full, so training
        # the IVF fits the product codes alone.
        quantizer = faiss.IndexPreTransform(pca, flat)
        fm = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
        ivf = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, _code_count(dim), 4, fm)
        ivf.by_residual = False
        ivf.pq.cp.niter = 8
        ivf.train(x[:: max(1, x.shape[0] // PQ_TRAIN_ROWS)])
        # The index owns what it was built from from here on (faiss frees them with it).
        ivf = faiss.deserialize_index(faiss.serialize_index(ivf))
        cls.__init__(self, dtype, dim, metric, ivf)
        return self

    def dump(self) -> np.ndarray:
        """The index while it is empty, serialised: what `restore` makes another segment's from."""
        return faiss.serialize_index(self._ivf)

    @classmethod
    def restore(cls, dtype: DataType, dim: int, metric: str, data: np.ndarray) -> FreshIndex:
        """A new, empty index with the lists and codes of the one `data` was dumped from."""
        return cls(dtype, dim, metric, faiss.deserialize_index(data))

    def _prep(self, vectors: Any) -> np.ndarray:
        x = as_float32(self.dtype, vectors)
        return np.ascontiguousarray(normalized(x) if self.metric == "COSINE" else x, dtype=np.float32)

    def grow(self, vectors: Any, stop: int) -> None:
        """Add rows ``covered..stop`` of `vectors` (the segment's rows, at least `stop` of them)."""
        with self._adding:
            start = self.covered
            while start < stop:
                end = min(stop, start + ADD_CHUNK)
                x = self._prep(vectors[start:end])
                with self._lists.adding():
                    self._ivf.add_with_ids(x, np.arange(start, end, dtype=np.int64))
                self.covered = start = end

    def search(self, queries: np.ndarray, k: int, n: int, allow: np.ndarray | None) -> np.ndarray:
        """The rows [nq, k] of the `k` best candidates among rows ``0..n`` that `allow` keeps (-1 past the last)."""
        q = self._prep(queries)
        sp = faiss.SearchParametersIVF()
        sp.nprobe = min(self.nlist, max(self.nprobe, -(-MIN_READ_ROWS * self.nlist // max(1, n))))
        sel = None
        if allow is not None:
            bits = mask_facts(allow).bits  # rows past n (added since the view was taken) are not in it
            sp.sel = sel = faiss.IDSelectorBitmap(bits.shape[0], faiss.swig_ptr(bits))
        with threads_for(q.shape[0]), self._lists.reading():
            if sel is None and self._ivf.ntotal > n:  # no add runs meanwhile: ntotal is what the search sees
                sp.sel = sel = faiss.IDSelectorRange(0, n)
            _, rows = self._ivf.search(q, k, params=sp)
        return rows


class _ListsLock:
    """Searches read the lists together; an add waits for them, and lets any search that waits go first.

    The background thread adds a step of rows at a time; without the yield it
    would take the lists back between steps before a waiting search woke up,
    and searches would wait for the whole backlog.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._waiting = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writing:
                self._cond.wait()
            self._waiting -= 1
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def adding(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._readers or self._waiting:
                self._cond.wait()
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _code_count(dim: int) -> int:
    """Sub-quantizers for `dim` dimensions: one per `DIMS_PER_CODE` (per 2 below `FINE_CODES_BELOW` dimensions).

    Each dimension a code stands for adds to the error of the scores the
    index ranks its candidates by; few dimensions cost few bytes anyway.
    """
    top = DIMS_PER_CODE if dim >= FINE_CODES_BELOW else 2
    for per in range(top, 0, -1):
        if dim % per == 0:
            return dim // per
    return dim


class InterimIndexer:
    """Trains, grows and drops the interim indexes of one engine's segments; see the module docstring."""

    def __init__(self, engine: Engine, rows: int) -> None:
        self.engine = engine
        #: Rows a growing segment needs before its interim index is trained; 0: none are.
        self.rows = rows
        self._pool: ThreadPoolExecutor | None = None
        self._queued: set[tuple[int, str]] = set()
        #: Segments and fields whose interim index failed: not tried again (their rows are scanned exactly).
        self._failed: set[tuple[int, str]] = set()
        #: Per collection and field: the first interim index trained, empty and serialised, with its
        #: definition's signature. Later segments of the field start from it, so they need no
        #: training and get their interim index from their first row on.
        self._templates: dict[tuple[int, str], tuple[Any, np.ndarray]] = {}
        #: Collections and fields whose template is being trained.
        self._training: set[tuple[int, str]] = set()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rows > 0

    @property
    def min_rows(self) -> int:
        """The fewest rows of a sealed segment an interim index is trained on."""
        return max(1, min(INTERIM_MIN_ROWS, self.rows // 2))

    def stop(self) -> None:
        """Stop building (a step under way finishes; queued ones are dropped)."""
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def look(self, coll: Collection) -> None:
        """Queue the interim work `coll`'s segments need; drop the indexes their segment's own index replaced."""
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
                    self._consider(coll, seg, name, sig, dtype, dim)

    def wrote(self, coll: Collection, seg: Segment) -> None:
        """Rows were added to growing `seg`: have them added to its interim indexes (or one trained)."""
        if not self.enabled or coll.dropped:
            return
        for name, sig, dtype, dim in _eligible(coll):
            if name not in seg.vindex:
                self._consider(coll, seg, name, sig, dtype, dim)

    def _consider(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        have = seg.interim.get(name)
        n = seg.n
        if have is not None and have[0] == sig:
            if have[1].covered < n:
                self._queue(coll, seg, name, sig, dtype, dim)
        elif n and (n >= self._train_rows(seg) or self._template(coll, name, sig) is not None):
            self._queue(coll, seg, name, sig, dtype, dim)

    def _others(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        """Queue the segments other than `seg` that waited for the field's template."""
        for p in list(coll.partitions.values()):
            for other in p.segments():
                if other is not seg and name not in other.vindex:
                    self._consider(coll, other, name, sig, dtype, dim)

    def _train_rows(self, seg: Segment) -> int:
        return self.min_rows if seg.sealed else self.rows

    def _template(self, coll: Collection, name: str, sig: Any) -> np.ndarray | None:
        t = self._templates.get((coll.id, name))
        return t[1] if t is not None and t[0] == sig else None

    def _may_merge_into(self, coll: Collection, p: Partition, seg: Segment) -> bool:
        """Whether rows sealed after `seg` may yet be merged into it.

        The merge takes `seg`'s index away while it grows it by those rows;
        its interim index then answers for it, so it is kept until then.
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
                # At the callers' priority: each step is short, and searches wait for it. Two threads:
                # right after a load two segments' backlogs are added at once.
                self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="heron-interim",
                                                initializer=_one_thread)
        try:
            self._pool.submit(self._work, coll, seg, name, sig, dtype, dim)
        except RuntimeError:  # shut down: the engine is closing
            with self._lock:
                self._queued.discard(key)

    def _work(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        """Give `seg` an interim index for `name` if it has none, then add the rows it lacks until none do."""
        key = (seg.id, name)
        fresh: FreshIndex | None = None
        try:
            fresh = self._index_for(coll, seg, name, sig, dtype, dim)
            while fresh is not None and not (self.engine.closing or seg.retired or name in seg.vindex):
                view = seg.snapshot()
                if view.n <= fresh.covered:
                    break
                fresh.grow(view.vectors(name), view.n)
        except Exception:  # derived data: the rows stay searched exactly
            log.exception("building an interim index on segment %s failed", seg.id)
            with self._lock:
                self._failed.add(key)
            seg.interim.pop(name, None)
            fresh = None
        finally:
            with self._lock:
                self._queued.discard(key)
        if fresh is not None and seg.n > fresh.covered:  # rows that came after the last look
            self._consider(coll, seg, name, sig, dtype, dim)

    def _index_for(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType,
                   dim: int) -> FreshIndex | None:
        """`seg`'s interim index for `name`, made (from the field's template, or trained) if it has none yet."""
        if coll.dropped or self.engine.closing or seg.retired or name in seg.vindex:
            return None
        d = coll.index_for(name)
        if d is None or d.signature != sig:
            return None
        have = seg.interim.get(name)
        if have is not None and have[0] == sig:
            return have[1]
        data = self._template(coll, name, sig)
        if data is not None:
            fresh = FreshIndex.restore(dtype, dim, d.metric_type, data)
        else:
            view = seg.snapshot()
            field = (coll.id, name)
            with self._lock:  # one segment trains; the others start from its template
                if view.n < self._train_rows(seg) or field in self._training:
                    return None
                self._training.add(field)
            try:
                fresh = train_interim(dtype, dim, d.metric_type, view.vectors(name)[: view.n])
                self._templates[field] = (sig, fresh.dump())
            finally:
                with self._lock:
                    self._training.discard(field)
            self._others(coll, seg, name, sig, dtype, dim)
        if name in seg.vindex:
            return None
        seg.interim[name] = (sig, fresh)
        return fresh


def _one_thread() -> None:
    """faiss on the builder's own thread only (OpenMP's setting is per thread).

    The cores are the callers' and the index builds' already.
    """
    faiss.omp_set_num_threads(1)


def train_interim(dtype: DataType, dim: int, metric: str, vectors: Any) -> FreshIndex:
    """An empty `FreshIndex` trained on an even sample of `vectors` (`TRAIN_PER_LIST` rows per list at most).

    k-means converges on a sample of this size; training on every row would
    cost several times as much for no measurable recall.
    """
    n = vectors.shape[0]
    want = INTERIM_NLIST * TRAIN_PER_LIST
    step = max(1, n // want)
    return FreshIndex.trained(dtype, dim, metric, vectors[::step][:want])


def _wanted(params: dict[str, Any]) -> bool:
    nested = params.get("params")
    flag = nested.get("interim", True) if isinstance(nested, dict) else True
    return params.get("interim", True) is not False and flag is not False


def interim_search(view: SegmentView, field: Any, d: Any, metric: str, queries: Any, k: int,
                   allow: np.ndarray | None, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-`k` over the view's rows through the segment's interim index, or None where it has none.

    An index more than `TAIL_SCAN` rows behind the view is brought up to
    date first; the rows past it are scanned exactly. The index's candidates
    are scored again exactly, and the results merged best first, as
    `exact_search` returns them.
    """
    have = view.segment.interim.get(field.name)
    if have is None or d is None or have[0] != d.signature or not _wanted(params):
        return None
    fresh: FreshIndex = have[1]
    n = view.n
    vecs = view.vectors(field.name)
    if n - fresh.covered > TAIL_SCAN:
        fresh.grow(vecs, n)
    head = min(n, fresh.covered)
    if head == 0:
        return None
    nq = queries.shape[0]
    parts_s, parts_r = [], []
    sub = None if allow is None else allow[:head]
    if sub is None or sub.any():
        rows = fresh.search(queries, min(head, max(RERANK_MIN, RERANK_TIMES * k)), head, sub)
        s_out, r_out = empty_result(nq, k, metric)
        norms = view.sq_norms(field.name)
        qf = as_float32(field.dtype, queries)
        for i in range(nq):
            got = np.sort(rows[i][rows[i] >= 0])  # in memory order
            if got.shape[0]:
                s, r = select_topk(_rescore(field.dtype, metric, vecs, norms, got, qf[i])[None, :],
                                   min(k, got.shape[0]), metric)
                m = s.shape[1]
                s_out[i, :m], r_out[i, :m] = s[0], np.where(r[0] >= 0, got[np.maximum(r[0], 0)], -1)
        parts_s.append(s_out)
        parts_r.append(r_out)
    if head < n:
        sub = None if allow is None else allow[head:n]
        if sub is None or sub.any():
            norms = view.sq_norms(field.name)
            s, r = exact_search(field.dtype, metric, vecs[head:n], queries, min(k, n - head),
                                allow=sub, sq_norms=None if norms is None else norms[head:n])
            parts_s.append(s)
            parts_r.append(np.where(r >= 0, r + head, -1))
    if not parts_s:
        return empty_result(nq, k, metric)
    scores, rows = np.concatenate(parts_s, axis=1), np.concatenate(parts_r, axis=1)
    best_s, pos = select_topk(scores, min(k, scores.shape[1]), metric)
    best_r = np.take_along_axis(rows, pos, axis=1)
    out_s, out_r = empty_result(nq, k, metric)
    out_s[:, : best_s.shape[1]], out_r[:, : best_r.shape[1]] = best_s, best_r
    return out_s, out_r


def _rescore(dtype: DataType, metric: str, vecs: Any, sq_norms: np.ndarray | None, rows: np.ndarray,
             q: np.ndarray) -> np.ndarray:
    """The exact scores of `rows` for query `q` (float32), as `exact_search` computes them."""
    x = as_float32(dtype, vecs[rows])
    if metric == "L2":
        diff = x - q
        return np.einsum("ij,ij->i", diff, diff)
    if metric == "IP":
        return x @ q
    sq = np.einsum("ij,ij->i", x, x) if sq_norms is None else sq_norms[rows]
    return (x @ normalized(q[None, :])[0]) / np.maximum(np.sqrt(sq), np.float32(1e-30))
