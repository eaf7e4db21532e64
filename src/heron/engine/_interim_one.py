"""One query through the interim indexes of fresh segments, in as few array steps as it takes.

`_interim_ivf.search_together` answers any number of queries over any
number of fresh segments. For the one query a service sends per call, its
faiss calls take a tenth of its time: the rest went to array steps sized for
many queries (2-d plumbing, a coarse assignment through faiss's Python
wrapper, the stacked lists' ``(list, position)`` pairs turned into rows one
list at a time). `together_one` does the same search for one query with the
fewest steps: the coarse assignment straight into its arrays, the lists that
cannot hold a top-k row dropped rather than marked, each index read on its own
(its results are rows already) unless there are more than `STACK_ABOVE` of
them, and the candidates re-scored as one block. The lists read, the
candidates taken and the scores given are those of `search_together`; tests
compare the two.

`search_fresh` picks it where it applies (one query, every index searched
whole), else `search_together`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._interim_fast import fast_candidates, fast_eligible
from ._interim_ivf import (
    BOUND_LISTS,
    IVF_NPROBE,
    GrowingIVF,
    _combined,
    _plain_params,
    _shortlist,
    _stacked,
    candidates,
    enter_gates,
    leave_gates,
    search_together,
)
from ._interim_merged import Merged, merged_for, searched
from .index._exact import as_float32, select_topk
from .index._faiss import faiss, threads_for

#: More indexes than this are read as one stack (`_interim_ivf._Stacked`); up to it, one faiss call each.
STACK_ABOVE = 4

Parts = list[tuple[GrowingIVF, Any, int]]


def search_fresh(parts: Parts, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`search_together`'s answer: through `together_one` for one query over indexes searched whole."""
    searched(parts[0][0].lists)
    if queries.shape[0] == 1 and all(top >= ivf.ntotal for ivf, _, top in parts):
        # faiss and BLAS on this thread alone: a team of threads for one query's small steps waits for a core
        # that an index build holds (1,028 against 1,450 searches/s over 1M fresh rows beside the builds)
        with threads_for(1):
            return together_one(parts, queries, k)
    return search_together(parts, queries, k)


def together_one(parts: Parts, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`search_together` for one query (`queries` ``[1, dim]``): ``(scores, parts, rows)`` ``[1, k]``, or None.

    `parts` are ``(index, vectors, top)`` with the same trained lists. An
    index that grew past its `top` since the caller looked is read up to it.
    """
    first = parts[0][0]
    dtype, metric = first.dtype, first.metric
    want = candidates(k)
    q = first.prepared(queries)
    index = first._index
    nprobe = min(IVF_NPROBE, index.nlist)
    coarse = np.empty(nprobe, dtype=np.float32)
    assign = np.empty(nprobe, dtype=np.int64)
    qp = faiss.swig_ptr(q)
    index.quantizer.search_c(1, qp, nprobe, faiss.swig_ptr(coarse), faiss.swig_ptr(assign))  # trained once
    count = len(parts)
    whole = all(top >= ivf.ntotal for ivf, _, top in parts)
    stack = count > STACK_ABOVE and whole
    # settled: their lists in one index (wide rows: as 4-bit codes, however few the indexes)
    merged = merged_for([ivf for ivf, _, _ in parts], vectors=[v for _, v, _ in parts]) \
        if stack or (whole and fast_eligible(first.lists, first.dim)) else None
    if metric != "IP" and nprobe > 1:
        coarse, assign = _bounded_one(parts, coarse, assign, k, merged)
    if merged is not None:
        at, rows = merged.search(q, fast_candidates(k) if merged.fast else want, assign, coarse)
    elif stack:
        at, rows = _stacked([ivf for ivf, _, _ in parts]).search(q, want, assign[None], coarse[None])
        at, rows = at[0], rows[0]
    else:
        qc = first.coded(q)  # held while faiss reads it
        at, rows = _each(parts, faiss.swig_ptr(qc), want, coarse, assign, metric)
    valid = rows >= 0
    if not valid.all():
        at, rows = at[valid], rows[valid]
    if rows.shape[0] < min(k, sum(top for _, _, top in parts)):
        return None  # fewer candidates than hits: the caller scans exactly
    if count == 1:
        x = as_float32(dtype, parts[0][1][rows])
    else:
        x = as_float32(dtype, _gathered(parts, at, rows))
    if metric == "L2":
        diff = x - q
        scores = np.einsum("kd,kd->k", diff, diff)
    else:
        scores = x @ q[0]  # `q` is unit length for COSINE
        if metric == "COSINE":
            scores /= np.maximum(np.sqrt(np.einsum("kd,kd->k", x, x)), np.float32(1e-30))
    best, pos = select_topk(scores[None], k, metric)
    taken = pos >= 0
    out_rows = np.where(taken, rows[pos], -1)
    return best, np.where(taken, at[pos], 0), out_rows


#: Up to this many segments, a search's candidate rows are gathered a segment at a time; past it, a row at a time.
GATHER_BY_SEGMENT = 3


def _gathered(parts: Parts, at: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The stored vectors of candidates ``(at[i], rows[i])`` (segment, row) of `parts`, in that order.

    A few dozen rows: from two or three segments one fancy index each costs a third of a row at a time
    (16 against 51 us for 40 rows of 384 dims from two segments); from more, a row at a time costs less.
    """
    x = np.empty((rows.shape[0], parts[0][0].dim), dtype=parts[0][1].dtype)
    if len(parts) <= GATHER_BY_SEGMENT:
        for j, (_ivf, vectors, _top) in enumerate(parts):
            sel = at == j
            if sel.any():
                x[sel] = vectors[rows[sel]]
    else:
        for i, (a, r) in enumerate(zip(at.tolist(), rows.tolist())):
            x[i] = parts[a][1][r]
    return x


def _bounded_one(parts: Parts, coarse: np.ndarray, assign: np.ndarray, k: int,
                 merged: Merged | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`coarse` and `assign` less the lists that cannot hold the query's top `k` (`_interim_ivf.BOUND_LISTS`).

    `merged`, the copy of the parts' lists if there is one, holds their radii and sizes.
    """
    radius, sizes = _combined([ivf for ivf, _, _ in parts]) if merged is None else (merged.radius, merged.sizes)
    centre = parts[0][0].centre_distances(coarse, assign)
    width = radius[assign]
    head = min(BOUND_LISTS, assign.shape[0])
    full = sizes[assign[:head]] >= k
    if not full.any():
        return coarse, assign
    reach = (centre[:head] + width[:head])[full].min()
    keep = centre - width <= reach
    if keep.all():
        return coarse, assign
    return coarse[keep], assign[keep]


def _each(parts: Parts, qp: Any, want: int, coarse: np.ndarray, assign: np.ndarray,
          metric: str) -> tuple[np.ndarray, np.ndarray]:
    """The `want` best candidates by their codes over `parts`, one faiss search each: ``(part, row)`` (row -1: none)."""
    count = len(parts)
    scores = np.empty((count, want), dtype=np.float32)
    found = np.empty((count, want), dtype=np.int64)
    nprobe = assign.shape[0]
    plain = _plain_params(nprobe)
    ap, cp = faiss.swig_ptr(assign), faiss.swig_ptr(coarse)
    entered = enter_gates([ivf for ivf, _, _ in parts])
    try:  # no index grows meanwhile
        for j, (ivf, _, top) in enumerate(parts):
            sp = plain if top >= ivf.ntotal else \
                faiss.SearchParametersIVF(nprobe=nprobe, sel=faiss.IDSelectorRange(0, top))
            ivf._index.search_preassigned_c(1, qp, want, ap, cp, faiss.swig_ptr(scores[j]),
                                            faiss.swig_ptr(found[j]), False, sp)
    finally:
        leave_gates(entered)
    at, rows = _shortlist(metric, scores[:, None], found[:, None], want)
    return at[0], rows[0]
