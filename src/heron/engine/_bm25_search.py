"""BM25 search with the collection's global statistics.

A BM25 score depends on the whole collection: N (live rows), each query
term's df (live rows holding it) and avgdl (their mean length). Milvus Lite
keeps these per segment, so its scores drift as data grows and moves;
Heron computes them at each search from the live rows of every segment of
every partition (the ones a search is restricted to and the others), from
each segment's `Bm25Terms`: the BM25 index of a sealed segment, or postings
built from its rows and remembered (a segment's first ``n`` rows never
change, only which of them are visible; see `chunks_of`). A deleted or overwritten row
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
from .index._bm25 import DEFAULT_B, DEFAULT_K1, BM25Index, Bm25Terms, QueryRows, finite_avgdl, idf
from .index._exact import drop_small, sort_hits
from .index._params import shared_search_params

if TYPE_CHECKING:
    from ._collection import Collection
    from ._segment import SegmentView

_LOCK = threading.Lock()
#: segment -> field name -> chunks: postings of segments without a BM25 index (see `chunks_of`).
_TERMS: weakref.WeakKeyDictionary[Any, dict[str, list[tuple[int, Bm25Terms]]]] = weakref.WeakKeyDictionary()
#: A segment's postings are rebuilt as one chunk once it has more chunks than this.
MAX_CHUNKS = 8

Chunks = list[tuple[int, Bm25Terms]]


def chunks_of(view: SegmentView, field: str, signature: Any) -> Chunks:
    """The postings of a view's rows as ``(first row, terms)`` chunks that cover them in order.

    A sealed segment with a BM25 index: its index, one chunk. Otherwise the
    postings are built from the rows and remembered per segment; a growing
    segment's first rows never change, so after an insert only the new rows
    get a chunk of their own (LSM-like: past `MAX_CHUNKS` chunks, one rebuild).
    """
    seg = view.segment
    vi = seg.vindex.get(field) if seg.sealed else None
    if vi is not None and isinstance(vi[1], BM25Index) and vi[1].ntotal == view.n \
            and (signature is None or vi[0] == signature):
        return [(0, vi[1].terms)]
    with _LOCK:
        have = _TERMS.get(seg, {}).get(field) or []
    covered = have[-1][0] + have[-1][1].n if have else 0
    if covered == view.n:
        return have
    rows = view.vectors(field)
    if covered > view.n or not have or len(have) >= MAX_CHUNKS:  # an older view, the first, or too many
        chunks = [(0, Bm25Terms.from_rows(rows))]
        if covered > view.n:
            return chunks
    else:
        chunks = [*have, (covered, Bm25Terms.from_rows(rows[covered:view.n]))]
    with _LOCK:
        _TERMS.setdefault(seg, {})[field] = chunks
    return chunks


def _part(mask: np.ndarray | None, start: int, n: int) -> np.ndarray | None:
    return None if mask is None else mask[start:start + n]


class Bm25Query:
    """Query rows weighted with the collection's statistics, and the parameters to score segments with."""

    def __init__(self, field: str, signature: Any, queries: Any, avgdl: float, k1: float, b: float):
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
        chunks = chunks_of(view, self.field, self.signature)
        if len(chunks) == 1:
            return chunks[0][1].topk(self.queries, k, allow, self.avgdl, self.k1, self.b)
        parts = [(start, t.topk(self.queries, k, _part(allow, start, t.n), self.avgdl, self.k1, self.b))
                 for start, t in chunks]
        scores = np.concatenate([s for _, (s, _) in parts], axis=1)
        rows = np.concatenate([np.where(r >= 0, r + start, -1) for start, (_, r) in parts], axis=1)
        order = np.lexsort((np.where(rows >= 0, rows, np.iinfo(np.int64).max), -scores), axis=1)[:, :k]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(rows, order, axis=1)

    def range_view(
        self, view: SegmentView, radius: float, range_filter: float | None, allow: np.ndarray | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        q = self.queries.csr() if isinstance(self.queries, QueryRows) else self.queries
        out: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in range(q.shape[0])]
        for start, t in chunks_of(view, self.field, self.signature):
            res = t.range(q, radius, range_filter, _part(allow, start, t.n), self.avgdl, self.k1, self.b)
            for (ss, rr), (s, r) in zip(out, res):
                ss.append(s)
                rr.append(r + start)
        return [sort_hits(np.concatenate(ss), np.concatenate(rr), "IP") for ss, rr in out]


class _Stats:
    """The statistics of one collection state (snapshot sequence and segments): N, total length, and
    the IDF of each term looked up so far."""

    __slots__ = ("key", "n", "total", "idf")

    def __init__(self, key: Any, n: int, total: float) -> None:
        self.key = key
        self.n = n
        self.total = total
        self.idf: dict[int, float] = {}


#: collection -> field -> the statistics of its latest state searched.
_STATS: weakref.WeakKeyDictionary[Any, dict[str, _Stats]] = weakref.WeakKeyDictionary()
_IDF_MEMO_MAX = 1 << 16


def _live_views(coll: Collection, field: str, signature: Any) -> tuple[Any, list[tuple[Bm25Terms, Any]]]:
    snap = coll.snapshot(list(coll.partitions.values()))
    key = (snap.seq, signature, tuple((v.segment.id, v.n) for _, v in snap.views))
    out: list[tuple[Bm25Terms, Any]] = []
    for i, (_, view) in enumerate(snap.views):
        if view.n == 0:
            continue
        live = None if snap.hidden[i] is None and view.all_visible(snap.seq) else snap.live(i)
        if live is not None and not live.any():
            continue
        out.extend((terms, _part(live, start, terms.n)) for start, terms in chunks_of(view, field, signature))
    return key, out


def global_stats(coll: Collection, field: str, signature: Any, terms: list[int]) -> tuple[int, float, list[float]]:
    """N, total length and the IDF of each of ``terms``, over the collection's live rows.

    Remembered per collection state (its snapshot's sequence number and
    segments): while nothing is written, deleted or merged, a search only
    looks up the df of terms not seen before.
    """
    key, views = _live_views(coll, field, signature)
    with _LOCK:
        st = _STATS.get(coll, {}).get(field)
    if st is None or st.key != key:
        n, total = 0, 0.0
        for t, live in views:
            vn, vt = t.live_stats(live)
            n, total = n + vn, total + vt
        st = _Stats(key, n, total)
        with _LOCK:
            _STATS.setdefault(coll, {})[field] = st
    memo = st.idf
    try:
        return st.n, st.total, list(map(memo.__getitem__, terms))  # every term looked up before
    except KeyError:
        pass
    got = {t: v for t in terms if (v := memo.get(t)) is not None}
    todo = {t for t in terms if t not in got}
    arr = np.fromiter(sorted(todo), dtype=np.int64, count=len(todo))
    df = np.zeros(len(arr), np.int64)
    for t, live in views:
        df += t.doc_freq(arr, live)
    found = dict(zip(arr.tolist(), idf(st.n, df).tolist()))
    if len(memo) + len(found) > _IDF_MEMO_MAX:
        memo.clear()  # threads reading it meanwhile look their terms up again
    memo.update(found)
    got.update(found)
    return st.n, st.total, list(map(got.__getitem__, terms))


def prepare(coll: Collection, field: str, index_def: Any, queries: sp.csr_matrix | QueryRows,
            params: dict[str, Any]) -> Bm25Query:
    """Weight ``queries`` (raw query term counts) by global IDF and fix the global avgdl.

    ``queries``: a sparse matrix, or `QueryRows` (query texts turned into term counts by the BM25 function).
    """
    iparams = index_def.params if index_def is not None else {}
    k1 = float(iparams.get("bm25_k1", DEFAULT_K1))
    b = float(iparams.get("bm25_b", DEFAULT_B))
    signature = index_def.signature if index_def is not None else None
    q: Any = queries
    if not isinstance(q, QueryRows):
        q = q if isinstance(q, sp.csr_matrix) else sp.csr_matrix(q, dtype=np.float32)
        if not q.has_canonical_format:
            q = q.copy()
            q.sum_duplicates()
    terms = q.indices.tolist()
    n, total, weights = global_stats(coll, field, signature, terms)
    if len(weights) <= 64:  # qtf * idf in float64, then float32, as below, without numpy's costs on a few terms
        data = np.array([c * w for c, w in zip(q.data.tolist(), weights)], dtype=np.float32).reshape(-1)
    else:
        data = (q.data * np.array(weights, dtype=np.float64)).astype(np.float32)
    sparams = shared_search_params(index_def.index_type if index_def is not None else "SPARSE_INVERTED_INDEX", params)
    ratio = float(sparams.get("drop_ratio_search", 0.0) or 0.0)
    rows: Any = QueryRows(q.indptr, q.indices, data, q.shape)
    if ratio > 0:
        rows = drop_small(rows.csr(), ratio)
    return Bm25Query(field, signature, rows, finite_avgdl(total, n), k1, b)
