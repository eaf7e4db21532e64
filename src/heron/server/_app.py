"""The server's lifecycle: open the engine, serve gRPC, shut down cleanly.

On SIGTERM or SIGINT the server stops accepting calls, lets the calls in
flight finish (up to ``grace`` seconds), flushes every collection, and
closes the engine, so the data directory reopens with every acknowledged
write. Engine work runs in a thread pool; the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
from dataclasses import dataclass
from typing import Any

import grpc

from .. import _requests as rq
from .._workers import Workers
from ..engine._engine import Engine, open_engine, release_engine
from ..engine.functions._embedding import refuse_callable_provider
from . import _serving
from ._auth import AuthStore
from ._service import MilvusService

log = logging.getLogger("heron.server")

MAX_MESSAGE_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """What `heron serve` was asked for: data directory, address, auth and TLS files, limits.

    ``max_inflight`` bounds the calls in flight (more get `ServerBusyError`),
    ``workers`` sizes the engine's thread pool (0: twice the cores plus four,
    at most 32), ``grace`` is how long shutdown waits for calls in flight and
    calls that take ``slow_ms`` or longer are logged at WARNING.
    """

    data: str
    host: str = "127.0.0.1"
    port: int = 19530
    auth: bool = False
    root_password: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    max_inflight: int = 256
    workers: int = 0
    max_message_bytes: int = MAX_MESSAGE_BYTES
    grace: float = 30.0
    slow_ms: float = 1000.0
    #: Port of the HTTP endpoints (health, metrics, REST); None: no HTTP port.
    http_port: int | None = None
    #: Serve the web console at ``/`` of the HTTP port.
    console: bool = False


async def serve(cfg: ServerConfig, ready: asyncio.Event | None = None) -> None:
    """Run the server until SIGTERM/SIGINT, then shut down as the module docstring promises."""
    if cfg.auth and not cfg.root_password:
        raise SystemExit("--auth needs the root password: pass --root-password or set HERON_ROOT_PASSWORD")
    refuse_callable_provider("a server cannot call its clients' Python functions; use provider 'local' or "
                             "'openai', or an embedded client with heron.register_embedding_function")
    http = await _start_http(cfg) if cfg.http_port is not None else None
    engine = open_engine(cfg.data) if http is None else await asyncio.to_thread(open_engine, cfg.data)
    auth = (
        await asyncio.to_thread(AuthStore, os.path.join(engine.dir.path, "auth.db"), cfg.root_password)
        if cfg.auth
        else None
    )
    pool = Workers(cfg.workers or min(32, (os.cpu_count() or 1) * 2 + 4), "heron-rpc")
    service = MilvusService(
        engine, pool, auth=auth, max_inflight=cfg.max_inflight, slow_ms=cfg.slow_ms,
        metrics=http[0].metrics if http else None
    )
    if http is not None:
        http[0].engine, http[0].service, http[0].ready = engine, service, True
    options = [
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(options=options, maximum_concurrent_rpcs=cfg.max_inflight * 4)
    server.add_generic_rpc_handlers((service.generic_handler(),))
    health: Any = _add_health(server)
    try:
        bound = _listen(server, cfg)
    except BaseException:
        await asyncio.to_thread(release_engine, engine)
        raise
    await server.start()
    _serving.write(engine.dir.path, cfg.host, bound, bool(cfg.tls_cert))
    log.info(
        "heron serving %s on %s:%d%s", engine.dir.path, cfg.host, bound, " (TLS)" if cfg.tls_cert else ""
    )
    print(f"heron: serving {engine.dir.path} on {cfg.host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("shutting down: finishing calls in flight")
    if http is not None:
        http[0].ready = False
    if health is not None:
        await health.enter_graceful_shutdown()
    await server.stop(cfg.grace)
    await service.drain()
    await asyncio.to_thread(pool.shutdown, wait=True)
    service.auth_pool.shutdown()
    _serving.remove(engine.dir.path)
    await asyncio.to_thread(_close, engine)
    if auth is not None:
        print(
            f"heron: auth: {auth.password_checks} password checks "
            f"({auth.password_checks_on_loop} on the event loop), "
            f"{service.failed_logins.refused} logins refused without a check",
            flush=True,
        )
        auth.close()
    if http is not None:
        http[1].should_exit = True
        await http[2]
    print("heron: stopped", flush=True)


def _listen(server: grpc.aio.Server, cfg: ServerConfig) -> int:
    """Bind the gRPC port; an `OSError` naming the address and the fix when it cannot be bound."""
    address = f"{cfg.host}:{cfg.port}"
    busy = OSError(
        errno.EADDRINUSE,
        f"cannot listen on {address}: the port is in use (or the address is not this machine's); "
        "stop what uses it or pick another with --port (0 picks a free one)",
    )
    if cfg.port and _in_use(cfg.host, cfg.port):  # asked first: grpc's own failure also logs a line of its own
        raise busy
    try:
        if cfg.tls_cert:
            with open(cfg.tls_cert, "rb") as c, open(cfg.tls_key, "rb") as k:
                creds = grpc.ssl_server_credentials([(k.read(), c.read())])
            return int(server.add_secure_port(address, creds))
        return int(server.add_insecure_port(address))
    except RuntimeError:  # grpc says only "Failed to bind"
        raise busy from None


def _in_use(host: str, port: int) -> bool:
    """Whether binding ``host:port`` fails with "address in use" (as grpc binds it: with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


async def _start_http(cfg: ServerConfig) -> tuple[Any, Any, asyncio.Future[None]]:
    """Start the HTTP port (not ready until the engine is open): its state, server and serving task."""
    from ._http import HttpState, bind, make_app, make_server, require_http
    from ._metrics import Metrics

    require_http()
    sock = bind(cfg.host, cfg.http_port or 0)

    def inflight() -> int:
        return state.service.inflight if state.service is not None else 0

    state = HttpState(Metrics(lambda: state.engine, inflight), console=cfg.console)
    server = make_server(make_app(state))
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    log.info("heron http (health, metrics, REST%s) at http://%s:%d", ", console" if cfg.console else "", cfg.host, port)
    print(f"heron: http at http://{cfg.host}:{port}", flush=True)
    if cfg.console:
        print(f"heron: console at http://{cfg.host}:{port}/", flush=True)
    return state, server, task


def _add_health(server: grpc.aio.Server) -> object | None:
    try:
        from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    except ImportError:
        return None
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", "milvus.proto.milvus.MilvusService"):
        asyncio.ensure_future(servicer.set(name, health_pb2.HealthCheckResponse.SERVING))
    return servicer


def _close(engine: Engine) -> None:
    """Flush every collection, then close the engine (the log already holds every acknowledged write).

    Index builds in progress stop (the server is the engine's only owner): the next open builds them.
    """
    engine.closing = True
    for db, name in list(engine.collections):
        try:
            engine.execute(rq.Flush(db, name))
        except Exception:
            log.exception("flush of %s.%s failed at shutdown; its log will be replayed on restart", db, name)
    engine.wait_background()
    release_engine(engine)
