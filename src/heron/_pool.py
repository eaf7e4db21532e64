"""Background threads that keep working until the program's last thread is done.

concurrent.futures' ``ThreadPoolExecutor`` stops taking work as soon as the
main thread ends: its exit hook runs before the threads a program started
are joined. A program whose main thread returns while a thread of its own
still inserts then got "cannot schedule new futures after interpreter
shutdown" from its next insert, and a seal or merge that was under way had
its follow-up work refused, with a traceback on the way out.

`Pool` is the part of the executor Heron uses (``submit``, ``map``, ``shutdown``) on
daemon threads that no exit hook stops. Engines that clients left open are
closed at exit instead (`_engine._close_at_exit`), once every other thread
has ended, and closing an engine shuts its pools down in order.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

log = logging.getLogger("heron.engine")

_STOP = None

_LIVE: weakref.WeakSet[Pool] = weakref.WeakSet()  # every pool, for `_after_fork_in_child`


class Pool:
    """Up to `max_workers` daemon threads named ``{thread_name_prefix}_N``, started as work needs them.

    ``after_task``, if given, is called on the thread after each task with the
    seconds the task took, once the task and its arguments are let go.
    """

    def __init__(self, max_workers: int = 1, thread_name_prefix: str = "heron",
                 initializer: Callable[..., Any] | None = None, initargs: tuple[Any, ...] = (),
                 after_task: Callable[[float], Any] | None = None) -> None:
        self._max = max(1, max_workers)
        self._after = after_task
        self._prefix = thread_name_prefix
        self._init = initializer
        self._initargs = initargs
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # one release per task finished by a thread now waiting
        self._lock = threading.Lock()
        self._shutdown = False
        _LIVE.add(self)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a pool thread; RuntimeError once the pool is shut down."""
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            fut: Future[Any] = Future()
            self._queue.put((fut, fn, args, kwargs))
            if not self._idle.acquire(timeout=0) and len(self._threads) < self._max:
                t = threading.Thread(target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                self._threads.append(t)
                t.start()
        return fut

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        """``fn`` over the iterables' items on the pool's threads; the results in their order."""
        futures = [self.submit(fn, *args) for args in zip(*iterables)]

        def results() -> Iterator[Any]:
            for fut in futures:
                yield fut.result()

        return results()

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(wait=True)

    def _work(self) -> None:
        if self._init is not None:
            try:
                self._init(*self._initargs)
            except Exception:  # the thread still works, as it would without its set-up
                log.exception("setting up thread %s failed", threading.current_thread().name)
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._queue.put(_STOP)  # for the next thread
                return
            fut, fn, args, kwargs = item
            t0 = time.perf_counter()
            if fut.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # the caller's future holds it
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            del item, fut, fn, args, kwargs
            if self._after is not None:
                try:
                    self._after(time.perf_counter() - t0)
                except Exception:  # housekeeping: the next task still runs
                    log.exception("after a task on thread %s", threading.current_thread().name)
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more work; the tasks queued run first unless `cancel_futures` (they are then cancelled).

        With `wait`, return once every thread has ended. Calling it again is harmless.
        """
        with self._lock:
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not _STOP:
                        item[0].cancel()
            if not self._shutdown:
                self._shutdown = True
                self._queue.put(_STOP)
            elif cancel_futures:
                self._queue.put(_STOP)  # the one taken out above
            threads = list(self._threads)
        if wait:
            for t in threads:
                if t is not threading.current_thread():
                    t.join()

    def _forget_threads(self) -> None:
        """In a forked child: the parent's threads are not there, and the work queued for them is lost.

        The child has only the thread that forked, so a lock or semaphore some
        pool thread held at the fork would never be released; the pool starts
        over with new ones, and makes threads again as work needs them. Work
        queued in the parent and not yet taken runs in the parent, not here:
        its futures are cancelled in the child.
        """
        self._lock = threading.Lock()
        self._idle = threading.Semaphore(0)
        old, self._queue = self._queue, queue.SimpleQueue()
        while True:
            try:
                item = old.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                item[0].cancel()
        self._threads = []
        if self._shutdown:
            self._queue.put(_STOP)


def _after_fork_in_child() -> None:
    for pool in list(_LIVE):
        pool._forget_threads()


os.register_at_fork(after_in_child=_after_fork_in_child)
