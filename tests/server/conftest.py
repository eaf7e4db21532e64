"""Fixtures for the server tests: one ``heron serve`` per test, and the seed tutorial scenario."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED, Server, require

SCENARIO = str(SHARED / "scenarios" / "seed_tutorial_async.py")

__all__ = ["ROOT", "SCENARIO", "run_scenario"]


@pytest.fixture
def server(start_server) -> Server:
    return start_server()


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
