"""Snapshots: a collection's rows at one moment, kept while it changes, restored as a new collection.

Through both clients and both transports; reopening keeps them, merges do
not take their files, and ``heron verify`` does not count them as strays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import heron
from heron import wire
from tests.conftest import make_collection


def refused_for_old_pymilvus(client: Any, rpc: str, call: Any) -> bool:
    """Whether ``client`` is remote and the installed pymilvus protocol modules lack ``rpc``.

    Then ``call()`` must be refused naming the RPC (what a remote client does
    with older modules), and the caller stops there.
    """
    if not str(client._uri).startswith("http") or wire.has_rpc(rpc):
        return False
    with pytest.raises(heron.ParamError, match=rpc):
        call()
    return True


def _count(client: Any, name: str, expr: str = "") -> int:
    return int(client.query(name, filter=expr, output_fields=["count(*)"])[0]["count(*)"])


def test_a_restored_snapshot_has_the_rows_of_its_moment(client: Any) -> None:
    make_collection(client, rows=30)
    if refused_for_old_pymilvus(client, "CreateSnapshot", lambda: client.create_snapshot("s1", "c")):
        return
    client.create_partition("c", "p1")
    client.insert("c", [{"id": 100 + i, "vec": [1.0] * 4, "name": "p", "n": 7} for i in range(5)], partition_name="p1")
    client.flush("c")
    client.delete("c", ids=[0, 1, 2])
    client.create_snapshot("s1", "c", description="before the cleanup")
    client.delete("c", filter="id < 20")
    client.insert("c", [{"id": 200, "vec": [2.0] * 4, "name": "late", "n": 1}])
    assert client.list_snapshots("c") == ["s1"]
    info = client.describe_snapshot("s1", "c")
    assert (info.name, info.description, info.collection_name) == ("s1", "before the cleanup", "c")
    assert sorted(info.partition_names) == ["_default", "p1"] and info.create_ts > 0

    job = client.restore_snapshot("s1", "c", "r")
    state = client.get_restore_snapshot_state(job)
    assert (state.state, state.progress, state.collection_name) == ("RestoreSnapshotCompleted", 100, "r")
    assert [j.job_id for j in client.list_restore_snapshot_jobs("r")] == [job]
    assert _count(client, "r") == 32 and _count(client, "c") == 16
    assert sorted(r["id"] for r in client.query("r", filter="id < 5", output_fields=["id"])) == [3, 4]
    assert client.query("r", filter="id == 200") == []
    assert _count(client, "r", "n == 7") == 5
    assert client.list_partitions("r") == ["_default", "p1"]
    assert client.query("r", ids=[101], output_fields=["name"], partition_names=["p1"])[0]["name"] == "p"
    assert client.list_indexes("r") == client.list_indexes("c")
    assert client.describe_collection("r")["fields"] == client.describe_collection("c")["fields"]
    hits = client.search("r", [[3.0] * 4], limit=1)
    assert hits[0][0]["id"] == 3


def test_snapshot_errors_change_nothing(client: Any) -> None:
    make_collection(client, rows=3)
    if refused_for_old_pymilvus(client, "CreateSnapshot", lambda: client.create_snapshot("s1", "c")):
        return
    client.create_snapshot("s1", "c")
    with pytest.raises(heron.AlreadyExistsError):
        client.create_snapshot("s1", "c")
    with pytest.raises(heron.NotFoundError):
        client.describe_snapshot("nope", "c")
    with pytest.raises(heron.NotFoundError):
        client.restore_snapshot("nope", "c", "r")
    with pytest.raises(heron.AlreadyExistsError):
        client.restore_snapshot("s1", "c", "c")
    with pytest.raises(heron.ParamError):
        client.create_snapshot("bad name", "c")
    with pytest.raises(heron.ParamError, match="compaction_protection_seconds"):
        client.create_snapshot("s2", "c", compaction_protection_seconds=-1)
    assert client.list_collections() == ["c"]
    assert client.list_snapshots("c") == ["s1"]


def test_a_pinned_snapshot_cannot_be_dropped_until_unpinned(client: Any) -> None:
    make_collection(client, rows=3)
    if refused_for_old_pymilvus(client, "CreateSnapshot", lambda: client.create_snapshot("s1", "c")):
        return
    client.create_snapshot("s1", "c")
    pin = client.pin_snapshot_data("s1", "c", ttl_seconds=600)
    with pytest.raises(heron.ParamError, match="pinned"):
        client.drop_snapshot("s1", "c")
    client.unpin_snapshot_data(pin)
    with pytest.raises(heron.ParamError):
        client.unpin_snapshot_data(pin)
    client.drop_snapshot("s1", "c")
    assert client.list_snapshots("c") == []
    client.drop_snapshot("s1", "c")  # gone already: nothing to do


def test_snapshots_keep_linked_files_through_merges_reopen_and_verify(tmp_path: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    path = tmp_path / "db"
    rng = np.random.default_rng(5)
    with heron.Client(str(path)) as c:
        make_collection(c, rows=0)
        c.insert("c", [{"id": i, "vec": rng.random(4).tolist(), "name": "a", "n": i % 3} for i in range(250)])
        c.flush("c")
        c._transport._engine.wait_background()
        c.create_snapshot("s", "c")
        snap_dir = path / "snapshots"
        linked = [f for f in snap_dir.rglob("*.arrow") if os.stat(f).st_nlink > 1]
        assert linked, "sealed segment files are linked, not copied"
        for k in range(3):  # more segments, merged with the ones the snapshot holds
            c.insert("c", [{"id": 1000 + k * 200 + i, "vec": rng.random(4).tolist(), "name": "b", "n": 0}
                           for i in range(200)])
            c.flush("c")
        c.delete("c", filter="id < 100")
        c._transport._engine.wait_background()
    proc = subprocess.run([sys.executable, "-m", "heron", "verify", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with heron.Client(str(path)) as c:
        assert c.list_snapshots("c") == ["s"]
        c.restore_snapshot("s", "c", "r")
        assert _count(c, "r") == 250 and _count(c, "c") == 750
        assert _count(c, "r", "name == 'a'") == 250


def test_dropping_a_collection_removes_its_snapshots(tmp_path: Any) -> None:
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        make_collection(c, rows=3)
        c.create_snapshot("s", "c")
        assert any((path / "snapshots").iterdir())
        c.drop_collection("c")
        assert not any((path / "snapshots").iterdir())
        make_collection(c, rows=1)
        assert c.list_snapshots("c") == []


def test_restore_into_another_database_keeps_added_fields_defaults(tmp_path: Any) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        make_collection(c, rows=4)
        c.flush("c")
        c.add_collection_field("c", "score", heron.DataType.FLOAT, default_value=0.5)
        c.insert("c", [{"id": 9, "vec": [9.0] * 4, "name": "n9", "n": 1, "score": 2.0}])
        c.create_snapshot("s", "c")
        make_collection(c, name="d", rows=1)
        c.create_snapshot("t", "d")
        assert c.list_snapshots() == ["s", "t"]
        c.create_database("other")
        c.restore_snapshot("s", "c", "copy", target_db_name="other")
        c.use_database("other")
        got = {r["id"]: r["score"] for r in c.query("copy", filter="", output_fields=["score"], limit=10)}
        assert got == {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5, 9: 2.0}
        assert c.list_restore_snapshot_jobs()[0].db_name == "other"


def test_a_snapshot_cut_short_by_a_crash_is_removed_at_open(tmp_path: Any) -> None:
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        make_collection(c, rows=2)
        c.create_snapshot("s", "c")
    half = next((path / "snapshots").iterdir()) / "t.tmp"
    half.mkdir()
    (half / "0.arrow").write_bytes(b"partial")
    with heron.Client(str(path)) as c:
        assert c.list_snapshots("c") == ["s"]
        assert not half.exists()
        c.create_snapshot("t", "c")
        assert c.list_snapshots("c") == ["s", "t"]
