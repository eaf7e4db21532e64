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

from ._buffer import _Buffer

#: The delete mark of a row that is not deleted (deleted "after" every sequence number).
LIVE = np.iinfo(np.int64).max
_LIVE = np.full(1, LIVE, dtype=np.int64)
_LIVE.flags.writeable = False


class DeleteMarks:
    """A segment's int64 delete marks, all `LIVE` and held as a count until ``data`` (the array writers write
    marks into) is first asked for; from then on the `_Buffer` they were before."""

    def __init__(self) -> None:
        self._n = 0  # the marks, while none is held
        self._buf: _Buffer | None = None

    @property
    def n(self) -> int:
        return self._n if self._buf is None else self._buf.n

    @property
    def data(self) -> np.ndarray:
        """The marks as an array to write to: made, every row `LIVE`, when first asked for (under the
        collection's write lock, before the sequence number of the deletes is published)."""
        return self._held().data

    @property
    def marked(self) -> bool:
        """Whether a mark may have been written (the marks are an array of their own)."""
        return self._buf is not None

    def view(self, n: int) -> np.ndarray:
        """The first `n` marks, read-only; while none was written, a view of one `LIVE` owning no memory."""
        buf = self._buf
        return np.broadcast_to(_LIVE, (n,)) if buf is None else buf.view(n)

    def append(self, values: np.ndarray) -> None:
        if self._buf is None and not np.any(values != LIVE):
            self._n += len(values)
        else:
            self._held().append(values)

    def append_filled(self, k: int, value: Any) -> None:
        if self._buf is None and value == LIVE:
            self._n += k
        else:
            self._held().append_filled(k, value)

    def truncate(self, n: int) -> None:
        if self._buf is None:
            self._n = n
        else:
            self._buf.truncate(n)

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` marks; nothing while none is held (appending `LIVE` ones takes no room)."""
        if self._buf is not None:
            self._buf.reserve(capacity)

    def _held(self) -> _Buffer:
        buf = self._buf
        if buf is None:
            buf = _Buffer(np.int64, capacity=max(self._n, 1))
            buf.append_filled(self._n, LIVE)
            self._buf = buf  # filled before readers can see it
        return buf


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
