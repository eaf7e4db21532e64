"""``describe_index`` while indexes build: InProgress with the pending rows until they are indexed, then Finished.

Embedded, a build is held back (or made to fail) at will, so each state is
seen for certain; through ``heron serve`` the wire carries the same states
to pymilvus and to Heron's remote client.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

import heron
from heron.engine import _maintenance
from tests.conftest import Server, require_module

SEAL = 500


def _collection(c: Any, rows: int, name: str = "ix", batch: int = 250) -> None:
    c.create_collection(name, dimension=4, metric_type="L2", index_type="HNSW")
    vecs = np.random.default_rng(0).random((rows, 4)).astype(np.float32)
    for start in range(0, rows, batch):  # a segment is sealed once an insert fills it to the seal size
        c.insert(name, [{"id": i, "vector": vecs[i].tolist()} for i in range(start, min(rows, start + batch))])


def _index_name(c: Any, name: str = "ix") -> str:
    return c.list_indexes(name)[0]


@pytest.fixture
def held_builds(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Vector index builds wait until the returned event is set."""
    release = threading.Event()
    build = _maintenance.build_index

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(60)
        return build(*args, **kwargs)

    monkeypatch.setattr(_maintenance, "build_index", held)
    monkeypatch.setenv("HERON_SEAL_ROWS", str(SEAL))
    return release


def _until(check: Any, timeout: float = 60) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.05)


def test_describe_index_is_in_progress_until_sealed_rows_are_indexed(tmp_path: Any, held_builds: threading.Event) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c, SEAL * 2 + 120)  # two sealed segments waiting for their index, 120 growing rows
        d = c.describe_index("ix", _index_name(c))
        assert d["state"] == "InProgress"
        assert (d["total_rows"], d["indexed_rows"], d["pending_index_rows"]) == (SEAL * 2 + 120, 120, SEAL * 2)
        held_builds.set()
        d = _until(lambda: (x := c.describe_index("ix", _index_name(c)))["state"] == "Finished" and x)
        assert d and (d["indexed_rows"], d["pending_index_rows"]) == (SEAL * 2 + 120, 0)


def test_describe_index_reports_a_failed_build(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(_maintenance, "build_index", broken)
    monkeypatch.setenv("HERON_SEAL_ROWS", str(SEAL))
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c, SEAL + 10)
        d = _until(lambda: (x := c.describe_index("ix", _index_name(c)))["state"] == "Failed" and x)
        assert d, c.describe_index("ix", _index_name(c))
        assert "no room for the graph" in d["index_state_fail_reason"]
        assert d["pending_index_rows"] == SEAL
        assert len(c.search("ix", [[0.0, 0.0, 0.0, 0.0]], limit=3)[0]) == 3  # searched exactly meanwhile


def test_index_states_cross_the_wire() -> None:
    from heron.wire._schema import index_description_from_pb, index_description_to_pb

    base = {"index_type": "HNSW", "metric_type": "L2", "field_name": "v", "index_name": "v", "M": 8}
    for state, extra in [("Finished", {}), ("InProgress", {}), ("Failed", {"index_state_fail_reason": "boom"})]:
        d = {**base, "total_rows": 10, "indexed_rows": 4, "pending_index_rows": 6, "state": state, **extra}
        assert index_description_from_pb(index_description_to_pb(d)) == d


def test_describe_index_through_heron_serve_is_consistent_while_building(start_server: Any) -> None:
    """Every answer while an index builds adds up, and the build ends Finished, for pymilvus and Heron's client."""
    pymilvus = require_module("pymilvus")
    server: Server = start_server(env={"HERON_SEAL_ROWS": "5000"})
    c = pymilvus.MilvusClient(server.uri)
    _collection(c, 22_000, batch=5000)  # four segments sealed and indexed in the background, 2,000 rows growing
    seen = []
    with heron.Client(server.uri) as h:
        for _ in range(600):
            mine = c.describe_index("ix", _index_name(c))
            theirs = h.describe_index("ix", _index_name(h))
            seen.append(mine["state"])
            for d in (mine, theirs):
                assert d["total_rows"] == 22_000
                assert d["indexed_rows"] + d["pending_index_rows"] == 22_000
                assert (d["state"] == "InProgress") == (d["pending_index_rows"] > 0), d
            if mine["state"] == "Finished" and theirs["state"] == "Finished":
                break
            time.sleep(0.1)
    assert seen[-1] == "Finished", seen
    assert c._get_connection().get_index_state("ix", _index_name(c)) == (pymilvus.client.types.IndexState.Finished, "")
