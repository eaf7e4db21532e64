"""An append-only numpy buffer that grows by doubling: a segment's columns, sequence numbers and delete marks."""

from __future__ import annotations

from typing import Any

import numpy as np

from .storage import _prefault as prefault


class _Buffer:
    """An append-only numpy buffer (1-d or 2-d, any dtype) that grows by doubling."""

    def __init__(self, dtype: Any, width: int | None = None, capacity: int = 1024) -> None:
        shape = (capacity,) if width is None else (capacity, width)
        self.data = prefault.empty(shape, dtype)
        self.n = 0
        row_bytes = self.data.itemsize * (width or 1)
        self._ahead = 0 if self.data.dtype == object else prefault.ahead_rows(row_bytes)
        self._ready = 0  # rows of `data` whose memory is populated, or being populated

    def append(self, values: np.ndarray) -> None:
        k = len(values)
        need = self.n + k
        if need > len(self.data):
            cap = max(need, 2 * len(self.data))
            new = prefault.empty((cap,) + self.data.shape[1:], self.data.dtype)
            new[: self.n] = self.data[: self.n]
            self.data = new
            self._ready = self.n
        self.data[self.n : need] = values
        self.n = need
        if self._ahead and self._ready < need + self._ahead // 2 and self._ready < len(self.data):
            lo = max(self._ready, need)
            self._ready = min(len(self.data), need + self._ahead)
            prefault.populate(self.data, lo, self._ready)

    def append_filled(self, k: int, value: Any) -> None:
        """Append `k` rows of `value`, with no array of them made first."""
        self.reserve(self.n + k)
        self.data[self.n : self.n + k] = value
        self.n += k
        self._ready = max(self._ready, self.n)

    def truncate(self, n: int) -> None:
        self.n = n

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` rows in all, so appending up to there never copies."""
        if capacity > len(self.data):
            new = prefault.empty((capacity,) + self.data.shape[1:], self.data.dtype)
            new[: self.n] = self.data[: self.n]
            self.data = new
            self._ready = self.n

    def view(self, n: int) -> np.ndarray:
        return self.data[:n]

    def share(self, src: _Buffer, n: int, total: int) -> None:
        """Start as the first `n` rows of `src`, with room for `total`: `src`'s memory if it has the room.

        Appending then writes past row `n` of `src`'s array, where no view of
        `src` (they all stop at ``n``) ever looks.
        """
        if len(src.data) >= total:
            self.data = src.data
        else:
            self.data = prefault.empty((max(total, 2 * len(src.data)),) + src.data.shape[1:], src.data.dtype)
            src.copy_rows(self.data, n)
        self.n = n
        self._ready = n

    def copy_rows(self, out: np.ndarray, n: int) -> None:
        out[:n] = self.data[:n]  # a column seen in its file copies in pieces (`_segment_map._MappedBuffer`)

    def freeze(self) -> np.ndarray:
        """Stop growing. Spare capacity stays: pages never written cost no memory, and a merge may fill them.

        Memory populated ahead of the rows (`_prefault`) is given back.
        """
        if self._ready > self.n:
            prefault.release(self.data, self.n, self._ready)
            self._ready = self.n
        return self.data[: self.n]
