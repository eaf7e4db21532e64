"""The ``against_milvus`` tests run only when asked for (``-m against_milvus``): they start a Milvus server."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "against_milvus" in (config.getoption("markexpr", "") or ""):
        return
    chosen = [i for i in items if i.get_closest_marker("against_milvus") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in chosen])
        items[:] = chosen
