"""The HTTP port beside the gRPC one (``heron serve --http-port N``).

An ASGI app (starlette) served by uvicorn in the server's own event loop:
``/healthz`` answers 200 while the process runs, ``/readyz`` 200 once the
data directory is open and recovered (503 before, and again while shutting
down), ``/metrics`` the Prometheus text of `heron.server._metrics`, and
``/v2/vectordb/...`` the Milvus RESTful API v2 (`heron.server._rest`), and
with ``--console`` the web console at ``/`` (`heron.server._console`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import HeronError

if TYPE_CHECKING:
    from ..engine._engine import Engine
    from ._metrics import Metrics
    from ._service import MilvusService

INSTALL = "pip install 'heron[http]'"


def require_http() -> None:
    """Raise `HeronError` naming the install command when starlette, uvicorn or prometheus-client is missing."""
    for module in ("starlette", "uvicorn", "prometheus_client"):
        try:
            __import__(module)
        except ImportError:
            raise HeronError(f"--http-port needs the package {module!r}: {INSTALL}") from None


@dataclass
class HttpState:
    """What the HTTP app answers from: set as the server opens its engine, cleared as it shuts down."""

    metrics: Metrics
    engine: Engine | None = None
    service: MilvusService | None = None
    ready: bool = False
    #: Serve the web console at ``/``.
    console: bool = False


def make_app(state: HttpState) -> Any:
    """The starlette app of the HTTP port."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    from ._metrics import CONTENT_TYPE
    from ._rest import endpoint_route
    from ._rest_endpoints import ENDPOINTS

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if state.ready and state.service is not None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    async def metrics(request: Request) -> Response:
        body = await asyncio.to_thread(state.metrics.exposition)  # it reads the engine: off the event loop
        return PlainTextResponse(body.decode(), media_type=CONTENT_TYPE)

    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
        *(Route(path, endpoint_route(state, path, fn), methods=["POST"]) for path, fn in ENDPOINTS.items()),
    ]
    if state.console:
        from ._console import Console

        routes.extend(Console(state).routes())
    return Starlette(routes=routes)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise HeronError(f"--http-port {port}: cannot listen on {host}:{port} ({exc.strerror}); pick another port") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def make_server(app: Any) -> Any:
    """A uvicorn server for ``app`` that leaves SIGTERM and SIGINT to `heron.server.serve`."""
    import uvicorn

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn before 0.29
            pass

    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    return _Server(config)
