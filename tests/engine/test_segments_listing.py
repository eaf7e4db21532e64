"""flush_all, get_flush_all_state and the segment listings, through both clients and both transports."""

from __future__ import annotations

from typing import Any

import pytest

import heron
from tests.conftest import make_collection


@pytest.mark.heron_env(HERON_SEAL_ROWS="40")
def test_segments_are_listed_with_their_state_and_flush_all_persists_them(client: Any) -> None:
    make_collection(client, rows=10)
    make_collection(client, name="d", rows=3)
    loaded = client.list_loaded_segments("c")
    assert [(s.state, s.num_rows, s.collection_name) for s in loaded] == [("Growing", 10, "c")]
    assert loaded[0].mem_size > 0 and loaded[0].segment_id > 0
    assert client.list_persistent_segments("c") == []
    assert client.get_flush_all_state() is False

    client.flush_all()
    assert client.get_flush_all_state() is True
    persistent = client.list_persistent_segments("c")
    assert [(s.state, s.num_rows, s.level) for s in persistent] == [("Flushed", 10, "L1")]
    assert [s.state for s in client.list_persistent_segments("d")] == ["Flushed"]
    assert persistent[0].collection_id == client.describe_collection("c")["collection_id"]

    client.insert("c", [{"id": 100, "vec": [1.0] * 4, "name": "x", "n": 1}])
    client.delete("c", ids=[0, 1])
    states = sorted((s.state, s.num_rows) for s in client.list_segments("c"))
    assert states == [("Flushed", 8), ("Growing", 1)]
    assert [s.num_rows for s in client.list_segments("c", states=["Growing"])] == [1]
    assert client.get_flush_all_state() is False


@pytest.mark.heron_env(HERON_SEAL_ROWS="40")
def test_optimize_seals_and_compacts_and_reports_its_stages(client: Any) -> None:
    make_collection(client, rows=30)
    client.delete("c", ids=list(range(10)))
    result = client.optimize("c", target_size="512MB")
    assert (result.status, result.collection_name, result.target_size) == ("success", "c", "512MB")
    assert result.progress[0] == "initializing" and result.progress[-1] == "refreshing load"
    assert [(s.state, s.num_rows) for s in client.list_segments("c")] == [("Flushed", 20)]
    task = client.optimize("c", wait=False)
    assert task.done() and task.result().status == "success" and not task.cancel()
    with pytest.raises(heron.ParamError, match="target_size"):
        client.optimize("c", target_size="12 parsecs")
    with pytest.raises(heron.ParamError, match="too small"):
        client.optimize("c", target_size="10KB")
    with pytest.raises(heron.CollectionNotFoundError):
        client.optimize("nope")


def test_compaction_plans_and_tasks_answer_completed(client: Any) -> None:
    make_collection(client, rows=5)
    job = client.compact("c")
    plans = client.get_compaction_plans(job)
    assert (plans.compaction_id, plans.state, plans.plans) == (job, "Completed", [])
    assert client.list_compaction_tasks("c").collection_name == "c"
    with pytest.raises(heron.CollectionNotFoundError):
        client.list_compaction_tasks("nope")


def test_flush_all_state_at_a_flush_ignores_rows_written_after_it(tmp_path: Any) -> None:
    from heron import _requests as rq
    from heron.engine._engine import Engine

    with heron.Client(str(tmp_path / "db")) as c:
        make_collection(c, rows=5)
        engine = c._transport._engine
        ts = engine.execute(rq.FlushAll())
        c.insert("c", [{"id": 50, "vec": [1.0] * 4, "name": "x", "n": 1}])
        assert engine.execute(rq.GetFlushAllState("", ts)) is True
        assert engine.execute(rq.GetFlushAllState("")) is False
        assert c.get_flush_all_state(flush_all_ts=ts) is True
        assert isinstance(engine, Engine)
