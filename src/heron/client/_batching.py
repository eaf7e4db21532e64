"""Searches from many coroutines of one event loop, batched before they leave the loop.

An `AsyncClient` call hands its request to a worker thread and the answer
back to the loop; with many callers those threads mostly contend for the
interpreter lock. So, per event loop, at most as many searches run as there
are cores besides the loop's own (at least one); searches that arrive
meanwhile wait on the loop, grouped by what they share (`batch_key`), and
when one finishes the oldest group goes to a worker as a single request
carrying all its query vectors. A lone caller never waits. When a batch of
several finishes, its callers resume in that same turn of the loop and most
search again at once; sending is held until that turn ends, so they form one
group instead of the first going alone and the others after it. A group
starts only after every member arrived, so no search sees an older snapshot
than it would have alone. A batch that fails is run again request by
request, so each caller gets its own answer or its own error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import weakref
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np

from .. import _requests as rq
from ..engine._coalesce import MAX_BATCH_QUERIES, batch_key

_Member = tuple[rq.Search, "asyncio.Future[Any]"]


class LoopSearchBatcher:
    """Search batching for one event loop; every method runs on that loop's thread."""

    def __init__(self, submit: Callable[[Any], asyncio.Future[Any]], parallel: int) -> None:
        self._submit = submit
        self._parallel = max(1, parallel)
        self._running = 0
        self._queue: deque[list[_Member]] = deque()
        self._open: dict[Hashable, list[_Member]] = {}
        self._holding = False

    def search(self, r: rq.Search) -> asyncio.Future[Any]:
        """A future of ``r``'s hits (one list per query vector)."""
        if self._running < self._parallel and not self._queue and not self._holding:
            return self._send(r)
        key = batch_key(r)
        group = self._open.get(key) if key is not None else None
        if group is None or sum(len(m[0].data) for m in group) + len(r.data) > MAX_BATCH_QUERIES:
            group = []
            self._queue.append(group)
            if key is not None:
                self._open[key] = group
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        group.append((r, fut))
        return fut

    def _send(self, r: rq.Search) -> asyncio.Future[Any]:
        fut = self._submit(r)  # raises when the client is closing: nothing was started
        self._running += 1
        fut.add_done_callback(self._finished)
        return fut

    def _finished(self, _: asyncio.Future[Any]) -> None:
        self._running -= 1
        self._next()

    def _next(self) -> None:
        if self._holding:
            return  # `_release` sends, once the members of a finished batch had their turn
        while self._running < self._parallel and self._queue:
            group = self._queue.popleft()
            for key, g in list(self._open.items()):
                if g is group:
                    del self._open[key]  # closed: later arrivals start another group
                    break
            members = [m for m in group if not m[1].done()]  # callers that gave up are dropped
            if not members:
                continue
            req = members[0][0]
            if len(members) > 1:
                req = dataclasses.replace(req, data=np.concatenate([r.data for r, _ in members]))
            try:
                inner = self._submit(req)
            except BaseException as exc:  # the client is closing: every member hears it
                for _, fut in members:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self._running += 1
            inner.add_done_callback(functools.partial(self._group_done, members))

    def _group_done(self, members: list[_Member], inner: asyncio.Future[Any]) -> None:
        self._running -= 1
        error = inner.exception() if not inner.cancelled() else asyncio.CancelledError()
        if error is None:
            hits, start = inner.result(), 0
            for r, fut in members:
                if not fut.done():
                    fut.set_result(hits[start : start + len(r.data)])
                start += len(r.data)
        elif len(members) == 1:
            if not members[0][1].done():
                members[0][1].set_exception(error)
        else:
            for r, fut in members:  # each on its own: its own answer or its own error
                try:
                    self._send(r).add_done_callback(functools.partial(_copy, fut))
                except BaseException as exc:
                    if not fut.done():
                        fut.set_exception(exc)
        if len(members) > 1 and not self._holding:
            # the members resume in this turn of the loop and most search again: let them form
            # one group instead of sending the first alone and the rest after it
            self._holding = True
            asyncio.get_running_loop().call_soon(self._release)
            return
        self._next()

    def _release(self) -> None:
        self._holding = False
        self._next()


def _copy(dst: asyncio.Future[Any], src: asyncio.Future[Any]) -> None:
    if dst.done():
        return
    if src.cancelled():
        dst.cancel()
    elif src.exception() is not None:
        dst.set_exception(src.exception())  # type: ignore[arg-type]
    else:
        dst.set_result(src.result())


class PerLoopBatchers:
    """A `LoopSearchBatcher` for each event loop a client is used from (one after another, or at once)."""

    def __init__(self, submit: Callable[[Any], asyncio.Future[Any]], parallel: int) -> None:
        self._submit = submit
        self._parallel = parallel
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopSearchBatcher] = (
            weakref.WeakKeyDictionary()
        )

    def search(self, r: rq.Search) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        b = self._by_loop.get(loop)
        if b is None:
            b = self._by_loop[loop] = LoopSearchBatcher(self._submit, self._parallel)
        return b.search(r)
