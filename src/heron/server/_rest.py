"""The Milvus RESTful API v2 on the HTTP port: ``POST /v2/vectordb/<group>/<action>`` with a JSON body.

Each endpoint builds the same `heron._requests` object the gRPC service
decodes from the matching RPC and runs it as that service does: after the
login (``Authorization: Bearer user:password`` when the server has
``--auth``), in an in-flight slot of the service, on its worker pool, with
the privilege the RPC needs. Answers are Milvus's envelopes:
``{"code": 0, "data": ...}``, or ``{"code": <Milvus error code>, "message": ...}``
(with HTTP status 200, as Milvus answers).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import orjson

from .. import _requests as rq
from .. import wire
from .._errors import AuthenticationError, HeronError, ParamError, ServerBusyError
from ._rbac import check_privilege, visible

if TYPE_CHECKING:
    from ._http import HttpState

#: Milvus's code for a call before the server is ready.
NOT_READY = 1
_JSON = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


@dataclass
class Call:
    """One REST call: its body, database and authenticated user, and the server it runs on."""

    state: HttpState
    body: dict[str, Any]
    db: str
    user: str

    def name(self, key: str = "collectionName", required: bool = True) -> str:
        """The string parameter ``key`` of the body; `ParamError` when required and missing."""
        value = self.body.get(key)
        if value is None or value == "":
            if required:
                raise ParamError(f"{key}: missing; the body needs \"{key}\": \"<name>\"")
            return ""
        if not isinstance(value, str):
            raise ParamError(f"{key}: got {value!r}, expected a string")
        return value

    def names(self, key: str) -> tuple[str, ...]:
        value = self.body.get(key) or []
        if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ParamError(f"{key}: got {value!r}, expected a list of strings")
        return tuple(value)

    async def run(self, rpc: str, request: Any, name: str = "") -> Any:
        """Run ``request`` as the gRPC service runs the RPC ``rpc`` (``name``: the collection it touches)."""
        service = self.state.service
        assert service is not None
        if service.inflight >= service.max_inflight:
            if service.metrics is not None:
                service.metrics.busy.inc()
            raise ServerBusyError(
                f"server busy: {service.inflight} calls in flight (limit {service.max_inflight}); retry"
            )
        service.inflight += 1
        service._idle.clear()
        try:
            return await service.pool.submit(self._work, rpc, request, name)
        finally:
            service.inflight -= 1
            if service.inflight == 0:
                service._idle.set()

    def _work(self, rpc: str, request: Any, name: str) -> Any:
        service = self.state.service
        assert service is not None
        if service.auth is not None and self.user:
            about = SimpleNamespace(collection_name=name, collection_names=[name] if name else [])
            check_privilege(service.auth, self.user, rpc, about, self.db)
        run = getattr(request, "run", None)
        result = run(service.engine.execute) if run is not None else service.engine.execute(request)
        if service.auth is not None and self.user:
            result = visible(service.auth, self.user, rpc, result, self.db)
        return result


Endpoint = Callable[[Call], Awaitable[Any]]


class _Context:
    """What `MilvusService._user` reads of a gRPC context, from an HTTP request."""

    def __init__(self, token: str, peer: str) -> None:
        self._md = (("authorization", base64.b64encode(token.encode()).decode()),) if token else ()
        self._peer = peer

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._md

    def peer(self) -> str:
        return self._peer


def endpoint_route(state: HttpState, path: str, fn: Endpoint) -> Any:
    """The starlette route of the endpoint ``fn`` at ``path``: envelope, errors, counting."""
    from starlette.requests import Request
    from starlette.responses import Response

    async def route(request: Request) -> Response:
        start = time.perf_counter()
        try:
            answer = await _answer(state, request, fn)
        except Exception as exc:
            answer = _error(exc)
        code = answer.get("code", 0)
        state.metrics.http.labels(path, str(code)).inc()
        if state.service is not None and state.service.metrics is not None:
            state.service.metrics.observe("REST " + path, code == 0, time.perf_counter() - start)
        return Response(orjson.dumps(answer, option=_JSON, default=_default), media_type="application/json")

    return route


async def _answer(state: HttpState, request: Any, fn: Endpoint) -> dict[str, Any]:
    service = state.service
    if not state.ready or service is None:
        return {"code": NOT_READY, "message": "the server is starting: its data directory is not open yet"}
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise ParamError(f"body: not JSON ({exc}); send a JSON object") from None
    if not isinstance(body, dict):
        raise ParamError(f"body: got {type(body).__name__}, expected a JSON object")
    user = await caller(service, request)
    db = body.get("dbName") or request.headers.get("db-name") or "default"
    if not isinstance(db, str):
        raise ParamError(f"dbName: got {db!r}, expected a string")
    data = await fn(Call(state, body, db, user))
    if isinstance(data, _Envelope):
        return {"code": 0, **data.fields}
    return {"code": 0, "data": {} if data is None else data}


async def caller(service: Any, request: Any) -> str:
    """The user an HTTP request logs in as (``Authorization: Bearer user:password``), as the gRPC service
    logs its callers in; "" on a server without --auth. `AuthenticationError` when refused."""
    token = ""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            raise AuthenticationError("Authorization: expected 'Bearer user:password'")
    client = request.client
    return str(await service._user("REST", _Context(token.strip(), f"ipv4:{client.host}:{client.port}" if client else "")))


class _Envelope:
    """An answer with fields beside ``data`` (a search's ``topks``)."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields


def envelope(**fields: Any) -> Any:
    """The answer ``{"code": 0, **fields}``."""
    return _Envelope(**fields)


def _error(exc: BaseException) -> dict[str, Any]:
    if not isinstance(exc, HeronError):
        import logging

        logging.getLogger("heron.server").exception("REST call failed")
    status = wire.status_of(exc)
    return {"code": int(status.code) or 1, "message": status.reason}


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "items"):
        return dict(value.items())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


__all__ = ["Call", "caller", "endpoint_route", "envelope", "rq"]
