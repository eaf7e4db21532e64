"""The interim lists of many settled fresh segments copied into one index, for one query's search.

Right after a large load a field has many fresh segments (a million rows are
sixteen sealed segments and a growing one), each with its own interim index
of the same trained lists. `_interim_ivf._Stacked` reads them as one stack,
but the stack still holds one short list per segment where one index over
the same rows holds one long list: a query that reads 5 lists reads 5 x 17
short lists, and faiss's cost per list read, and Heron's per hit (naming a
hit's row through its stacked list), make a search over 17 segments cost
about twice a search of one index over the same rows (590 against 300-340 us
for 1M x 128 on one core).

`Merged` is that one index: each list of it holds the same list of every
segment, codes and all, one after the other, and row ``r`` of the ``j``-th
segment is id ``bases[j] + r``, so faiss names each hit's segment and row
by its id. It is made once the indexes have all stopped growing for
`SETTLED_AFTER` seconds (a load is over; their segments are sealed and
idle), on a thread of its own, and it serves exactly those indexes at
exactly those row counts: once one of them grows or is dropped (its
segment merged away, or read through its own index), searches go back to
the stack and a new copy is made once the set settles again. An 8-bit copy's lists and codes are the segments' own, so a
search reads the same candidates as the stack.

The copy is made a list at a time, each list read with the indexes' gate
held (`_interim_ivf._Gate`), so an index that grows meanwhile (the next load
began) waits for one list's copy at most; the copy is then given up.

Wide inner-product rows are copied as 4-bit codes instead, made from the
segments' stored vectors on the copy's thread (`_interim_fast`): faiss scans
them about four times as fast, and such a copy is made for a single index too.
Their rows are encoded ahead, on the same thread, as each index catches up with
its segment (`encode_soon`): the copy then only packs them.

Memory: a copy holds the segments' codes again (a quarter of their float32
vectors; a sixteenth for 4-bit codes); all copies together hold at most `MAX_BYTES` of codes, and at most
`KEPT` copies are kept: the least recently read make room for a new one,
unless they were read in the last `IN_USE` seconds (the new one is then not
kept, and its indexes are read as a stack). A copy goes with its indexes.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pool import Pool
from ._interim_fast import encode_ahead, fast_copy, fast_eligible
from ._interim_ivf import GrowingIVF, _plain_params, enter_gates, leave_gates
from .index._faiss import faiss, single_threaded_here

log = logging.getLogger("heron.engine")

#: Seconds every index must have gone without growing before their lists are copied into one.
SETTLED_AFTER = 0.5
#: Most bytes of codes the copies may hold together (one that would not fit is not made: the stack serves).
MAX_BYTES = 1 << 30
#: Most copies kept (each copy whose indexes are gone is dropped at once).
KEPT = 8
#: A copy searched within this many seconds is not dropped to make room for another (which is then not kept).
IN_USE = 10.0
#: False: copies are made on the searching thread (tests), one at a time as the copies' one thread makes them.
BACKGROUND = True


class Merged:
    """The lists of `ivfs` (same trained lists, none growing) copied into one index: ids ``bases[j] + row``."""

    def __init__(self, ivfs: list[GrowingIVF], vectors: list[Any] | None = None) -> None:
        self.refs = [weakref.ref(ivf, _drop_dead) for ivf in ivfs]  # a copy goes with any of its indexes
        self.counts = tuple(ivf.ntotal for ivf in ivfs)
        #: The first id of each index's rows, and past the last.
        self.bases = np.concatenate([[0], np.cumsum(self.counts)]).astype(np.int64)
        trained = ivfs[0].lists
        #: 4-bit codes (`_interim_fast`), made from the segments' `vectors`; else the indexes' own codes.
        self.fast = vectors is not None and fast_eligible(trained, ivfs[0].dim)
        index = None if self.fast else faiss.clone_index(trained)
        nlist = trained.nlist
        lists = [ivf._index.invlists for ivf in ivfs]
        #: Per list, the largest radius and the total rows over the indexes (`_interim_ivf._combined`).
        self.radius = np.max([ivf.radius for ivf in ivfs], axis=0)
        self.sizes = np.sum([ivf.sizes for ivf in ivfs], axis=0)
        #: (4-bit copy) the list of each row of each index.
        row_lists = [np.empty(n, dtype=np.int64) for n in self.counts] if self.fast else []
        for lst in range(nlist):
            entered = enter_gates(ivfs)  # a list at a time: a growth of any index of the field waits only so long
            try:
                if tuple(ivf.ntotal for ivf in ivfs) != self.counts:
                    raise _Grew  # the copy would hold rows a search of these counts must not read
                if index is None:
                    for inv, where in zip(lists, row_lists):
                        n = inv.list_size(lst)
                        if n:
                            where[faiss.rev_swig_ptr(inv.get_ids(lst), n)] = lst
                else:
                    _copy_list(index.invlists, lst, lists, self.bases, index.code_size)
            finally:
                leave_gates(entered)
        if index is None:
            assert vectors is not None
            index, code_size = fast_copy(ivfs, vectors, self.counts, self.bases, row_lists)
        else:
            code_size = index.code_size
        index.ntotal = int(self.bases[-1])
        self._index = index
        #: How queries score the copied 8-bit codes (`_interim_codes`); the 4-bit copy takes them as they are.
        self._codes = None if self.fast else ivfs[0].codes
        self.nbytes = int(self.bases[-1]) * code_size
        #: When a search last read it (`time.monotonic`): the least recently read make room first.
        self.used = time.monotonic()

    def search(self, q: np.ndarray, want: int, assign: np.ndarray,
               coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The `want` best rows of one query by their codes: ``(index, row)`` ``[want]`` (row -1: none).

        `q` is the prepared query (``[1, dim]``); `assign` and `coarse` (``[nprobe]``) its lists.
        """
        qc = q if self._codes is None else self._codes.queries(q)  # held while faiss reads it
        scores = np.empty(want, dtype=np.float32)
        ids = np.empty(want, dtype=np.int64)
        self._index.search_preassigned_c(1, faiss.swig_ptr(qc), want, faiss.swig_ptr(assign), faiss.swig_ptr(coarse),
                                         faiss.swig_ptr(scores), faiss.swig_ptr(ids), False,
                                         _plain_params(assign.shape[0]))
        at = np.searchsorted(self.bases, ids, side="right") - 1
        rows = ids - self.bases[np.maximum(at, 0)]
        none = ids < 0
        if none.any():
            at[none], rows[none] = 0, -1
        return at, rows


def _copy_list(out: Any, lst: int, lists: list[Any], bases: np.ndarray, code_size: int) -> None:
    """Append list `lst` of each of `lists` (faiss inverted lists), ids shifted by its `bases` entry, to `out`'s."""
    codes, ids = [], []
    for j, inv in enumerate(lists):
        n = inv.list_size(lst)
        if n:
            codes.append(np.array(faiss.rev_swig_ptr(inv.get_codes(lst), n * code_size)))
            ids.append(faiss.rev_swig_ptr(inv.get_ids(lst), n) + bases[j])
    if ids:
        c = np.concatenate(codes)
        i = np.concatenate(ids)
        out.add_entries(lst, i.shape[0], faiss.swig_ptr(i), faiss.swig_ptr(c))


def joined(a: GrowingIVF, b: GrowingIVF) -> GrowingIVF:
    """The interim index of a merged segment: the rows of `a`, then those of `b` (row ``r`` of `b` is ``a.ntotal + r``).

    `a` and `b` share their trained lists; their codes are copied list by
    list, so the joined index reads the same candidates as the two.
    """
    out = GrowingIVF(a.dtype, a.dim, a.metric, a.lists)
    index = out._index
    lists, bases = [a._index.invlists, b._index.invlists], np.array([0, a.ntotal], dtype=np.int64)
    entered = enter_gates([a, b])  # neither grows meanwhile
    try:
        for lst in range(index.nlist):
            _copy_list(index.invlists, lst, lists, bases, index.code_size)
        total = a.ntotal + b.ntotal
    finally:
        leave_gates(entered)
    index.ntotal = total
    out._ntotal = total
    out.radius = np.maximum(a.radius, b.radius)
    out.sizes = a.sizes + b.sizes
    out.grown_at = max(a.grown_at, b.grown_at)  # as settled as the two: a copy with the other indexes may follow
    ca, cb = a.fast_codes, b.fast_codes
    if ca is not None and cb is not None and ca.shape[0] >= a.ntotal and cb.shape[0] >= b.ntotal:
        out.fast_codes = out.fast_buffer = np.concatenate([ca[: a.ntotal], cb[: b.ntotal]])  # (`_interim_fast`)
    return out


def carry_copies(a: GrowingIVF, b: GrowingIVF, j: GrowingIVF) -> None:
    """Have the copies that read `a` and, next, `b` serve `j` (`joined(a, b)`) too, with the same index.

    A copy names row ``r`` of `a` and of `b` by the ids ``base + r`` and
    ``base + a.ntotal + r``, the ids of those rows in `j`: once the merged
    segment takes the place of the two, its searches read the copy made for
    them at once, instead of the stack until a new copy is made.
    """
    with _lock:
        for key, m in list(_MERGED.items()):
            ivfs = [ref() for ref in m.refs]
            at = next((i for i in range(len(ivfs) - 1) if ivfs[i] is a and ivfs[i + 1] is b), None)
            if at is None or m.counts[at] != a.ntotal or m.counts[at + 1] != b.ntotal or \
                    j.ntotal != a.ntotal + b.ntotal:
                continue
            carried = copy.copy(m)  # the same lists, radii and sizes
            carried.refs = m.refs[:at] + [weakref.ref(j, _drop_dead)] + m.refs[at + 2 :]
            carried.counts = m.counts[:at] + (j.ntotal,) + m.counts[at + 2 :]
            carried.bases = np.delete(m.bases, at + 1)
            _keep(key[:at] + ((id(j), j.ntotal),) + key[at + 2 :], carried)


class _Grew(Exception):
    """An index grew while its lists were being copied: the copy is given up."""


#: Copies by their indexes and row counts.
_MERGED: dict[tuple[tuple[int, int], ...], Merged] = {}
#: Keys of copies being made, and of copies made but not kept (no room beside copies in use).
_MAKING: set[tuple[tuple[int, int], ...]] = set()
_REFUSED: dict[tuple[tuple[int, int], ...], float] = {}
#: Interim indexes (by id) with an `encode_soon` queued: the index (weakly) and the rows it is to read.
_AHEAD: dict[int, tuple[weakref.ref[GrowingIVF], Any]] = {}
_lock = threading.RLock()  # `_drop_dead` may run (garbage collection) on a thread that holds it
#: Without the copies' thread (`BACKGROUND` False), the threads that make copies and encode rows take turns.
_inline = threading.RLock()
_pool: Pool | None = None

#: Seconds after a search last read a field's interim lists during which copies of them are made ahead of the
#: searches (`_interim.copy_ahead`): lists nobody searches (a bulk load not yet searched) get none made.
SEARCHED_WITHIN = 60.0
#: When a search last read each set of trained lists: ``id(lists) -> (weak reference, time.monotonic())``.
_SEARCHED: dict[int, tuple[weakref.ref[Any], float]] = {}


def searched(lists: Any) -> None:
    """Note that a search read the interim indexes of trained `lists` (their copies are then made ahead)."""
    key = id(lists)
    got = _SEARCHED.get(key)
    if got is not None and got[0]() is lists:
        _SEARCHED[key] = (got[0], time.monotonic())
        return
    for stale in [k for k, (ref, _) in list(_SEARCHED.items()) if ref() is None]:
        _SEARCHED.pop(stale, None)
    _SEARCHED[key] = (weakref.ref(lists), time.monotonic())


def searched_lately(lists: Any) -> bool:
    """Whether a search read the interim indexes of `lists` within the last `SEARCHED_WITHIN` seconds."""
    got = _SEARCHED.get(id(lists))
    return got is not None and got[0]() is lists and time.monotonic() - got[1] < SEARCHED_WITHIN


def merged_for(ivfs: list[GrowingIVF], read: bool = True, vectors: list[Any] | None = None) -> Merged | None:
    """The copy of `ivfs` at their row counts now, or None (then one is made if they have settled).

    `read`: a search will read it (it is then the last to make room for another). `vectors`, the
    segments' stored rows, let a copy hold 4-bit codes where the lists are wide (`_interim_fast`).
    """
    key = tuple((id(ivf), ivf.ntotal) for ivf in ivfs)
    got = _MERGED.get(key)
    if got is not None and all(ref() is ivf for ref, ivf in zip(got.refs, ivfs)):
        if read:
            got.used = time.monotonic()
        return got
    now = time.monotonic()
    if key in _MAKING or now - _REFUSED.get(key, -IN_USE) < IN_USE:  # refused: tried again a while later
        return None
    settled = now - SETTLED_AFTER
    if any(ivf.grown_at > settled for ivf in ivfs):
        return None
    if sum(ivf.ntotal for ivf in ivfs) * ivfs[0]._index.code_size > MAX_BYTES:
        return None
    with _lock:
        if key in _MAKING:
            return None
        _MAKING.add(key)
    if not BACKGROUND:
        with _inline:
            _make(key, ivfs, vectors)
        return _MERGED.get(key)
    _submit(_make, key, ivfs, vectors)
    return None


def _submit(fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn(*args)`` on the copies' one thread, after the work queued before it."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = Pool(1, "heron-interim-merge", initializer=single_threaded_here)
        pool = _pool
    pool.submit(fn, *args)


def encode_soon(ivf: GrowingIVF, vectors: Any) -> None:
    """Have the rows `ivf` holds encoded as 4-bit codes on the copies' thread (`_interim_fast.encode_ahead`).

    Where its copies hold 4-bit codes: the copy made once the lists settle then
    has (nearly) nothing left to encode. `vectors` are its segment's rows as the
    index's growth read them (at least ``ivf.ntotal``). One call is queued per
    index at a time; a later one gives it the newer `vectors`.
    """
    if not fast_eligible(ivf.lists, ivf.dim):
        return
    key = id(ivf)
    with _lock:
        queued = key in _AHEAD
        _AHEAD[key] = (weakref.ref(ivf), vectors)  # the call queued reads these (an index gone, its id reused: the new one)
    if queued:
        return
    if not BACKGROUND:
        with _inline:
            _ahead(key)
        return
    try:
        _submit(_ahead, key)
    except RuntimeError:  # shut down
        with _lock:
            _AHEAD.pop(key, None)


def _ahead(key: int) -> None:
    with _lock:
        got = _AHEAD.pop(key, None)  # rows that come in while these are encoded queue another call
    if got is None:
        return
    ref, vectors = got
    ivf = ref()
    if ivf is None:
        return
    try:
        encode_ahead(ivf, vectors)
    except Exception:  # the copy encodes them
        log.exception("encoding interim rows ahead of their copy failed")


def _make(key: tuple[tuple[int, int], ...], ivfs: list[GrowingIVF], vectors: list[Any] | None) -> None:
    merged = None
    try:
        merged = Merged(ivfs, vectors)
    except _Grew:
        pass
    except Exception:  # searches keep reading the stack
        log.exception("copying interim lists into one index failed")
    with _lock:
        if merged is not None and merged.counts == tuple(n for _, n in key) and \
                all(ref() is ivf for ref, ivf in zip(merged.refs, ivfs)):
            _keep(key, merged)
        _MAKING.discard(key)


def _keep(key: tuple[tuple[int, int], ...], merged: Merged) -> None:
    """Keep `merged`, dropping the least recently read copies not in use to make room, or refuse it (lock held)."""
    now = time.monotonic()
    total = sum(m.nbytes for m in _MERGED.values())
    for old, m in sorted(_MERGED.items(), key=lambda item: item[1].used):
        if total + merged.nbytes <= MAX_BYTES and len(_MERGED) < KEPT:
            break
        if now - m.used < IN_USE:
            break
        del _MERGED[old]
        total -= m.nbytes
    if total + merged.nbytes <= MAX_BYTES and len(_MERGED) < KEPT:
        _MERGED[key] = merged
        return
    if len(_REFUSED) >= 64:
        _REFUSED.clear()
    _REFUSED[key] = now


def _drop_dead(_ref: Any) -> None:
    """Drop the copies that held an index now gone (its segment got its own index, or was dropped)."""
    with _lock:
        for key in [k for k, m in _MERGED.items() if any(ref() is None for ref in m.refs)]:
            del _MERGED[key]


def _after_fork_in_child() -> None:
    global _lock, _pool, _inline
    _lock, _pool, _inline = threading.RLock(), None, threading.RLock()
    _MAKING.clear()
    _AHEAD.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
