"""Remote transports: Heron requests over the Milvus gRPC protocol (`grpc` and `grpc.aio`).

One channel per client. Each call carries the client's token (base64
``user:password`` in the ``authorization`` header, as pymilvus sends it)
and database (``dbname`` header), honours a per-call timeout, and resends
read-only requests with backoff while the server is UNAVAILABLE. Writes are
never resent: a write whose answer was lost may have been applied.

`AsyncRemoteTransport` binds no event loop when it is built: its aio
channel is created on first use inside a running loop, and again if the
client is later used from another loop.

A process forked from one that holds a client gets a connection of its own
on the child's first call: the parent's connection (its socket, its HTTP/2
streams) stays the parent's, and the child never closes it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from typing import Any
from urllib.parse import urlparse

import grpc

from ... import _requests as rq
from ... import wire
from ..._errors import (
    AuthenticationError,
    ClientClosedError,
    HeronError,
    IndexNotFoundError,
    PermissionDeniedError,
    ServerBusyError,
)
from ..._schema import CollectionSchema
from .._batching import PerLoopBatchers
from ._calllog import logged

_PATH = "/milvus.proto.milvus.MilvusService/"
_OPTIONS = [
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.enable_retries", 0),
]
_RETRY_TIMES = 6
#: What a gRPC server answers, with RESOURCE_EXHAUSTED, to a call past its ``maximum_concurrent_rpcs``
#: (a message over the size limit has the same status code and is no reason to retry).
_CALL_LIMIT = "Concurrent RPC limit exceeded"
_DDL = (rq.CreateCollection, rq.DropCollection, rq.RenameCollection, rq.TruncateCollection,
        rq.AddCollectionField, rq.AlterCollectionField, rq.DropCollectionField, rq.AddCollectionStructField,
        rq.AddCollectionFunction, rq.AlterCollectionFunction, rq.DropCollectionFunction)


#: This process's id, kept current across forks (cheaper than asking the system on every call).
_pid = os.getpid()
#: Channels inherited from a parent process: held, never used or closed here (closing would speak on its socket).
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _target(uri: str) -> tuple[str, bool]:
    u = urlparse(uri)
    secure = u.scheme == "https"
    port = u.port or (443 if secure else 19530)
    return f"{u.hostname or '127.0.0.1'}:{port}", secure


def _credentials(options: dict[str, Any]) -> grpc.ChannelCredentials:
    def read(key: str) -> bytes | None:
        path = options.get(key)
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    return grpc.ssl_channel_credentials(
        read("server_pem_path") or read("ca_pem_path"), read("client_key_path"), read("client_pem_path")
    )


def _channel_options(options: dict[str, Any]) -> list[tuple[str, Any]]:
    out = list(_OPTIONS)
    if options.get("server_name"):
        out.append(("grpc.ssl_target_name_override", options["server_name"]))
    return out


def _rpc_error(exc: grpc.RpcError, request: Any, timeout: float | None, rpc: str = "") -> HeronError:
    """The Heron error for a failed gRPC call; ``rpc`` names the MilvusService method that was called."""
    code = exc.code()
    name = type(request).__name__
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return HeronError(f"{name} did not finish within timeout={timeout}s")
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return AuthenticationError(exc.details() or "authentication failed")
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return PermissionDeniedError(exc.details() or "permission denied")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        what = f"the {rpc} RPC" if rpc else "this call"
        detail = f" ({exc.details()})" if exc.details() else ""
        return HeronError(f"{name}: the server does not implement {what}{detail}", code=1)
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED and _CALL_LIMIT in (exc.details() or ""):
        # gRPC's own concurrency limit (grpcio<=1.67 reaches it before the server's in-flight limit)
        return ServerBusyError(f"server busy: {name} refused by the server's gRPC call limit ({exc.details()}); retry")
    return HeronError(f"{name} failed: {code.name}: {exc.details()}", code=2)


class _SchemaNeeded(Exception):
    """A message needs a collection's schema that the cache does not hold yet."""


class _Base:
    """What both remote transports share: metadata, encoding and the schema cache."""

    def __init__(self, uri: str, token: str, db_name: str, options: dict[str, Any]) -> None:
        self._target, self._secure = _target(uri)
        self._options = dict(options)
        self._db = db_name or "default"
        auth = base64.b64encode(token.encode()).decode() if token else ""
        self._auth = auth
        self._schemas: dict[tuple[str, str], CollectionSchema] = {}
        #: (database, collection) -> the timestamp of this client's last write to it (Session reads wait for it).
        self._writes: dict[tuple[str, str], int] = {}
        self._closed = False
        self._pid = _pid

    def set_token(self, token: str) -> None:
        """Send ``token`` (``user:password``) with the calls from now on (after a password change)."""
        self._auth = base64.b64encode(token.encode()).decode() if token else ""

    def _forked(self, channel: Any) -> bool:
        """Whether this process was forked since ``channel`` was made; if so, the channel is set aside."""
        if self._pid == _pid:
            return False
        self._pid = _pid
        if channel is not None:
            _inherited.append(channel)
        return True

    def _metadata(self, db: str) -> tuple[tuple[str, str], ...]:
        md = [("dbname", db or self._db)]
        if self._auth:
            md.append(("authorization", self._auth))
        return tuple(md)

    def _remember(self, request: Any, result: Any) -> None:
        if isinstance(request, rq.DescribeCollection):
            self._schemas[(request.db_name, request.collection_name)] = CollectionSchema.from_dict(result)
        elif isinstance(request, _DDL):
            self._schemas.clear()

    def _pin(self, request: Any, db: str) -> Any:
        """A read with the guarantee timestamp its consistency level asks for (see `wire.pin_read`)."""
        name = getattr(request, "collection_name", None)
        return request if name is None else wire.pin_read(request, self._writes.get((db, name), 0))

    def _note_write(self, request: Any, db: str, reply: Any) -> None:
        ts = wire.write_timestamp(request, reply)
        if ts:
            self._writes[(db, request.collection_name)] = ts

    @staticmethod
    def _check(reply: Any) -> None:
        err = wire.error_of(wire.reply_status(reply))
        if err is not None:
            raise err

    @staticmethod
    def _deadline(timeout: float | None) -> float | None:
        return None if timeout is None else time.monotonic() + timeout

    @staticmethod
    def _left(deadline: float | None) -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    @staticmethod
    def _retryable(exc: grpc.RpcError, request: Any, attempt: int, deadline: float | None) -> float | None:
        """Seconds to wait before resending, or None to give up."""
        if exc.code() != grpc.StatusCode.UNAVAILABLE or type(request) not in wire.READ_ONLY:
            return None
        if attempt >= _RETRY_TIMES:
            return None
        wait = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2)
        if deadline is not None and time.monotonic() + wait >= deadline:
            return None
        return wait


class RemoteTransport(_Base):
    """Blocking transport over a `grpc` channel."""

    def __init__(self, uri: str, token: str, db_name: str, options: dict[str, Any]) -> None:
        super().__init__(uri, token, db_name, options)
        self._channel = self._connect()

    def _connect(self) -> grpc.Channel:
        opts = _channel_options(self._options)
        return (
            grpc.secure_channel(self._target, _credentials(self._options), opts)
            if self._secure
            else grpc.insecure_channel(self._target, opts)
        )

    def _unary(
        self, rpc: str, msg: Any, db: str, request: Any, deadline: float | None, timeout: float | None
    ) -> Any:
        if self._forked(self._channel):
            self._channel = self._connect()
        call = self._channel.unary_unary(
            _PATH + rpc,
            request_serializer=type(msg).SerializeToString,
            response_deserializer=wire.response_class(rpc).FromString,
        )
        attempt = 0
        while True:
            try:
                reply = call(msg, timeout=self._left(deadline), metadata=self._metadata(db))
                self._check(reply)
                return reply
            except grpc.RpcError as exc:
                wait = self._retryable(exc, request, attempt, deadline)
                if wait is None:
                    raise _rpc_error(exc, request, timeout, rpc) from None
                attempt += 1
                time.sleep(wait)

    def _schema(self, deadline: float | None, db: str) -> Any:
        def schema(name: str) -> CollectionSchema:
            key = (db, name)
            if key not in self._schemas:
                self.handle(rq.DescribeCollection(db, name), self._left(deadline))
            return self._schemas[key]

        return schema

    def handle(self, request: Any, timeout: float | None = None) -> Any:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one")
        with logged(request, self._target):
            return self._handle(request, timeout)

    def _handle(self, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(timeout)
        db = getattr(request, "db_name", "") or self._db
        request = self._pin(request, db)
        reply, rpc = None, ""
        for rpc, msg in wire.client_messages(request, self._schema(deadline, db)):
            try:
                reply = self._unary(rpc, msg, db, request, deadline, timeout)
            except IndexNotFoundError:
                if isinstance(request, rq.ListIndexes):
                    return []
                raise
        self._note_write(request, db, reply)
        result = wire.client_result(request, rpc, reply)
        self._remember(request, result)
        return result

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if not self._forked(self._channel):
                self._channel.close()


#: Searches one event loop keeps in flight to a server before the next ones wait and go together
#: (searches without a timeout only).
REMOTE_SEARCHES_IN_FLIGHT = 4


class AsyncRemoteTransport(_Base):
    """Asyncio transport over a `grpc.aio` channel created lazily per running loop."""

    def __init__(self, uri: str, token: str, db_name: str, options: dict[str, Any]) -> None:
        super().__init__(uri, token, db_name, options)
        self._channel: grpc.aio.Channel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._searches = PerLoopBatchers(
            lambda r: asyncio.ensure_future(self._handle(r, None)), REMOTE_SEARCHES_IN_FLIGHT
        )

    def _chan(self) -> grpc.aio.Channel:
        loop = asyncio.get_running_loop()
        if self._forked(self._channel):
            self._channel = None
        if self._channel is None or self._loop is not loop:
            opts = _channel_options(self._options)
            self._channel = (
                grpc.aio.secure_channel(self._target, _credentials(self._options), opts)
                if self._secure
                else grpc.aio.insecure_channel(self._target, opts)
            )
            self._loop = loop
        return self._channel

    async def _unary(
        self, rpc: str, msg: Any, db: str, request: Any, deadline: float | None, timeout: float | None
    ) -> Any:
        call = self._chan().unary_unary(
            _PATH + rpc,
            request_serializer=type(msg).SerializeToString,
            response_deserializer=wire.response_class(rpc).FromString,
        )
        attempt = 0
        while True:
            try:
                reply = await call(msg, timeout=self._left(deadline), metadata=self._metadata(db))
                self._check(reply)
                return reply
            except grpc.RpcError as exc:
                wait = self._retryable(exc, request, attempt, deadline)
                if wait is None:
                    raise _rpc_error(exc, request, timeout, rpc) from None
                attempt += 1
                await asyncio.sleep(wait)

    async def _messages(self, request: Any, deadline: float | None, db: str) -> list[tuple[str, Any]]:
        """The request's Milvus messages; a schema they need and the cache lacks is described first."""
        def schema(name: str) -> CollectionSchema:
            if (db, name) not in self._schemas:
                raise _SchemaNeeded(name)
            return self._schemas[(db, name)]

        while True:
            try:
                return wire.client_messages(request, schema)
            except _SchemaNeeded as need:
                await self.handle(rq.DescribeCollection(db, need.args[0]), self._left(deadline))

    async def handle(self, request: Any, timeout: float | None = None) -> Any:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one")
        with logged(request, self._target):
            if type(request) is rq.Search and timeout is None and request.ids is None:
                return await self._searches.search(request)
            return await self._handle(request, timeout)

    async def _handle(self, request: Any, timeout: float | None) -> Any:
        deadline = self._deadline(timeout)
        db = getattr(request, "db_name", "") or self._db
        request = self._pin(request, db)
        reply, rpc = None, ""
        for rpc, msg in await self._messages(request, deadline, db):
            try:
                reply = await self._unary(rpc, msg, db, request, deadline, timeout)
            except IndexNotFoundError:
                if isinstance(request, rq.ListIndexes):
                    return []
                raise
        self._note_write(request, db, reply)
        result = wire.client_result(request, rpc, reply)
        self._remember(request, result)
        return result

    async def connect(self) -> None:
        self._chan()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        channel, self._channel = self._channel, None
        if channel is not None and not self._forked(channel):
            try:
                await channel.close()
            except RuntimeError:
                pass


def make_remote_transport(uri: str, token: str, db_name: str, options: dict[str, Any]) -> RemoteTransport:
    """The blocking transport for ``http://``, ``https://`` and ``tcp://`` URIs."""
    return RemoteTransport(uri, token, db_name, options)


def make_async_remote_transport(
    uri: str, token: str, db_name: str, options: dict[str, Any]
) -> AsyncRemoteTransport:
    """The asyncio transport for remote URIs; it binds no event loop until first used."""
    return AsyncRemoteTransport(uri, token, db_name, options)
