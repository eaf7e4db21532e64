"""Fixtures for the server tests: ``heron serve`` per test or per module, and the seed tutorial scenario."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT, SHARED, Server, _wipe, launch_server, require

SCENARIO = str(SHARED / "scenarios" / "seed_tutorial_async.py")

__all__ = ["ROOT", "SCENARIO", "run_scenario"]


@pytest.fixture
def server(start_server) -> Server:
    return start_server()


@pytest.fixture(scope="module")
def _module_server() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


@pytest.fixture
def wiped_server(_module_server: list[Server], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``heron serve`` for the module, wiped before each test: the default database only, and nothing in it.

    For modules whose tests need only a running server and leave nothing but databases, collections and
    aliases behind: such a module overrides ``server`` with this one. A server that died is replaced.
    """
    if not _module_server or _module_server[-1].proc.poll() is not None:
        data = tmp_path_factory.mktemp("module-server") / "data"
        _module_server.append(launch_server(str(data)))
    server = _module_server[-1]
    _wipe(server)
    yield server
    assert server.proc.poll() is None, f"heron serve died during the test:\n{server.output()[-3000:]}"


def run_scenario(uri: str, client: str, *extra: str, timeout: float = 150) -> subprocess.CompletedProcess:
    """Run the seed tutorial scenario against ``uri``; the test skips (fails in CI) without shared/."""
    require(SHARED.joinpath("scenarios", "seed_tutorial_async.py").exists(), f"{SCENARIO} is not there")
    return subprocess.run(
        [sys.executable, SCENARIO, uri, "--client", client, *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
