"""BM25 over sparse term-frequency rows: per-segment postings, global statistics, scoring.

Rows of a BM25 field hold raw term counts (see ``engine/functions/_bm25.py``).
A segment's `Bm25Terms` keeps them term-major (one posting list of
``(row, tf)`` per term, sorted by row) with each row's length ``dl`` (the
sum of its counts). It answers the two halves of a BM25 search:

- statistics: for a mask of live rows, how many there are, their total
  length, and each query term's document frequency among them. The engine
  adds these up over every segment of every partition, so that N, df and
  avgdl are the collection's, whatever the search is restricted to;
- scoring: given query rows already weighted by ``qtf * idf`` (global) and
  the global ``avgdl``, each row's score is
  ``sum_t w_t * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))``.
  The per-posting factor depends on avgdl only; it is computed for the
  whole segment once per avgdl (vectorised) and reused until avgdl changes.

Top-k, per query: when its terms' postings are few (under
`PRUNE_MIN_POSTINGS`, or fewer than `PRUNE_MIN_PER_ROW` per row of the
segment) they are all summed at once (one ``bincount``) and the
k best taken from the rows at or above a floor sampled from the scores;
past that, MaxScore pruning: terms are taken from
the highest upper bound down, and once the k-th best score so far exceeds
what the remaining terms could add to a row not yet seen, those terms only
add to the candidates still able to reach the top k. (Measured by
``python -m bench.bm25 --maxscore``: in numpy, summing every posting wins up
to 100k rows at least.) Either way, ties at the k-th place go to the lower
row. Range search goes through one sparse matrix product.

`BM25Index` is the index a ``SPARSE_INVERTED_INDEX``/``SPARSE_WAND`` with
metric ``BM25`` builds per sealed segment: a `Bm25Terms` that is saved and
loaded like any other index. Searched on its own (without the engine's
statistics) it scores with the segment's own statistics.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from ..._types import DataType
from ...data import _sparse as sp
from ._base import VectorIndex
from ._exact import as_csr, compact_columns, drop_small, empty_result, in_range, sort_hits

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
#: MaxScore checks for pruning only while at least this many postings are left to visit.
PRUNE_MIN_POSTINGS = 16384
#: ... and only while they are at least this many per row of the segment: below that, summing every
#: posting costs less than pruning does (``python -m bench.bm25 --maxscore``).
PRUNE_MIN_PER_ROW = 4.0
#: Top-k takes its floor from every this-many-th score (see `_candidates`).
SAMPLE_STRIDE = 8
#: Top-k sorts up to this many candidates outright; more are partitioned first.
SORT_MAX = 512


def idf(n: int, df: np.ndarray) -> np.ndarray:
    """Milvus's BM25 IDF: ``log(1 + (N - df + 0.5) / (df + 0.5))``."""
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((n - df + 0.5) / (df + 0.5))


class Bm25Terms:
    """One segment's BM25 postings and row lengths; immutable apart from its score cache."""

    def __init__(self, vocab: np.ndarray, postings: sp.csr_matrix, dl: np.ndarray) -> None:
        self.vocab = vocab  # sorted term ids (int64)
        self.postings = postings  # [len(vocab), n] raw term counts, rows sorted
        self.dl = dl  # float32 [n]
        self.n = int(dl.shape[0])
        self.total_dl = float(dl.sum(dtype=np.float64))
        self._lock = threading.Lock()
        self._weighted: tuple[tuple[float, float, float], sp.csr_matrix, np.ndarray] | None = None

    @classmethod
    def from_rows(cls, vectors: Any) -> Bm25Terms:
        x = as_csr(vectors)
        dl = np.asarray(x.sum(axis=1), dtype=np.float32).ravel()
        if x.nnz and x.data.min() < 0:
            x = x.copy()
            x.data[x.data < 0] = 0
        x.eliminate_zeros()
        vocab = np.unique(x.indices).astype(np.int64)
        postings = compact_columns(x, vocab).T.tocsr()
        postings.sort_indices()
        return cls(vocab, postings, dl)

    # -- statistics ----------------------------------------------------------------------
    def live_stats(self, live: np.ndarray | None) -> tuple[int, float]:
        """How many rows are live, and their total length."""
        if live is None:
            return self.n, self.total_dl
        return int(np.count_nonzero(live)), float(np.dot(self.dl, live.astype(np.float32)))

    def doc_freq(self, terms: np.ndarray, live: np.ndarray | None) -> np.ndarray:
        """For each of the sorted, distinct ``terms``: how many live rows hold it."""
        out = np.zeros(len(terms), dtype=np.int64)
        pos, hit = self._positions(terms)
        if not hit.any():
            return out
        p = self.postings
        lo, hi = p.indptr[pos[hit]], p.indptr[pos[hit] + 1]
        if live is None:
            out[hit] = hi - lo
            return out
        lens = hi - lo
        idx = np.repeat(lo - np.concatenate(([0], np.cumsum(lens)[:-1])), lens) + np.arange(int(lens.sum()))
        which = np.repeat(np.arange(len(lens)), lens)
        out[hit] = np.bincount(which, weights=live[p.indices[idx]], minlength=len(lens)).astype(np.int64)
        return out

    def _positions(self, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.vocab):
            return np.zeros(len(terms), np.int64), np.zeros(len(terms), bool)
        pos = np.minimum(np.searchsorted(self.vocab, terms), len(self.vocab) - 1)
        return pos, self.vocab[pos] == terms

    # -- scoring -------------------------------------------------------------------------
    def weighted(self, avgdl: float, k1: float, b: float) -> tuple[sp.csr_matrix, np.ndarray]:
        """The postings with each count turned into its BM25 factor, and each term's largest factor."""
        key = (float(avgdl), float(k1), float(b))
        cur = self._weighted
        if cur is not None and cur[0] == key:
            return cur[1], cur[2]
        p = self.postings
        tf = p.data.astype(np.float32)
        norm = np.float32(k1) * (np.float32(1 - b) + np.float32(b / avgdl if avgdl > 0 else 0.0) * self.dl)
        data = tf * np.float32(k1 + 1) / (tf + norm[p.indices])
        w = sp.csr_matrix((data, p.indices, p.indptr), shape=p.shape)
        bound = np.zeros(p.shape[0], np.float32)
        nonempty = np.diff(p.indptr) > 0
        if nonempty.any():
            bound[nonempty] = np.maximum.reduceat(data, p.indptr[:-1][nonempty])
        with self._lock:
            self._weighted = (key, w, bound)
        return w, bound

    def scores(self, queries: sp.csr_matrix, avgdl: float, k1: float, b: float) -> sp.csr_matrix:
        """``[nq, n]`` scores of every row holding a query term (``queries`` weighted by qtf * idf)."""
        w, _ = self.weighted(avgdl, k1, b)
        return sp.csr_matrix(compact_columns(queries, self.vocab) @ w)

    def topk(
        self, queries: Any, k: int, allow: np.ndarray | None, avgdl: float, k1: float, b: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Best ``k`` rows per query, best first; only rows with a query term (score > 0) are hits.

        ``queries`` is a CSR matrix, or anything with its ``indptr``, ``indices``, ``data`` and ``shape``.
        """
        nq = queries.shape[0]
        out_s, out_r = empty_result(nq, k, "IP")
        w, bound = self.weighted(avgdl, k1, b)
        vocab, ptr = self.vocab, w.indptr
        nv = len(vocab)
        if not nv:
            return out_s, out_r
        # a query has a few terms: plain Python over them costs less than numpy calls on tiny arrays
        qidx = queries.indices
        pos, terms, wts, qptr = vocab.searchsorted(qidx).tolist(), qidx.tolist(), \
            queries.data.tolist(), queries.indptr.tolist()
        for i in range(nq):
            starts: list[int] = []
            ends: list[int] = []
            weights: list[float] = []
            rows: list[int] = []
            total = 0
            for j in range(qptr[i], qptr[i + 1]):
                p, wt = pos[j], wts[j]
                if p >= nv or not wt > 0 or vocab[p] != terms[j]:
                    continue
                lo, hi = int(ptr[p]), int(ptr[p + 1])
                if hi > lo:
                    starts.append(lo)
                    ends.append(hi)
                    weights.append(wt)
                    rows.append(p)
                    total += hi - lo
            if total == 0:
                continue
            if total < PRUNE_MIN_POSTINGS or total < PRUNE_MIN_PER_ROW * self.n:
                s, r = _accumulate(w, starts, ends, weights, k, allow, self.n)
            else:
                s, r = _maxscore(w, bound, np.array(rows, np.int64), np.array(weights, queries.data.dtype), k,
                                 allow, self.n)
            out_s[i, : len(s)] = s
            out_r[i, : len(r)] = r
        return out_s, out_r

    def range(
        self, queries: sp.csr_matrix, radius: float, range_filter: float | None, allow: np.ndarray | None,
        avgdl: float, k1: float, b: float,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        s = self.scores(queries, avgdl, k1, b)
        out = []
        for i in range(s.shape[0]):
            lo, hi = s.indptr[i], s.indptr[i + 1]
            vals, rows = s.data[lo:hi], s.indices[lo:hi].astype(np.int64)
            keep = in_range(vals, "IP", radius, range_filter) & (vals > 0)
            if allow is not None:
                keep &= allow[rows]
            out.append(sort_hits(vals[keep], rows[keep], "IP"))
        return out


def _accumulate(
    w: sp.csr_matrix, starts: list[int], ends: list[int], weights: list[float], k: int,
    allow: np.ndarray | None, n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One query's top-k from all its postings at once (few postings: nothing worth pruning).

    The query's terms are the postings ``starts[i]:ends[i]`` of ``w``, weighted ``weights[i]``.
    """
    ind, dat = w.indices, w.data
    if len(starts) == 1:
        rows, vals = ind[starts[0]:ends[0]], dat[starts[0]:ends[0]] * weights[0]
    else:
        # in the types bincount reads: no conversion pass after the copy
        rows = np.concatenate([ind[lo:hi] for lo, hi in zip(starts, ends)], dtype=np.intp)
        vals = np.concatenate([dat[lo:hi] * wt for lo, hi, wt in zip(starts, ends, weights)], dtype=np.float64)
    acc = np.bincount(rows, weights=vals, minlength=n)
    if allow is not None:
        acc *= allow
    return top_of(acc[ids], ids, k) if (ids := _candidates(acc, k)) is not None else top_of(acc, np.arange(n), k)


def _candidates(acc: np.ndarray, k: int) -> np.ndarray | None:
    """Rows (ascending) that hold the ``k`` largest positive scores of ``acc`` and few more; None: all rows.

    The k-th largest of every `SAMPLE_STRIDE`-th score is a floor that at
    least k scores reach: one pass over ``acc`` keeps the rows at or above it,
    which costs less than a partition of the whole array.
    """
    sample = acc[::SAMPLE_STRIDE].copy()
    if len(sample) <= k:
        return None
    sample.partition(len(sample) - k)
    floor = sample[len(sample) - k]
    return (acc >= floor).nonzero()[0] if floor > 0 else (acc > 0).nonzero()[0]


def top_of(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best positive ``scores`` with their ``ids`` (ascending), best first (ties: lower id first)."""
    if len(scores) > max(k, SORT_MAX):  # the k smallest of the negated scores: much faster than the k largest
        part = np.argpartition(-scores, k - 1)[:k]
        kth = scores[part].min()
        tie = np.flatnonzero(scores == kth) if kth > 0 else ()
        if len(tie) > 1:  # ties at the cut: the lower ids
            above = np.flatnonzero(scores > kth)
            part = np.concatenate((above, tie[: k - len(above)]))
        else:
            part.sort()  # in id order, for the stable sort below
        scores, ids = scores[part], ids[part]
    order = (-scores).argsort(kind="stable")[:k]  # stable: ties keep the lower id first
    scores, ids = scores[order], ids[order]
    keep = scores > 0
    return scores[keep].astype(np.float32), ids[keep].astype(np.int64)


def _maxscore(
    w: sp.csr_matrix, bound: np.ndarray, terms: np.ndarray, weights: np.ndarray, k: int,
    allow: np.ndarray | None, n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One query's top-k by MaxScore over term-at-a-time accumulation (see the module docstring).

    Terms are visited by falling upper bound (``weight * largest factor``).
    While the bounds of the terms not yet visited still sum above the k-th
    best score so far, a visited term may bring in new rows. After that the
    remaining terms only add to candidates: rows seen whose score plus the
    remaining bound still reaches the k-th best, a set that shrinks as the
    k-th best rises; their postings are looked up by binary search.
    """
    ub = weights * bound[terms]
    order = np.argsort(-ub, kind="stable")
    terms, weights = terms[order], weights[order]
    rest = np.concatenate((np.cumsum(ub[order][::-1])[::-1], [0.0]))  # rest[j]: bound of terms j..end
    lens = w.indptr[terms + 1] - w.indptr[terms]
    # postings left after each term: pruning pays only while many are left to skip
    left = np.concatenate((np.cumsum(lens[::-1])[::-1][1:], [0]))
    acc = np.zeros(n, np.float32)
    p = w
    seen = np.zeros(n, bool)
    cand: np.ndarray | None = None
    for j in range(len(terms)):
        lo, hi = p.indptr[terms[j]], p.indptr[terms[j] + 1]
        rows = p.indices[lo:hi]
        if cand is None:
            acc[rows] += p.data[lo:hi] * np.float32(weights[j])
            seen[rows] = True
            if left[j] < PRUNE_MIN_POSTINGS or k >= n:  # too little left to skip: plain accumulation
                continue
            ids = np.flatnonzero(seen if allow is None else seen & allow)
            if len(ids) >= k:
                kth = np.partition(acc[ids], len(ids) - k)[len(ids) - k]
                if kth > rest[j + 1]:  # no row unseen so far can reach the top-k any more
                    cand = ids[acc[ids] + np.float32(rest[j + 1]) >= kth]
        else:
            pos = np.minimum(np.searchsorted(rows, cand), max(len(rows) - 1, 0))
            hit = rows[pos] == cand if len(rows) else np.zeros(len(cand), bool)
            acc[cand[hit]] += p.data[lo:hi][pos[hit]] * np.float32(weights[j])
            if len(cand) > k:
                kth = np.partition(acc[cand], len(cand) - k)[len(cand) - k]
                cand = cand[acc[cand] + np.float32(rest[j + 1]) >= kth]
    if cand is not None:
        ids = cand
    else:
        ids = np.flatnonzero(seen if allow is None else seen & allow)
    return top_of(acc[ids], ids, k)


class QueryRows:
    """Query rows as `Bm25Terms.topk` reads them (a CSR matrix's arrays), made without building one.

    Each row's term ids are sorted and distinct (a canonical CSR matrix's layout).
    """

    __slots__ = ("indptr", "indices", "data", "shape")

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> None:
        self.indptr, self.indices, self.data, self.shape = indptr, indices, data, shape

    def csr(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


class BM25Index(VectorIndex):
    """BM25 postings of one sealed segment (``SPARSE_INVERTED_INDEX``/``SPARSE_WAND`` with metric BM25)."""

    family = "bm25"

    def __init__(self, index_type: str, params: dict[str, Any], terms: Bm25Terms) -> None:
        super().__init__(DataType.SPARSE_FLOAT_VECTOR, 0, index_type, "BM25", params, terms.n)
        self.terms = terms
        self.k1 = float(params.get("bm25_k1", DEFAULT_K1))
        self.b = float(params.get("bm25_b", DEFAULT_B))

    @classmethod
    def build(cls, index_type: str, params: dict[str, Any], vectors: Any) -> BM25Index:
        return cls(index_type, params, Bm25Terms.from_rows(vectors))

    def _local(self, queries: Any, params: dict[str, Any]) -> tuple[sp.csr_matrix, float]:
        """Queries weighted with this segment's own statistics (a search outside the engine)."""
        q = as_csr(queries)
        terms = np.unique(q.indices).astype(np.int64)
        n, total = self.terms.live_stats(None)
        weights = idf(n, self.terms.doc_freq(terms, None))
        q = q.copy()
        q.data = (q.data * weights[np.searchsorted(terms, q.indices)]).astype(np.float32)
        q = drop_small(q, float(params.get("drop_ratio_search", 0.0)))
        return q, (total / n if n else 0.0)

    def _search(
        self, queries: Any, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        q, avgdl = self._local(queries, params)
        return self.terms.topk(q, k, allow, avgdl, self.k1, self.b)

    def _range(
        self, queries: Any, radius: float, range_filter: float | None, allow: np.ndarray | None, kept: int,
        params: dict[str, Any],
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        q, avgdl = self._local(queries, params)
        return self.terms.range(q, radius, range_filter, allow, avgdl, self.k1, self.b)

    def _arrays(self) -> dict[str, np.ndarray]:
        t = self.terms
        p = t.postings
        return {"vocab": t.vocab, "data": p.data, "indices": p.indices, "indptr": p.indptr, "dl": t.dl}

    @classmethod
    def from_arrays(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> BM25Index:
        vocab, dl = arrays["vocab"], np.asarray(arrays["dl"], dtype=np.float32)
        n = int(header["ntotal"])
        if dl.shape != (n,):
            raise ValueError(f"dl holds {dl.shape[0]} rows, header says {n}")
        postings = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(len(vocab), n))
        return cls(header["index_type"], header["params"], Bm25Terms(vocab, postings, dl))


def finite_avgdl(total: float, n: int) -> float:
    """The average row length, 0 for no rows."""
    return total / n if n and math.isfinite(total) else 0.0
