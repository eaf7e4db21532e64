"""faiss as the indexes call it: one untyped handle to the module, and the threads a search runs on.

`threads_for` decides per call whether faiss may spread a search over its
OpenMP threads; `detach_interrupt_check` keeps faiss's searches from taking
the GIL. Both index files and exact scans use them, so they sit below both.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import faiss as _faiss

faiss: Any = _faiss  # the stubs shipped with faiss lack most of its API

#: Below this many queries a search runs on the calling thread alone.
#: faiss parallelises flat and IVF scans over OpenMP threads even for one
#: query; for a single 128-d query over 100k rows that costs more than it
#: saves (3.8 ms with 2 threads vs 2.4 ms with 1, measured on 2 cores).
#: OpenMP keeps the thread count per calling thread (libgomp's nthreads-var
#: is a per-thread setting), so lowering it here does not affect searches
#: running on other threads.
SINGLE_THREAD_BELOW_NQ = 4

_omp = threading.local()


def detach_interrupt_check() -> None:
    """Stop faiss from taking the GIL inside its searches to look for Ctrl-C.

    faiss's Python module installs a callback that every index search calls
    (at least once per call) and that takes the GIL to check for signals. With
    many concurrent searches each one then queues for the GIL in the middle of
    a call that had released it: measured on 2 cores, 32 concurrent searches
    through the server spent about a sixth of their time there. Heron's
    searches take well under a second and index builds run on a background
    thread, so nothing is lost. The setting is process-wide: a user's own
    faiss calls in the same process no longer stop on Ctrl-C either.
    """
    faiss.InterruptCallback.clear_instance()


_SAME = contextlib.nullcontext()


def threads_for(nq: int) -> contextlib.AbstractContextManager[None]:
    """Run faiss on this thread alone while a small batch of queries is answered.

    Every faiss call releases the GIL, and under many concurrent searches
    getting it back costs far more than the call, so Heron's own worker
    threads (named ``heron-...``) keep the setting between searches and only
    change it when the batch size asks for the other one. Any other thread
    gets its own setting back on exit.
    """
    small = nq < SINGLE_THREAD_BELOW_NQ
    if threading.current_thread().name.startswith("heron-"):
        state = getattr(_omp, "state", None)
        if state is None:
            state = _omp.state = [faiss.omp_get_max_threads(), False]
        if state[1] != small:
            faiss.omp_set_num_threads(1 if small else state[0])
            state[1] = small
        return _SAME
    return _single_thread() if small else _SAME


class _single_thread:
    """faiss on one thread for the block, then the thread's own setting back."""

    __slots__ = ("before",)

    def __enter__(self) -> None:
        self.before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        faiss.omp_set_num_threads(self.before)
