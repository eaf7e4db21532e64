"""Transports: the only place where the two call styles are written twice.

A transport executes one request object and returns the engine's answer.
The embedded ones call the engine in this process: `LocalTransport`
directly, `AsyncLocalTransport` in a bounded worker pool so the event loop
never blocks (numpy, faiss and pyarrow release the GIL, so workers run in
parallel). The async transport binds to no event loop: a client can be used
from several loops one after another.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from ... import _requests as rq
from ..._errors import ClientClosedError, HeronError
from ..._workers import Workers
from ...engine._engine import Engine, open_engine, release_engine
from .._batching import PerLoopBatchers


def local_path(uri: str) -> str:
    """The directory of an embedded URI (a path, or ``file://`` path)."""
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    return os.path.expanduser(uri)


class LocalTransport:
    def __init__(self, uri: str) -> None:
        self._engine: Engine | None = open_engine(local_path(uri))

    def handle(self, request: Any, timeout: float | None = None) -> Any:
        engine = self._engine
        if engine is None:
            raise ClientClosedError("the client is closed; create a new one")
        return engine.execute(request)

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            release_engine(engine)


class AsyncLocalTransport:
    def __init__(self, uri: str, max_workers: int | None = None) -> None:
        self._path = local_path(uri)
        self._engine: Engine | None = None
        self._closed = False
        self._lock = threading.Lock()
        workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._pool = Workers(workers, "heron-async")
        # one search in flight per core besides the event loop's own; the rest wait and go together
        self._searches = PerLoopBatchers(lambda r: self._pool.submit(self._execute, r), (os.cpu_count() or 2) - 1)

    def _execute(self, request: Any) -> Any:
        with self._lock:
            if self._closed:
                raise ClientClosedError("the client is closed; create a new one")
            if self._engine is None:
                self._engine = open_engine(self._path)
            engine = self._engine
        return engine.execute(request)

    async def handle(self, request: Any, timeout: float | None = None) -> Any:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one")
        if type(request) is rq.Search and request.ids is None:
            fut = self._searches.search(request)
        else:
            fut = self._pool.submit(self._execute, request)
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise HeronError(f"{type(request).__name__} did not finish within timeout={timeout}s") from None

    async def connect(self) -> None:
        await self._pool.submit(self._open)

    def _open(self) -> None:
        with self._lock:
            if self._engine is None and not self._closed:
                self._engine = open_engine(self._path)

    async def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            engine, self._engine = self._engine, None
        if engine is not None:
            await self._pool.submit(release_engine, engine)
        self._pool.shutdown(wait=False)
