"""The systems the differential harness compares, each started once per test session.

- ``lite``: a ``milvus-lite server`` process, driven by pymilvus's clients.
- ``heron_served``: a ``heron serve`` process, driven by the same pymilvus clients.
- ``heron_embedded``: ``heron.Client`` / ``heron.AsyncClient`` on a local path, given the same programs.

All are real processes or engines on loopback ports and temporary directories,
stopped and removed at the end of the session.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import heron
from tests.compat._harness import System
from tests.conftest import launch_server, require_module


@pytest.fixture(scope="session")
def compat_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="heron-compat-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _quiet_pymilvus() -> None:
    # pymilvus logs every refused call with a traceback at ERROR; the harness reads the exceptions instead.
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)


def _system(label: str, make_sync: Callable[[], Any], make_async: Callable[[], Any]) -> System:
    loop = asyncio.new_event_loop()

    async def made() -> Any:  # an async client binds its channel to the loop it is made in
        return make_async()

    return System(label, make_sync(), loop.run_until_complete(made()), loop)


def _close(system: System) -> None:
    system.sync_client.close()
    system.loop.run_until_complete(system.async_client.close())
    system.loop.close()


@pytest.fixture(scope="session")
def lite(compat_dir: str) -> Iterator[System]:
    """Milvus Lite, the oracle, through pymilvus's MilvusClient and AsyncMilvusClient."""
    require_module("milvus_lite")
    pymilvus = require_module("pymilvus")
    from tests.server.test_milvus_lite_interop import start_milvus_lite

    server = start_milvus_lite(f"{compat_dir}/lite")
    try:
        system = _system(
            "milvus-lite",
            lambda: pymilvus.MilvusClient(server.uri),
            lambda: pymilvus.AsyncMilvusClient(server.uri),
        )
        yield system
        _close(system)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def heron_served(compat_dir: str) -> Iterator[System]:
    """``heron serve`` through pymilvus's MilvusClient and AsyncMilvusClient."""
    pymilvus = require_module("pymilvus")
    server = launch_server(f"{compat_dir}/heron")
    try:
        system = _system(
            "heron serve",
            lambda: pymilvus.MilvusClient(server.uri),
            lambda: pymilvus.AsyncMilvusClient(server.uri),
        )
        yield system
        _close(system)
        assert server.proc.poll() is None, f"heron serve died during the run:\n{server.output()[-3000:]}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def heron_embedded(compat_dir: str) -> Iterator[System]:
    """``heron.Client`` and ``heron.AsyncClient`` on a local path, given the pymilvus programs."""
    path = f"{compat_dir}/embedded"
    system = _system("heron embedded", lambda: heron.Client(path), lambda: heron.AsyncClient(path))
    yield system
    _close(system)
