"""Rows assigned to the nearest of an interim index's many lists in two steps, at a tenth of the arithmetic.

Comparing each row with every list's centre (1,024 of them) is what an
interim index's growth costs: on 128-d rows a core assigns about 180k rows/s
that way, slower than a load of numpy columns inserts them (300k rows/s), so
right after a load most rows were in no list yet and every search scanned
them exactly. The lists' centres are grouped once (k-means over the centres,
about the square root of their number of groups); a row is compared with the
groups' centres, then with the centres of the lists in its `GROUPS_READ`
nearest groups only, a few matrix products per step.

A row so assigned may land in a list a little farther than its nearest (on
128-d clustered rows 0.7% of them do). A list's radius (its farthest row from
its centre) bounds which lists a search may skip (`_interim_ivf.BOUND_LISTS`),
and a few such rows far out would widen it for every search; so a row whose
distance to its list's centre exceeds the list's radius so far (at least the
one of the rows the lists were trained on, `reach`) is assigned again against
every centre (`GrowingIVF.grow`). Searches stay sound either way: the radius
is measured from each row's actual distance to the centre of its list.

The lists themselves are trained here too (`kmeans`): a few k-means rounds,
each one matrix product per block of rows and an argmax. faiss's own
clustering finds each row's nearest centre through its flat search, which
below ``faiss.cvar.distance_compute_blas_threshold`` queries compares them
row by row: on one core, 16,384 x 128 rows against 1,024 centres took
0.18-0.34 s a round that way and 0.05-0.07 s as one product, and the lists are trained
while a load's first rows wait for them.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .index._faiss import faiss

#: Lists from which on rows are assigned in two steps (fewer: each row is compared with every centre).
TWO_STEP_LISTS = 256
#: The nearest groups of lists whose lists' centres a row is compared with.
GROUPS_READ = 2
#: k-means rounds that group the lists' centres.
GROUP_ROUNDS = 10
#: Rows scored against every centre at once (`nearest_centres`): a block of scores of at most 16 MB at 1,024 lists.
BLOCK_ROWS = 4096
#: How far a centre split in two (an empty list takes half of a large one) moves each half, as faiss's k-means.
_SPLIT = np.float32(1 / 1024)


def nearest_centres(x: np.ndarray, centres: np.ndarray, l2: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest centre, compared with every one: ``(score, centre)``, both ``[n]``.

    The score is the inner product (``l2`` False), or ``x.c - |c|^2 / 2`` (the
    squared distance less ``|x|^2``, halved): larger is nearer either way.
    """
    ct = np.ascontiguousarray(centres.T, dtype=np.float32)
    return _nearest(x, ct, 0.5 * np.square(ct).sum(axis=0) if l2 else None)


def _nearest(x: np.ndarray, ct: np.ndarray, half: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """`nearest_centres` against transposed centres ``ct`` and, for L2, their halved squared norms ``half``."""
    n = x.shape[0]
    best = np.empty(n, dtype=np.float32)
    lists = np.empty(n, dtype=np.int64)
    for lo in range(0, n, BLOCK_ROWS):
        s = x[lo : lo + BLOCK_ROWS] @ ct
        if half is not None:
            s -= half
        j = s.argmax(axis=1)
        lists[lo : lo + len(j)] = j
        best[lo : lo + len(j)] = s[np.arange(len(j)), j]
    return best, lists


def _faiss_perm(n: int, seed: int) -> np.ndarray:
    """faiss's random permutation of ``0..n-1`` for `seed` (``faiss::rand_perm``)."""
    perm = np.empty(n, dtype=np.int32)
    faiss.rand_perm(faiss.swig_ptr(perm), n, seed)
    return perm


def kmeans(x: np.ndarray, k: int, rounds: int, *, l2: bool, spherical: bool, seed: int = 1234,
           max_per_centre: int = 256, exact_rounds: int | None = None) -> np.ndarray:
    """`k` centres of rows `x` (float32, ``n >= k``) after `rounds` k-means rounds, as faiss's ``Clustering`` makes them.

    With `exact_rounds` (and `TWO_STEP_LISTS` centres or more), the rounds
    after the first `exact_rounds` assign each row in two steps
    (`TwoStepAssigner`, made anew for each round's centres) rather than
    against every centre: on 16,384 x 384 rows and 1,024 centres a round
    takes 0.06 s instead of 0.16 s, and lists trained with one exact round and
    two such read as well (recall@10 0.976 against 0.977 on 100k MiniLM rows
    at 48 lists; other seeds of the draw move it by more).

    Of more than `max_per_centre` rows per centre, a sample of that many is
    taken, as faiss takes it (its ``rand_perm`` with the seed). It starts from
    `k` rows drawn as faiss draws them (``rand_perm`` with the seed it uses for
    a first run); each round assigns every row to its
    nearest centre (`nearest_centres`) and moves each centre to the mean of its
    rows (``spherical``: scaled to unit length). A centre no row chose takes
    half of a large one, as faiss splits: a list drawn with odds by its rows,
    both centres moved apart by `_SPLIT` in alternating components.
    """
    if x.shape[0] > max_per_centre * k:
        x = x[_faiss_perm(x.shape[0], seed)[: max_per_centre * k]]
    n, dim = x.shape
    rng = np.random.default_rng(seed)
    perm = _faiss_perm(n, seed + 1)
    centres = np.ascontiguousarray(x[perm[:k]], dtype=np.float32)
    sign = np.where(np.arange(dim) % 2 == 0, 1, -1).astype(np.float32) * _SPLIT
    for r in range(rounds):
        if exact_rounds is not None and r >= exact_rounds and k >= TWO_STEP_LISTS:
            _, lists = TwoStepAssigner(centres, "L2" if l2 else "IP").assign(x)
        else:
            _, lists = nearest_centres(x, centres, l2)
        counts = np.bincount(lists, minlength=k)
        order = np.argsort(lists, kind="stable")
        held = np.flatnonzero(counts)
        starts = np.concatenate([[0], np.cumsum(counts[held])[:-1]])
        centres[held] = np.add.reduceat(x[order], starts, axis=0) / counts[held, None].astype(np.float32)
        for empty in np.flatnonzero(counts == 0).tolist():
            weights = np.maximum(counts - 1, 0).astype(np.float64)
            big = int(rng.choice(k, p=weights / weights.sum()))
            centres[empty] = centres[big] * (1 + sign)
            centres[big] *= 1 - sign
            counts[empty] = counts[big] // 2
            counts[big] -= counts[empty]
        if spherical:
            centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), np.float32(1e-20))
    return centres


class TwoStepAssigner:
    """Assigns rows to (nearly always) their nearest list of `centres`: ``(near, lists)`` as a flat quantizer's search.

    `metric` is the lists' (L2, or IP: inner products, unit rows for COSINE);
    `near` the squared L2 distance (L2) or the inner product (IP) of each row
    to the centre of the list it is assigned to, exactly.
    """

    def __init__(self, centres: np.ndarray, metric: str, reach: np.ndarray | None = None) -> None:
        nlist, dim = centres.shape
        #: Per list, the farthest (L2) a row of the training sample nearest to it lies from its centre (not IP).
        self.reach = reach
        self.ip = metric != "L2"
        self.groups_read = GROUPS_READ
        count = max(2, int(round(np.sqrt(nlist))))
        km = faiss.Kmeans(dim, count, niter=GROUP_ROUNDS, seed=1234, spherical=self.ip, min_points_per_centroid=1)
        km.train(np.ascontiguousarray(centres, dtype=np.float32))
        self.group_centres = np.ascontiguousarray(km.centroids, dtype=np.float32)
        own = self._scores(centres, self.group_centres).argmax(axis=1)
        kept = np.unique(own)  # a group no list is nearest to is dropped: every group read offers lists
        self.group_centres = np.ascontiguousarray(self.group_centres[kept])
        #: Per group, the lists whose centres are nearest its centre, and those centres (transposed, for products).
        self.members = [np.flatnonzero(own == g) for g in kept]
        self.member_centres = [np.ascontiguousarray(centres[m].T) for m in self.members]
        self.member_half_sq = [0.5 * np.square(centres[m]).sum(axis=1) for m in self.members]
        self._group_half_sq = 0.5 * np.square(self.group_centres).sum(axis=1)
        #: Every centre (transposed) and its half squared norm, for `nearest`.
        self._all_centres = np.ascontiguousarray(centres.T, dtype=np.float32)
        self._all_half_sq = 0.5 * np.square(centres).sum(axis=1)

    def _scores(self, x: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Larger is nearer: inner products (IP), or ``x.c - |c|^2 / 2`` (L2: the squared distance less ``|x|^2``, halved)."""
        s = x @ c.T
        return s if self.ip else s - 0.5 * np.square(c).sum(axis=1)

    def assign(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row of `x` (float32, as the lists hold them) to a list: ``(near, lists)``, both ``[n]``."""
        n = x.shape[0]
        gs = x @ self.group_centres.T
        if not self.ip:
            gs -= self._group_half_sq
        read = min(self.groups_read, gs.shape[1])
        # each row's `read` nearest groups (small ints: a stable sort of them is a radix sort)
        picks = np.empty((n, read), dtype=np.uint8 if gs.shape[1] <= 256 else np.int64)
        at = np.arange(n)
        for r in range(read):  # a few argmax passes: cheaper than a partition of every row
            j = gs.argmax(axis=1)
            picks[:, r] = j
            gs[at, j] = -np.inf
        top = picks.ravel()
        order = np.argsort(top, kind="stable")
        bounds = np.searchsorted(top[order], np.arange(len(self.members) + 1)).tolist()
        # per (row, group read): the best score among the group's lists, and that list
        val = np.empty(n * read, dtype=np.float32)
        lst = np.empty(n * read, dtype=np.int64)
        for g, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
            if hi == lo:
                continue
            pos = order[lo:hi]
            s = np.take(x, pos // read, axis=0) @ self.member_centres[g]
            if not self.ip:
                s -= self.member_half_sq[g]
            j = s.argmax(axis=1)
            val[pos] = np.take_along_axis(s, j[:, None], axis=1)[:, 0]
            lst[pos] = self.members[g][j]
        k = val.reshape(n, read).argmax(axis=1) + at * read  # ties: the nearer group
        best, lists = val[k], lst[k]
        return self._scored(x, best, lists)

    def nearest(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`assign` against every centre: each row's nearest list, exactly (`nearest_centres`, on this thread).

        Not faiss's flat search: below ``faiss.cvar.distance_compute_blas_threshold``
        queries (128,000 in faiss 1.15) it compares row by row, ~4x slower here.
        """
        best, lists = _nearest(x, self._all_centres, None if self.ip else self._all_half_sq)
        return self._scored(x, best, lists)

    def _scored(self, x: np.ndarray, best: np.ndarray, lists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(near, lists)`` from the rows' best scores: the inner products (IP), or squared L2 distances."""
        if self.ip:
            return best, lists
        return np.maximum(np.einsum("nd,nd->n", x, x) - 2 * best, 0).astype(np.float32), lists


#: The two-step assigner of each set of trained lists (by the lists' id, while they live).
_BY_LISTS: dict[int, tuple[weakref.ref[Any], TwoStepAssigner]] = {}


def remember(trained: Any, metric: str, sample: np.ndarray) -> None:
    """Make the two-step assigner of freshly `trained` lists (nothing below `TWO_STEP_LISTS` lists).

    `sample` (as the lists hold rows) gives each list's `reach`: the farthest
    of the rows nearest to it, assigned against every centre.
    """
    quantizer = trained.quantizer
    if quantizer.ntotal < TWO_STEP_LISTS:
        return
    centres = quantizer.reconstruct_n(0, quantizer.ntotal)
    reach = None
    if metric != "IP":
        best, lists = nearest_centres(sample, centres, metric == "L2")
        # squared distances: |x|^2 - 2 (x.c - |c|^2 / 2) (L2), or 1 + |c|^2 - 2 x.c (COSINE: unit rows)
        sq = np.einsum("nd,nd->n", sample, sample) - 2 * best if metric == "L2" else \
            1 + np.square(centres).sum(axis=1)[lists] - 2 * best
        reach = np.zeros(quantizer.ntotal, dtype=np.float32)
        np.maximum.at(reach, lists, np.sqrt(np.maximum(sq, 0)))
    for key in [k for k, (ref, _) in _BY_LISTS.items() if ref() is None]:
        _BY_LISTS.pop(key, None)
    _BY_LISTS[id(trained)] = (weakref.ref(trained), TwoStepAssigner(centres, "L2" if metric == "L2" else "IP", reach))


def assigner_for(trained: Any) -> TwoStepAssigner | None:
    """The two-step assigner `remember` made for `trained` lists, if any."""
    got = _BY_LISTS.get(id(trained))
    return got[1] if got is not None and got[0]() is trained else None
