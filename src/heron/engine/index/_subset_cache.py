"""Vectors of the rows a filter keeps, gathered once and reused while the same filter comes back.

An exact scan of the rows a filter keeps is cheap once those rows sit in one
contiguous array (10,000 x 128 floats: about 0.1 ms), but gathering them
from the index costs ten times that, and a filtered HNSW search at 10% kept
(with ``ef`` raised to hold recall) about five times. Applications tend to
repeat their filters (a tenant, a category, a date range), so the gathered
rows are kept, keyed by the index and a digest of the filter's bitmap, in one
LRU bounded in bytes. A bitmap is admitted on its second sighting, so
filters that never repeat cost nothing but the digest. Rows a caller gathers
anyway on a first sighting (`SubsetCache.get` with ``always``) are held until
the next first sighting, so a second one admits them without gathering again.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

#: Bytes of gathered vectors kept across every index of the process.
MAX_BYTES = 64 << 20
#: Bitmaps remembered as seen once (the admission filter).
MAX_SEEN = 1024

_serials = itertools.count(1)


def new_owner() -> int:
    """An identity for a cache owner (an index) that is never reused, unlike ``id()``."""
    return next(_serials)


class MaskFacts:
    """What searches derive from a filter mask: kept count, packed bits, digest, kept rows (each once)."""

    __slots__ = ("mask", "_count", "_bits", "_digest", "_rows")

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        self._count: int | None = None
        self._bits: np.ndarray | None = None
        self._digest: bytes | None = None
        self._rows: np.ndarray | None = None

    @property
    def count(self) -> int:
        if self._count is None:
            self._count = int(np.count_nonzero(self.mask))
        return self._count

    @property
    def bits(self) -> np.ndarray:
        """The mask packed little-endian, as faiss's IDSelectorBitmap reads it."""
        if self._bits is None:
            self._bits = np.packbits(self.mask, bitorder="little")
        return self._bits

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = hashlib.blake2b(self.bits.tobytes(), digest_size=16).digest()
        return self._digest

    @property
    def rows(self) -> np.ndarray:
        if self._rows is None:
            self._rows = np.flatnonzero(self.mask)
        return self._rows


#: Facts of read-only masks kept at once.
MAX_FACTS = 16
_facts: OrderedDict[int, MaskFacts] = OrderedDict()
_facts_lock = threading.Lock()


def mask_facts(mask: np.ndarray) -> MaskFacts:
    """`MaskFacts` of `mask`, shared between calls when the mask is read-only.

    A read-only mask (a sealed segment's remembered filter result) cannot
    change, so its facts are kept, keyed by the array's identity; the entry
    holds the array, so the identity cannot be reused while it lives.
    """
    if mask.flags.writeable:
        return MaskFacts(mask)
    key = id(mask)
    hit = _facts.get(key)  # a lookup needs no lock (one C call); a hit is not moved up for it
    if hit is not None and hit.mask is mask:
        return hit
    with _facts_lock:
        hit = _facts.get(key)
        if hit is not None and hit.mask is mask:
            _facts.move_to_end(key)
            return hit
        facts = _facts[key] = MaskFacts(mask)
        while len(_facts) > MAX_FACTS:
            _facts.popitem(last=False)
    return facts


class SubsetCache:
    def __init__(self, max_bytes: int = MAX_BYTES, max_seen: int = MAX_SEEN) -> None:
        self.max_bytes = max_bytes
        self._max_seen = max_seen
        self._items: OrderedDict[Hashable, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._seen: OrderedDict[Hashable, None] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        #: The last rows gathered on a first sighting (`always`), so that the second does not gather them again.
        self._last: tuple[Hashable, tuple[np.ndarray, np.ndarray]] | None = None

    def get(
        self, key: Hashable, nbytes: int, gather: Callable[[], tuple[np.ndarray, np.ndarray]], *, always: bool
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached ``(ids, vectors)`` for `key`, gathered now if seen before (or `always`).

        Returns None when the rows are not cached and not worth gathering yet
        (first sighting and not `always`): the caller uses the index instead.
        """
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return hit
            admit = nbytes <= self.max_bytes // 4 and key in self._seen
            if not admit:
                self._seen[key] = None
                self._seen.move_to_end(key)
                while len(self._seen) > self._max_seen:
                    self._seen.popitem(last=False)
        if not admit and not always:
            return None
        last = self._last
        reuse = admit and last is not None and last[0] == key
        sub = last[1] if reuse and last is not None else gather()
        if not admit:  # held (outside the byte bound, at most a quarter of it) until the next first sighting
            self._last = (key, sub) if nbytes <= self.max_bytes // 4 else None
        else:
            if reuse:
                self._last = None
            with self._lock:
                if key not in self._items:
                    self._seen.pop(key, None)
                    self._items[key] = sub
                    self._bytes += _size(sub)
                    while self._bytes > self.max_bytes and self._items:
                        _, old = self._items.popitem(last=False)
                        self._bytes -= _size(old)
        return sub

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._seen.clear()
            self._bytes = 0
            self._last = None


def _size(sub: tuple[Any, ...]) -> int:
    return sum(int(a.nbytes) for a in sub)


CACHE = SubsetCache()
