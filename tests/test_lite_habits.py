"""Milvus Lite habits: requests Milvus Lite answers and the Milvus server refuses only for its bookkeeping.

Heron answers them as Milvus Lite 3.x does (checked against it by running
this file's probes on a ``milvus-lite server``: see test_milvus_lite_errors.py)
and logs at WARNING, once per collection and habit, what the server would refuse.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

import heron
from tests.conftest import simple_schema


def _two_vectors() -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("w", heron.DataType.FLOAT_VECTOR, dim=4)
    return s


def _rows(n: int = 12) -> list[dict]:
    rng = np.random.default_rng(7)
    return [{"id": i, "v": rng.random(4).tolist(), "w": rng.random(4).tolist()} for i in range(n)]


def _exact_cosine(rows: list[dict], field: str, q: list[float], k: int) -> list[int]:
    m = np.array([r[field] for r in rows], dtype=np.float64)
    qv = np.asarray(q, dtype=np.float64)
    sims = m @ qv / (np.linalg.norm(m, axis=1) * np.linalg.norm(qv))
    return [rows[i]["id"] for i in np.argsort(-sims, kind="stable")[:k]]


def test_a_collection_created_without_index_params_is_loaded_and_answers(client):
    client.create_collection("n", schema=simple_schema())
    assert client.get_load_state("n")["state"] == heron.LoadState.Loaded
    client.insert("n", [{"id": i, "vec": [float(i), 1.0, 0.0, 0.0], "name": f"x{i}", "n": i} for i in range(5)])
    assert [r["id"] for r in client.query("n", filter="n >= 3")] == [3, 4]
    assert client.get("n", ids=[2], output_fields=["name"]) == [{"id": 2, "name": "x2"}]
    hits = client.search("n", data=[[4.0, 1.0, 0.0, 0.0]], limit=2)[0]
    assert [h["id"] for h in hits] == [4, 3]  # an exact COSINE search, as Milvus Lite runs it
    client.create_partition("n", "p")
    assert client.get_load_state("n", partition_name="p")["state"] == heron.LoadState.Loaded


def test_an_unindexed_field_is_searched_exactly(client):
    client.create_collection("n", schema=_two_vectors())
    rows = _rows(40)
    client.insert("n", rows)
    q = [0.2, 0.9, 0.1, 0.4]
    hits = client.search("n", data=[q], anns_field="w", limit=5)[0]
    assert [h["id"] for h in hits] == _exact_cosine(rows, "w", q, 5)


def test_release_then_search_is_refused_as_milvus_does(client):
    client.create_collection("n", schema=simple_schema())
    client.release_collection("n")
    assert client.get_load_state("n")["state"] == heron.LoadState.NotLoad
    for call in (lambda: client.search("n", data=[[1.0] * 4]), lambda: client.query("n", filter="n > 0"),
                 lambda: client.get("n", ids=[1])):
        with pytest.raises(heron.CollectionNotLoadedError) as e:
            call()
        assert e.value.code == 101 and "collection not loaded[collection=n]" in str(e.value)
    client.load_collection("n")  # loading without an index: Milvus Lite accepts it
    assert client.query("n", filter="n > 0") == []


def test_search_without_anns_field_runs_on_the_first_vector_field(client):
    client.create_collection("n", schema=_two_vectors())
    rows = _rows(30)
    client.insert("n", rows)
    q = [0.5, 0.1, 0.8, 0.3]
    implicit = client.search("n", data=[q], limit=6)[0]
    explicit = client.search("n", data=[q], anns_field="v", limit=6)[0]
    assert [h["id"] for h in implicit] == [h["id"] for h in explicit] == _exact_cosine(rows, "v", q, 6)


def test_a_loaded_partition_can_be_dropped(client):
    client.create_collection("n", schema=simple_schema())
    client.create_partition("n", "p")
    client.insert("n", [{"id": 1, "vec": [1.0] * 4, "name": "x", "n": 1}], partition_name="p")
    client.insert("n", [{"id": 2, "vec": [1.0] * 4, "name": "y", "n": 1}])
    client.drop_partition("n", "p")
    assert client.list_partitions("n") == ["_default"]
    assert [r["id"] for r in client.query("n", filter="n == 1")] == [2]
    with pytest.raises(heron.ParamError):
        client.drop_partition("n", "_default")


def _habit_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "heron.engine" and r.levelno == logging.WARNING and "Milvus server" in r.getMessage()]


def test_each_habit_is_logged_once_per_collection(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="heron.engine")
    with heron.Client(str(tmp_path / "db")) as c:
        c.create_collection("a", schema=_two_vectors())
        c.create_collection("b", schema=_two_vectors())
        c.insert("a", _rows())
        for _ in range(3):
            c.search("a", data=[[1.0, 0.0, 0.0, 0.0]], limit=2)
            c.query("a", filter="id > 3")
        warned = _habit_warnings(caplog)
        assert len(warned) == 2, warned
        assert any("'a'" in m and "no index on vector field(s) ['v', 'w']" in m for m in warned)
        assert any("'a'" in m and "without anns_field" in m and "'v'" in m for m in warned)
        c.query("b", filter="id > 3")
        assert len(_habit_warnings(caplog)) == 3  # once per collection: 'b' gets its own
        c.create_partition("a", "p")
        c.drop_partition("a", "p")
        c.create_partition("a", "q")
        c.drop_partition("a", "q")
        dropped = [m for m in _habit_warnings(caplog) if "loaded" in m and "partition" in m]
        assert len(dropped) == 1 and "'p'" in dropped[0]


def test_a_fully_indexed_collection_logs_nothing(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="heron.engine")
    with heron.Client(str(tmp_path / "db")) as c:
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="FLAT", metric_type="L2")
        c.create_collection("c", schema=simple_schema(), index_params=idx)
        c.insert("c", [{"id": 1, "vec": [1.0] * 4, "name": "x", "n": 1}])
        c.search("c", data=[[1.0] * 4], limit=1)
        c.query("c", filter="n == 1")
        c.release_collection("c")
        c.load_collection("c")
    assert _habit_warnings(caplog) == []
