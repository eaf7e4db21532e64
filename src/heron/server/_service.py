"""MilvusService over a Heron engine: decode, dispatch in the worker pool, encode.

Every RPC goes through `MilvusService.handle`: authenticate (when enabled:
a credential seen recently is recognised from a cache; otherwise its
password is checked on a thread of its own, at most one check per
credential at a time, and logins that failed too often lately are refused
without a check), take an in-flight slot (or answer "server busy"), then — in a worker thread,
never on the event loop — check privileges, decode with `heron.wire`,
run the request on the engine unless the caller's deadline has passed or
the call was cancelled, and encode the reply.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from typing import Any

import grpc

from .. import wire
from .._errors import AuthenticationError, ServerBusyError
from .._schema import CollectionSchema
from .._workers import Workers
from ..engine._access import NO_AUTH
from ..engine._access import run as run_access
from ..engine._engine import Engine
from ._auth import AuthStore, FailedLogins
from ._calllog import DEFAULT_SLOW_MS, CallLog
from ._errors import DeadlineExceeded, rpc_errors
from ._metrics import Metrics, metrics_reply, reply_ok
from ._rbac import check_privilege, visible

SERVICE_NAME = "milvus.proto.milvus.MilvusService"
#: RPCs a client may make before logging in (Milvus answers them for anyone).
OPEN_RPCS = frozenset({"GetVersion", "CheckHealth"})
#: Every RPC served: those of the codec table, and the user, role and privilege RPCs, that the
#: installed protocol modules define.
RPCS = tuple(sorted(rpc for rpc in set(wire.CODECS) | set(wire.ACCESS) if wire.has_rpc(rpc)))
#: Password checks waiting or running at most; further logins are answered "server busy".
MAX_PENDING_LOGINS = 64


class MilvusService:
    """The Milvus RPCs Heron serves. ``auth`` is None when the server runs without authentication."""

    def __init__(
        self,
        engine: Engine,
        pool: Workers,
        *,
        auth: AuthStore | None = None,
        max_inflight: int = 256,
        slow_ms: float = DEFAULT_SLOW_MS,
        metrics: Metrics | None = None,
    ) -> None:
        self.engine = engine
        self.pool = pool
        self.auth = auth
        #: Password checks run here, not in `pool`: a flood of logins leaves the data calls their threads.
        self.auth_pool = Workers(1, "heron-auth")
        self.failed_logins = FailedLogins()
        self._checking: dict[bytes, asyncio.Future[str]] = {}
        self.max_inflight = max_inflight
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.calls = CallLog(slow_ms)
        #: Counts every call when the server has an HTTP port (``/metrics``, `GetMetrics`).
        self.metrics = metrics
        self.started = time.time()

    # -- plumbing ------------------------------------------------------------------------------
    def generic_handler(self) -> grpc.GenericRpcHandler:
        handlers = {}
        for rpc in RPCS:
            req_cls, resp_cls = wire.request_class(rpc), wire.response_class(rpc)
            handlers[rpc] = grpc.unary_unary_rpc_method_handler(
                self._bind(rpc),
                request_deserializer=req_cls.FromString,
                response_serializer=resp_cls.SerializeToString,
            )
        if wire.has_rpc("GetMetrics"):
            handlers["GetMetrics"] = grpc.unary_unary_rpc_method_handler(
                self._bind("GetMetrics", self.get_metrics),
                request_deserializer=wire.request_class("GetMetrics").FromString,
                response_serializer=wire.response_class("GetMetrics").SerializeToString,
            )
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    def _bind(self, rpc: str, handler: Any = None) -> Any:
        handle = handler or self.handle
        metrics, calls = self.metrics, self.calls

        async def call(msg: Any, context: Any) -> Any:
            started, reply = time.perf_counter(), None
            try:
                reply = await handle(rpc, msg, context)
                return reply
            finally:
                elapsed = time.perf_counter() - started
                calls.record(rpc, msg, context, reply, elapsed)
                if metrics is not None:
                    metrics.observe(rpc, reply is not None and reply_ok(reply), elapsed)

        return call

    @rpc_errors
    async def get_metrics(self, rpc: str, msg: Any, context: Any) -> Any:
        """``GetMetrics``: for ``{"metric_type": "system_info"}``, the server and its metrics as JSON."""
        await self._user(rpc, context)
        return await self.pool.submit(metrics_reply, self, msg.request)  # it reads the engine: off the loop

    async def drain(self) -> None:
        """Wait until no call is in flight."""
        await self._idle.wait()

    async def _user(self, rpc: str, context: Any) -> str:
        """The caller's user name ("" without authentication); `AuthenticationError` if refused."""
        auth = self.auth
        if auth is None or rpc in OPEN_RPCS:
            return ""
        md = dict(context.invocation_metadata() or ())
        raw = md.get("authorization", "")
        try:
            token = base64.b64decode(raw, validate=True).decode() if raw else ""
        except ValueError:
            token = ""
        if not token:
            raise AuthenticationError("authentication required: pass token='user:password'")
        key = auth.token_key(token)
        user = auth.cached_user(key)
        if user is not None:
            return user
        checking = self._checking.get(key)
        if checking is None:
            if len(self._checking) >= MAX_PENDING_LOGINS:
                raise ServerBusyError(f"server busy: {len(self._checking)} logins being checked; retry")
            keys = (f"peer {_host(context.peer())}", f"user {token.partition(':')[0]!r}")
            self.failed_logins.admit(keys)
            checking = self._checking[key] = self.auth_pool.submit(auth.authenticate, token)
            checking.add_done_callback(lambda fut: self._checked(key, keys, fut))
        return await asyncio.shield(checking)  # callers of one credential share its check

    def _checked(self, key: bytes, keys: tuple[str, str], fut: asyncio.Future[str]) -> None:
        del self._checking[key]
        self.failed_logins.done(keys, not fut.cancelled() and fut.exception() is None)

    # -- the one handler ---------------------------------------------------------------------------
    @rpc_errors
    async def handle(self, rpc: str, msg: Any, context: Any) -> Any:
        user = await self._user(rpc, context)
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        db = wire.db_of(msg, dict(context.invocation_metadata() or ()).get("dbname", ""))
        if self.inflight >= self.max_inflight:
            if self.metrics is not None:
                self.metrics.busy.inc()
            raise ServerBusyError(
                f"server busy: {self.inflight} calls in flight (limit {self.max_inflight}); retry"
            )
        self.inflight += 1
        self._idle.clear()
        cancelled = threading.Event()
        try:
            return await self.pool.submit(self._work, rpc, msg, db, user, deadline, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        finally:
            self.inflight -= 1
            if self.inflight == 0:
                self._idle.set()

    def _work(
        self, rpc: str, msg: Any, db: str, user: str, deadline: float | None, cancelled: threading.Event
    ) -> Any:
        if self.auth is not None and user:
            check_privilege(self.auth, user, rpc, msg, db)
        access = wire.ACCESS.get(rpc)
        if access is not None:  # users, roles and privileges: on the auth store, or as a fresh Milvus lists them
            req = access.decode(msg, db)
            return access.encode(run_access(self.auth if self.auth is not None else NO_AUTH, req, user), req)
        codec = wire.CODECS[rpc]
        schemas: dict[str, CollectionSchema] = {}
        schema = self._schema_fn(db, schemas)
        request = codec.decode(msg, db, schema)
        if cancelled.is_set() or (deadline is not None and time.monotonic() >= deadline):
            raise DeadlineExceeded(f"{rpc}: the deadline passed before the call started; nothing was done")
        run = getattr(request, "run", None)
        result = run(self.engine.execute) if run is not None else self.engine.execute(request)
        if self.auth is not None and user:
            result = visible(self.auth, user, rpc, result, db)
        return with_status(codec.encode(result, request, schema))

    def _schema_fn(self, db: str, cache: dict[str, CollectionSchema]) -> Any:
        """The schema of a collection (or alias) as the engine holds it now, read once per call.

        The engine's in-memory collection is read directly: a full DescribeCollection
        (catalog query, dict round trip) on every search costs more than the search's encoding.
        """

        def schema(name: str) -> CollectionSchema:
            if name not in cache:
                cache[name] = self.engine.collection(db, name).schema
            return cache[name]

        return schema


def with_status(reply: Any) -> Any:
    """``reply`` with its ``status`` present (code 0) when it has one: Milvus always sends it, and
    clients that read ``reply.status.error_code`` unguarded (the Node.js SDK) fail on a missing one."""
    has = _HAS_STATUS.get(type(reply))
    if has is None:
        descriptor = getattr(reply, "DESCRIPTOR", None)
        has = _HAS_STATUS[type(reply)] = descriptor is not None and "status" in descriptor.fields_by_name
    if has and not reply.HasField("status"):
        reply.status.SetInParent()
    return reply


_HAS_STATUS: dict[type, bool] = {}


def _host(peer: str) -> str:
    """The host of a gRPC peer (``ipv4:1.2.3.4:567`` -> ``1.2.3.4``): failures count per host, not per connection."""
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return address.rpartition(":")[0] or address
    return peer

