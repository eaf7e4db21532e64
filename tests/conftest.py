"""Shared fixtures: a `client` over {sync, async} × {embedded}, one fresh data directory per test."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import heron


class AsyncAsSync:
    """Drive an `AsyncClient` from a test as if it were blocking, on its own event loop."""

    def __init__(self, client: heron.AsyncClient) -> None:
        self._client = client
        self._loop = asyncio.new_event_loop()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if inspect.iscoroutinefunction(attr):
            return lambda *a, **k: self._loop.run_until_complete(attr(*a, **k))
        if name.endswith("_iterator"):
            return lambda *a, **k: _SyncIterator(attr(*a, **k), self._loop)
        return attr

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()


class _SyncIterator:
    def __init__(self, it: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._it, self._loop = it, loop

    def next(self) -> Any:
        return self._loop.run_until_complete(self._it.next())

    def close(self) -> None:
        self._it.close()


@pytest.fixture(params=["sync", "async"])
def client(request: pytest.FixtureRequest, tmp_path):
    """A client on a fresh directory; the async one is driven through `AsyncAsSync`."""
    path = str(tmp_path / "db")
    c: Any = heron.Client(path) if request.param == "sync" else AsyncAsSync(heron.AsyncClient(path))
    yield c
    c.close()


def simple_schema(dim: int = 4, dynamic: bool = False) -> heron.CollectionSchema:
    s = heron.Client.create_schema(enable_dynamic_field=dynamic)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("name", heron.DataType.VARCHAR, max_length=32)
    s.add_field("n", heron.DataType.INT32)
    return s


def make_collection(client: Any, name: str = "c", rows: int = 20, dim: int = 4, dynamic: bool = False) -> list[dict]:
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=simple_schema(dim, dynamic), index_params=idx)
    data = [{"id": i, "vec": [float(i)] * dim, "name": f"n{i}", "n": i % 5} for i in range(rows)]
    if rows:
        client.insert(name, data)
    return data
