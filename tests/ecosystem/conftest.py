"""Fixtures for the ecosystem tests: libraries built on pymilvus, run unchanged against ``heron serve``.

Each library pins a pymilvus major version: langchain-milvus 0.4 needs
pymilvus 3, llama-index's Milvus store needs pymilvus 2.6 (``<3``). They
cannot share one environment, so each test module is collected only where
the installed pymilvus is one its library accepts; `scripts/check` runs the
langchain tests (pymilvus 3) and `scripts/check-pymilvus` the llama-index
tests in an environment with pymilvus 2.6. Where a module is collected, its
library must import (``require_module``: under CI a missing one fails).
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import metadata

import pytest

from tests.conftest import Server, launch_server

PYMILVUS_MAJOR = int(metadata.version("pymilvus").split(".")[0])

collect_ignore = ["test_llama_index.py"] if PYMILVUS_MAJOR >= 3 else ["test_langchain_milvus.py"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One ``heron serve`` for a test module; each test uses collections of its own names."""
    srv = launch_server(str(tmp_path_factory.mktemp("ecosystem") / "data"))
    yield srv
    srv.stop()
