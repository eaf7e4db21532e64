"""A filtered IVF_FLAT or IVF_SQ8 search that stops probing once no list left can hold a better row.

Under a filter keeping a share s of the rows, an IVF search probes ``nprobe / s``
lists (`_dense`), so that as many kept rows are seen as an unfiltered search
sees: at 10% kept of 1M rows in 1,024 lists that is 160 lists and ~156,000
rows, one query at a time. Often far fewer lists could hold a kept row near
enough, and two facts about a list bound every row in it from below (L2) or
above (inner products):

- its radius: no row of list j lies farther than r_j from the list's centre c_j,
  so no row is nearer the query than |q - c_j| - r_j;
- its cell: faiss put each row in the list whose centre it is nearest (L2) or
  has the largest inner product with (IP), so a row of list j lies on c_j's side
  of the plane between c_j and the query's own best centre c_i, and no nearer
  the query than the plane is. Under IP, the rows' largest norm turns that
  distance into a bound on the inner product.

`bounded_search` probes the query's few best lists first (`FIRST`). It then keeps the lists whose bound could still beat the k-th score
found (the radius bound, a few array operations for every list, rules out most;
the plane bound is then reckoned for the others only), probes them in the
bound's order a few at a time, and drops the lists the improving k-th score
rules out. Once none is left, every kept row that
could enter the top k has been scored: the answer is that of a scan of all
the lists. Where more lists are left than the usual ``nprobe / s`` would
probe, it probes those the usual search would (less those already probed):
the answer then holds every row the usual one could.

IVF_SQ8 scores its rows as decoded from their 8-bit codes (of each row's
residual to its list's centre), and a decoded row may lie across the plane
its raw row was placed by: the plane bound is loosened by the list's largest
coding error, measured on the rows faiss was given as it codes them.

Every bound is loosened by the float32 rounding of what it is made of (faiss's
assignment of rows to lists, its row scores, the centres' products computed
here), so a list is dropped only if none of its rows could score past the
k-th one found. The lists' radii, largest norms and coding errors
(`ListBounds`) are taken from the rows the lists hold when the index is built
or grown, and saved with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._faiss import faiss, threads_for

#: float32's unit roundoff.
_U = 2.0**-24
#: Lists probed first (the query's best, at most ``nprobe``), then in the bounds' order, `STEP` in the first step
#: and twice as many in each next one. On 1M clustered 128-d rows in 1,024 lists, 4 and 4 took 1.2 ms a query
#: at 10% kept and 1.8 ms at 50%, against 1.7 and 3.7 ms for ``nprobe`` (16) and 8: the first k-th score is a
#: little worse, the lists fewer. On those rows the k-th score after the first 4 lists already rules out all
#: but the lists it will probe, so larger steps probe no more lists and save faiss calls (there within the
#: noise: 0.60-0.63 ms a query at 10% kept either way; one step of every list left, 0.55).
FIRST = 4
STEP = 4
#: The usual search scans at least this many rows before the bounds are worth their ~0.05-0.1 ms.
MIN_ROWS = 16_384
#: The most bytes of centres `ListBounds` keeps a copy of (1,024 lists of 1,024 components).
CENTRES_COPIED = 4 << 20
#: After this many searches in a row that the bounds did not stop early, the next `SKIP` of the index go the
#: usual way: on rows whose lists are wide against the centres' spacing (MiniLM embeddings, say) the bounds
#: never stop a search, and cost 0.2 ms on top of a 0.34 ms scan.
MISSES = 8
SKIP = 64


class ListBounds:
    """Per list of an IVF_FLAT or IVF_SQ8 index: the farthest row's distance from the centre, the largest row
    norm, the farthest any row lies from the vector faiss assigned to the list (its coding error: 0 for
    IVF_FLAT), and the centre's norm (float64). Rows are those faiss scores: IVF_SQ8's decoded ones."""

    __slots__ = ("radii", "norms", "slack", "centres", "centre_norms", "residual", "misses", "skip")

    def __init__(self, radii: np.ndarray, norms: np.ndarray, slack: np.ndarray, ivf: Any) -> None:
        self.radii = radii
        self.norms = norms
        self.slack = slack
        c = _centres(ivf)
        #: The centres, copied (an index read in place holds them unaligned in the file, where a product with a
        #: query takes twice as long), or None where they are too many to hold twice: read from the index then.
        self.centres = np.array(c) if c.nbytes <= CENTRES_COPIED else None
        self.centre_norms = np.sqrt(np.einsum("ij,ij->i", c, c, dtype=np.float64))
        #: faiss scores the list's rows as residuals to its centre (IVF_SQ8): a rounding of its own to allow for.
        self.residual = type(ivf) is not faiss.IndexIVFFlat and bool(ivf.by_residual)
        #: Searches in a row the bounds did not stop early, and searches left to send the usual way (`MISSES`);
        #: threads may race on them, which only moves when the bounds are tried again.
        self.misses = 0
        self.skip = 0

    @classmethod
    def of(cls, ivf: Any, added: np.ndarray, before: ListBounds | None = None,
           sizes: np.ndarray | None = None) -> ListBounds | None:
        """The bounds of a plain `faiss.IndexIVFFlat` or `faiss.IndexIVFScalarQuantizer` from the rows its lists
        hold, or None for any other index.

        `added` are the vectors faiss was given last (rows ``ntotal - len(added)`` on), `before` the bounds
        before they were: IVF_SQ8's coding error is measured on the vectors faiss coded, so it has none for an
        index grown from bounds it lacks. With the lists' sizes before the rows were added (`list_sizes`),
        only the rows faiss appended to them are read: the bounds are those of all the rows, bit for bit.
        """
        flat = type(ivf) is faiss.IndexIVFFlat
        if not flat and type(ivf) is not faiss.IndexIVFScalarQuantizer:
            return None
        d, nlist = ivf.d, ivf.nlist
        first = ivf.ntotal - added.shape[0]
        if not flat and first and before is None:
            return None
        now = list_sizes(ivf)
        if before is None or sizes is None or not first or (now < sizes).any():
            sizes = np.zeros(nlist, dtype=np.int64)  # every row read
            radii, norms = np.zeros(nlist), np.zeros(nlist)
        else:
            radii, norms = before.radii.copy(), before.norms.copy()
        slack = np.zeros(nlist) if flat or not first else before.slack.copy()  # type: ignore[union-attr]
        centres = _centres(ivf)
        wobble = 0.0  # faiss's scans decode a code with its own float32 operations: a few u of each part's scale
        if not flat:
            wobble = 8 * _U * np.sqrt(d) * float(np.abs(faiss.vector_to_array(ivf.sq.trained)).max(initial=0.0))

        def loosened(sq: np.ndarray) -> float:  # bounds from before were loosened when they were taken
            return float(np.sqrt(sq.max())) * (1 + 1e-9) + wobble

        lists = ivf.invlists
        for j in np.flatnonzero(now > sizes).tolist():
            start, n = int(sizes[j]), int(now[j])
            rows = _decoded(ivf, j, start, n, centres[j])
            norms[j] = max(norms[j], loosened(np.einsum("ij,ij->i", rows, rows)))
            if not flat:
                ids = faiss.rev_swig_ptr(lists.get_ids(j), n)[start:]
                new = ids >= first
                if new.any():
                    miss = rows[new] - added[ids[new] - first]
                    slack[j] = max(slack[j], loosened(np.einsum("ij,ij->i", miss, miss)))
            rows -= centres[j]
            radii[j] = max(radii[j], loosened(np.einsum("ij,ij->i", rows, rows)))
        return cls(radii, norms, slack, ivf)

    def array(self) -> np.ndarray:
        return np.stack([self.radii, self.norms, self.slack])

    @classmethod
    def from_array(cls, a: np.ndarray | None, ivf: Any) -> ListBounds | None:
        """The bounds `array` gave for `ivf`, or None where there are none (files written before them; IVF_FLAT
        files written before the coding error was kept hold no third row)."""
        flat = type(ivf) is faiss.IndexIVFFlat
        if a is None or (not flat and type(ivf) is not faiss.IndexIVFScalarQuantizer):
            return None
        if a.shape == (2, ivf.nlist) and flat:
            a = np.concatenate([a, np.zeros((1, ivf.nlist))])
        if a.shape != (3, ivf.nlist):
            return None
        radii, norms, slack = np.array(a, dtype=np.float64)
        return cls(radii, norms, slack, ivf)


def list_sizes(ivf: Any) -> np.ndarray:
    """The number of rows in each list of IVF index `ivf`."""
    lists = ivf.invlists
    return np.array([lists.list_size(j) for j in range(ivf.nlist)], dtype=np.int64)


def _decoded(ivf: Any, j: int, start: int, n: int, centre: np.ndarray) -> np.ndarray:
    """Rows `start` to `n` of list `j` as faiss scores them, float64 (exact from their float32 parts)."""
    lists = ivf.invlists
    codes = lists.get_codes(j)
    try:
        held = faiss.rev_swig_ptr(codes, n * ivf.code_size)[start * ivf.code_size :]
        if type(ivf) is faiss.IndexIVFFlat:
            return held.view(np.float32).reshape(n - start, ivf.d).astype(np.float64)
        rows = np.empty((n - start, ivf.d), dtype=np.float32)
        ivf.sq.decode_c(faiss.swig_ptr(held), faiss.swig_ptr(rows), n - start)
    finally:
        lists.release_codes(j, codes)
    return rows.astype(np.float64) + centre if ivf.by_residual else rows.astype(np.float64)


def _centres(ivf: Any) -> np.ndarray:
    flat = faiss.downcast_index(ivf.quantizer)
    return faiss.rev_swig_ptr(flat.get_xb(), ivf.nlist * ivf.d).reshape(ivf.nlist, ivf.d)


def filtered_lists(params: dict[str, Any], ntotal: int, kept: int, nlist: int) -> int:
    """The lists the usual search of an IVF index probes under a filter keeping `kept` of `ntotal` rows:
    ``nprobe`` raised by the share of rows the filter drops (faiss skips rejected rows only as it scores
    them), up to every list."""
    return min(int(np.ceil(int(params.get("nprobe", 16)) * ntotal / max(kept, 1))), nlist)


def filtered_head(ivf: Any, bounds: ListBounds, q: np.ndarray, k: int, bits: np.ndarray, kept: int,
                  params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """`bounded_search` of the queries ``q`` in turn, whose kept rows are the set bits of `bits` (``kept`` of
    them): scores and rows ``[m, k]`` of the first m queries, unfilled slots (row -1) scoring worst as in
    `DenseIndex.search`.

    Fewer than all (m may be 0) where the usual search scans too few rows for the bounds to pay, or the bounds
    of this index have lately not paid (`MISSES`): the usual search answers the others. Even for a batch,
    one query at a time on one thread is the faster way while the bounds pay (1M rows, 10% kept: ~1.3 ms a
    query against ~6 ms of one core for the usual search).
    """
    n = q.shape[0]
    dist, rows = np.empty((n, k), dtype=np.float32), np.empty((n, k), dtype=np.int64)
    nprobe = int(params.get("nprobe", 16))
    cap = filtered_lists(params, ivf.ntotal, kept, ivf.nlist)
    if cap * ivf.ntotal < MIN_ROWS * ivf.nlist:
        return dist[:0], rows[:0]
    sel = faiss.IDSelectorBitmap(ivf.ntotal, faiss.swig_ptr(bits))  # points into `bits`, alive past the search
    with threads_for(1):
        for i in range(n):
            if bounds.skip > 0:
                bounds.skip -= 1
                n = i
                break
            dist[i : i + 1], rows[i : i + 1], early = bounded_search(ivf, bounds, q[i], k, sel, nprobe, cap)
            if early:
                bounds.misses = 0
            else:
                bounds.misses += 1
                if bounds.misses >= MISSES:
                    bounds.misses, bounds.skip = 0, SKIP
    dist, rows = dist[:n], rows[:n]
    dist[rows < 0] = -np.inf if ivf.metric_type == faiss.METRIC_INNER_PRODUCT else np.inf
    return dist, rows


def bounded_search(ivf: Any, bounds: ListBounds, q: np.ndarray, k: int, sel: Any, nprobe: int,
                   cap: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """The top `k` kept rows (``sel``) for one query `q`: faiss's scores and rows, shape ``[1, k]``, and
    whether the bounds stopped the search (True) or `cap` did.

    Those of all the lists, unless more than `cap` would have to be probed: then those of the `cap` lists the
    usual search probes, and of the lists probed before that was known.
    """
    r = _Ranked(ivf, bounds, q)
    ip = r.ip
    params = faiss.SearchParametersIVF(nprobe=1, sel=sel)  # one for every scan (`_probe` sets its lists' count)
    sc = np.empty((1, k), dtype=np.float32)
    rw = np.empty((1, k), dtype=np.int64)
    first = r.head(min(nprobe, FIRST, ivf.nlist))
    _probe(ivf, q, k, first, r.coarse, params, sc, rw)
    kth = _kth(sc, rw, ip)
    # The lists whose bound could beat the k-th score: those the cheap bound (no plane) lets through, then
    # their whole bound, sorted so that the best bound comes first (`key` ascending).
    near = r.cheap() >= kth if ip else r.cheap() <= kth
    near[first] = False
    left = np.flatnonzero(near)
    limit = r.limits(left)
    key = -limit if ip else limit
    at = np.argsort(key, kind="stable")
    left, key = left[at], key[at]
    done, size, capped = 0, STEP, False
    while True:
        end = int(np.searchsorted(key, -kth if ip else kth, side="right"))  # the lists still in reach
        if end <= done:
            return sc, rw, True
        if len(first) + end > cap:  # as the usual search: the `cap` best lists, less those probed
            probed = np.zeros(ivf.nlist, dtype=bool)
            probed[first] = True
            probed[left[:done]] = True
            usual = r.head(cap)
            step = usual[~probed[usual]]
            capped = True
        else:
            step = left[done : min(end, done + size)]
            done, size = done + len(step), 2 * size
        if len(step):
            s2 = np.empty((1, k), dtype=np.float32)
            r2 = np.empty((1, k), dtype=np.int64)
            _probe(ivf, q, k, step, r.coarse, params, s2, r2)
            sc, rw = _merge(sc, rw, s2, r2, k, ip)
            kth = _kth(sc, rw, ip)
        if capped:
            return sc, rw, False


def _kth(sc: np.ndarray, rw: np.ndarray, ip: bool) -> float:
    """The k-th score found, or the worst there is while fewer than k rows are."""
    return float(sc[0, -1]) if rw[0, -1] >= 0 else (-np.inf if ip else np.inf)


def list_limits(ivf: Any, bounds: ListBounds, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lists in the order the query `q` ranks their centres; per list the best score faiss could give any
    of its rows (a bound: no larger under IP, no smaller under L2); and the query's float32 scores against the
    centres, which faiss adds to an IVF_SQ8 list's scores of residuals under IP."""
    r = _Ranked(ivf, bounds, q)
    return r.head(ivf.nlist), r.limits(np.arange(ivf.nlist)), r.coarse


class _Ranked:
    """A query's scores against an IVF index's centres, and from them the bounds of its lists' rows' scores.

    `cheap` bounds every list from its radius alone, in a few array operations; `limits` adds the plane
    bound (which reads each list's centre against the query's best one) for the lists asked. The plane only
    tightens the bound, so a list the cheap bound rules out is ruled out by both.
    """

    __slots__ = ("ivf", "bounds", "ip", "c", "qn", "qa", "coarse", "prod", "err", "best", "_key", "dist", "lo")

    def __init__(self, ivf: Any, bounds: ListBounds, q: np.ndarray) -> None:
        self.ivf, self.bounds = ivf, bounds
        self.ip = ivf.metric_type == faiss.METRIC_INNER_PRODUCT
        self.c = c = _centres(ivf) if bounds.centres is None else bounds.centres
        q64 = q.astype(np.float64)
        self.qn = qn = float(q64 @ q64)
        self.qa = np.sqrt(qn)
        cn = bounds.centre_norms
        self.coarse = c @ q
        self.prod = prod = self.coarse.astype(np.float64)  # float32 products: each within ~d u |c_j| |q| of the true one
        self.err = 1.01 * ivf.d * _U * cn * self.qa
        if self.ip:
            self.best = int(np.argmax(prod))
            self._key = -prod
        else:
            self.dist = dist = np.maximum(cn * cn + qn - 2.0 * prod, 0.0)
            self.best = int(np.argmin(dist))
            self._key = dist
            self.lo = np.maximum(dist - 2.0 * self.err, 0.0)

    def head(self, m: int) -> np.ndarray:
        """The `m` lists whose centres the query ranks first, best first (ties: the lower list)."""
        key = self._key
        if m >= len(key):
            return np.argsort(key, kind="stable")
        v = key[np.argpartition(key, m - 1)[m - 1]]  # the m-th best key: of the lists tied at it, the lower ones
        part = np.concatenate([np.flatnonzero(key < v), np.flatnonzero(key == v)])[:m]
        return part[np.argsort(key[part], kind="stable")]

    def cheap(self) -> np.ndarray:
        """Per list, a bound from the list's radius alone: no better than `limits`."""
        b, d = self.bounds, self.ivf.d
        if self.ip:
            limit = self.prod + self.err + self.qa * b.radii + 1.1 * (d + 2) * _U * self.qa * b.norms
            if b.residual:
                limit += self.err + 1.1 * (d + 2) * _U * self.qa * (b.radii + b.centre_norms)
            return limit
        near = np.maximum(np.sqrt(self.lo) - b.radii, 0.0)
        if b.residual:
            near = np.maximum(near - 2.0 * _U * np.sqrt(self.dist + 2.0 * self.err), 0.0)
        return near * near * (1.0 - 2.0 * (d + 4) * _U)

    def limits(self, j: np.ndarray) -> np.ndarray:
        """Per list of `j`, the best score faiss could give any of its rows."""
        b, d, best = self.bounds, self.ivf.d, self.best
        cn, radii, norms, slack = b.centre_norms[j], b.radii[j], b.norms[j], b.slack[j]
        prod, err, qn, qa = self.prod[j], self.err[j], self.qn, self.qa
        cb = b.centre_norms[best]
        if self.ip:
            # The plane between list j's cell and the best centre's: x.(c_i - c_j) <= eps for a row x of list j.
            gap = np.maximum(self.prod[best] - self.err[best] - prod - err, 0.0)
        else:
            # Rows of list j are no nearer c_i than c_j less faiss's rounding of the two distances it compared.
            lo = self.lo[j]
            hi_best = self.dist[best] + 2.0 * self.err[best]
            reach = norms + slack  # |x| <= the list's largest norm (of a row as faiss was given it)
            eps = 1.1 * (d + 4) * _U * ((reach + cn) ** 2 + (reach + cb) ** 2)
            gap = np.maximum(lo - hi_best - eps, 0.0)
        cross = (self.c[j] @ self.c[best]).astype(np.float64)
        span = np.sqrt(np.maximum(cn * cn + cb**2 - 2.0 * cross + 2.02 * d * _U * cn * cb, 0.0))
        if self.ip:
            eps = 1.1 * (d + 2) * _U * (norms + slack) * (cn + cb)
            plane = np.where(span > 0, np.maximum(gap - eps, 0.0) / np.where(span > 0, span, 1.0), 0.0)
            plane = np.maximum(plane - slack, 0.0)  # a coded row lies within its list's slack of the row assigned
            # q.x = (|q|^2 + |x|^2 - |q - x|^2) / 2, and q.x <= q.c_j + |q| r_j; faiss's score adds its rounding.
            top = np.minimum((qn + norms * norms - plane * plane) / 2.0, prod + err + qa * radii)
            limit = top + 1.1 * (d + 2) * _U * qa * norms
            if b.residual:  # faiss adds its float32 q.c_j (`coarse`, within err) to its sum over the residual
                limit += err + 1.1 * (d + 2) * _U * qa * (radii + cn)
            return limit
        plane = np.where(span > 0, gap / (2.0 * np.where(span > 0, span, 1.0)), 0.0)
        near = np.maximum(np.maximum(np.sqrt(lo) - radii, 0.0), plane - slack)
        if b.residual:  # faiss scores q - c_j rounded, less the residual: off by up to u |q - c_j|
            near = np.maximum(near - 2.0 * _U * np.sqrt(self.dist[j] + 2.0 * err), 0.0)
        return near * near * (1.0 - 2.0 * (d + 4) * _U)  # faiss's sum of squares is no lower than this


def _probe(ivf: Any, q: np.ndarray, k: int, lists: np.ndarray, coarse: np.ndarray, params: Any, sc: np.ndarray,
           rw: np.ndarray) -> None:
    """faiss's scan of `lists` (in that order) for `q`, the rows `params`' selector keeps only, into ``sc``
    (scores) and ``rw`` (rows); `coarse` are the query's scores against every centre (`list_limits`)."""
    assign = np.ascontiguousarray(lists[None, :], dtype=np.int64)
    coarse = np.ascontiguousarray(coarse[assign])  # read by faiss only for IP over residuals
    params.nprobe = assign.shape[1]
    ivf.search_preassigned_c(1, faiss.swig_ptr(q), k, faiss.swig_ptr(assign), faiss.swig_ptr(coarse),
                             faiss.swig_ptr(sc), faiss.swig_ptr(rw), False, params)


def _merge(sc: np.ndarray, rw: np.ndarray, s2: np.ndarray, r2: np.ndarray, k: int,
           ip: bool) -> tuple[np.ndarray, np.ndarray]:
    d = np.concatenate([sc[0], s2[0]])
    i = np.concatenate([rw[0], r2[0]])
    worst = -np.inf if ip else np.inf
    d = np.where(i >= 0, d, worst)
    o = np.argsort(-d if ip else d, kind="stable")[:k]
    return d[o][None, :].astype(np.float32), i[o][None, :]
