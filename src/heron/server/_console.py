"""The web console on the HTTP port (``heron serve --http-port N --console``, ``heron console DIR``).

``/`` is a page rendered here: the collections with their schema, row
counts, partitions, segments and index build progress (re-rendered every
few seconds while work runs), a playground that runs a query or a search
and shows the rows, and the server's metrics over time. A little
hand-written JavaScript (``console/console.js``) swaps in the fragments
rendered by ``/console/overview`` and ``/console/run`` and draws the series
of ``/console/metrics``; there is no build step.

Every fragment is made of the same requests the gRPC service and the REST
API run, through `heron.server._rest.Call` (its login, in-flight slot,
worker pool and privilege checks); the playground runs the REST handlers of
``/v2/vectordb/entities/query`` and ``/search`` themselves.
"""

from __future__ import annotations

import time
from collections import deque
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from .. import _requests as rq
from .._errors import AuthenticationError, HeronError, ParamError
from . import _console_views as views
from ._rest import Call, caller

if TYPE_CHECKING:
    from ._http import HttpState

#: Samples of the metrics series kept (one per ``SAMPLE_SECONDS`` at most, while a console is open).
HISTORY = 300
SAMPLE_SECONDS = 1.0
_STATIC = {"console.js": "text/javascript", "console.css": "text/css"}


def _asset(name: str) -> str:
    return resources.files("heron.server").joinpath("console").joinpath(name).read_text(encoding="utf-8")


class Console:
    """The console's routes over one server's `HttpState`, and its metrics history."""

    def __init__(self, state: HttpState) -> None:
        self.state = state
        self.history: deque[dict[str, float]] = deque(maxlen=HISTORY)

    def routes(self) -> list[Any]:
        """The starlette routes of the console."""
        from starlette.routing import Route

        return [
            Route("/", self.page, methods=["GET"]),
            Route("/console/overview", self.overview, methods=["GET"]),
            Route("/console/run", self.run, methods=["POST"]),
            Route("/console/metrics", self.metrics, methods=["GET"]),
            Route("/console/static/{name}", self.static, methods=["GET"]),
        ]

    # -- routes ------------------------------------------------------------------------------
    async def page(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse

        service = self.state.service
        body = ""
        if service is not None and service.auth is None and self.state.ready:
            try:
                body = views.overview(await self._overview(await self._call(request, {})))
            except HeronError as exc:
                body = views.error(exc)
        page = _asset("page.html").replace("{{overview}}", body or views.waiting(service is not None
                                                                                 and service.auth is not None))
        return HTMLResponse(page)

    async def overview(self, request: Any) -> Any:
        from starlette.responses import HTMLResponse

        try:
            call = await self._call(request, {})
            html = views.overview(await self._overview(call))
            status = 200
        except HeronError as exc:
            html, status = views.error(exc), _status(exc)
        return HTMLResponse(html, status_code=status)

    async def run(self, request: Any) -> Any:
        """The playground: a query or a search from the form's fields, its rows as a table."""
        from starlette.responses import HTMLResponse

        from ._rest_entities import query, search

        start = time.perf_counter()
        try:
            form = await _json(request)
            call = await self._call(request, _rest_body(form))
            if form.get("mode") == "search":
                answer = await search(call)
                rows = answer.fields["data"]
            else:
                rows = await query(call)
            html = views.rows(rows, form.get("mode") == "search", time.perf_counter() - start)
            status = 200
        except HeronError as exc:
            html, status = views.error(exc), _status(exc)
        return HTMLResponse(html, status_code=status)

    async def metrics(self, request: Any) -> Any:
        """The metrics series: one sample now (at most one a second), then the history as JSON columns."""
        import asyncio

        from starlette.responses import Response

        try:
            await self._call(request, {})
        except HeronError as exc:
            return Response(orjson.dumps({"error": str(exc)}), status_code=_status(exc),
                            media_type="application/json")
        now = time.time()
        if not self.history or now - self.history[-1]["t"] >= SAMPLE_SECONDS:
            self.history.append(await asyncio.to_thread(sample, self.state, now))
        series = {key: [s[key] for s in self.history] for key in self.history[-1]}
        return Response(orjson.dumps(series), media_type="application/json")

    async def static(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse, Response

        name = request.path_params["name"]
        if name not in _STATIC:
            return PlainTextResponse("not found", status_code=404)
        return Response(_asset(name), media_type=_STATIC[name], headers={"Cache-Control": "no-cache"})

    # -- plumbing ----------------------------------------------------------------------------
    async def _call(self, request: Any, body: dict[str, Any]) -> Call:
        """A `Call` of ``body`` by the request's user (``Authorization: Bearer user:password`` with --auth)."""
        state = self.state
        service = state.service
        if not state.ready or service is None:
            raise _NotReady("the server is starting: its data directory is not open yet")
        user = await caller(service, request)
        db = body.get("dbName") or "default"
        return Call(state, body, str(db), user)

    async def _overview(self, c: Call) -> list[dict[str, Any]]:
        """Every database with its collections, each described as `collection` describes it."""
        out = []
        for db in await c.run("ListDatabases", rq.ListDatabases()):
            names = await c.run("ShowCollections", rq.ListCollections(db))
            dc = Call(c.state, {}, db, c.user)
            out.append({"name": db, "collections": [await collection(dc, name) for name in names]})
        return out


async def collection(c: Call, name: str) -> dict[str, Any]:
    """One collection: schema, rows, partitions, segments (growing ones too), indexes and load state."""
    db = c.db
    d = await c.run("DescribeCollection", rq.DescribeCollection(db, name), name)
    rows = (await c.run("GetCollectionStatistics", rq.GetCollectionStats(db, name), name))["row_count"]
    partitions = []
    for p in await c.run("ShowPartitions", rq.ListPartitions(db, name), name):
        stats = await c.run("GetPartitionStatistics", rq.GetPartitionStats(db, name, p), name)
        partitions.append({"name": p, "rows": int(stats["row_count"])})
    segments = await c.run("GetQuerySegmentInfo", rq.ListLoadedSegments(db, name), name)
    indexes = []
    for index in await c.run("DescribeIndex", rq.ListIndexes(db, name), name):
        i = await c.run("DescribeIndex", rq.DescribeIndex(db, name, index), name)
        if i is not None:
            indexes.append(i)
    load = await c.run("GetLoadState", rq.GetLoadState(db, name), name)
    return {"db": db, "name": name, "rows": int(rows), "describe": d, "partitions": partitions,
            "segments": segments, "indexes": indexes, "load": load["state"]}


def sample(state: HttpState, now: float) -> dict[str, float]:
    """One point of the metrics series: calls (answered, failed), in flight, rows, segments, backlog, memory."""
    out = {"t": now, "calls": 0.0, "failed": 0.0, "inflight": 0.0, "rows": 0.0, "segments": 0.0,
           "backlog": 0.0, "rss": 0.0}
    names = {"heron_rpc_inflight": "inflight", "heron_collection_rows": "rows",
             "heron_collection_segments": "segments", "heron_index_build_backlog": "backlog",
             "process_resident_memory_bytes": "rss"}
    for family in state.metrics.registry.collect():
        for s in family.samples:
            if s.name == "heron_rpc_calls_total":
                out["calls"] += s.value
                if s.labels.get("status") == "fail":
                    out["failed"] += s.value
            elif s.name in names:
                out[names[s.name]] += s.value
    return out


def _rest_body(form: dict[str, Any]) -> dict[str, Any]:
    """The REST body (``/entities/query`` or ``/entities/search``) of the playground's form."""
    name = form.get("collection")
    if not isinstance(name, str) or not name:
        raise ParamError("collection: missing; pick a collection")
    body: dict[str, Any] = {"dbName": str(form.get("db") or "default"), "collectionName": name,
                            "filter": str(form.get("filter") or "")}
    fields = [f.strip() for f in str(form.get("output_fields") or "").split(",") if f.strip()]
    if fields:
        body["outputFields"] = fields
    limit = str(form.get("limit") or "").strip()
    if limit:
        try:
            body["limit"] = int(limit)
        except ValueError:
            raise ParamError(f"limit: got {limit!r}, expected a whole number") from None
    if form.get("mode") == "search":
        body["data"] = search_input(str(form.get("data") or ""))
        if form.get("anns_field"):
            body["annsField"] = str(form["anns_field"])
    elif "limit" not in body and not body["filter"]:
        body["limit"] = 10  # Milvus refuses an unfiltered query without a limit
    return body


def search_input(text: str) -> list[Any]:
    """The queries of the playground's search box: a JSON vector (or list of them), else the text itself."""
    text = text.strip()
    if not text:
        raise ParamError("data: empty; paste a vector such as [0.1, 0.2, ...] or, for a field a function "
                         "fills from text, the text to search for")
    if text.startswith("["):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ParamError(f"data: not a JSON vector ({exc}); paste a list such as [0.1, 0.2]") from None
        if value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return [value]
        return list(value)
    return [text]


async def _json(request: Any) -> dict[str, Any]:
    try:
        form = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ParamError(f"body: not JSON ({exc})") from None
    if not isinstance(form, dict):
        raise ParamError("body: expected a JSON object")
    return form


class _NotReady(HeronError):
    """The data directory is not open yet."""


def _status(exc: HeronError) -> int:
    if isinstance(exc, _NotReady):
        return 503
    return 401 if isinstance(exc, AuthenticationError) else 400
