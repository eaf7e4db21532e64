"""Dense vector indexes on faiss: FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, IVF_RABITQ, HNSW, HNSW_SQ, HNSW_PQ.

FLOAT16, BFLOAT16 and INT8 vectors are converted to float32. COSINE indexes
hold unit-length copies of the vectors and normalise each query, so callers
never pre-normalise. Scores of FLAT, IVF_FLAT and HNSW are exact for the rows
they return; the SQ, PQ and RaBitQ variants report the distance between the
query and the quantised vector, as Milvus does, or, built with ``refine``, the
distance to the refine copy (see `_quantized`).

A segment too small to train its quantiser (fewer rows than IVF lists need,
or than ``2**nbits`` PQ centroids) is served by an exact scan instead; the
index still reports the requested type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._errors import ParamError
from ..._types import DataType, larger_is_better
from ..storage._prefault import trim_heap_often
from ._base import BuildCancelled, FaissBlob, VectorIndex
from ._exact import (
    as_float32,
    exact_range_search,
    exact_search,
    in_range,
    normalized,
    sort_hits,
)
from ._faiss import build_threads, faiss, hnsw_search_raw, omp_threads_for, swig_ptr, threads_for
from ._grouped_scan import grouped_top_k
from ._ivf_bound import ListBounds, filtered_head, filtered_lists, list_sizes
from ._layout import Hubs, Layout, hubs_first, lay_out, layout_of
from ._mapped import MappedBlob, owned_copy
from ._params import MAX_EF
from ._quantized import (
    base_of,
    candidates,
    ivf_params,
    make_rabitq,
    refine_of,
    refine_params,
    refine_type_for,
    with_refine,
)
from ._subset_cache import CACHE as SUBSETS
from ._subset_cache import mask_facts, new_owner
from ._top_one import ip_top_one, l2_top_one

#: Filter planner, per index family. A filter keeping fewer than
#: ``FILTER_CROSSOVER[family] * ntotal`` rows, or at most
#: ``EXACT_SCAN_BUDGET[family]`` values (kept rows x dim), is answered by an
#: exact scan of exactly those rows instead of the ANN index. Measured with
#: ``bench/crossover.py`` (2-core VM, one query at a time, k=10, ef/nprobe
#: raised under filters as below; exact = gather kept rows + BLAS):
#:
#: - HNSW (M=16, efConstruction=200, ef=64): exact costs ~0.13 us per kept
#:   row at 128-d and ~0.25 us at 384-d. On 100k x 128 filtered HNSW takes
#:   3.0 ms at <=2% kept (ef raised to 2048), 1.65 ms at 5%, 0.77 ms at 10%;
#:   exact 0.26 / 0.65 / 1.23 ms: they cross near 7.5% = 7,500 rows ~ 1M
#:   row-dims. On MiniLM 10k x 384 they cross at 20% (0.48 vs 0.49 ms) =
#:   2,000 rows ~ 0.8M row-dims. Recall@10 of the selector path is >= 0.94
#:   from 0.5% kept up (0.76 at 0.2%). Exact below 3% bounds the worst case.
#: - IVF_FLAT (nlist=128, nprobe=16): its cost grows with the segment, not the
#:   filter. On 100k x 128 the two cross at 5% kept (0.66 vs 0.68 ms), on
#:   MiniLM 10k at about 3%; recall of the selector path is 1.0 at 0.2-20%.
FILTER_CROSSOVER: dict[str, float] = {"HNSW": 0.03, "IVF": 0.04}
EXACT_SCAN_BUDGET: dict[str, int] = {"HNSW": 1_000_000, "IVF": 100_000}
#: Under a filter keeping a share s of rows, HNSW's ef is multiplied by
#: ``min(1/s, HNSW_FILTER_EF_BOOST)`` and IVF's nprobe by ``1/s`` (up to nlist):
#: faiss skips rejected rows only when collecting results, so the candidate
#: lists must grow for the same number of allowed candidates to be seen.
HNSW_FILTER_EF_BOOST = 32.0
#: A filter keeping at most this many values (kept rows x dim) is answered by
#: an exact scan once the kept rows are gathered in the process's subset cache
#: (`_subset_cache`: a bitmap is admitted when it comes back). On 100k x 128
#: the scan of 10,000 gathered rows takes ~0.1 ms against ~0.6 ms for HNSW at
#: 10% kept with ef raised; 2.5M values (~20k rows at 128-d) is ~0.25 ms.
CACHED_SCAN_BUDGET = 2_500_000
#: Rows added to a faiss index per call while building or growing it, so that
#: the work can stop between slices (each slice still runs on every OpenMP
#: thread): an HNSW slice (M 16, efConstruction 200, 128-d) takes 300-430 ms on
#: one core at 60k rows.
BUILD_SLICE = 4096

_FAISS_METRIC = {
    "L2": faiss.METRIC_L2,
    "IP": faiss.METRIC_INNER_PRODUCT,
    "COSINE": faiss.METRIC_INNER_PRODUCT,
}
_SQ_TYPES = {
    "SQ4U": faiss.ScalarQuantizer.QT_4bit_uniform,
    "SQ6": faiss.ScalarQuantizer.QT_6bit,
    "SQ8": faiss.ScalarQuantizer.QT_8bit,
    "FP16": faiss.ScalarQuantizer.QT_fp16,
    "BF16": faiss.ScalarQuantizer.QT_bf16,
}


def default_pq_m(dim: int) -> int:
    """The largest divisor of `dim` not above ``dim // 2`` (2 dimensions per sub-quantiser)."""
    cap = max(1, dim // 2)
    return max(m for m in range(1, cap + 1) if dim % m == 0)


def _pq_m(params: dict[str, Any], dim: int) -> int:
    m = int(params.get("m") or default_pq_m(dim))
    if dim % m:
        raise ParamError(f"m must divide the vector dimension {dim}, got {m}")
    return m


def _trainable(index_type: str, params: dict[str, Any], n: int) -> bool:
    if index_type == "FLAT" or n == 0:
        return False
    if index_type.endswith("PQ") and n < 2 ** int(params.get("nbits", 8)):
        return False
    return True


def make_faiss(
    index_type: str, dim: int, metric: str, params: dict[str, Any], n: int, dtype: DataType = DataType.FLOAT_VECTOR
) -> faiss.Index | None:
    """An empty faiss index for the definition (paired with its refine copy if it refines), or None for an exact scan."""
    fm = _FAISS_METRIC[metric]
    if not _trainable(index_type, params, n):
        return None
    base = _make_base(index_type, dim, fm, params, n)
    refine_type = refine_type_for(dtype, params)
    return base if refine_type is None else with_refine(base, dim, fm, refine_type)


def _make_base(index_type: str, dim: int, fm: Any, params: dict[str, Any], n: int) -> faiss.Index:
    if index_type.startswith("HNSW"):
        M = int(params.get("M", 16))
        if index_type == "HNSW_SQ":
            idx = faiss.IndexHNSWSQ(dim, _SQ_TYPES[params.get("sq_type", "SQ8")], M, fm)
        elif index_type == "HNSW_PQ":
            idx = faiss.IndexHNSWPQ(dim, _pq_m(params, dim), M, int(params.get("nbits", 8)), fm)
        else:
            idx = faiss.IndexHNSWFlat(dim, M, fm)
        idx.hnsw.efConstruction = int(params.get("efConstruction", 200))
        return idx
    nlist = max(1, min(int(params.get("nlist", 128)), n // 39))
    quantizer = faiss.IndexFlat(dim, fm)
    if index_type == "IVF_SQ8":
        idx = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, fm)
    elif index_type == "IVF_PQ":
        idx = faiss.IndexIVFPQ(quantizer, dim, nlist, _pq_m(params, dim), int(params.get("nbits", 8)), fm)
    elif index_type == "IVF_RABITQ":
        idx = make_rabitq(quantizer, dim, nlist, fm)
    else:
        idx = faiss.IndexIVFFlat(quantizer, dim, nlist, fm)
    idx.own_fields = True
    quantizer.this.disown()
    return idx


class DenseIndex(VectorIndex):
    """A float-ish vector index; either a faiss index or, for FLAT, the raw float32 rows."""

    family = "dense"
    sets_threads = True  # a scan of gathered rows calls no faiss

    def __init__(
        self,
        dtype: DataType,
        dim: int,
        index_type: str,
        metric: str,
        params: dict[str, Any],
        *,
        index: faiss.Index | None = None,
        xb: np.ndarray | None = None,
        layout: Layout | None = None,
    ) -> None:
        ntotal = int(index.ntotal) if index is not None else int(xb.shape[0]) if xb is not None else 0
        super().__init__(dtype, dim, index_type, metric, params, ntotal)
        self._index: Any = index
        self._xb = xb
        self._kind = "HNSW" if index_type.startswith("HNSW") else "IVF"
        self._params_cache: dict[tuple[Any, ...], Any] = {}
        self._mapped: MappedBlob | None = None
        self._owner = new_owner()
        #: The last read-only mask answered from gathered rows, those rows, and (once an L2 scan asked) their
        #: squared norms: a filter that comes back on every call skips the subset cache's lookup (one entry, a
        #: quarter of its bytes at most), and its L2 scans the norms' computation (`_hot_norms`).
        self._hot: tuple[np.ndarray, tuple[np.ndarray, np.ndarray], np.ndarray | None] | None = None
        #: Where a large HNSW index keeps each row (`_layout`), or None: its numbers are the rows.
        self.layout = layout
        #: Rows added by `extended` since the index was last built from all its rows (`engine._rebuild`).
        self.grown = 0
        #: An IVF_FLAT or IVF_SQ8 index's per-list bounds, for filtered searches that stop early (`_ivf_bound`), or None.
        self.list_bounds: ListBounds | None = None

    @classmethod
    def build(
        cls,
        dtype: DataType,
        dim: int,
        index_type: str,
        metric: str,
        params: dict[str, Any],
        vectors: Any,
        cancelled: Callable[[], bool] | None = None,
        busy: Callable[[], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> DenseIndex:
        x = as_float32(dtype, vectors)
        if x.ndim != 2 or x.shape[1] != dim:
            raise ParamError(f"vectors must have shape [n, {dim}], got {x.shape}")
        idx = make_faiss(index_type, dim, metric, params, x.shape[0], dtype)
        if idx is None:
            return cls(dtype, dim, index_type, metric, params, xb=x)
        # Cosine: normalised a slice at a time, so no full copy of the vectors lies next to the
        # index's own while it is built (unless training needs them all at once).
        per_slice = metric == "COSINE"
        if not idx.is_trained:
            if per_slice:
                x, per_slice = normalized(x), False
            idx.train(x)
        hubs = hubs_first(idx, x.shape[0])
        _add_in_slices(idx, x, per_slice, f"building {index_type} over {x.shape[0]} rows", cancelled, busy, progress,
                       hubs)
        if index_type.startswith("IVF"):
            base_of(idx).make_direct_map()
        layout = Layout(hubs.order) if hubs is not None else None
        del hubs  # its levels (4 bytes a row) are faiss's own now: gone before the renumbering
        out = cls(dtype, dim, index_type, metric, params, index=idx, layout=lay_out(idx, layout, busy))
        out.list_bounds = None if per_slice else ListBounds.of(idx, x)  # x as faiss got it
        return out

    def extended(self, vectors: Any, cancelled: Callable[[], bool] | None = None,
                 busy: Callable[[], bool] | None = None,
                 progress: Callable[[int, int], None] | None = None) -> DenseIndex | None:
        x = as_float32(self.dtype, vectors)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ParamError(f"vectors must have shape [n, {self.dim}], got {x.shape}")
        total = self.ntotal + x.shape[0]
        if self._index is None:
            if _trainable(self.index_type, self.params, total):
                return None  # now large enough to train the real index: build it
            xb = self._xb if self._xb is not None else np.empty((0, self.dim), np.float32)
            return DenseIndex(self.dtype, self.dim, self.index_type, self.metric, self.params,
                              xb=np.concatenate([xb, x]))
        if self._kind == "IVF" and base_of(self._index).nlist != max(1, min(int(self.params.get("nlist", 128)), total // 39)):
            return None  # trained with fewer lists than the merged rows call for
        if self.metric == "COSINE":
            x = normalized(x)
        with self._growing():
            try:
                if self._mapped is not None:  # faiss grows only what it owns
                    self._index = owned_copy(self._mapped)
                    self._mapped = None
                sizes = list_sizes(self._index) if self.list_bounds is not None else None  # bounds read new rows only
                # Added in the order they came, not upper levels first (`hubs_first`): on a 1M index grown a
                # segment at a time that gave the same recall and 11% fewer searches/s.
                _add_in_slices(self._index, x, False, f"growing {self.index_type} by {x.shape[0]} rows", cancelled, busy,
                               progress)
                if self._kind == "IVF":
                    base_of(self._index).make_direct_map()
                    self.list_bounds = ListBounds.of(self._index, x, self.list_bounds, sizes)
                self.layout = lay_out(self._index, self.layout, busy)  # the new rows laid out with the others
            except BaseException:
                self.ntotal = -1  # half grown: never searched again
                raise
            self.ntotal = int(self._index.ntotal)
            self.grown += int(x.shape[0])
            self._params_cache.clear()
            self._hot = None
        return self

    def _prep(self, queries: Any) -> np.ndarray:
        q = as_float32(self.dtype, queries)
        if q.shape[1] != self.dim:
            raise ParamError(f"queries must have shape [nq, {self.dim}], got {q.shape}")
        return normalized(q) if self.metric == "COSINE" and self._index is not None else q

    def _exact_subset(self, allow: np.ndarray | None, kept: int, k: int) -> np.ndarray | None:
        """Rows to scan exactly instead of the ANN index, or None to use the index."""
        if allow is None or self._index is None:
            return None
        if kept <= k or kept * self.dim <= EXACT_SCAN_BUDGET[self._kind]:
            return mask_facts(allow).rows
        if kept < FILTER_CROSSOVER[self._kind] * self.ntotal:
            return mask_facts(allow).rows
        return None

    def _kept_rows(
        self, allow: np.ndarray, kept: int, ids: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The kept rows and their vectors: cached, gathered (when `ids` says scan), or None."""
        key = (self._owner, self.ntotal, mask_facts(allow).digest)

        def gather() -> tuple[np.ndarray, np.ndarray]:
            rows = ids if ids is not None else mask_facts(allow).rows
            vecs = self._vectors_at(rows)
            vecs.flags.writeable = False  # shared from the cache from now on (`_grouped_scan` knows it by identity)
            return rows, vecs

        # Gathering from flat storage costs less than a filtered index search with raised ef, so it
        # is done at the first sighting too (cached only from the second, like every filter's rows).
        cheap = isinstance(self._index, faiss.IndexHNSWFlat)
        return SUBSETS.get(key, kept * self.dim * 4, gather, always=ids is not None or cheap)

    def _vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """The index's vectors of `rows` (normalised for COSINE): sliced from flat storage, else reconstructed."""
        if self.layout is not None:
            rows = self.layout.place[rows]
        flat = self._flat_storage()
        return flat[rows] if flat is not None else self._index.reconstruct_batch(rows)

    def _flat_storage(self) -> np.ndarray | None:
        """The index's own float vectors ``[ntotal, dim]`` when it stores them plainly (HNSW): a view, not a copy.

        Valid while a search holds the index (`_enter`), which keeps it from growing meanwhile.
        """
        storage = refine_of(self._index)
        if storage is None:
            storage = getattr(self._index, "storage", None)
        if storage is None:
            return None
        flat = faiss.downcast_index(storage)
        if not isinstance(flat, faiss.IndexFlat) or flat.ntotal != self.ntotal:
            return None
        return faiss.rev_swig_ptr(flat.get_xb(), self.ntotal * self.dim).reshape(self.ntotal, self.dim)

    def _exact_metric(self) -> str:
        return "IP" if self.metric == "COSINE" and self._index is not None else self.metric

    def _faiss_params(
        self, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any], bits: np.ndarray | None = None
    ) -> Any:
        if allow is None:  # read-only during a search, so one object serves every thread
            key = (k, params.get("ef"), params.get("nprobe"), params.get("refine_k"), params.get("rbq_query_bits"))
            cached = self._params_cache.get(key)
            if cached is None:
                if len(self._params_cache) > 256:
                    self._params_cache.clear()
                cached = self._params_cache[key] = self._make_faiss_params(k, None, kept, params)
            return cached
        return self._make_faiss_params(k, allow, kept, params, bits)

    def _make_faiss_params(
        self, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any], bits: np.ndarray | None = None
    ) -> Any:
        sel = None
        if allow is not None:
            if self.layout is not None:
                bits = self.layout.bits(allow)
            elif bits is None:
                bits = mask_facts(allow).bits
            sel = faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(bits))
            sel.bits_ref = bits  # keeps the bitmap alive as long as the selector
        refined = refine_of(self._index) is not None
        if self._kind == "HNSW":
            ef = min(MAX_EF, max(int(params.get("ef", 64)), candidates(k, params, refined)))
            if allow is not None:
                ef = min(MAX_EF, int(ef * min(HNSW_FILTER_EF_BOOST, self.ntotal / max(kept, 1))))
            out = faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
        else:
            nlist = base_of(self._index).nlist
            nprobe = min(int(params.get("nprobe", 16)), nlist) if allow is None else \
                filtered_lists(params, self.ntotal, kept, nlist)
            out = ivf_params(self.index_type, nprobe, sel, params)
        return refine_params(out, float(params.get("refine_k", 1.0))) if refined else out

    def search_one(self, query: np.ndarray, k: int, params: dict[str, Any], rows: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` of one unfiltered query on a graph or IVF index: its one faiss call, without the general checks."""
        index = self._index
        hnsw = isinstance(index, faiss.IndexHNSW)
        if not (hnsw or isinstance(index, faiss.IndexIVF)) or query.shape[1] != self.dim or k > self.ntotal:
            return self.search(query, k, params=params, rows=rows)
        q = normalized(query) if self.metric == "COSINE" else query
        dist, found = np.empty((1, k), dtype=np.float32), np.empty((1, k), dtype=np.int64)
        self._enter(rows)
        try:
            sp_ = self._faiss_params(k, None, self.ntotal, params)
            if not hnsw:  # one query: faiss on this thread alone, no OpenMP team
                with omp_threads_for(1):
                    index.search_c(1, swig_ptr(q), k, swig_ptr(dist), swig_ptr(found), sp_)
            elif hnsw_search_raw is not None:
                hnsw_search_raw(index.this, 1, swig_ptr(q), k, swig_ptr(dist), swig_ptr(found), sp_.this)
            else:
                index.search_c(1, swig_ptr(q), k, swig_ptr(dist), swig_ptr(found), sp_)
        finally:
            self._leave()
        if found[0, k - 1] < 0:  # unfilled slots (row -1) at the end: the worst score, as `search` gives them
            dist[found < 0] = float("-inf") if larger_is_better(self.metric) else float("inf")
        if self.layout is not None:
            return dist, self.layout.rows(found)
        return dist, found

    def search_one_allowed(self, query: np.ndarray, k: int, allow: np.ndarray | None, params: dict[str, Any] | None,
                           rows: int) -> tuple[np.ndarray, np.ndarray]:
        """`search` of one filtered query whose kept rows are already gathered for a scan (`_hot`): the scan
        `_search` would run, without the general checks and thread settings (each scan sets its own)."""
        hot = self._hot
        metric = self._exact_metric()
        if hot is None or hot[0] is not allow or query.shape[1] != self.dim or metric not in ("IP", "L2"):
            return self.search(query, k, allow=allow, params=params, rows=rows)
        ids, vecs = hot[1]
        q = normalized(query)[0] if self.metric == "COSINE" else query[0]
        self._enter(rows)
        try:
            if metric == "IP":
                return grouped_top_k(ids, vecs, q, k, self._owner) or ip_top_one(vecs, ids, q, k)
            got = grouped_top_k(ids, vecs, q, k, self._owner, "L2")
            if got is None:
                norms = self._hot_norms(allow, hot[1])
                got = None if norms is None else l2_top_one(vecs, ids, q, k, norms)
        finally:
            self._leave()
        return got if got is not None else self.search(query, k, allow=allow, params=params, rows=rows)

    def _search(
        self, queries: Any, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        q = self._prep(queries)
        if self._index is None:
            return exact_search(DataType.FLOAT_VECTOR, self.metric, self._xb, q, k, allow=allow)
        hot = self._hot
        if hot is not None and hot[0] is allow:  # read-only, so the same array is the same filter
            sub: tuple[np.ndarray, np.ndarray] | None = hot[1]
        else:
            ids = self._exact_subset(allow, kept, k)
            sub = None
            if allow is not None and (ids is not None or kept * self.dim <= CACHED_SCAN_BUDGET):
                sub = self._kept_rows(allow, kept, ids)
                if sub is not None and not allow.flags.writeable and kept * self.dim * 4 <= SUBSETS.max_bytes // 4:
                    self._hot = (allow, sub, None)
        if sub is not None:
            ids, vecs = sub
            metric = self._exact_metric()
            if q.shape[0] == 1 and metric == "IP":
                return grouped_top_k(ids, vecs, q[0], k, self._owner) or ip_top_one(vecs, ids, q[0], k)
            got = grouped_top_k(ids, vecs, q[0], k, self._owner, "L2") if q.shape[0] == 1 and metric == "L2" else None
            if got is not None:
                return got
            norms = self._hot_norms(allow, sub) if metric == "L2" and allow is not None else None
            s, r = exact_search(DataType.FLOAT_VECTOR, metric, vecs, q, k, sq_norms=norms)
            return s, np.where(r >= 0, ids[np.maximum(r, 0)], -1)
        if allow is not None and self.list_bounds is not None:  # a query at a time, stopped early
            dist, rows = filtered_head(self._index, self.list_bounds, q, k, mask_facts(allow).bits, kept, params)
            if len(rows) < len(q):  # the others the usual way
                rest = self._faiss_search(q[len(rows):], k, allow, kept, params)
                dist, rows = np.concatenate([dist, rest[0]]), np.concatenate([rows, rest[1]])
            return dist, rows
        return self._faiss_search(q, k, allow, kept, params)

    def _faiss_search(self, q: np.ndarray, k: int, allow: np.ndarray | None, kept: int,
                      params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        sp_ = self._faiss_params(k, allow, kept, params)
        n = q.shape[0]  # faiss's own search(), less its argument checks (q is C-contiguous float32)
        dist, rows = np.empty((n, k), dtype=np.float32), np.empty((n, k), dtype=np.int64)
        if n == 1 and isinstance(self._index, faiss.IndexHNSW):  # one query: faiss opens no OpenMP team for it
            self._index.search_c(1, faiss.swig_ptr(q), k, faiss.swig_ptr(dist), faiss.swig_ptr(rows), sp_)
        else:
            with threads_for(n):
                self._index.search_c(n, faiss.swig_ptr(q), k, faiss.swig_ptr(dist), faiss.swig_ptr(rows), sp_)
        if rows[-1, k - 1] < 0 or n > 1:  # faiss leaves unfilled slots (row -1) at the end of a row
            dist[rows < 0] = float("-inf") if larger_is_better(self.metric) else float("inf")
        return dist, rows if self.layout is None else self.layout.rows(rows)

    def _hot_norms(self, allow: np.ndarray, sub: tuple[np.ndarray, np.ndarray]) -> np.ndarray | None:
        """The squared norms of the hot gathered rows `sub` (made once, kept with them), or None if `sub` is not hot.

        An exact L2 scan re-checks its candidates against a bound that takes the rows' norms
        (`_exact._guard_l2`): computed per search, they cost as much as the scan itself.
        """
        hot = self._hot
        if hot is None or hot[0] is not allow or hot[1] is not sub:
            return None
        if hot[2] is None:
            vecs = sub[1]
            hot = self._hot = (allow, sub, np.einsum("ij,ij->i", vecs, vecs))
        return hot[2]

    def _range(
        self,
        queries: Any,
        radius: float,
        range_filter: float | None,
        allow: np.ndarray | None,
        kept: int,
        params: dict[str, Any],
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        q = self._prep(queries)
        if self._index is None:
            return exact_range_search(
                DataType.FLOAT_VECTOR,
                self.metric,
                self._xb,
                q,
                radius=radius,
                range_filter=range_filter,
                allow=allow,
            )
        ids = self._exact_subset(allow, kept, 1)
        if ids is not None:
            vecs = self._vectors_at(ids)
            res = exact_range_search(
                DataType.FLOAT_VECTOR, self._exact_metric(), vecs, q, radius=radius, range_filter=range_filter
            )
            return [(s, ids[r]) for s, r in res]
        refine = refine_of(self._index)
        if refine is not None or self._kind == "HNSW":
            # faiss's HNSW range search keeps to the neighbourhood its beam reaches (about a thousand
            # rows, whatever the radius or ef); the vectors the graph links are scanned in full instead.
            sp_ = None
            if allow is not None:
                bits = mask_facts(allow).bits if self.layout is None else self.layout.bits(allow)
                sel = faiss.IDSelectorBitmap(self.ntotal, faiss.swig_ptr(bits))
                sp_ = faiss.SearchParameters(sel=sel)
            # A refined index is scanned through its refine copy, at the precision its scores carry.
            flat = refine if refine is not None else faiss.downcast_index(self._index.storage)
            lims, dist, rows = flat.range_search(q, radius, params=sp_)
            if self.layout is not None:
                rows = self.layout.order[rows]
        else:
            lims, dist, rows = self._index.range_search(q, radius, params=self._faiss_params(1, allow, kept, params))
        out = []
        for i in range(q.shape[0]):
            d, r = dist[lims[i] : lims[i + 1]], rows[lims[i] : lims[i + 1]]
            keep = in_range(d, self.metric, radius, range_filter)
            out.append(sort_hits(d[keep], r[keep], self.metric))
        return out

    def _header(self) -> dict[str, Any]:
        return {**super()._header(), "grown": self.grown} if self.grown else super()._header()

    def _arrays(self) -> dict[str, Any]:
        if self._index is None:
            assert self._xb is not None
            return {"xb": self._xb}
        out: dict[str, Any] = {"faiss": FaissBlob(self._index)}
        if self.layout is not None:
            out["order"] = self.layout.order
        if self.list_bounds is not None:
            out["list_bounds"] = self.list_bounds.array()
        return out

    @classmethod
    def from_arrays(cls, header: dict[str, Any], arrays: dict[str, Any]) -> DenseIndex:
        args = (
            DataType(header["dtype"]),
            header["dim"],
            header["index_type"],
            header["metric"],
            header["params"],
        )
        if "xb" in arrays:
            return cls(*args, xb=np.ascontiguousarray(arrays["xb"], dtype=np.float32))
        blob = arrays["faiss"]
        layout = layout_of(arrays.get("order"), header["ntotal"], mapped=isinstance(blob, MappedBlob))
        if isinstance(blob, MappedBlob):
            out = cls(*args, index=blob.read(), layout=layout)
            out._mapped = blob  # the file the index points into stays mapped while the index lives
        else:
            out = cls(*args, index=blob if not isinstance(blob, np.ndarray) else faiss.deserialize_index(blob),
                      layout=layout)
        out.grown = int(header.get("grown", 0))
        out.list_bounds = ListBounds.from_array(arrays.get("list_bounds"), out._index)
        return out


def _add_in_slices(idx: Any, x: np.ndarray, normalize: bool, what: str,
                   cancelled: Callable[[], bool] | None = None, busy: Callable[[], bool] | None = None,
                   progress: Callable[[int, int], None] | None = None, hubs: Hubs | None = None) -> None:
    """Add `x` to faiss index `idx` `BUILD_SLICE` rows at a time (normalised first if `normalize`).

    Between slices: `BuildCancelled` once `cancelled()`; while `busy()` the
    next slice runs on `build_threads`. With `hubs` the rows go in its order,
    each with the level it drew (`_layout.hubs_first`).
    """
    full = faiss.omp_get_max_threads()
    try:
        for start in range(0, x.shape[0], BUILD_SLICE):
            if cancelled is not None and cancelled():
                raise BuildCancelled(f"{what} was cancelled")
            if busy is not None:
                faiss.omp_set_num_threads(build_threads(full, busy()))
            if hubs is None:
                part = x[start : start + BUILD_SLICE]
            else:
                part = np.take(x, hubs.order[start : start + BUILD_SLICE], axis=0)
                hubs.preset(idx, start, start + part.shape[0])
            idx.add(normalized(part) if normalize else part)
            trim_heap_often()  # what faiss's arrays left behind as they grew
            if progress is not None:
                progress(start + part.shape[0], x.shape[0])
    finally:
        if busy is not None:
            faiss.omp_set_num_threads(full)
