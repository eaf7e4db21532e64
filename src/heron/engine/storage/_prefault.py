"""Memory made ready ahead of a growing buffer, on a thread of its own.

Writing to memory for the first time costs a page fault per 4 KiB page, and
far more inside virtual machines whose host backs guest memory only on first
touch (seen here: ~5 ms for each new 2 MiB). Appending to a growing segment's
vector buffer would pay that inside the insert call. Instead, the next few
MiB past the rows written are populated with ``madvise(MADV_POPULATE_WRITE)``
(Linux 5.14+) on a background thread, which releases the GIL meanwhile.
Populating never changes memory contents, so it is safe while the buffer is
being written. Elsewhere (other systems, older kernels) it does nothing.

Growing buffers also opt out of transparent huge pages, which numpy asks for
on arrays of 4 MiB and more. A huge page is made whole at its first touch:
here ~10 ms for each 4 MiB never touched before, against ~1.3 ms in 4 KiB
pages, and the thread that touches it (an insert, or this one holding a CPU
the insert needs) waits for all of it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from typing import Any

import numpy as np

from ..._pool import Pool

log = logging.getLogger("heron.engine")

MADV_DONTNEED = 4
MADV_NOHUGEPAGE = 15
MADV_POPULATE_WRITE = 23
PAGE = 4096
#: How far past its last row a growing buffer's memory is kept ready.
AHEAD_BYTES = 4 << 20
#: Arrays from this size up may get transparent huge pages (numpy asks for them from 4 MiB).
HUGE_BYTES = 2 << 20

_lock = threading.Lock()
_pool: Pool | None = None
_madvise: Any = None
_enabled = sys.platform.startswith("linux")


def _fn() -> Any:
    global _madvise, _enabled
    if _madvise is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).madvise
        except (OSError, AttributeError):
            _enabled = False
            return None
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        fn.restype = ctypes.c_int
        _madvise = fn
    return _madvise


def empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """``np.empty(shape, dtype)`` for a growing buffer: in small pages where that can be asked for."""
    data = np.empty(shape, dtype=dtype)
    fn = _fn() if _enabled and data.dtype != object and data.nbytes >= HUGE_BYTES else None
    if fn is not None:
        start = -(-data.ctypes.data // PAGE) * PAGE
        end = (data.ctypes.data + data.nbytes) // PAGE * PAGE
        if end > start:
            fn(start, end - start, MADV_NOHUGEPAGE)  # advice only: a refusal changes nothing
    return data


def ahead_rows(row_bytes: int) -> int:
    """Rows to keep ready past the last one written; 0 when populating is off."""
    return AHEAD_BYTES // max(row_bytes, 1) if _enabled else 0


def start() -> Pool | None:
    """The thread that populates memory, started if it was not (a database opening starts it)."""
    global _pool
    if not _enabled:
        return None
    with _lock:
        if _pool is None:
            _pool = Pool(max_workers=1, thread_name_prefix="heron-prefault")
            _pool.submit(_fn)
        return _pool


def _after_fork_in_child() -> None:
    """A forked child starts without the parent's thread: the next `start` makes one."""
    global _lock, _pool
    _lock, _pool = threading.Lock(), None


os.register_at_fork(after_in_child=_after_fork_in_child)


def populate(data: np.ndarray, lo: int, hi: int) -> None:
    """Make rows ``lo..hi-1`` of ``data`` ready, in the background."""
    if not _enabled or hi <= lo:
        return
    pool = start()
    if pool is None:
        return
    row = data.strides[0]
    pool.submit(_populate, data, data.ctypes.data + lo * row, (hi - lo) * row)


def release(data: np.ndarray, lo: int, hi: int) -> None:
    """Give back the memory of rows ``lo..hi-1`` of ``data`` (populated ahead, never written).

    Only whole pages inside the rows are released; they read as zeros afterwards.
    """
    fn = _fn() if _enabled else None
    if fn is None or hi <= lo:
        return
    row = data.strides[0]
    start = -(-(data.ctypes.data + lo * row) // PAGE) * PAGE
    end = (data.ctypes.data + hi * row) // PAGE * PAGE
    if end > start:
        fn(start, end - start, MADV_DONTNEED)


def drop_mapped(address: int, length: int) -> None:
    """Unmap from this process the whole pages of a read-only file mapping within ``address .. +length``.

    They stay in the page cache, and are mapped again if read: only the
    process's resident memory shrinks. Never for memory of the process's own.
    """
    fn = _fn() if sys.platform.startswith("linux") else None
    start = -(-address // PAGE) * PAGE
    end = (address + length) // PAGE * PAGE
    if fn is not None and end > start:
        fn(start, end - start, MADV_DONTNEED)


def copy_dropping(out: np.ndarray, mapped: np.ndarray, step_bytes: int) -> None:
    """Copy `mapped` (a view of a read-only file mapping) into the start of `out`, `step_bytes` at a time.

    Each piece's pages leave the process once copied (`drop_mapped`): read
    whole, a large column or index array stays resident beside its copy.
    """
    row = mapped.itemsize * int(np.prod(mapped.shape[1:], dtype=np.int64))
    step = max(1, step_bytes // max(1, row))
    for lo in range(0, mapped.shape[0], step):
        piece = mapped[lo : lo + step]
        out[lo : lo + piece.shape[0]] = piece
        drop_mapped(piece.ctypes.data, piece.nbytes)


def trim_heap() -> None:
    """Hand the C heap's free memory back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    Arrays freed by a background task (a merge's joined columns, faiss's
    arrays as they grow) leave free space inside malloc's arenas that the
    process keeps resident; at 1M x 128 that came to gigabytes over a build.
    """
    global _trim
    if _trim is None:
        try:
            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim: Any = None

#: Seconds between the heap trims of a long build (`trim_heap_often`); a trim takes 1-3 ms.
TRIM_EVERY = 1.0
_last_trim = 0.0


def trim_heap_often() -> None:
    """`trim_heap`, unless the heap was trimmed in the last `TRIM_EVERY` seconds.

    A long build calls it between its steps. faiss's growing arrays and each
    step's temporary arrays are freed into malloc's arenas and stay resident
    until a trim: over the 1M-row rebuild of a 1M x 128 load that came to
    66 MB by its end, and to 19-26 MB over each step of a merge's renumbering,
    all of it on top of the load's highest moments.
    """
    global _last_trim
    now = time.monotonic()
    if now - _last_trim >= TRIM_EVERY:
        _last_trim = now
        trim_heap()


def _populate(data: np.ndarray, start: int, length: int) -> None:
    """``data`` is held only to keep the memory alive until this has run."""
    global _enabled
    fn = _fn()
    if fn is None:
        return
    aligned = start & ~(PAGE - 1)
    if fn(aligned, length + start - aligned, MADV_POPULATE_WRITE) != 0:
        err = ctypes.get_errno()
        _enabled = False  # an older kernel (EINVAL) or a refusal: stop trying
        log.debug("madvise(MADV_POPULATE_WRITE) failed with errno %d; memory is no longer populated ahead", err)
