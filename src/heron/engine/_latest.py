"""One row per primary key: the rows that a later write of their key hides.

An insert never looks for the keys it writes, so a key inserted twice (twice
in one batch, or by two inserts with no upsert or delete between) is stored
twice. Reads answer as Milvus's result reduction does: each key's latest
write (highest sequence number; within one batch, the later row) is the only
version that exists for filters, counts, gets and searches. An older
version that a filter would match while the latest does not is not a hit.

`LatestKeys` finds, for a snapshot, the rows so hidden. It works on key
*prints* (the key itself for INT64, a 64-bit hash for VARCHAR; equal keys
have equal prints, and a shared print only makes rows candidates, which the
exact keys then decide): the prints that repeat among the sealed segments of
a snapshot are found once per set of sealed segments (a seal, merge or
compaction changes it), and a growing segment's rows are checked against
them as they arrive, once each. A snapshot whose prints never repeat costs
a few dictionary lookups; otherwise only the rows of repeated prints are
gathered, and which of them is latest is decided per snapshot, since
deletes change it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from ._segment import Segment, SegmentView

#: Sets of sealed segments (and of growing ones over them) whose repeated prints are remembered.
_STATES = 4
_EMPTY = np.empty(0, dtype=np.int64)
_P = np.uint64(0x100000001B3)
_P_INV = np.uint64(pow(int(_P), -1, 1 << 64))
#: Bytes of VARCHAR keys hashed per numpy step (bounds the temporaries; cache-sized steps are fastest).
_HASH_STEP = 1 << 16


def key_prints(keys: Any) -> np.ndarray:
    """The prints of primary keys: INT64 keys as they are, VARCHAR keys hashed to int64 (vectorised)."""
    if isinstance(keys, np.ndarray):
        return keys
    chunks = keys.chunks if isinstance(keys, pa.ChunkedArray) else [keys]
    parts = [_string_prints(c) for c in chunks if len(c)]
    return np.concatenate(parts) if parts else _EMPTY


def _string_prints(arr: pa.Array) -> np.ndarray:
    """A polynomial hash of each string's UTF-8 bytes (and its length), mod 2**64."""
    n = len(arr)
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)[arr.offset: arr.offset + n + 1].astype(np.int64)
    data = arr.buffers()[2]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.empty(0, dtype=np.uint8)
    out = np.empty(n, dtype=np.uint64)
    lo = 0
    while lo < n:  # rows in steps of about _HASH_STEP bytes
        hi = int(np.searchsorted(offsets, offsets[lo] + _HASH_STEP, side="right")) - 1
        hi = min(n, max(hi, lo + 1))
        out[lo:hi] = _hash_rows(raw, offsets[lo: hi + 1])
        lo = hi
    return out.view(np.int64)


def _hash_rows(raw: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``sum(b[j] * P**(end-1-j))`` per string, as ``P**(end-1) * sum(b[j] * P**-j)``: one cumulative sum."""
    base = int(offsets[0])
    start, end = offsets[:-1] - base, offsets[1:] - base
    lengths = (end - start).astype(np.uint64)
    total = int(end[-1])
    if total == 0:
        return lengths
    fwd, inv = _powers(total)
    sums = np.empty(total + 1, dtype=np.uint64)
    sums[0] = 0
    with np.errstate(over="ignore"):
        np.cumsum(raw[base: base + total] * inv[:total], out=sums[1:])
        return (sums[end] - sums[start]) * fwd[np.maximum(end - 1, 0)] * _P + lengths


_tables: list[np.ndarray] = [np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.uint64)]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``P**j`` and ``P**-j`` (mod 2**64) for ``j < n``, kept for the next call."""
    fwd, inv = _tables
    if len(fwd) < n:
        size = max(n, _HASH_STEP)
        fwd, inv = _geometric(_P, size), _geometric(_P_INV, size)
        _tables[:] = [fwd, inv]
    return fwd, inv


def _geometric(x: np.uint64, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    out[0] = 1
    with np.errstate(over="ignore"):
        np.cumprod(np.full(n - 1, x, dtype=np.uint64), out=out[1:])
    return out


def _repeats(sorted_prints: np.ndarray) -> np.ndarray:
    """The values that occur more than once in a sorted array (sorted, each once)."""
    if len(sorted_prints) < 2:
        return _EMPTY
    same = sorted_prints[1:] == sorted_prints[:-1]
    return np.unique(sorted_prints[1:][same]) if same.any() else _EMPTY


def _ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The positions ``lo[i] <= p < hi[i]`` of every range, in order, as one array."""
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return _EMPTY
    starts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(starts - lo, counts)


def _members(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Which of ``values`` occur in ``sorted_set`` (a mask over ``values``)."""
    if len(sorted_set) == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[pos] == values


class _Sealed:
    """The prints of a set of sealed segments: all of them sorted, and those that repeat."""

    def __init__(self, segments: list[Segment]) -> None:
        runs = [s.sorted_prints()[0] for s in segments]
        self.sorted = np.sort(np.concatenate(runs)) if len(runs) > 1 else (runs[0] if runs else _EMPTY)
        self.repeated = _repeats(self.sorted)


class _Growing:
    """The prints of growing segments' rows checked so far, against a set of sealed ones."""

    def __init__(self) -> None:
        self.prints: dict[int, np.ndarray] = {}  # per growing segment id, its rows' prints in row order
        self.sorted = _EMPTY
        self.repeated = _EMPTY
        self._together: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def together(self, sealed: _Sealed) -> np.ndarray:
        """The repeated prints of the sealed and the growing rows, one array while neither changes."""
        if not len(self.repeated):
            return sealed.repeated
        t = self._together
        if t is None or t[0] is not sealed.repeated or t[1] is not self.repeated:
            t = self._together = (sealed.repeated, self.repeated, np.union1d(sealed.repeated, self.repeated))
        return t[2]

    def absorb(self, seg: Segment, n: int, sealed: _Sealed) -> None:
        have = self.prints.get(seg.id, _EMPTY)
        if n <= len(have):
            return
        new = key_prints(seg.pk_values(n)[len(have): n])
        fresh = np.sort(new)
        hit = fresh[_members(fresh, sealed.sorted) | _members(fresh, self.sorted)]
        found = [hit, _repeats(fresh)]
        if any(len(f) for f in found):
            self.repeated = np.unique(np.concatenate([self.repeated, *found]))
        self.sorted = np.insert(self.sorted, np.searchsorted(self.sorted, fresh), fresh)
        self.prints[seg.id] = np.concatenate([have, new]) if len(have) else new


class LatestKeys:
    """Finds the rows of a snapshot that a later write of their primary key hides; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sealed: OrderedDict[tuple, _Sealed] = OrderedDict()
        self._growing: OrderedDict[tuple, _Growing] = OrderedDict()
        self._versions: OrderedDict[tuple, _Versions] = OrderedDict()

    def hidden(self, views: list[SegmentView], seq: int) -> list[np.ndarray | None]:
        """Per view, a mask of the rows hidden at ``seq`` by a later visible row of their key (None: none)."""
        if len(views) == 1 and views[0].segment.sealed:  # one sealed segment (searches of it ask this each time)
            only = views[0].segment
            with self._lock:
                one = self._remembered(self._sealed, ((only.id, views[0].n),), lambda: _Sealed([only]))
            if len(one.repeated) == 0:
                return [None]
        out: list[np.ndarray | None] = [None] * len(views)
        if not views:
            return out
        sealed_views: list[SegmentView] = []
        growing: list[SegmentView] = []
        for v in views:  # one look at each flag: a segment may seal meanwhile
            if v.segment.sealed:
                sealed_views.append(v)
            elif v.n:
                growing.append(v)
        skey = tuple((v.segment.id, v.n) for v in sealed_views)
        with self._lock:
            sealed = self._remembered(self._sealed, skey, lambda: _Sealed([v.segment for v in sealed_views]))
            g = None
            if growing:
                gkey = (skey, tuple(v.segment.id for v in growing))
                g = self._remembered(self._growing, gkey, _Growing)
                for v in growing:
                    g.absorb(v.segment, v.n, sealed)
            repeated = sealed.repeated if g is None else g.together(sealed)
            prints = {v.segment.id: g.prints[v.segment.id][: v.n] for v in growing} if g is not None else {}
        if len(repeated) == 0:
            return out
        return self._decide(views, seq, repeated, prints)

    @staticmethod
    def _remembered(cache: OrderedDict, key: tuple, make: Any) -> Any:
        state = cache.get(key)
        if state is None:
            state = cache[key] = make()
            while len(cache) > _STATES:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return state

    def _decide(self, views: list[SegmentView], seq: int, repeated: np.ndarray,
                prints: dict[int, np.ndarray]) -> list[np.ndarray | None]:
        key = tuple((v.segment.id, v.n) for v in views)
        with self._lock:
            known = self._versions.get(key)
            if known is not None and known.repeated is repeated:
                self._versions.move_to_end(key)
        if known is None or known.repeated is not repeated:
            known = _Versions(views, repeated, prints)
            with self._lock:
                self._versions[key] = known
                self._versions.move_to_end(key)
                while len(self._versions) > _STATES:
                    self._versions.popitem(last=False)
        return known.hidden(views, seq)


class _Versions:
    """The stored versions of the keys whose prints repeat, in a fixed list of views, and which is latest.

    Which version is latest does not depend on the snapshot; which are
    visible does. As long as each key's latest version is visible, or none
    of its versions is, the older versions are what a snapshot hides;
    otherwise (a partition's delete took the latest, or it is not yet
    published) the visible versions are compared again.
    """

    def __init__(self, views: list[SegmentView], repeated: np.ndarray, prints: dict[int, np.ndarray]) -> None:
        self.repeated = repeated
        rows_of = [_rows_with(v, repeated, prints) for v in views]
        self.which = np.repeat(np.arange(len(views)), [len(r) for r in rows_of])
        self.rows = np.concatenate(rows_of) if rows_of else _EMPTY
        keys = np.concatenate([_keys(v, r) for v, r in zip(views, rows_of)]) if rows_of else _EMPTY
        self.codes = np.unique(keys, return_inverse=True)[1].reshape(-1) if len(keys) else _EMPTY
        self.seqs = np.concatenate([v.seqs[r] for v, r in zip(views, rows_of)]) if rows_of else _EMPTY
        self.latest = _latest_of(self.codes, self.seqs, self.which, self.rows)
        self.masks = self._masks(views, ~self.latest)

    def hidden(self, views: list[SegmentView], seq: int) -> list[np.ndarray | None]:
        if len(self.rows) == 0:
            return [None] * len(views)
        seen = np.empty(len(self.rows), dtype=bool)
        for i, v in enumerate(views):
            at = self.which == i
            seen[at] = v.visible_rows(self.rows[at], seq)
        gone = np.zeros(int(self.codes.max()) + 1, dtype=bool)
        gone[self.codes[self.latest & ~seen]] = True
        if not (seen & gone[self.codes]).any():
            return self.masks
        pick = np.flatnonzero(seen)
        lose = np.zeros(len(self.rows), dtype=bool)
        lose[pick] = ~_latest_of(self.codes[pick], self.seqs[pick], self.which[pick], self.rows[pick])
        return self._masks(views, lose)

    def _masks(self, views: list[SegmentView], lose: np.ndarray) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = [None] * len(views)
        for i in np.unique(self.which[lose]).tolist():
            mask = np.zeros(views[i].n, dtype=bool)
            mask[self.rows[lose & (self.which == i)]] = True
            out[i] = mask
        return out


def _latest_of(codes: np.ndarray, seqs: np.ndarray, which: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which entries are the latest write of their key: highest sequence number, then the later row."""
    n = len(codes)
    out = np.zeros(n, dtype=bool)
    if n == 0:
        return out
    order = np.lexsort((rows, which, seqs, codes))
    k = codes[order]
    last = np.ones(n, dtype=bool)
    last[:-1] = k[1:] != k[:-1]
    out[order[last]] = True
    return out


def _rows_with(v: SegmentView, repeated: np.ndarray, prints: dict[int, np.ndarray]) -> np.ndarray:
    """The rows of view ``v`` whose key print is in sorted ``repeated``, in order."""
    seg = v.segment
    if v.n == 0:
        return _EMPTY
    if seg.id in prints:
        return np.flatnonzero(_members(prints[seg.id], repeated))
    srt, order = seg.sorted_prints()
    rows = order[_ranges(np.searchsorted(srt, repeated, side="left"), np.searchsorted(srt, repeated, side="right"))]
    return np.sort(rows[rows < v.n]).astype(np.int64, copy=False)  # a view taken before the segment sealed


def _keys(view: SegmentView, rows: np.ndarray) -> np.ndarray:
    keys = view.column(view.segment.pk_name).values
    if isinstance(keys, np.ndarray):
        return keys[rows]
    return np.asarray(keys.take(pa.array(rows, type=pa.int64())).to_pylist(), dtype=object)
