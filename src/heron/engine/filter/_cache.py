"""A least-recently-used cache bounded by an estimate of the bytes it holds, not by its number of entries.

Filters differ wildly in size (``a > 1`` against a 1 MiB list), so a cache of
N entries can hold N MiB; this one evicts the oldest entries once the sum of
the costs its callers give passes the budget. An entry costlier than the whole
budget is not kept at all.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

DEFAULT_CACHE_BYTES = 64 << 20


def cache_bytes() -> int:
    """The budget of each filter cache: ``HERON_FILTER_CACHE_BYTES`` (read at import), default 64 MiB."""
    raw = os.environ.get("HERON_FILTER_CACHE_BYTES", "")
    try:
        v = int(raw) if raw.strip() else DEFAULT_CACHE_BYTES
    except ValueError:
        v = DEFAULT_CACHE_BYTES
    return max(v, 0)


class ByteBoundedCache:
    """LRU of values by key; ``put`` takes the entry's estimated cost in bytes. Thread-safe."""

    def __init__(self, budget: int, max_entries: int = 4096) -> None:
        self.budget = budget
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """The summed cost of the entries held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: Hashable, value: Any, cost: int) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if cost > self.budget:
                return
            self._items[key] = (value, cost)
            self._bytes += cost
            while self._bytes > self.budget or len(self._items) > self.max_entries:
                _, (_, c) = self._items.popitem(last=False)
                self._bytes -= c

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
