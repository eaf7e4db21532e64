"""faiss as the indexes call it: one untyped handle to the module, and the threads a search runs on.

`threads_for` decides per call whether faiss may spread a search over its
OpenMP threads, and numpy's BLAS its products; `detach_interrupt_check` keeps
faiss's searches from taking the GIL. Both index files and exact scans use
them, so they sit below both.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading
from collections.abc import Callable
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
#:
#: The same goes for numpy's BLAS (OpenBLAS's per-thread count, 0.3.27 on):
#: a single query's product over gathered rows (10,000 x 128) took 0.54 ms
#: on one thread and 4.9-5.9 ms on two on the shared 2-core VM under load
#: (100,000 x 128: 2.9 vs 6.8 ms), since the cores a search would spread
#: over are busy with other searches; it is what a filtered search over
#: cached rows and the scan of fresh rows spend their time on.
SINGLE_THREAD_BELOW_NQ = 4

_omp = threading.local()
log = logging.getLogger("heron.engine")
_blas: list[Callable[[int], int]] | None = None


def _blas_local_setters() -> list[Callable[[int], int]]:
    """OpenBLAS's ``openblas_set_num_threads_local`` of each OpenBLAS loaded (those that have it), found once."""
    global _blas
    if _blas is None:
        found: list[Callable[[int], int]] = []
        try:
            from threadpoolctl import threadpool_info

            for lib in threadpool_info():
                if lib.get("internal_api") != "openblas":
                    continue
                fn = getattr(ctypes.CDLL(lib["filepath"]), "openblas_set_num_threads_local", None)
                if fn is not None:
                    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
                    found.append(fn)
        except Exception:  # no threadpoolctl, or a library that will not load: BLAS keeps its threads
            log.debug("numpy's BLAS threads cannot be set per thread", exc_info=True)
        _blas = found
    return _blas


def _set_blas(n: int) -> list[int]:
    """Set this thread's BLAS thread count to `n`; the previous counts, one per library."""
    return [fn(n) for fn in _blas_local_setters()]


def _restore_blas(before: list[int]) -> None:
    for fn, n in zip(_blas_local_setters(), before):
        fn(n)


def single_threaded_here() -> None:
    """Run faiss and numpy's BLAS on the calling thread alone from now on (both settings are per thread)."""
    faiss.omp_set_num_threads(1)
    _set_blas(1)


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


def build_threads(full: int, busy: bool) -> int:
    """faiss threads for the next step of a background index build or growth of up to `full` threads.

    While callers' requests are coming in (`busy`) a build leaves them a core:
    it takes at most ``cpu_count - 1`` threads (at least 1), so a search never
    queues behind the build's threads for every core.
    """
    if not busy:
        return max(1, full)
    return max(1, min(full, (os.cpu_count() or 1) - 1))


def threads_for(nq: int) -> contextlib.AbstractContextManager[None]:
    """Run faiss and numpy's BLAS on this thread alone while a small batch of queries is answered.

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
            state = _omp.state = [faiss.omp_get_max_threads(), False, _set_blas(1)]
            _restore_blas(state[2])  # the counts to go back to, as they were
        if state[1] != small:
            faiss.omp_set_num_threads(1 if small else state[0])
            if small:
                _set_blas(1)
            else:
                _restore_blas(state[2])
            state[1] = small
        return _SAME
    return _single_thread() if small else _SAME


class _single_thread:
    """faiss and BLAS on one thread for the block, then the thread's own settings back."""

    __slots__ = ("before", "blas")

    def __enter__(self) -> None:
        self.before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        self.blas = _set_blas(1)

    def __exit__(self, *exc: object) -> None:
        faiss.omp_set_num_threads(self.before)
        _restore_blas(self.blas)


def blas_threads_for(nq: int) -> contextlib.AbstractContextManager[None]:
    """`threads_for`, for a block that calls numpy's BLAS and no faiss: faiss's thread count is left alone.

    On a thread of the caller's own, one query's product over gathered rows then
    costs one BLAS setting and its restoring, not faiss's three calls besides.
    """
    if nq >= SINGLE_THREAD_BELOW_NQ or threading.current_thread().name.startswith("heron-"):
        return threads_for(nq)
    return _single_blas()


class _single_blas:
    """numpy's BLAS on one thread for the block, then the thread's own setting back."""

    __slots__ = ("blas",)

    def __enter__(self) -> None:
        self.blas = _set_blas(1)

    def __exit__(self, *exc: object) -> None:
        _restore_blas(self.blas)


def omp_threads_for(nq: int) -> contextlib.AbstractContextManager[None]:
    """`threads_for`, for a block that calls faiss and no BLAS: numpy's BLAS thread count is left alone.

    On a thread of the caller's own, one query's faiss scan then costs faiss's
    setting and its restoring, not BLAS's besides (about half of the ~6 us).
    """
    if nq >= SINGLE_THREAD_BELOW_NQ or threading.current_thread().name.startswith("heron-"):
        return threads_for(nq)
    return _single_omp()


class _single_omp:
    """faiss on one thread for the block, then the thread's own setting back."""

    __slots__ = ("before",)

    def __enter__(self) -> None:
        self.before = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        faiss.omp_set_num_threads(self.before)


def _swig_function(name: str) -> Callable[..., Any] | None:
    """faiss's compiled entry point ``name`` (as its Python proxies call it), or None where this build hides it."""
    mod = sys.modules.get(faiss.IndexHNSW.__module__)
    for attr in ("_swigfaiss", "_swigfaiss_avx2", "_swigfaiss_avx512", "_swigfaiss_avx512_spr", "_swigfaiss_sve"):
        fn = getattr(getattr(mod, attr, None), name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


#: ``IndexHNSW::search`` itself, for one query on a hot path: called with the indexes' and the parameters'
#: ``this`` handles, it skips the proxy's Python frame and SWIG's attribute lookups for each argument, which
#: cost about as much as an HNSW search of a few thousand rows (None: call ``search_c`` instead).
hnsw_search_raw = _swig_function("IndexHNSW_search")
#: faiss's ``swig_ptr`` without its Python wrapper (the module's own is a one-line function around this).
swig_ptr = _swig_function("swig_ptr") or faiss.swig_ptr
