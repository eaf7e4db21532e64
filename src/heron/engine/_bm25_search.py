"""BM25 search with the collection's global statistics.

A BM25 score depends on the whole collection: N (live rows), each query
term's df (live rows holding it) and avgdl (their mean length). Milvus Lite
keeps these per segment, so its scores drift as data grows and moves;
Heron computes them at each search from the live rows of every segment of
every partition (the ones a search is restricted to and the others), from
each segment's `Bm25Terms`: the BM25 index of a sealed segment, or postings
built once per segment state and remembered (a segment's first ``n`` rows
never change, only which of them are visible). A deleted or overwritten row
drops out of the statistics with the snapshot that stops seeing it; merges
and restarts change nothing, since the statistics are derived from live data.

`prepare` weights the query rows by ``qtf * idf`` and fixes avgdl; then
each segment answers with `Bm25Query.search_view` / `range_view`.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data import _sparse as sp
from .index._bm25 import DEFAULT_B, DEFAULT_K1, BM25Index, Bm25Terms, finite_avgdl, idf
from .index._exact import drop_small
from .index._params import shared_search_params

if TYPE_CHECKING:
    from ._collection import Collection
    from ._segment import SegmentView

_LOCK = threading.Lock()
#: segment -> field name -> (rows, terms): postings of segments without a BM25 index.
_TERMS: weakref.WeakKeyDictionary[Any, dict[str, tuple[int, Bm25Terms]]] = weakref.WeakKeyDictionary()


def terms_of(view: SegmentView, field: str, signature: Any) -> Bm25Terms:
    """The `Bm25Terms` of a view's rows: its segment's BM25 index, else postings built once per row count."""
    seg = view.segment
    vi = seg.vindex.get(field) if seg.sealed else None
    if vi is not None and isinstance(vi[1], BM25Index) and vi[1].ntotal == view.n \
            and (signature is None or vi[0] == signature):
        return vi[1].terms
    with _LOCK:
        hit = _TERMS.get(seg, {}).get(field)
    if hit is not None and hit[0] == view.n:
        return hit[1]
    terms = Bm25Terms.from_rows(view.vectors(field))
    with _LOCK:
        _TERMS.setdefault(seg, {})[field] = (view.n, terms)
    return terms


class Bm25Query:
    """Query rows weighted with the collection's statistics, and the parameters to score segments with."""

    def __init__(self, field: str, signature: Any, queries: sp.csr_matrix, avgdl: float, k1: float, b: float):
        self.field = field
        self.signature = signature
        self.queries = queries
        self.avgdl = avgdl
        self.k1 = k1
        self.b = b

    def collect(self, per_q: list[list[Any]], view: SegmentView, allow: np.ndarray | None, k: int,
                ranged: dict[str, Any] | None) -> int:
        """Add one view's hits to ``per_q`` as ``(score, view, row)``: top ``k``, or all in range; 1."""
        if ranged is not None:
            filt = ranged.get("range_filter")
            res = self.range_view(view, float(ranged["radius"]), None if filt is None else float(filt), allow)
            for qi, (scores, rows) in enumerate(res):
                per_q[qi].extend(zip(scores.tolist(), [view] * len(rows), rows.tolist()))
            return 1
        scores, rows = self.search_view(view, k, allow)
        for qi, (srow, rrow) in enumerate(zip(scores.tolist(), rows.tolist())):
            per_q[qi].extend([(s, view, i) for s, i in zip(srow, rrow) if i >= 0])
        return 1

    def search_view(self, view: SegmentView, k: int, allow: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        terms = terms_of(view, self.field, self.signature)
        return terms.topk(self.queries, k, allow, self.avgdl, self.k1, self.b)

    def range_view(
        self, view: SegmentView, radius: float, range_filter: float | None, allow: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        terms = terms_of(view, self.field, self.signature)
        return terms.range(self.queries, radius, range_filter, allow, self.avgdl, self.k1, self.b)


def prepare(coll: Collection, field: str, index_def: Any, queries: sp.csr_matrix,
            params: dict[str, Any]) -> Bm25Query:
    """Weight ``queries`` (raw query term counts) by global IDF and fix the global avgdl."""
    iparams = index_def.params if index_def is not None else {}
    k1 = float(iparams.get("bm25_k1", DEFAULT_K1))
    b = float(iparams.get("bm25_b", DEFAULT_B))
    signature = index_def.signature if index_def is not None else None
    q = queries.copy() if isinstance(queries, sp.csr_matrix) and queries.dtype == np.float32 else \
        sp.csr_matrix(queries, dtype=np.float32)
    q.sum_duplicates()
    qterms = np.unique(q.indices).astype(np.int64)
    n, total = 0, 0.0
    df = np.zeros(len(qterms), np.int64)
    snap = coll.snapshot(list(coll.partitions.values()))
    for i, (_, view) in enumerate(snap.views):
        if view.n == 0:
            continue
        live = None if snap.hidden[i] is None and view.all_visible(snap.seq) else snap.live(i)
        if live is not None and not live.any():
            continue
        terms = terms_of(view, field, signature)
        vn, vt = terms.live_stats(live)
        n += vn
        total += vt
        if len(qterms):
            df += terms.doc_freq(qterms, live)
    weights = idf(n, df)
    if q.nnz:
        q.data = (q.data * weights[np.searchsorted(qterms, q.indices)]).astype(np.float32)
    sparams = shared_search_params(index_def.index_type if index_def is not None else "SPARSE_INVERTED_INDEX", params)
    q = drop_small(q, float(sparams.get("drop_ratio_search", 0.0) or 0.0))
    return Bm25Query(field, signature, q, finite_avgdl(total, n), k1, b)
