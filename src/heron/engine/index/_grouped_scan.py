"""Exact top-k (inner product or L2) over a filter's gathered rows that skips groups of rows which cannot make it.

A repeated filter's kept rows sit gathered in the subset cache (`_subset_cache`)
and one query is answered by scanning all of them (`ip_top_one`): the scan
reads every kept vector, so its cost is the memory they fill (10,000 x 128
floats, 5 MB: about 0.2 ms on one core). Once the same gathered rows have
served `GROUP_AFTER` searches, a background thread splits them into groups
with k-means (about `GROUP_ROWS` rows each) and keeps, per group, its centre
``c`` and radius ``r`` (the largest ``|x - c|`` of its rows), with the rows
copied in group order. For a query ``q`` every row ``x`` of a group scores
``q . x <= q . c + |q| r`` (Cauchy-Schwarz), so a search scans the groups of
highest bound until it holds ``k`` rows, takes the k-th best score found and
then scans every group whose bound reaches it: the rows left out cannot score
as high, so the answer is the full scan's. (A row's float32 product may differ from the full
scan's in the last bit, as BLAS rounds by a row's place in the matrix, so rows that tie to
within that may come in the other order; exact ties go to the lower id, as there.)
On data whose rows fall in clusters only a few groups are read; where the
bounds do not prune (rows spread evenly), a search costs at most the full scan
plus the bounds, and grouping is given up once searches keep reading more than
`GIVE_UP_SHARE` of the rows; an index whose rows were given up twice is not grouped again.
Sentence embeddings (MiniLM, 384-d) are such rows: their bounds prune nothing,
while synthetic clusters (`bench.filter_bound`) are read about 3% at 10% kept.
The same background thread first makes a float16 copy of the rows (`_half_scan`),
which answers, exactly too, whenever the groups do not.

Under L2 the same groups bound a row's distance from below: no row of a group
lies nearer ``q`` than ``|q - c| - r`` (the triangle inequality), so the groups
nearest by that bound are scanned until they hold ``k`` rows, and then every
group whose bound does not pass the k-th distance found (`GroupedRows.top_k_l2`).
Distances are sums of squared differences, as the exact scans re-score them, and
each bound is lowered by the rounding of such sums. L2 rows get a float16 copy too (`_half_scan`).

Memory: each grouping holds a copy of its rows (vectors and ids) plus its
centres, each float16 copy half the rows' bytes; all of them across the process
are bounded by `MAX_BYTES` (least recently used dropped first) and only rows of
at most `MAX_ROWS_BYTES` are grouped or copied.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from ._faiss import blas_threads_for, faiss
from ._half_scan import HalfRows

#: Fewest gathered values (rows x dim) worth grouping: below this (3,000 rows at 128-d, 500 at 768-d) a
#: full scan costs about as much as the bounds and the scan of the groups they keep (~25 us).
MIN_VALUES = 384_000
#: Fewest gathered rows worth grouping, whatever their width.
MIN_ROWS = 512
#: Mean rows per group.
GROUP_ROWS = 32
#: k-means iterations of a grouping (it only needs tight groups, not the best ones).
KMEANS_ITERATIONS = 8
#: Up to this many groups are scanned one product each; more are gathered into one copy first.
FEW_GROUPS = 8
#: Searches of the same gathered rows before they are grouped.
GROUP_AFTER = 16
#: Share of rows read (a moving average over searches) above which a grouping is dropped for good.
GIVE_UP_SHARE = 0.2
#: A search whose bounds ask for more than this share of the rows scans them all at once instead.
FULL_SCAN_SHARE = 0.3


def _budget() -> int:
    """``HERON_GROUPED_SCAN_BYTES`` (read at import; 0 turns grouping off), default 64 MiB."""
    raw = os.environ.get("HERON_GROUPED_SCAN_BYTES", "").strip()
    try:
        return max(int(raw), 0) if raw else 64 << 20
    except ValueError:
        return 64 << 20


#: Groupings of one owner (an index) given up before that owner's rows are not grouped again:
#: the rows of one collection tend to be alike, and a grouping that did not prune costs a k-means.
REFUSALS_PER_OWNER = 2
#: Bytes of groupings (row copies, ids, centres) and float16 copies kept across the process.
MAX_BYTES = _budget()
#: Largest gathered rows (vector bytes) that are grouped.
MAX_ROWS_BYTES = 16 << 20
#: Grouping runs on a background thread (off the search path); tests may set this False to group inline.
BACKGROUND = True


class GroupedRows:
    """Rows ``vecs`` (ids ``ids``, ascending) in k-means groups with centres and radii, for `top_k`."""

    __slots__ = ("vecs", "ids", "starts", "lens", "centres", "reach", "radii", "slack", "nbytes", "share",
                 "__weakref__")

    def __init__(self, ids: np.ndarray, vecs: np.ndarray, seed: int = 1234) -> None:
        n, d = vecs.shape
        if not np.isfinite(vecs).all():  # a NaN would poison its group's centre, and so its bound
            raise ValueError("rows that are not finite are not grouped")
        m = max(2, n // GROUP_ROWS)
        km = faiss.Kmeans(d, m, niter=KMEANS_ITERATIONS, seed=seed, max_points_per_centroid=GROUP_ROWS * 8,
                          min_points_per_centroid=1)
        km.train(vecs)
        _, assign = km.index.search(vecs, 1)
        group = assign[:, 0]
        order = np.argsort(group, kind="stable")  # rows of a group keep their order: ascending ids
        counts = np.bincount(group, minlength=m)
        keep = np.flatnonzero(counts)
        self.vecs = np.ascontiguousarray(vecs[order])
        self.ids = np.ascontiguousarray(ids[order])
        self.lens = counts[keep].astype(np.int64)
        self.starts = np.concatenate(([0], np.cumsum(self.lens)[:-1])).astype(np.int64)
        centres = np.asarray(km.centroids, dtype=np.float32)[keep]
        member_centres = np.repeat(np.arange(len(keep)), self.lens)
        dist = np.linalg.norm((self.vecs - centres[member_centres]).astype(np.float64), axis=1)
        self.centres = np.ascontiguousarray(centres)
        radii = np.maximum.reduceat(dist, self.starts)
        # float32 dot products of d terms err by up to about d * 2^-24 * |q| |x| (and a bound's product with
        # the centre as much again); bounds are widened by eight times that of the largest row or centre, so
        # a row left out can never round up past a kept score
        norms = np.sqrt(np.einsum("ij,ij->i", vecs, vecs)).max(initial=0.0)
        self.slack = 8.0 * d * 2.0**-24 * float(max(norms, np.sqrt(np.einsum("ij,ij->i", centres, centres)).max()))
        #: per group, its radius plus the slack: a query's bound is ``centre . q + reach * |q|``
        self.reach = (radii + self.slack).astype(np.float32)
        #: per group, the largest |x - c| of its rows, a little over (the float32 differences it came from
        #: err by 2^-24 of it): for L2, where no row of a group is nearer the query than |q - c| less it
        self.radii = radii * (1.0 + 2.0**-20) + 1e-30
        self.nbytes = int(self.vecs.nbytes + self.ids.nbytes + self.centres.nbytes + 4 * self.lens.nbytes)
        self.share = 0.0

    def top_k(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact top-`k` ``(scores [1, k], ids [1, k])`` of one float32 query ``q [dim]``; None: scan them all."""
        with blas_threads_for(1):  # products of a few thousand rows: a second BLAS thread costs more than it gives
            return self._top_k(q, k)

    def _top_k(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        n = self.vecs.shape[0]
        if k >= n:
            return None
        bound = self.centres @ q
        bound += self.reach * math.sqrt(float(np.dot(q, q)))
        top = int(bound.argmax())
        if self.lens[top] >= k:  # the best-placed group alone holds k rows: its k-th score is a floor
            s = int(self.starts[top])
            first = self.vecs[s : s + int(self.lens[top])] @ q
        else:  # the fewest groups of highest bound that hold k rows
            order = np.argsort(-bound)
            upto = int(np.searchsorted(np.cumsum(self.lens[order]), k)) + 1
            first, _ = self._scan(order[:upto], self.lens[order[:upto]], lambda x: x @ q)
        t = np.partition(first, first.shape[0] - k)[first.shape[0] - k]
        need = np.flatnonzero(bound >= t)  # every group that may hold a row scoring t or more
        lens = self.lens[need]
        read = int(lens.sum())
        self.share = 0.9 * self.share + 0.1 * (read / n)
        if read > FULL_SCAN_SHARE * n or read < k:  # (fewer than k only if a bound were wrong: never trust it)
            return None
        scores, rows = self._scan(need, lens, lambda x: x @ q)
        t = scores[np.argpartition(scores, read - k)[read - k]]
        cand = np.flatnonzero(scores >= t)  # every tie at the cut, so the lower ids win as in a full scan
        ids = self.ids[rows[cand]]
        best = np.lexsort((ids, -scores[cand]))[:k]
        return scores[cand[best]][None], ids[best][None]

    def top_k_l2(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """`top_k` for L2: the `k` nearest ``(squared distances [1, k], ids [1, k])``, ties to the lower id.

        Distances are sums of squared differences (as the exact scans re-score
        them). No row of a group lies nearer ``q`` than ``|q - c|`` less the
        group's radius; the computed sums of ``d`` squares err by less than
        ``(d + 3) * 2^-24`` of them, so each bound is lowered by four times that.
        None where ``q`` is not finite or to scan them all.
        """
        n, d = self.vecs.shape
        if k >= n or not math.isfinite(float(np.dot(q, q))):
            return None

        def dist(x: np.ndarray) -> np.ndarray:  # sums of squared differences, as the exact scans re-score L2 hits
            diff = x - q
            return np.einsum("ij,ij->i", diff, diff)

        near = np.sqrt(dist(self.centres).astype(np.float64) * (1.0 - (d + 4) * 2.0**-22))
        gap = np.maximum(near - self.radii, 0.0)
        floor = gap * gap * (1.0 - (d + 4) * 2.0**-22)  # no row's computed distance in the group is below it
        top = int(floor.argmin())
        if self.lens[top] >= k:  # the best-placed group alone holds k rows: its k-th distance is a ceiling
            s = int(self.starts[top])
            first = dist(self.vecs[s : s + int(self.lens[top])])
        else:
            order = np.argsort(floor)
            upto = int(np.searchsorted(np.cumsum(self.lens[order]), k)) + 1
            first, _ = self._scan(order[:upto], self.lens[order[:upto]], dist)
        t = float(np.partition(first, k - 1)[k - 1])
        need = np.flatnonzero(floor <= t)  # every group that may hold a row at t or nearer
        lens = self.lens[need]
        read = int(lens.sum())
        self.share = 0.9 * self.share + 0.1 * (read / n)
        if not math.isfinite(t) or read > FULL_SCAN_SHARE * n or read < k:
            return None
        got, rows = self._scan(need, lens, dist)
        t = float(np.partition(got, k - 1)[k - 1])
        cand = np.flatnonzero(got <= t)  # every tie at the cut, so the lower ids win as in a full scan
        ids = self.ids[rows[cand]]
        best = np.lexsort((ids, got[cand]))[:k]
        return got[cand[best]][None], ids[best][None]

    def _scan(self, groups: np.ndarray, lens: np.ndarray,
              score: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``score`` of the rows of `groups` (a block of rows at a time) and their positions, in group order."""
        if groups.shape[0] <= FEW_GROUPS:  # a block per group, in place: no copy of the rows
            spans = [(s, s + n) for s, n in zip(self.starts[groups].tolist(), lens.tolist())]
            scores = np.concatenate([score(self.vecs[a:b]) for a, b in spans])
            return scores, np.concatenate([np.arange(a, b) for a, b in spans])
        ends = np.cumsum(lens)
        rows = np.arange(int(ends[-1])) + np.repeat(self.starts[groups] - (ends - lens), lens)
        return score(self.vecs[rows]), rows


class _Entry:
    __slots__ = ("source", "owner", "metric", "uses", "grouped", "half", "state")

    def __init__(self, source: np.ndarray, owner: int, gone: Any, metric: str = "IP") -> None:
        self.source = weakref.ref(source, gone)
        self.owner = owner
        self.metric = metric  # "IP" or "L2": an index's rows are searched with its one metric
        self.uses = 0
        self.grouped: GroupedRows | None = None
        self.half: HalfRows | None = None  # a float16 copy, for when the groups do not prune
        self.state = "counting"  # then "grouping", "ready" or "refused"


class Groupings:
    """The groupings and float16 copies of gathered rows, by the identity of the gathered vectors array, bounded in bytes."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_entries: int = 256) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.RLock()  # a weakref callback (`_forget`) may run on a thread holding it
        #: groupings made, and searches they answered (counters for tests and diagnostics)
        self.built = 0
        self.answered = 0
        self.answered_half = 0
        self._busy = False
        #: per owner, its groupings given up (bounded: cleared when it holds too many owners)
        self._refusals: dict[int, int] = {}

    @property
    def nbytes(self) -> int:
        """Bytes held by the groupings now."""
        return self._bytes

    def top_k(
        self, ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, k: int, owner: int = 0, metric: str = "IP"
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The exact top-`k` of ``q`` over ``(ids, vecs)`` from their groups or float16 copy, or None to scan them in full.

        ``metric`` "IP" (highest inner products) or "L2" (nearest, `GroupedRows.top_k_l2`).

        ``vecs`` must not change while it lives (the subset cache's arrays do not):
        its grouping is found again by the array's identity. ``owner`` names where
        the rows come from (an index): after `REFUSALS_PER_OWNER` groupings of its
        rows did not prune, its rows are no longer grouped.
        """
        n = vecs.shape[0]
        if n < MIN_ROWS or n * vecs.shape[1] < MIN_VALUES or vecs.nbytes > MAX_ROWS_BYTES or vecs.flags.writeable:
            return None
        key = id(vecs)
        e = self._entries.get(key)  # one C call; a stale entry (another array at a reused id) is replaced
        if e is None or e.source() is not vecs:
            with self._lock:
                e = self._entries.get(key)
                if e is None or e.source() is not vecs:
                    if e is not None:
                        self._release(e)
                    e = self._entries[key] = _Entry(vecs, owner, self._forget(key), metric)
                    while len(self._entries) > self.max_entries:
                        self._drop_oldest()
        if e.metric != metric:  # the same rows under the other metric: not what they were grouped for
            return None
        g = e.grouped
        if g is None and e.state == "counting":
            e.uses += 1
            if e.uses >= GROUP_AFTER and not self._busy and self.max_bytes:
                e.state, self._busy = "grouping", True  # one grouping at a time: its CPU is bounded
                group = self._refusals.get(owner, 0) < REFUSALS_PER_OWNER
                if BACKGROUND:
                    threading.Thread(target=self._group, args=(key, e, ids, vecs, group), name="heron-group-rows",
                                     daemon=True).start()
                else:
                    self._group(key, e, ids, vecs, group)
                g = e.grouped
        if g is not None:
            out = g.top_k(q, k) if metric == "IP" else g.top_k_l2(q, k)
            if g.share > GIVE_UP_SHARE:
                with self._lock:
                    if e.grouped is g:
                        e.grouped, e.state = None, "refused"
                        self._bytes -= g.nbytes
                        self._refused(e.owner)
            if out is not None:
                self.answered += 1
                return out
        h = e.half
        out = h.top_k(ids, vecs, q, k) if h is not None else None
        if out is not None:
            self.answered_half += 1
        return out

    def _forget(self, key: int) -> Any:
        """A weakref callback: once the gathered rows are freed (evicted from the subset cache), so is their entry."""

        def gone(ref: Any) -> None:
            with self._lock:
                e = self._entries.get(key)
                if e is not None and e.source is ref:
                    del self._entries[key]
                    self._release(e)

        return gone

    def _group(self, key: int, e: _Entry, ids: np.ndarray, vecs: np.ndarray, group: bool) -> None:
        try:
            h: HalfRows | None = None
            try:
                h = HalfRows(vecs, e.metric)
            except Exception:  # noqa: BLE001 - searches go on scanning the float32 rows
                h = None
            with self._lock:
                if h is not None and self._entries.get(key) is e and h.nbytes <= self.max_bytes:
                    self._entries.move_to_end(key)
                    e.half = h
                    self._bytes += h.nbytes
                    while self._bytes > self.max_bytes and len(self._entries) > 1:
                        self._drop_oldest()
            g: GroupedRows | None = None
            if group:
                try:
                    g = GroupedRows(ids, vecs)
                except Exception:  # noqa: BLE001 - searches go on scanning in full
                    g = None
        finally:
            self._busy = False
        if not group:
            e.state = "refused"
            return
        with self._lock:
            held = e.half.nbytes if e.half is not None else 0
            if g is None or self._entries.get(key) is not e or g.nbytes + held > self.max_bytes:
                e.state = "refused"
                if g is None:
                    self._refused(e.owner)
                return
            self._entries.move_to_end(key)
            e.grouped, e.state = g, "ready"
            self._bytes += g.nbytes
            self.built += 1
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                self._drop_oldest()

    def _release(self, e: _Entry) -> None:
        """Forget what `e` holds (under the lock)."""
        for held in (e.grouped, e.half):
            if held is not None:
                self._bytes -= held.nbytes
        e.grouped = e.half = None

    def _refused(self, owner: int) -> None:
        if len(self._refusals) >= 4096:
            self._refusals.clear()
        self._refusals[owner] = self._refusals.get(owner, 0) + 1

    def _drop_oldest(self) -> None:
        _, old = self._entries.popitem(last=False)
        self._release(old)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


GROUPINGS = Groupings()


def grouped_top_k(
    ids: np.ndarray, vecs: np.ndarray, q: np.ndarray, k: int, owner: int = 0, metric: str = "IP"
) -> tuple[np.ndarray, np.ndarray] | None:
    """`Groupings.top_k` of the process's groupings."""
    return GROUPINGS.top_k(ids, vecs, q, k, owner, metric)
