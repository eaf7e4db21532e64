"""Fixtures that run `heron serve` as a real process on a loopback port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import pytest
from pymilvus.grpc_gen import milvus_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIO = "/work/shared/scenarios/seed_tutorial_async.py"


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    data: str
    scheme: str = "http"

    @property
    def uri(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def _wait_ready(proc: subprocess.Popen, timeout: float = 30) -> int:
    """The port the server printed once it listens; fails if the process exits first."""
    end = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"heron serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                )
            continue
        m = re.search(r"on 127\.0\.0\.1:(\d+)", line)
        if m:
            return int(m.group(1))
    raise RuntimeError("heron serve did not start in time")


def _wait_healthy(port: int, secure: bool, timeout: float = 15) -> None:
    if secure:
        return
    end = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(
            "/milvus.proto.milvus.MilvusService/CheckHealth",
            request_serializer=milvus_pb2.CheckHealthRequest.SerializeToString,
            response_deserializer=milvus_pb2.CheckHealthResponse.FromString,
        )
        while time.monotonic() < end:
            try:
                if call(milvus_pb2.CheckHealthRequest(), timeout=2).isHealthy:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise RuntimeError("heron serve is not healthy")


@pytest.fixture
def start_server(tmp_path) -> Iterator[Callable[..., Server]]:
    """Start ``heron serve`` with extra arguments; every server started is stopped at teardown."""
    started: list[Server] = []

    def start(*args: str, data: str | None = None, env: dict[str, str] | None = None) -> Server:
        data = data or str(tmp_path / f"data{len(started)}")
        cmd = [sys.executable, "-m", "heron", "serve", "--data", data, "--port", "0", *args]
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        try:
            port = _wait_ready(proc)
            secure = "--tls-cert" in args
            _wait_healthy(port, secure)
        except Exception:
            proc.kill()
            proc.wait(10)
            raise
        server = Server(proc, port, data, "https" if secure else "http")
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()
        for stream in (s.proc.stdout, s.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def server(start_server) -> Server:
    return start_server()


def run_scenario(uri: str, client: str, *extra: str, timeout: float = 150) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCENARIO, uri, "--client", client, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
