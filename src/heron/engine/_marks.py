"""A segment's delete marks, which take no memory until a row of it is deleted.

Each row of a segment carries the sequence number of its delete (`LIVE`:
none). Most segments never see one, yet an array of them held 8 bytes a row:
8 MB for a 1M-row segment, held beside the index a merge grows, at the
highest moments of a load. `DeleteMarks` holds only a count until the first
write: readers see every row live through a view that owns no memory, and
the array is made, filled with `LIVE`, when a mark is first written.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .storage import _prefault as prefault

#: The delete mark of a row that is not deleted (deleted "after" every sequence number).
LIVE = np.iinfo(np.int64).max
_LIVE = np.full(1, LIVE, dtype=np.int64)
_LIVE.flags.writeable = False


class DeleteMarks:
    """A `_Buffer` of int64 delete marks (``append``, ``view``, ``data``...) whose rows are all `LIVE` until
    ``data``, the array writers write marks into, is first asked for."""

    def __init__(self) -> None:
        self.n = 0
        self._data: np.ndarray | None = None

    @property
    def data(self) -> np.ndarray:
        """The marks as an array to write to: made, every row `LIVE`, when first asked for (under the
        collection's write lock, before the sequence number of the deletes is published)."""
        data = self._data
        if data is None:
            data = prefault.empty((max(self.n, 1024),), np.int64)
            data[: self.n] = LIVE
            self._data = data
        return data

    @property
    def marked(self) -> bool:
        """Whether a mark may have been written (the marks are an array of their own)."""
        return self._data is not None

    def view(self, n: int) -> np.ndarray:
        """The first `n` marks, read-only; while none was written, a view of one `LIVE` owning no memory."""
        data = self._data
        return np.broadcast_to(_LIVE, (n,)) if data is None else data[:n]

    def append(self, values: np.ndarray) -> None:
        if self._data is None and not np.any(values != LIVE):
            self.n += len(values)
            return
        self._append(values)

    def append_filled(self, k: int, value: Any) -> None:
        if self._data is None and value == LIVE:
            self.n += k
            return
        self._append(np.full(k, value, dtype=np.int64))

    def _append(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        data = self.data
        if need > len(data):
            grown = prefault.empty((max(need, 2 * len(data)),), np.int64)
            grown[: self.n] = data[: self.n]
            data = self._data = grown
        data[self.n : need] = values
        self.n = need

    def truncate(self, n: int) -> None:
        self.n = n

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` marks; nothing while none was written (appending `LIVE` ones takes no room)."""
        data = self._data
        if data is not None and capacity > len(data):
            grown = prefault.empty((capacity,), np.int64)
            grown[: self.n] = data[: self.n]
            self._data = grown


def carry_marks(into: DeleteMarks, parts: list[tuple[int, np.ndarray]]) -> int:
    """Write into `into` the marks set in `parts` (each: where its rows start in `into`, their marks); how many.

    Where none is set, `into` takes no memory (a merge or a compaction carrying its segments' marks over).
    """
    count = 0
    for at, marks in parts:
        gone = np.flatnonzero(marks != LIVE)
        if len(gone):
            into.data[at + gone] = marks[gone]
        count += len(gone)
    return count
