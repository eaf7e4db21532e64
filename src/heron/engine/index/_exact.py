"""Exact (brute-force) vector search: the reference every index is held to.

Used for growing segments, for filters that keep few rows, and as the
fallback when an index is missing. Scores follow Milvus: L2 is the squared
Euclidean distance, IP the inner product, COSINE the cosine similarity
(a zero vector scores 0, never NaN), HAMMING the number of differing bits and
JACCARD ``1 - |a&b| / |a|b|`` (0 when both are empty). Sparse vectors score
by inner product, and only rows whose score with the query is non-zero are
returned. Results are ``(scores float32 [nq, k], rows int64 [nq, k])`` best
first; unfilled slots hold row -1 and the worst possible score (``-inf`` when
larger is better, ``+inf`` otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..._errors import ParamError
from ..._types import DataType, larger_is_better
from ...data import _sparse as sp
from ._faiss import faiss, threads_for

try:  # numpy's C einsum, without the Python argument handling of np.einsum (a few us a call)
    from numpy._core.multiarray import c_einsum as _c_einsum
except ImportError:  # pragma: no cover - numpy < 2
    _c_einsum = np.einsum

_F32 = np.dtype(np.float32)
_BLOCK = 1 << 23  # score-matrix elements computed at a time
#: Score matrices of at most this many rows are reduced to top-k row by row.
_ROWWISE_TOPK = 8
#: Inner-product searches of at most this many queries over at least this many vector
#: elements (rows x dim) go to BLAS; below it faiss's row loop is the faster (measured on 2 cores).
BLAS_IP_MAX_NQ = 8
#: A score row of at most this many columns is sorted whole instead of partitioned (`_row_best`).
_SORT_ALL_BELOW = 256
BLAS_IP_MIN_ELEMENTS = 1 << 19


def worst_score(metric: str) -> float:
    return float("-inf") if larger_is_better(metric) else float("inf")


def empty_result(nq: int, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    scores, rows = np.empty((nq, k), dtype=np.float32), np.empty((nq, k), dtype=np.int64)
    scores.fill(worst_score(metric))
    rows.fill(-1)
    return scores, rows


def as_float32(dtype: DataType, arr: Any) -> np.ndarray:
    """Dense vectors of any float-ish type as C-contiguous float32 ``[n, dim]``."""
    if type(arr) is np.ndarray and arr.dtype == _F32 and arr.ndim == 2 and arr.flags.c_contiguous:
        if dtype is not DataType.BFLOAT16_VECTOR:
            return arr  # already what is asked for (the common case, on every search)
    a = np.asarray(arr)
    if dtype is DataType.BFLOAT16_VECTOR or a.dtype == np.uint16:
        a = (np.ascontiguousarray(a, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    return np.ascontiguousarray(a, dtype=np.float32)


def normalized(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero."""
    if x.shape[0] == 1:  # one query: the same arithmetic without the array plumbing
        # sqrt of a float32 in double precision, rounded to float32, is the float32 sqrt (no double rounding)
        return x / np.float32(max(math.sqrt(float(_c_einsum("ij,ij->", x, x, dtype=np.float32))), 1e-30))
    norms = np.sqrt(_c_einsum("ij,ij->i", x, x, dtype=np.float32))
    np.maximum(norms, np.float32(1e-30), out=norms)
    return x / norms[:, None]


def _row_best(s: np.ndarray, kk: int, big: bool) -> tuple[np.ndarray, np.ndarray]:
    """The best ``kk <= len(s)`` entries of one score row: ``(scores, columns)``, best first, NaN last.

    Ties inside the result go to the lower column (at the cut, a partition may keep either).
    """
    n = s.shape[0]
    if n <= _SORT_ALL_BELOW:  # a few columns: one stable sort beats a partition
        order = np.argsort(-s if big else s, kind="stable")[:kk]
        return s[order], order
    part = np.arange(n) if kk == n else (
        s.argpartition(n - kk)[n - kk :] if big else s.argpartition(kk - 1)[:kk]  # the method: no wrapper
    )
    vals = s[part]
    order = np.lexsort((part, -vals if big else vals))
    return vals[order], part[order]


def select_topk(scores: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns of each row of a score matrix (ties by lower column)."""
    nq, n = scores.shape
    out_s, out_r = empty_result(nq, k, metric)
    kk = min(k, n)
    if kk == 0:
        return out_s, out_r
    big = larger_is_better(metric)
    if nq <= _ROWWISE_TOPK:  # a few rows: 1-d calls cost less than the 2-d plumbing
        for i, s in enumerate(scores):
            vals, rows = _row_best(s, kk, big)
            rows[~np.isfinite(vals)] = -1
            out_s[i, :kk], out_r[i, :kk] = vals, rows
        return out_s, out_r
    if kk == n:
        part = np.tile(np.arange(n), (nq, 1))
    elif big:  # the largest kk, without negating the whole matrix
        part = np.argpartition(scores, n - kk, axis=1)[:, n - kk :]
    else:
        part = np.argpartition(scores, kk - 1, axis=1)[:, :kk]
    pk = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -pk if big else pk), axis=1)
    rows = np.take_along_axis(part, order, axis=1)
    out_r[:, :kk] = rows
    out_s[:, :kk] = np.take_along_axis(scores, rows, axis=1)
    bad = ~np.isfinite(out_s[:, :kk])
    out_r[:, :kk][bad] = -1
    return out_s, out_r


def _dense_block_scores(metric: str, x: np.ndarray, q: np.ndarray, xsq: Any) -> np.ndarray:
    if metric == "COSINE":
        return (normalized(q) @ x.T) / np.maximum(xsq, np.float32(1e-30))[None, :]  # xsq holds norms
    dots = q @ x.T
    if metric == "IP":
        return dots
    qsq = np.einsum("ij,ij->i", q, q)
    return np.maximum(xsq[None, :] - 2 * dots + qsq[:, None], 0)


def _binary_block_scores(metric: str, x: np.ndarray, q: np.ndarray, xpop: np.ndarray) -> np.ndarray:
    out = np.empty((q.shape[0], x.shape[0]), dtype=np.float32)
    for i, row in enumerate(q):
        if metric == "HAMMING":
            out[i] = np.bitwise_count(x ^ row).sum(axis=1, dtype=np.int64)
            continue
        inter = np.bitwise_count(x & row).sum(axis=1, dtype=np.int64)
        union = xpop + int(np.bitwise_count(row).sum()) - inter
        out[i] = np.where(union > 0, 1.0 - inter / np.maximum(union, 1), 0.0)
    return out


def l2_candidates(k: int) -> int:
    """How many L2 candidates to re-score exactly so rounding in the matrix form cannot drop a true hit."""
    return k + max(k, 16)


def _refine_l2(x: np.ndarray, q: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> None:
    """Recompute L2 hits as sums of squared differences, in place, and re-sort each row.

    The matrix form ``|x|^2 - 2 x.q + |q|^2`` loses digits to cancellation
    when vectors are long and close; the reported distances must not.
    """
    ok = rows >= 0
    for i in range(len(rows)):
        r = rows[i][ok[i]]
        d = x[r] - q[i]
        exact = np.einsum("ij,ij->i", d, d)
        order = np.lexsort((r, exact))
        rows[i][: len(r)], scores[i][: len(r)] = r[order], exact[order]


def _guard_l2(
    x: np.ndarray, q: np.ndarray, k: int, edge: np.ndarray, scores: np.ndarray, rows: np.ndarray,
    sq_norms: np.ndarray | None,
) -> None:
    """Redo, in place, any query whose candidate set may have missed a true top-k row.

    Rounding in ``|x|^2 - 2 x.q + |q|^2`` is bounded by a few float32 epsilons
    times ``|x|^2 + |q|^2``. When the widest candidate's rounded distance is
    not clearly beyond the exact k-th distance, a row outside the candidates
    could still be closer: that query is rescanned, re-scoring exactly every
    row whose rounded distance lies within the error band.
    """
    xsq = sq_norms if sq_norms is not None else np.einsum("ij,ij->i", x, x)
    xmax = float(xsq.max()) if len(xsq) else 0.0
    for i in range(q.shape[0]):
        qsq = float(q[i] @ q[i])
        err = 8 * 1.2e-7 * (xmax + qsq) + 1e-30
        kth = scores[i][min(k, len(scores[i])) - 1]
        if not np.isfinite(edge[i]) or edge[i] - err > kth + err:
            continue
        approx = xsq - 2 * (x @ q[i]) + qsq
        bound = np.partition(approx, k - 1)[k - 1] + 2 * err
        cand = np.flatnonzero(approx <= bound)
        d = x[cand] - q[i]
        exact = np.einsum("ij,ij->i", d, d)
        order = np.lexsort((cand, exact))[: scores.shape[1]]
        scores[i][:] = np.inf
        rows[i][:] = -1
        scores[i][: len(order)], rows[i][: len(order)] = exact[order], cand[order]


def _as_words(a: np.ndarray) -> np.ndarray:
    """Packed bits as uint64 words where the width allows (same popcounts, fewer ops)."""
    a = np.ascontiguousarray(a, dtype=np.uint8)
    return a.view(np.uint64) if a.shape[1] % 8 == 0 else a


class _ScoreBlocks:
    """Score matrices of queries against one set of dense or binary vectors."""

    def __init__(self, dtype: DataType, metric: str, vectors: Any, sq_norms: np.ndarray | None = None) -> None:
        self.metric = metric
        self.binary = dtype is DataType.BINARY_VECTOR
        if self.binary:
            self.x = _as_words(vectors)
            self.aux = np.bitwise_count(self.x).sum(axis=1, dtype=np.int64)
            return
        self.x = as_float32(dtype, vectors)
        sq = sq_norms if sq_norms is not None and metric in ("COSINE", "L2") else None
        if sq is None and metric in ("COSINE", "L2"):
            sq = np.einsum("ij,ij->i", self.x, self.x)
        self.aux = np.sqrt(sq) if metric == "COSINE" and sq is not None else sq
        self.dtype = dtype

    def blocks(self, queries: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(queries, scores)`` for consecutive blocks of queries."""
        q = _as_words(queries) if self.binary else as_float32(self.dtype, queries)
        step = max(1, _BLOCK // max(1, self.x.shape[0]))
        for s in range(0, q.shape[0], step):
            if self.binary:
                yield q[s : s + step], _binary_block_scores(self.metric, self.x, q[s : s + step], self.aux)
            else:
                with threads_for(min(step, q.shape[0] - s)):
                    scores = _dense_block_scores(self.metric, self.x, q[s : s + step], self.aux)
                yield q[s : s + step], scores


def _restrict(
    vectors: Any, allow: np.ndarray | None, n: int
) -> tuple[Any, np.ndarray | None, np.ndarray | None]:
    """Rows to scan: gather the allowed rows when few, else mask scores later.

    Returns ``(vectors, row_ids or None, mask or None)``.
    """
    if allow is None:
        return vectors, None, None
    allow = np.asarray(allow, dtype=bool)
    if allow.shape != (n,):
        raise ParamError(f"allow must be a boolean array of length {n}, got shape {allow.shape}")
    kept = np.flatnonzero(allow)
    if len(kept) * 2 < n:
        return vectors[kept], kept, None
    return vectors, None, ~allow


def exact_search(
    dtype: DataType,
    metric: str,
    vectors: Any,
    queries: Any,
    k: int,
    *,
    allow: np.ndarray | None = None,
    sq_norms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-`k` of each query among the rows `allow` keeps (all when None).

    ``sq_norms`` (squared row norms, when the caller keeps them) saves recomputing them per call.
    """
    k = _check_k(k)
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return sparse_exact_search(vectors, queries, k, allow=allow)
    n = vectors.shape[0]
    x, ids, mask = _restrict(vectors, allow, n)
    if sq_norms is not None and ids is not None:  # the norms of the gathered rows, in their order
        sq_norms = sq_norms[ids]
    nq = np.asarray(queries).shape[0] if not sp.issparse(queries) else queries.shape[0]
    if x.shape[0] and mask is None and metric in ("L2", "IP") and dtype is not DataType.BINARY_VECTOR:
        return _faiss_knn(dtype, metric, x, ids, queries, k, sq_norms)
    if x.shape[0] and mask is None and metric == "COSINE" and dtype is not DataType.BINARY_VECTOR \
            and nq <= BLAS_IP_MAX_NQ:
        return _blas_cosine(dtype, x, ids, queries, k, sq_norms)
    out_s, out_r = empty_result(nq, k, metric)
    if x.shape[0] == 0:
        return out_s, out_r
    bad = worst_score(metric)
    blocks = _ScoreBlocks(dtype, metric, x, sq_norms)
    s = 0
    for qb, scores in blocks.blocks(queries):
        if mask is not None:
            scores[:, mask] = bad
        refine = metric == "L2" and not blocks.binary
        bs, br = select_topk(scores, l2_candidates(k) if refine else k, metric)
        if refine:
            edge = bs[:, -1].copy()
            _refine_l2(blocks.x, qb, bs, br)
            if bs.shape[1] < blocks.x.shape[0]:
                _guard_l2(blocks.x, qb, k, edge, bs, br, blocks.aux)
            bs, br = bs[:, :k], br[:, :k]
        if ids is not None:
            br = np.where(br >= 0, ids[np.maximum(br, 0)], -1)
        out_s[s : s + len(bs)], out_r[s : s + len(bs)] = bs, br
        s += len(bs)
    return out_s, out_r


def _faiss_knn(
    dtype: DataType, metric: str, x: Any, ids: np.ndarray | None, queries: Any, k: int,
    sq_norms: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """L2 / IP top-k with faiss's blocked kernels; a few IP queries go to BLAS (`_blas_ip`)."""
    xf, q = as_float32(dtype, x), as_float32(dtype, queries)
    if metric == "IP" and q.shape[0] <= BLAS_IP_MAX_NQ and xf.size >= BLAS_IP_MIN_ELEMENTS:
        return _blas_ip(xf, ids, q, k)
    kk = min(k, xf.shape[0])
    wide = min(l2_candidates(k), xf.shape[0]) if metric == "L2" else kk
    out_s, out_r = empty_result(q.shape[0], k, metric)
    fm = faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT
    with threads_for(q.shape[0]):
        dist, rows = faiss.knn(q, xf, wide, metric=fm)
    if metric == "L2":
        edge = dist[:, -1].copy()
        _refine_l2(xf, q, dist, rows)
        if wide < xf.shape[0]:
            _guard_l2(xf, q, k, edge, dist, rows, sq_norms)
    out_s[:, :kk], out_r[:, :kk] = dist[:, :kk], rows[:, :kk]
    if ids is not None:
        out_r = np.where(out_r >= 0, ids[np.maximum(out_r, 0)], -1)
    return out_s, out_r


def _blas_ip(
    x: np.ndarray, ids: np.ndarray | None, q: np.ndarray, k: int, norms: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-k of a few queries as one BLAS matrix product and a partial sort.

    faiss scores one query row by row on one core; BLAS spreads the product of a
    batch (`threads_for`) over the cores (10,000 x 128 rows: about 0.09 ms against
    faiss's 0.2 ms on two idle cores).
    With ``norms`` (the rows' lengths) each score is divided by its row's: cosine, for
    unit-length queries.
    """
    with threads_for(q.shape[0]):
        scores = (x @ q[0])[None, :] if q.shape[0] == 1 else (x @ q.T).T
    if norms is not None:
        scores /= norms
    out_s, out_r = select_topk(scores, k, "IP")
    if ids is not None:
        out_r = np.where(out_r >= 0, ids[np.maximum(out_r, 0)], -1)
    return out_s, out_r


def _blas_cosine(
    dtype: DataType, x: Any, ids: np.ndarray | None, queries: Any, k: int, sq_norms: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-k of a few queries: `_blas_ip` with the queries normalised, over the rows' norms.

    The same scores as the blocked path (`_dense_block_scores`), without its
    transposed product and temporaries, so a few queries take less time.
    """
    xf = as_float32(dtype, x)
    if sq_norms is None:
        sq_norms = np.einsum("ij,ij->i", xf, xf)
    norms = np.maximum(np.sqrt(sq_norms), np.float32(1e-30))
    return _blas_ip(xf, ids, normalized(as_float32(dtype, queries)), k, norms)


def check_range(metric: str, radius: Any, range_filter: Any) -> tuple[float, float | None]:
    """Validate range-search bounds for the metric's direction."""
    r = _number("radius", radius)
    f = None if range_filter is None else _number("range_filter", range_filter)
    if f is not None and larger_is_better(metric) and not f > r:
        raise ParamError(
            f"range_filter must be greater than radius for {metric}, got radius={r}, range_filter={f}"
        )
    if f is not None and not larger_is_better(metric) and not f < r:
        raise ParamError(
            f"range_filter must be less than radius for {metric}, got radius={r}, range_filter={f}"
        )
    return r, f


def in_range(scores: np.ndarray, metric: str, radius: float, range_filter: float | None) -> np.ndarray:
    """Milvus range semantics: ``range_filter <= d < radius`` or ``radius < s <= range_filter``."""
    if larger_is_better(metric):
        keep = scores > radius
        return keep if range_filter is None else keep & (scores <= range_filter)
    keep = scores < radius
    return keep if range_filter is None else keep & (scores >= range_filter)


def sort_hits(scores: np.ndarray, rows: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    key = -scores if larger_is_better(metric) else scores
    order = np.lexsort((rows, key))
    return scores[order].astype(np.float32), rows[order].astype(np.int64)


def exact_range_search(
    dtype: DataType,
    metric: str,
    vectors: Any,
    queries: Any,
    *,
    radius: float,
    range_filter: float | None = None,
    allow: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every allowed row within range of each query, best first, as ``(scores, rows)``."""
    r, f = check_range(metric, radius, range_filter)
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return sparse_exact_range(vectors, queries, r, f, allow=allow)
    x, ids, mask = _restrict(vectors, allow, vectors.shape[0])
    out: list[tuple[np.ndarray, np.ndarray]] = []
    nq = np.asarray(queries).shape[0]
    if x.shape[0] == 0:
        return [(np.empty(0, np.float32), np.empty(0, np.int64)) for _ in range(nq)]
    blocks = _ScoreBlocks(dtype, metric, x)
    for qb, scores in blocks.blocks(queries):
        for qv, row in zip(qb, scores):
            if metric == "L2" and not blocks.binary:
                slack = 1e-5 * (float(blocks.aux.max()) + float(qv @ qv)) + 1e-6  # float32 cancellation
                near = np.flatnonzero(row < r + slack)
                d = blocks.x[near] - qv
                row[:] = np.inf
                row[near] = np.einsum("ij,ij->i", d, d)
            keep = in_range(row, metric, r, f)
            if mask is not None:
                keep &= ~mask
            hit = np.flatnonzero(keep)
            out.append(sort_hits(row[hit], hit if ids is None else ids[hit], metric))
    return out


def _number(name: str, value: Any) -> float:
    try:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ParamError(f"{name} must be a number, got {value!r}") from None


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ParamError(f"k must be a positive integer, got {k!r}")
    return int(k)


# -- sparse ----------------------------------------------------------------------


def as_csr(x: Any) -> sp.csr_matrix:
    m = x if isinstance(x, sp.csr_matrix) else sp.csr_matrix(x)
    if m.dtype != np.float32:
        m = m.astype(np.float32)
    m.sum_duplicates()
    return m


def drop_small(q: sp.csr_matrix, ratio: float) -> sp.csr_matrix:
    """Each row without its ``ratio`` share of smallest-magnitude values."""
    if ratio <= 0 or q.nnz == 0:
        return q
    q = q.copy()
    for i in range(q.shape[0]):
        lo, hi = q.indptr[i], q.indptr[i + 1]
        ndrop = int((hi - lo) * ratio)
        if ndrop:
            vals = q.data[lo:hi]
            vals[np.argsort(np.abs(vals), kind="stable")[:ndrop]] = 0
    q.eliminate_zeros()
    return q


def compact_columns(x: sp.csr_matrix, vocab: np.ndarray) -> sp.csr_matrix:
    """`x` with its columns renumbered to positions in sorted `vocab`; others dropped."""
    pos = np.searchsorted(vocab, x.indices)
    np.minimum(pos, max(len(vocab) - 1, 0), out=pos)
    hit = vocab[pos] == x.indices if len(vocab) else np.zeros(len(x.indices), dtype=bool)
    row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))[hit]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(row, minlength=x.shape[0]))))
    return sp.csr_matrix((x.data[hit], pos[hit], indptr), shape=(x.shape[0], len(vocab)))


def sparse_topk(
    scores: sp.csr_matrix, k: int, row_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-`k` per row of a sparse ``[nq, n]`` score matrix (larger is better)."""
    out_s, out_r = empty_result(scores.shape[0], k, "IP")
    for i in range(scores.shape[0]):
        lo, hi = scores.indptr[i], scores.indptr[i + 1]
        s, r = select_topk(scores.data[lo:hi][None, :], k, "IP")
        ok = r[0] >= 0
        cols = scores.indices[lo:hi][r[0][ok]]
        out_s[i, : ok.sum()] = s[0][ok]
        out_r[i, : ok.sum()] = cols if row_ids is None else row_ids[cols]
    return out_s, out_r


def _sparse_scores(
    vectors: Any, queries: Any, allow: np.ndarray | None
) -> tuple[sp.csr_matrix, np.ndarray | None]:
    x, q = as_csr(vectors), as_csr(queries)
    ids = None
    if allow is not None:
        allow = np.asarray(allow, dtype=bool)
        if allow.shape != (x.shape[0],):
            raise ParamError(f"allow must be a boolean array of length {x.shape[0]}, got shape {allow.shape}")
        ids = np.flatnonzero(allow)
        x = x[ids]
    vocab = np.unique(q.indices)
    scores = compact_columns(q, vocab) @ compact_columns(x, vocab).T.tocsr()
    return sp.csr_matrix(scores), ids


def sparse_exact_search(
    vectors: Any, queries: Any, k: int, *, allow: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-`k` over sparse rows; only non-zero scores count as hits."""
    scores, ids = _sparse_scores(vectors, queries, allow)
    return sparse_topk(scores, k, ids)


def sparse_range(
    scores: sp.csr_matrix, radius: float, range_filter: float | None, row_ids: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in range(scores.shape[0]):
        lo, hi = scores.indptr[i], scores.indptr[i + 1]
        s, cols = scores.data[lo:hi], scores.indices[lo:hi]
        keep = in_range(s, "IP", radius, range_filter)
        rows = cols[keep] if row_ids is None else row_ids[cols[keep]]
        out.append(sort_hits(s[keep], rows, "IP"))
    return out


def sparse_exact_range(
    vectors: Any, queries: Any, radius: float, range_filter: float | None, *, allow: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    scores, ids = _sparse_scores(vectors, queries, allow)
    return sparse_range(scores, radius, range_filter, ids)
