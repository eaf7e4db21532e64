"""One query's top-k over rows gathered for it: the short paths of a filtered search, without `exact_search`'s plumbing.

A filtered search whose filter kept few rows gathers them and scans them
for one query at a time (`index/_dense.py`). These answer as
`exact_search` does, ties to the lower row, with less around the scan.
"""

from __future__ import annotations

import math

import numpy as np

from ._exact import _F32, _SORT_ALL_BELOW, _row_best, empty_result, l2_candidates
from ._faiss import blas_threads_for, faiss, omp_threads_for


def ip_top_one(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top-`k` of one query ``q [dim]`` over float32 rows ``x``, as rows of ``ids``.

    The short path of a filtered search over gathered rows, with the argument
    handling of `exact_search` left out. ``ids`` must be ascending so that
    ties go to the lower row. Returns ``(scores [1, k], rows [1, k])`` like
    `exact_search`. Past `_SORT_ALL_BELOW` rows, faiss scores them and keeps
    the best in one pass (`_faiss_top_one`); else one BLAS product and a sort.
    """
    if x.shape[0] > _SORT_ALL_BELOW:
        got = _faiss_top_one(x, ids, q, k)
        if got is not None:
            return got
    with blas_threads_for(1):
        s = x @ q
    n = s.shape[0]
    vals, cols = _row_best(s, min(k, n), True)
    rows = ids[cols]
    # best first, NaN last: the ends tell whether any score is not finite
    if n >= k and float(vals[0]) < math.inf and float(vals[-1]) > -math.inf:
        return vals[None], rows[None]
    out_s, out_r = empty_result(1, k, "IP")
    out_s[0, : len(vals)] = vals
    out_r[0, : len(rows)] = np.where(np.isfinite(vals), rows, -1)
    return out_s, out_r


def _faiss_can_scan(x: np.ndarray, q: np.ndarray, k: int) -> bool:
    """Whether faiss can score ``q`` against rows ``x`` as they are and leave rows out of the top `k`."""
    return k < x.shape[0] and x.dtype == _F32 and q.dtype == _F32 and x.flags.c_contiguous and q.flags.c_contiguous


#: Rows past the `k` asked for that `_faiss_top_one` takes, so that rows tied with the k-th are all among them.
_TIE_ROOM = 8


def _faiss_top_one(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """`ip_top_one` through faiss's scan with a heap, or None where `ip_top_one` must answer itself.

    On 1,008 x 128 rows it takes 9 us where a BLAS product and a partition
    take 17 us. faiss breaks ties toward the higher row, so it is asked for
    `_TIE_ROOM` rows more than `k`: where the last of them scores below the
    k-th, every row tied with the k-th is among them, and a sort by score,
    then row, gives `exact_search`'s answer (needed only where two of the
    first ``k + 1`` scores are equal: else faiss's order is already it).
    Where it does not, or a score is not finite (faiss drops NaN rows), None.
    """
    n, d = x.shape
    if not _faiss_can_scan(x, q, k):
        return None
    m = min(n, k + _TIE_ROOM)
    dist = np.empty(m, dtype=np.float32)
    cols = np.empty(m, dtype=np.int64)
    with omp_threads_for(1):  # faiss splits one query's scan over its threads: twice as slow on 10,000 rows
        faiss.knn_inner_product(faiss.swig_ptr(q), faiss.swig_ptr(x), d, 1, n, m, faiss.swig_ptr(dist),
                                faiss.swig_ptr(cols))
    first, kth, last = float(dist[0]), float(dist[k - 1]), float(dist[m - 1])
    if cols[m - 1] < 0 or not (math.isfinite(first) and math.isfinite(last)) or (m < n and not last < kth):
        return None
    head = dist[: k + 1]
    if (head[:-1] > head[1:]).all():  # no two of the first k + 1 tie: faiss's order is the sort's
        return dist[None, :k], ids[cols[:k]][None]
    order = np.lexsort((cols, -dist))[:k]
    return dist[order][None], ids[cols[order]][None]


def l2_top_one(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int,
               xsq: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`ip_top_one` for L2, with the rows' squared norms ``xsq``: `exact_search`'s answer, or None where it must answer.

    The `l2_candidates` best by ``|x|^2 - 2 x.q + |q|^2`` (one BLAS product) are
    re-scored as sums of squared differences, as `_refine_l2` does; where a row
    left out may lie within the rounding of the matrix form of the k-th distance
    (a wider bound than `_guard_l2`'s), or a score is not finite, None.
    """
    n = x.shape[0]
    if n > _SORT_ALL_BELOW:
        got = _faiss_top_one_l2(x, ids, q, k)
        if got is not None:
            return got
    wide = min(l2_candidates(k), n)
    if wide == n:  # every row a candidate: each scored exactly at once
        d, rows, edge = x - q, ids, 0.0
    else:
        with blas_threads_for(1):
            s = x @ q
        s *= np.float32(-2)
        s += xsq
        approx, cols = _row_best(s, wide, False)
        d, rows = x[cols] - q, ids[cols]
        qsq = float(q @ q)
        # float32 sums of d products err by at most about d * 2^-24 of their magnitudes (as `_grouped_scan` bounds)
        err = (x.shape[1] + 2) * 2.0**-23 * (float(xsq.max()) + qsq) + 1e-30
        edge = float(approx[-1]) + qsq - 2 * err  # no row left out lies nearer than this, rounding included
    exact = np.einsum("ij,ij->i", d, d)
    order = np.lexsort((rows, exact))[:k]
    vals, rows = exact[order], rows[order]
    last = float(vals[-1]) if len(vals) == k else math.nan
    if not math.isfinite(last) or (wide < n and not (math.isfinite(edge) and edge > last)):
        return None
    return vals[None], rows[None]


def _faiss_top_one_l2(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """`l2_top_one` through faiss's scan with a heap, or None where `l2_top_one` must answer itself.

    For one query faiss sums the squared differences of each row (no matrix
    form), as the exact re-scoring does, in another order: the two sums of a
    row differ by at most ``(d + 1)`` float32 roundings of it, each. The
    `l2_candidates` nearest by faiss's sums are re-scored with `l2_top_one`'s
    own sums; a row left out is, by those, at least faiss's last distance less
    twice that margin, so where the k-th re-scored distance lies below that,
    the answer is the full scan's. On 10,000 x 128 rows: 80 us where the
    product, the partition and the re-scoring take 200 us. Else, or where a
    distance is not finite (faiss drops NaN rows), None.
    """
    n, d = x.shape
    if not _faiss_can_scan(x, q, k):
        return None
    m = min(n, l2_candidates(k))
    dist = np.empty(m, dtype=np.float32)
    cols = np.empty(m, dtype=np.int64)
    with omp_threads_for(1):
        faiss.knn_L2sqr(faiss.swig_ptr(q), faiss.swig_ptr(x), d, 1, n, m, faiss.swig_ptr(dist), faiss.swig_ptr(cols))
    last = float(dist[m - 1])
    if cols[m - 1] < 0 or not math.isfinite(last):
        return None
    diff = x[cols] - q
    exact = np.einsum("ij,ij->i", diff, diff)
    rows = ids[cols]
    order = np.lexsort((rows, exact))[:k]
    vals = exact[order]
    kth = float(vals[-1])
    # a row left out: faiss's sum >= last, and each sum within (d + 1) * 2^-24 of the true one (doubled here)
    if not math.isfinite(kth) or (m < n and not kth < last * (1.0 - (d + 2) * 2.0**-22)):
        return None
    return vals[None], rows[order][None]
