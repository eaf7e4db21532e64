"""Interim indexes: fresh rows searched through an IVF index that grows with them until their segment's own is built.

A segment's vector index is built once the segment is sealed, and on a
100k-row load that build takes a minute; meanwhile an exact scan of every
fresh row would answer each query. Milvus searches growing data through an
interim IVF index; so does Heron. The first segment of a field that holds
``HERON_INTERIM_ROWS`` rows (default `INTERIM_ROWS`; 0 turns interim indexes
off) trains the field's IVF lists on them (`_interim_ivf.train_lists`; a
sealed segment with fewer, from `INTERIM_MIN_ROWS` on, trains lists for
itself alone); from then on every segment of the
field that has no index of its own gets a copy of those lists, and its rows
are assigned to them on background threads as they arrive: each insert asks
for it (`InterimIndexer.look`), and a worker catches up with the rows
committed by then, `GROW_ROWS` at a time. ``HERON_INTERIM_WORKERS`` workers
(default `INTERIM_WORKERS`) each grow a different segment's index; segments
that need the field's lists while one worker trains them wait for them. A search then asks the segment's interim index
and scans only the rows it does not hold yet exactly, so right after an insert
returns only the rows of the last few calls are scanned.

Interim indexes are derived data in memory only: a crash loses nothing but
them, and they are dropped once the segment's own index is in (or its
segment is merged away), unless newer rows may still be merged into the
segment and the fresh rows beside it outnumber its own (`_outnumbered`:
only then are they read, below). Sealing keeps them: the sealed segment is the same
one, and its index keeps answering until the segment's own is in. A segment
that has both is read through its interim index while the fresh segments
beside it hold more rows (`interim_first`), and a merge of two segments
whose interim indexes hold all their rows gives the merged one both joined
(`join_interim`): right after a large load the first segments indexed stay
in the one read of the fresh rows' lists until they are most of the rows.

Only float vector fields whose index is not FLAT get them (a FLAT index
promises exact results), and only for top-k searches; range searches scan
exactly, as do searches whose filter leaves too few rows for the lists to
find `k` of them. The segments a search reads whole (no filter, no deleted
rows) are searched together (`FreshSegments`): one coarse assignment per
query for all of them, one exact re-scoring of all their candidates. A search
that passes ``{"interim": False}`` among its parameters (indexes ignore keys
they do not know) scans those rows exactly too.

A segment's own index build waits (`InterimIndexer.settle`, at most
`SETTLE_SECONDS`) until the interim indexes have caught up: right after a
load the build would otherwise share a core with the catching up, and
searches would scan the rows not yet in the lists exactly for longer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .._pool import Pool
from .._types import DataType
from ._interim_fast import fast_eligible
from ._interim_ivf import GrowingIVF, prepared, train_lists
from ._interim_merged import carry_copies, encode_soon, joined, merged_for, searched, searched_lately
from ._interim_one import STACK_ABOVE, search_fresh
from ._segment_map import let_go_of_rows
from .index._base import IndexChanged
from .index._exact import empty_result, exact_search, select_topk
from .index._faiss import single_threaded_here

if TYPE_CHECKING:
    from ._collection import Collection, Partition
    from ._engine import Engine
    from ._segment import Segment, SegmentView

log = logging.getLogger("heron.engine")

#: Rows the first segment of a field needs to train the field's interim lists (``HERON_INTERIM_ROWS``;
#: 0: no interim indexes).
INTERIM_ROWS = 16384
#: The most rows one step of the background thread adds to an interim index.
GROW_ROWS = 8192
#: A sealed segment trains them from this many rows on (or half of ``HERON_INTERIM_ROWS``, if that is less).
INTERIM_MIN_ROWS = 2048
#: The longest a segment index build waits for the interim indexes to catch up (`InterimIndexer.settle`).
SETTLE_SECONDS = 2.0
#: Threads that grow interim indexes (``HERON_INTERIM_WORKERS``), each a different segment's index at a time.
INTERIM_WORKERS = 2
#: Inserts this recent keep the interim workers to one at a time (`InterimIndexer._turn`).
INSERTS_QUIET = 0.05
#: How long nothing must be queued for the interim indexes to count as caught up.
SETTLE_GRACE = 0.02
_DENSE = (DataType.FLOAT_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)
_METRICS = ("L2", "IP", "COSINE")


def interim_rows() -> int:
    """``HERON_INTERIM_ROWS`` (default `INTERIM_ROWS`); ValueError if malformed."""
    return _whole_number("HERON_INTERIM_ROWS", INTERIM_ROWS, 0)


def interim_workers() -> int:
    """``HERON_INTERIM_WORKERS`` (default `INTERIM_WORKERS`); ValueError if malformed."""
    return _whole_number("HERON_INTERIM_WORKERS", INTERIM_WORKERS, 1)


def _whole_number(name: str, default: int, least: int) -> int:
    """The environment's setting `name` as a whole number of at least `least` (`default` if unset)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = least - 1
    if value < least:
        raise ValueError(f"{name}={raw!r}: expected a whole number >= {least}")
    return value


def _eligible(coll: Collection) -> list[tuple[str, Any, DataType, int]]:
    """The (field, signature, dtype, dim) of `coll`'s vector fields that interim indexes serve."""
    out = []
    for d in list(coll.indexes.values()):
        f = coll.schema.field(d.field_name)
        if f is not None and f.dtype in _DENSE and d.metric_type in _METRICS and d.index_type != "FLAT":
            out.append((f.name, d.signature, f.dtype, int(f.dim or 0)))
    return out


class InterimIndexer:
    """Trains, grows and drops the interim indexes of one engine's segments; see the module docstring."""

    def __init__(self, engine: Engine, rows: int, workers: int = INTERIM_WORKERS) -> None:
        self.engine = engine
        #: Rows the first segment of a field needs before its lists are trained; 0: no interim indexes.
        self.rows = rows
        #: Threads that grow interim indexes, each a different segment's at a time.
        self.workers = workers
        self._pool: Pool | None = None
        self._queued: set[tuple[int, str]] = set()
        #: Segments and fields whose interim build raised: not tried again (their rows are scanned exactly).
        self._failed: set[tuple[int, str]] = set()
        #: Trained, empty lists per (collection id, field, index signature): each segment starts from a copy.
        self._trained: dict[tuple[int, str, Any], Any] = {}
        #: Guards `_queued` (and `_failed`); notified whenever `_queued` changes (`settle`).
        self._lock = threading.Condition(threading.Lock())
        #: Held while a worker trains lists: the segments of the same field wait for them rather than train their own.
        self._training = threading.Lock()
        #: Workers growing an index now, and when an insert last asked for growth (`_turn`; both under `_lock`).
        self._growing = 0
        self._written_at = 0.0

    @property
    def enabled(self) -> bool:
        return self.rows > 0

    @property
    def min_rows(self) -> int:
        """The fewest rows a sealed segment needs to train a field's lists (if no segment trained them yet)."""
        return max(1, min(INTERIM_MIN_ROWS, self.rows // 2))

    def stop(self) -> None:
        """Stop building (a build under way finishes; queued ones are dropped)."""
        pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def look(self, coll: Collection, written: bool = False) -> None:
        """Queue the growth of the interim indexes that lag their segment; drop those the segment's own index replaced.

        `written`: an insert asks, having just written rows (`_turn`).
        """
        if not self.enabled:
            return
        if written:
            self._written_at = time.monotonic()
        if coll.dropped:
            self.forget(coll.id)
            return
        fields = _eligible(coll)
        if not fields:
            return
        for p in list(coll.partitions.values()):
            for seg in p.segments():
                for name, sig, dtype, dim in fields:
                    built = seg.vindex.get(name)
                    if built is not None and built[0] == sig:
                        if seg.interim and not (self._may_merge_into(coll, p, seg) and _outnumbered(p, seg, name)):
                            seg.interim.pop(name, None)
                        continue
                    have = seg.interim.get(name)
                    covered = have[1].ntotal if have is not None and have[0] == sig else 0
                    if seg.n > covered and (have is not None or seg.n >= self.rows or
                                            (coll.id, name, sig) in self._trained or
                                            (seg.sealed and seg.n >= self.min_rows)):
                        self._queue(coll, seg, name, sig, dtype, dim)

    def copy_ahead(self, coll: Collection) -> None:
        """Have the copies of the lists searches of `coll` read made once they settle (`copy_ahead`; the sealer's thread)."""
        if self.enabled and not coll.dropped:
            for name, sig, _, _ in _eligible(coll):
                copy_ahead(coll, name, sig)

    def _may_merge_into(self, coll: Collection, p: Partition, seg: Segment) -> bool:
        """Whether rows sealed after `seg` may yet be merged into it.

        The merge grows a copy of `seg`'s index by those rows (`index/_grow.py`) and `seg` keeps
        answering from its own; its interim indexes are kept until then as a fallback (and are read
        instead of its own while the fresh segments beside it hold more rows, `interim_first`).
        """
        sealed = p.sealed
        i = next((j for j, s in enumerate(sealed) if s is seg), None)
        if i is None:
            return False
        if any(not s.persisted or not s.vindex for s in sealed[i + 1 :]):
            return True  # not yet persisted, or persisted with its merge (or index build) queued
        g = p.growing
        return i == len(sealed) - 1 and g is not None and g.n > 0 and \
            seg.n + g.n <= self.engine.maintenance.merge_limit(coll)

    def _queue(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        key = (seg.id, name)
        with self._lock:
            if key in self._queued or key in self._failed or self.engine.closing:
                return
            self._queued.add(key)
            self._lock.notify_all()
            if self._pool is None:
                # At the callers' priority: each step is short, and searches wait for it. Each worker on one
                # thread (faiss and BLAS), growing one segment's index at a time: during a large load one
                # falls behind the inserts (at 1M x 128 about half the rows are in no list when the last
                # insert returns), and once the inserts stop (`_turn`) the others list the rest beside it.
                self._pool = Pool(max_workers=self.workers, thread_name_prefix="heron-interim",
                                  initializer=single_threaded_here)
        try:
            self._pool.submit(self._build, coll, seg, name, sig, dtype, dim)
        except RuntimeError:  # shut down: the engine is closing
            with self._lock:
                self._queued.discard(key)
                self._lock.notify_all()

    def _turn(self) -> None:
        """Wait for this worker's turn to grow an index: one worker at a time while inserts come in, all once they stop.

        During a load the inserts, the kernel's writing of their log and one
        worker already fill two cores: a second worker there slowed a 1M x 128
        load by a fifth (0.79-0.86M rows/s against 1.02-1.08M). Once no insert
        came for `INSERTS_QUIET` seconds, the rows left behind are listed by
        every worker.
        """
        with self._lock:
            while self._growing and not self.engine.closing:
                quiet = time.monotonic() - self._written_at
                if quiet >= INSERTS_QUIET:
                    break
                self._lock.wait(INSERTS_QUIET - quiet)
            self._growing += 1

    def _build(self, coll: Collection, seg: Segment, name: str, sig: Any, dtype: DataType, dim: int) -> None:
        """Bring `seg`'s interim index of `name` up to the segment's rows (training the field's lists first)."""
        ivf: GrowingIVF | None = None
        self._turn()
        try:
            if coll.dropped or self.engine.closing or seg.retired or name in seg.vindex:
                return
            d = coll.index_for(name)
            if d is None or d.signature != sig:
                return
            have = seg.interim.get(name)
            ivf = have[1] if have is not None and have[0] == sig else None
            n = seg.n
            vecs = seg.snapshot().vectors(name)
            if ivf is None:
                with self._training:  # another worker training the field's lists: these rows wait for them
                    trained = self._trained.get((coll.id, name, sig))
                    if trained is None:
                        sample = vecs[: min(n, self.rows)]
                        trained = train_lists(dim, d.metric_type, prepared(dtype, d.metric_type, sample))
                        if sample.shape[0] >= self.rows:  # lists from a small sealed segment serve it alone
                            self._forget_dropped()
                            self._trained[(coll.id, name, sig)] = trained
                ivf = GrowingIVF(dtype, dim, d.metric_type, trained)
            start = ivf.ntotal
            if n > start:  # a step at a time: searches scan fewer rows after each
                ivf.grow(vecs[start : min(n, start + GROW_ROWS)])
                let_go_of_rows(seg, name, start, min(n, start + GROW_ROWS))
            if name not in seg.vindex:
                seg.interim[name] = (sig, ivf)
                if ivf.ntotal >= seg.n:  # caught up: rows not in the lists yet are scanned exactly, they come first
                    encode_soon(ivf, vecs)  # wide rows: their 4-bit codes, for the copy
        except Exception:  # derived data: the rows stay searched exactly
            log.exception("building an interim index on segment %s failed", seg.id)
            with self._lock:
                self._failed.add((seg.id, name))
        finally:
            with self._lock:
                self._queued.discard((seg.id, name))
                self._growing -= 1
                self._lock.notify_all()
        if seg.n > (ivf.ntotal if ivf is not None else 0) and not seg.retired:
            self.look(coll)  # rows came in meanwhile

    def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """Wait, up to `timeout` seconds, until the interim indexes have caught up with their segments' rows.

        A segment index build takes a core for many seconds, and the interim
        indexes' few tenths of a second of catching up on it; waiting for them
        first lets searches right after a load read the lists sooner. Caught up:
        nothing queued for `SETTLE_GRACE` seconds (a step queues the next one
        just after it ends).
        """
        if not self.enabled:
            return
        end = time.monotonic() + timeout
        with self._lock:
            while not self.engine.closing:
                left = end - time.monotonic()
                if left <= 0:
                    return
                if self._queued:
                    self._lock.wait(left)
                elif not self._lock.wait_for(lambda: bool(self._queued), min(left, SETTLE_GRACE)):
                    return

    def forget(self, coll_id: int) -> None:
        """Drop the lists trained for a dropped collection."""
        for key in [k for k in self._trained if k[0] == coll_id]:
            self._trained.pop(key, None)

    def _forget_dropped(self) -> None:
        live = {c.id for c in list(self.engine.collections.values()) if not c.dropped}
        for key in [k for k in self._trained if k[0] not in live]:
            self._trained.pop(key, None)


def copy_ahead(coll: Collection, name: str, sig: Any) -> None:
    """Have the copy of the lists a search of all of `coll` reads through (`_interim_merged`) made once they settle.

    A search asks for it too, but the copy takes a second or so to make
    beside a build: made here (the sealer's thread asks every quarter of a second), the
    first search after a quiet while does not read the stack meanwhile. Only
    for lists a search read lately (`searched_lately`): a load nobody
    searches yet holds no copy. The
    segments are those `FreshSegments` would read through their interim
    indexes, in the same order; nothing is asked while any of them is still
    catching up (it has not settled).
    """
    taken: list[tuple[Any, GrowingIVF, Any]] = []
    for p in [p for p in list(coll.partitions.values()) if p.loaded]:
        for seg in p.segments():
            if seg.n == 0 or seg.deleted:
                continue  # a segment with deleted rows is read on its own
            have = seg.interim.get(name)
            built = seg.vindex.get(name)
            own = built[1] if built is not None and built[0] == sig else None
            if have is None or have[0] != sig or have[1].ntotal < seg.n:
                if own is not None or have is None:
                    continue  # read through its own index, or scanned
                return  # still catching up
            taken.append((seg, have[1], own))
    read, _ = interim_first(taken)
    if len({id(ivf.lists) for _, ivf in read}) != 1:
        return
    first = read[0][1]
    if not searched_lately(first.lists):
        return  # nobody searches these rows yet: no copy held for them (at 1M x 128, 124 MB)
    if len(read) > STACK_ABOVE or fast_eligible(first.lists, first.dim):
        merged_for([ivf for _, ivf in read], read=False, vectors=[seg.view_store(name, ivf.ntotal) for seg, ivf in read])


def interim_wanted(params: dict[str, Any]) -> bool:
    nested = params.get("params")
    flag = nested.get("interim", True) if isinstance(nested, dict) else True
    return params.get("interim", True) is not False and flag is not False


def interim_search(view: SegmentView, field: Any, d: Any, metric: str, queries: Any, k: int,
                   allow: np.ndarray | None, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-`k` over the view's rows through the segment's interim index, or None where it has none.

    Rows the index does not hold yet are scanned exactly; the results are
    merged best first, as `exact_search` returns them.
    """
    have = view.segment.interim.get(field.name)
    if have is None or d is None or have[0] != d.signature or not interim_wanted(params):
        return None
    ivf: GrowingIVF = have[1]
    n = view.n
    top = min(n, ivf.ntotal)
    if top == 0:
        return None
    searched(ivf.lists)
    nq = queries.shape[0]
    vecs = view.vectors(field.name)
    parts_s, parts_r = [], []
    sub = None if allow is None else allow[:top]
    if sub is None or sub.any():
        got = ivf.search(vecs, queries, min(k, top), top, sub)  # rows past `top` are the exact scan's
        if got is None:  # a filter the lists cannot serve: scan exactly
            return None
        parts_s.append(got[0])
        parts_r.append(got[1])
    if top < n:
        sub = None if allow is None else allow[top:n]
        if sub is None or sub.any():
            norms = view.sq_norms(field.name)
            s, r = exact_search(field.dtype, metric, vecs[top:n], queries, min(k, n - top),
                                allow=sub, sq_norms=None if norms is None else norms[top:n])
            parts_s.append(s)
            parts_r.append(np.where(r >= 0, r + top, -1))
    if not parts_s:
        return empty_result(nq, k, metric)
    if len(parts_s) == 1 and parts_s[0].shape[1] == k:
        return parts_s[0], parts_r[0]
    scores, rows = np.concatenate(parts_s, axis=1), np.concatenate(parts_r, axis=1)
    best_s, pos = select_topk(scores, min(k, scores.shape[1]), metric)
    best_r = np.take_along_axis(rows, pos, axis=1)
    out_s, out_r = empty_result(nq, k, metric)
    out_s[:, : best_s.shape[1]], out_r[:, : best_r.shape[1]] = best_s, best_r
    return out_s, out_r


class FreshSegments:
    """The segments one search reads through their interim indexes, searched together once all are known.

    `take` each segment view a search would read whole (no filter, no deleted
    rows) and has no index of its own; `collect` then answers them all: per
    group of indexes with the same trained lists one `search_together`, the
    rows their indexes do not hold yet scanned exactly, merged best first.
    """

    def __init__(self, field: Any, d: Any, metric: str, queries: Any, k: int, params: dict[str, Any]) -> None:
        self.field, self.d, self.metric, self.queries, self.k, self.params = field, d, metric, queries, k, params
        self.on = d is not None and field.dtype in _DENSE and interim_wanted(params)
        self.taken: list[tuple[SegmentView, GrowingIVF, Any]] = []  # (view, interim index, own index or None)

    def take(self, view: SegmentView, own: Any = None) -> bool:
        """Whether `view` (all of its rows searched) is left to `collect`: it has an interim index that holds rows.

        `own` is the segment's own index, if it has one: then its interim
        index must hold all its rows, and `collect` reads the view through it
        only if the views taken without an index of their own hold more rows
        (`interim_first`), else through `own`.
        """
        if not self.on:
            return False
        have = view.segment.interim.get(self.field.name)
        if have is None or have[0] != self.d.signature or have[1].ntotal == 0 or \
                (own is not None and have[1].ntotal < view.n):
            return False
        self.taken.append((view, have[1], own))
        return True

    def collect(self, per_q: list[list[tuple[float, SegmentView, int]]]) -> int:
        """Add each query's best `k` hits of the views taken to `per_q` (best first); the number of views."""
        if not self.taken:
            return 0
        name, metric, queries = self.field.name, self.metric, self.queries
        taken, owned = interim_first(self.taken)
        for view, own in owned:  # too few rows beside them read through interim indexes: their own indexes
            try:
                s_, r_ = own.search(queries, min(self.k, view.n), allow=None, params=self.params, rows=view.n)
            except IndexChanged:  # merged into another segment meanwhile
                s_, r_ = _alone(view, self.field, self.d, metric, queries, min(self.k, view.n), self.params)
            for hits, srow, rrow in zip(per_q, s_.tolist(), r_.tolist()):
                hits.extend([(s, view, r) for s, r in zip(srow, rrow) if r >= 0])
        if not taken:
            return len(owned)
        groups: dict[int, list[tuple[SegmentView, GrowingIVF]]] = {}
        for view, ivf in taken:
            groups.setdefault(id(ivf.lists), []).append((view, ivf))
        parts_s: list[np.ndarray] = []
        parts_v: list[np.ndarray] = []
        parts_r: list[np.ndarray] = []

        def add(scores: np.ndarray, at: Any, rows: np.ndarray) -> None:
            parts_s.append(scores)
            parts_v.append(np.broadcast_to(at, rows.shape))
            parts_r.append(rows)

        views: list[SegmentView] = []
        for group in groups.values():
            first = len(views)
            views.extend(v for v, _ in group)
            parts = [(ivf, v.vectors(name), min(v.n, ivf.ntotal)) for v, ivf in group]
            got = search_fresh(parts, queries, min(self.k, sum(p[2] for p in parts)))
            if got is None:  # too few candidates: each view on its own (scanned exactly where the lists cannot serve)
                for i, (v, _) in enumerate(group):
                    s_, r_ = _alone(v, self.field, self.d, metric, queries, min(self.k, v.n), self.params)
                    add(s_, first + i, r_)
                continue
            add(got[0], got[1] + first, got[2])
            for i, ((v, _), (_, vecs, top)) in enumerate(zip(group, parts)):
                if top < v.n:  # rows the index does not hold yet
                    norms = v.sq_norms(name)
                    s_, r_ = exact_search(self.field.dtype, metric, vecs[top : v.n], queries,
                                          min(self.k, v.n - top), sq_norms=None if norms is None else norms[top : v.n])
                    add(s_, first + i, np.where(r_ >= 0, r_ + top, -1))
        scores, at, rows = parts_s[0], parts_v[0], parts_r[0]
        if len(parts_s) > 1:
            scores, at, rows = np.concatenate(parts_s, axis=1), np.concatenate(parts_v, axis=1), \
                np.concatenate(parts_r, axis=1)
            best, pos = select_topk(np.where(rows >= 0, scores, np.float32(np.nan)), min(self.k, scores.shape[1]),
                                    metric)
            scores, at, rows = best, np.take_along_axis(at, pos, axis=1), np.take_along_axis(rows, pos, axis=1)
            rows[pos < 0] = -1
        for hits, srow, vrow, rrow in zip(per_q, scores.tolist(), at.tolist(), rows.tolist()):
            hits.extend([(s, views[v], r) for s, v, r in zip(srow, vrow, rrow) if r >= 0])
        return len(taken) + len(owned)


def _outnumbered(p: Partition, seg: Segment, name: str) -> bool:
    """Whether the rows of `p` without an index of their own on `name` outnumber those of indexed `seg`.

    Only then do searches read `seg` through its interim lists (`interim_first`);
    otherwise the lists only hold memory (at 1M x 128 rows, 136 MB).
    """
    fresh = sum(s.n for s in p.segments() if name not in s.vindex)
    return fresh > seg.n


def interim_first(taken: list[tuple[Any, GrowingIVF, Any]]) -> tuple[list[tuple[Any, GrowingIVF]], list[tuple[Any, Any]]]:
    """Which of the views `taken` (``(view, interim index, own index or None)``) one search reads through their interim indexes.

    A view without an index of its own is read through its interim index. One
    with both is read through the interim index while the views without an
    index of their own, on the same trained lists, hold more rows than it: right
    after a large load the first segments indexed (and the segments merged
    from them) are a small part of the rows, and one read of one copy of every
    segment's lists (`_interim_merged`) costs less than that read plus a search
    of the segment's own index. Returns ``([(view, interim index)], [(view, own
    index)])``, each in the order taken (the order names the copy of the lists).
    """
    fresh: dict[int, int] = {}
    for view, ivf, own in taken:
        if own is None:
            key = id(ivf.lists)
            fresh[key] = fresh.get(key, 0) + view.n
    read, owned = [], []
    for view, ivf, own in taken:
        if own is None or fresh.get(id(ivf.lists), 0) > view.n:
            read.append((view, ivf))
        else:
            owned.append((view, own))
    return read, owned


def join_interim(base: Segment, seg: Segment, new: Segment) -> None:
    """Give `new`, merged from `base` and `seg` (their rows in that order), the interim indexes of both joined.

    Only where both hold all their rows on the same trained lists: the merged
    segment is then read through the one copy of the lists with the fresh
    segments (`interim_first`) while it is a small part of the rows.
    """
    if new.n != base.n + seg.n:
        return
    for name, (sig, a) in list(base.interim.items()):
        got = seg.interim.get(name)
        if got is None or got[0] != sig or got[1].lists is not a.lists or a.ntotal != base.n or \
                got[1].ntotal != seg.n:
            continue
        try:
            j = joined(a, got[1])
            carry_copies(a, got[1], j)
            new.interim[name] = (sig, j)
        except Exception:  # derived data: the merged segment answers from its own index
            log.exception("joining the interim indexes of segments %s and %s failed", base.id, seg.id)


def _alone(view: SegmentView, field: Any, d: Any, metric: str, queries: Any, k: int,
           params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    got = interim_search(view, field, d, metric, queries, k, None, params)
    if got is not None:
        return got
    return exact_search(field.dtype, metric, view.vectors(field.name), queries, k, sq_norms=view.sq_norms(field.name))
