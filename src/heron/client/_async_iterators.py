"""Iterators of `AsyncClient`: query pages in key order, search pages past the last distance.

`scripts/unasync.py` generates the blocking versions from this file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._types import larger_is_better
from ._base import cursor_filter, search_field, search_metric
from ._results import QueryResult, shape_search

if TYPE_CHECKING:
    from ._async_client import AsyncClient


class AsyncQueryIterator:
    """Batches of query results in primary-key order (see `AsyncClient.query_iterator`)."""

    def __init__(self, client: AsyncClient, request: rq.Query, batch_size: int, limit: int,
                 timeout: float | None) -> None:
        self._client = client
        self._request = request
        self._batch = batch_size
        self._left = None if limit is None or limit < 0 else limit
        self._timeout = timeout
        self._cursor: Any = None
        self._done = False

    async def next(self) -> list[dict[str, Any]]:
        """The next batch, or ``[]`` when the iterator is exhausted.

        Each page asks for the rows whose primary key is above the last one returned, with the
        cursor in the filter expression (``id > 41 and (color == "red")``), as pymilvus pages;
        every server (a Milvus server, `heron serve`, embedded Heron) answers that the same way.
        A Milvus server may answer a page short of the limit before the end (it stops where one
        segment's keys run out), so pages are asked for until the batch is full or one comes back
        empty: batches hold ``batch_size`` rows on every server, the last may hold fewer.
        """
        n = self._batch if self._left is None else min(self._batch, self._left)
        if self._done or n <= 0:
            return []
        r = self._request
        pk = (await self._client._schema(r.collection_name, r.db_name)).primary_field.name
        rows: list[dict[str, Any]] = []
        while len(rows) < n:
            req = dataclasses.replace(r, filter=cursor_filter(pk, self._cursor, r.filter), order_by_pk=True,
                                      after_pk=None, limit=n - len(rows), offset=0)
            page = await self._client._call(req, self._timeout)
            if not page:
                self._done = True
                break
            rows.extend(page)
            self._cursor = page[-1][pk]
        if self._left is not None:
            self._left -= len(rows)
        return QueryResult(rows)

    def close(self) -> None:
        """Stop the iterator: later calls to `next` return ``[]``."""
        self._done = True

    def __aiter__(self) -> AsyncQueryIterator:
        return self

    async def __anext__(self) -> list[dict[str, Any]]:
        batch = await self.next()
        if not batch:
            raise StopAsyncIteration
        return batch


class AsyncSearchIterator:
    """Batches of search hits, best first, continuing past each batch's last distance."""

    def __init__(self, client: AsyncClient, request: rq.Search, batch_size: int, limit: int,
                 timeout: float | None, external_filter_func: Callable[[list[Any]], Any] | None = None) -> None:
        self._client = client
        self._request = request
        self._batch = batch_size
        self._left = None if limit is None or limit < 0 else limit
        self._timeout = timeout
        self._last: float | None = None
        self._edge: set[Any] = set()
        self._done = False
        self._larger: bool | None = None
        self._filter = external_filter_func
        #: Hits that passed ``external_filter_func`` beyond the last page returned.
        self._kept: list[Any] = []
        self._source_done = False

    async def _metric(self) -> str:
        """The search's metric; only a search that names none asks for the schema and its field's index."""
        r = self._request
        if r.metric_type:
            return r.metric_type
        schema = await self._client._schema(r.collection_name, r.db_name)
        field = search_field(r, schema)
        names = await self._client._call(rq.ListIndexes(r.db_name, r.collection_name, field), self._timeout)
        index = None
        if names:
            index = await self._client._call(rq.DescribeIndex(r.db_name, r.collection_name, names[0]), self._timeout)
        return search_metric(r, schema, index)

    async def next(self) -> list[dict[str, Any]]:
        """The next batch of hits, or ``[]`` when the iterator is exhausted.

        With ``external_filter_func``, each page fetched goes through it and pages are
        fetched until a full batch passed (or the hits run out), as pymilvus does.
        """
        n = self._batch if self._left is None else min(self._batch, self._left)
        if self._done or n <= 0:
            return []
        if self._filter is None:
            page = await self._fetch(n)
            self._done = len(page) < n
        else:
            while len(self._kept) < n and not self._source_done:
                got = await self._fetch(self._batch)
                self._source_done = len(got) < self._batch
                if got:
                    self._kept.extend(self._filter(got))
            page, self._kept = self._kept[:n], self._kept[n:]
            self._done = self._source_done and not self._kept
        if self._left is not None:
            self._left -= len(page)
        return page

    async def _fetch(self, n: int) -> list[Any]:
        """The next ``n`` hits from the engine, continuing past the last distance returned."""
        if self._larger is None:
            self._larger = larger_is_better(await self._metric())
        r = self._request
        params = dict(r.params)
        if self._last is not None:
            params["range_filter"] = self._last
            params.setdefault("radius", -3.0e38 if self._larger else 3.0e38)
        want = min(n + len(self._edge), 16384)
        req = dataclasses.replace(r, limit=want, offset=0, params=params)
        pk = await self._client._pk_name(r.collection_name, r.db_name)
        hits = shape_search(await self._client._call(req, self._timeout), pk)[0]
        fresh = [h for h in hits if not (h["distance"] == self._last and h.id in self._edge)][:n]
        if fresh:
            last = fresh[-1]["distance"]
            self._edge = {h.id for h in fresh if h["distance"] == last} | (
                self._edge if last == self._last else set())
            self._last = last
        return fresh

    def close(self) -> None:
        """Stop the iterator: later calls to `next` return ``[]``."""
        self._done = True

    def __aiter__(self) -> AsyncSearchIterator:
        return self

    async def __anext__(self) -> list[dict[str, Any]]:
        batch = await self.next()
        if not batch:
            raise StopAsyncIteration
        return batch
