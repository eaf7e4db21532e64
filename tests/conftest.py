"""Shared fixtures and helpers.

- ``require`` / ``require_module``: the one way a test skips for a missing
  prerequisite; under CI (``CI=true``) they fail instead, and any other skip
  is reported as a failure too, so CI never passes with a gap in it.
- ``launch_server`` / ``start_server``: ``heron serve`` as a real process on a
  free loopback port.
- ``client``: every client test four ways, {sync, async} x {embedded, server},
  each on data no other test sees. A test that only an in-process engine can
  answer (it reaches into the engine) builds its own embedded client instead.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from pymilvus.grpc_gen import milvus_pb2

import heron

ROOT = Path(__file__).resolve().parents[1]
#: ``shared/`` lies beside the checkout: /work/shared next to /work/<checkout>, and so in CI.
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI") == "true"
HERON_SRC = str(Path(heron.__file__).resolve().parents[1])


# -- prerequisites ---------------------------------------------------------------------------


def require(condition: object, reason: str) -> None:
    """Go on when ``condition`` holds; otherwise skip the test, or under CI fail it naming ``reason``."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str) -> ModuleType:
    """The module ``name``, imported; if it cannot be imported, ``require`` decides (skip, or fail in CI)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = exc
    require(False, f"{name} cannot be imported: {error}")
    raise error  # not reached: require skipped or failed


def shared_path(*parts: str) -> Path:
    """A path under ``shared/``; the test skips (fails in CI) when it is not there."""
    path = SHARED.joinpath(*parts)
    require(path.exists(), f"{path} is not there (shared/ belongs beside the checkout)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI a skip from anywhere (a ``skipif``, an ``importorskip``) is a failure: nothing may hide."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        where = report.longrepr
        if isinstance(where, tuple):  # (file, line, "Skipped: reason")
            where = f"{where[2]} ({where[0]}:{where[1]})"
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every test must run: {where}"


# -- heron serve as a process ---------------------------------------------------------------


@dataclass
class Server:
    """A running ``heron serve``; its output goes to files beside its data (a pipe nobody reads could fill)."""

    proc: subprocess.Popen[bytes]
    port: int
    data: str
    log: Path
    scheme: str = "http"

    @property
    def uri(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> int:
    """The port the server printed once it listens; fails if the process exits first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        m = re.search(r"on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise RuntimeError(f"heron serve exited with {proc.returncode}: {log.read_text()[-3000:]}")
        time.sleep(0.05)
    raise RuntimeError(f"heron serve did not start within {timeout}s: {log.read_text()[-3000:]}")


def _wait_healthy(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(
            "/milvus.proto.milvus.MilvusService/CheckHealth",
            request_serializer=milvus_pb2.CheckHealthRequest.SerializeToString,
            response_deserializer=milvus_pb2.CheckHealthResponse.FromString,
        )
        while time.monotonic() < end:
            try:
                if call(milvus_pb2.CheckHealthRequest(), timeout=5).isHealthy:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise RuntimeError("heron serve is not healthy")


def launch_server(data: str, *args: str, env: dict[str, str] | None = None) -> Server:
    """Start ``heron serve --data DATA --port 0 ARGS`` and wait until it answers."""
    log = Path(data).parent / f"{Path(data).name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "heron", "serve", "--data", data, "--port", "0", *args]
    # The server runs the same heron sources as the tests, wherever they were imported from.
    path = os.pathsep.join(p for p in (HERON_SRC, os.environ.get("PYTHONPATH", "")) if p)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": path, **(env or {})},
        )
    try:
        port = _wait_ready(proc, log)
        secure = "--tls-cert" in args
        if not secure:
            _wait_healthy(port)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return Server(proc, port, data, log, "https" if secure else "http")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``heron serve`` with extra arguments; every server started is stopped at teardown."""
    started: list[Server] = []

    def start(*args: str, data: str | None = None, env: dict[str, str] | None = None) -> Server:
        server = launch_server(data or str(tmp_path / f"data{len(started)}"), *args, env=env)
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


class _SharedServers:
    """Servers kept for the whole session, one per environment, started when first asked for."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="heron-test-servers-")
        self._servers: dict[tuple[tuple[str, str], ...], Server] = {}

    def get(self, env: dict[str, str]) -> Server:
        key = tuple(sorted(env.items()))
        server = self._servers.get(key)
        if server is None or server.proc.poll() is not None:
            data = os.path.join(self._dir, f"data{len(self._servers)}")
            server = self._servers[key] = launch_server(data, env=env)
        return server

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_servers() -> Iterator[_SharedServers]:
    servers = _SharedServers()
    yield servers
    servers.close()


# -- the client fixture ----------------------------------------------------------------------


class AsyncAsSync:
    """Drive an `AsyncClient` from a test as if it were blocking, on its own event loop."""

    def __init__(self, make: Callable[[], heron.AsyncClient]) -> None:
        self._loop = asyncio.new_event_loop()
        # A remote client binds its channel to the running loop, so it is made inside this one.
        self._client = self._loop.run_until_complete(_made(make))

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


async def _made(make: Callable[[], heron.AsyncClient]) -> heron.AsyncClient:
    return make()


class _SyncIterator:
    def __init__(self, it: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._it, self._loop = it, loop

    def next(self) -> Any:
        return self._loop.run_until_complete(self._it.next())

    def close(self) -> None:
        self._it.close()


def heron_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The engine environment a test asks for with ``@pytest.mark.heron_env(NAME="value", ...)``."""
    env: dict[str, str] = {}
    for mark in reversed(list(request.node.iter_markers("heron_env"))):
        env.update({k: str(v) for k, v in mark.kwargs.items()})
    return env


def _wipe(server: Server) -> None:
    """Leave the server as a fresh one: the default database only, and nothing in it."""
    with heron.Client(server.uri, timeout=60) as admin:
        for db in admin.list_databases():
            admin.use_database(db)
            for alias in admin.list_aliases()["aliases"]:
                admin.drop_alias(alias)
            for name in admin.list_collections():
                admin.drop_collection(name)
            if db != "default":
                admin.use_database("default")
                admin.drop_database(db)


def _open_client(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str, where: str
) -> Iterator[Any]:
    variant = f"{style}-{where}"
    for mark in request.node.iter_markers("client_xfail"):
        if variant in mark.args:
            request.applymarker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))
    env = heron_env(request)
    server: Server | None = None
    if where == "embedded":
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        uri = str(tmp_path / "db")
    else:
        server = request.getfixturevalue("shared_servers").get(env)
        _wipe(server)
        uri = server.uri
    c: Any = heron.Client(uri) if style == "sync" else AsyncAsSync(lambda: heron.AsyncClient(uri))
    try:
        yield c
    finally:
        c.close()
        if server is not None:
            assert server.proc.poll() is None, f"heron serve died during the test:\n{server.output()[-3000:]}"


@pytest.fixture(params=["sync-embedded", "async-embedded", "sync-server", "async-server"])
def client(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client on data of its own: embedded on a fresh directory, or on a wiped shared ``heron serve``.

    The async one is driven through `AsyncAsSync`. ``@pytest.mark.heron_env(...)`` sets engine
    environment variables: for the embedded engine before it opens, for the server by serving
    the test from a server started with them. ``@pytest.mark.client_xfail("async-server", reason=...)``
    marks a known difference between embedded and served Heron as a strict expected failure.
    """
    style, where = request.param.split("-")
    yield from _open_client(request, tmp_path, monkeypatch, style, where)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "heron_env(**variables): engine environment variables for `client`")
    config.addinivalue_line(
        "markers",
        "client_xfail(*variants, reason): a known difference between embedded and served Heron; "
        "the `client` variants named (e.g. 'async-server') must fail",
    )


# -- data helpers ----------------------------------------------------------------------------


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
