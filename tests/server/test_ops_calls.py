"""pymilvus's operations calls against ``heron serve``: schema evolution, field and index properties.

Milvus Lite has none of these RPCs (AddCollectionField, AlterCollectionSchema,
AlterCollectionField, AlterIndex), so the Milvus server's behaviour is the
reference: its messages and codes for refused changes.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, require, require_module

pymilvus = require_module("pymilvus")
DataType = pymilvus.DataType


def _needs(method: str) -> None:
    """The installed pymilvus must have ``method`` (pymilvus 3 added several; CI runs these with it)."""
    require(hasattr(pymilvus.MilvusClient, method), f"pymilvus {pymilvus.__version__} has no MilvusClient.{method}")


def _collection(c: Any, name: str = "c", rows: int = 5) -> None:
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("name", DataType.VARCHAR, max_length=16)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=idx)
    c.insert(name, [{"id": i, "v": [float(i), 1.0, 0.5, -1.0], "name": f"n{i}"} for i in range(rows)])


def test_pymilvus_adds_alters_and_drops_fields(server: Server) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c)
        c.add_collection_field("c", "age", DataType.INT64, nullable=True)
        c.add_collection_field("c", "tag", DataType.VARCHAR, max_length=8, nullable=True, default_value="t")
        c.insert("c", [{"id": 9, "v": [9.0, 1.0, 0.5, -1.0], "name": "n9", "age": 40, "tag": "x"}])
        got = {r["id"]: (r["age"], r["tag"]) for r in c.query("c", filter="id >= 0", output_fields=["age", "tag"])}
        assert got == {**{i: (None, "t") for i in range(5)}, 9: (40, "x")}
        assert [r["id"] for r in c.query("c", filter="age > 10", output_fields=["id"])] == [9]
        fields = {f["name"]: f for f in c.describe_collection("c")["fields"]}
        assert fields["age"]["nullable"] is True and fields["age"]["type"] == DataType.INT64
        assert fields["tag"]["default_value"].string_data == "t"  # pymilvus shows the ValueField Milvus sends

        c.alter_collection_field("c", "name", field_params={"max_length": 64})
        name = next(f for f in c.describe_collection("c")["fields"] if f["name"] == "name")
        assert int(name["params"]["max_length"]) == 64
        c.insert("c", [{"id": 10, "v": [1.0] * 4, "name": "y" * 40, "age": 1}])
    finally:
        c.close()


def test_pymilvus_drops_a_field(server: Server) -> None:
    _needs("drop_collection_field")
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c)
        c.add_collection_field("c", "age", DataType.INT64, nullable=True)
        c.add_collection_field("c", "tag", DataType.VARCHAR, max_length=8, nullable=True)
        c.insert("c", [{"id": 10, "v": [1.0] * 4, "name": "y", "age": 1}])
        c.drop_collection_field("c", field_name="tag")
        assert "tag" not in [f["name"] for f in c.describe_collection("c")["fields"]]
        assert set(c.query("c", ids=[10], output_fields=["*"])[0]) == {"id", "v", "name", "age"}
    finally:
        c.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"field_name": "x", "data_type": DataType.INT64}, "added field must be nullable"),
        ({"field_name": "name", "data_type": DataType.INT64, "nullable": True}, "duplicate field name"),
    ],
)
def test_pymilvus_sees_milvus_errors_for_refused_fields(server: Server, kwargs: dict[str, Any], message: str) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c)
        before = c.describe_collection("c")["fields"]
        with pytest.raises(pymilvus.MilvusException, match=message) as err:
            c.add_collection_field("c", **kwargs)
        assert err.value.code == 1100
        assert c.describe_collection("c")["fields"] == before
    finally:
        c.close()


def test_pymilvus_alters_and_drops_index_properties(server: Server) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c)
        c.alter_index_properties("c", "v", properties={"mmap.enabled": True})
        assert c.describe_index("c", "v")["mmap.enabled"] in ("true", "True", True)
        c.drop_index_properties("c", "v", property_keys=["mmap.enabled"])
        assert "mmap.enabled" not in c.describe_index("c", "v")
        with pytest.raises(pymilvus.MilvusException, match="not a configable index property"):
            c.alter_index_properties("c", "v", properties={"M": 8})
    finally:
        c.close()


def test_pymilvus_snapshots_round_trip(server: Server) -> None:
    _needs("create_snapshot")
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, rows=6)
        c.delete("c", ids=[0])
        c.create_snapshot("s1", "c", description="d")
        c.delete("c", ids=[1, 2])
        assert c.list_snapshots(collection_name="c") == ["s1"]
        info = c.describe_snapshot("s1", "c")
        assert (info.name, info.description, info.collection_name, info.partition_names) == (
            "s1", "d", "c", ["_default"])
        job = c.restore_snapshot("s1", "c", "r")
        state = c.get_restore_snapshot_state(job)
        assert state.state == "RestoreSnapshotCompleted" and state.collection_name == "r"
        assert [j.job_id for j in c.list_restore_snapshot_jobs(collection_name="r")] == [job]
        assert sorted(r["id"] for r in c.query("r", filter="id >= 0", output_fields=["id"])) == [1, 2, 3, 4, 5]
        pin = c.pin_snapshot_data("s1", "c", ttl_seconds=60)
        with pytest.raises(pymilvus.MilvusException, match="pinned"):
            c.drop_snapshot("s1", "c")
        c.unpin_snapshot_data(pin)
        c.drop_snapshot("s1", "c")
        assert c.list_snapshots(collection_name="c") == []
    finally:
        c.close()


def test_pymilvus_flush_all_and_segment_listings(server: Server) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, rows=7)
        assert [(s.state_name, s.num_rows) for s in c.list_loaded_segments("c")] == [("Growing", 7)]
        c.flush_all(timeout=30)
        persistent = c.list_persistent_segments("c")
        assert [(s.state_name, s.num_rows, s.level_name) for s in persistent] == [("Flushed", 7, "L1")]
        assert [s.state_name for s in c.list_loaded_segments("c")] == ["Flushed"]
    finally:
        c.close()


def test_show_collections_and_partitions_honour_names_and_load_state(server: Server) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, "a")
        _collection(c, "b")
        c.release_collection("b")
        stub = c._get_connection()._stub
        pb = pymilvus.grpc_gen.milvus_pb2
        reply = stub.ShowCollections(pb.ShowCollectionsRequest(collection_names=["b", "a"], type=pb.InMemory))
        assert (list(reply.collection_names), list(reply.inMemory_percentages)) == (["a", "b"], [100, 0])
        assert len(set(reply.collection_ids)) == 2
        reply = stub.ShowCollections(pb.ShowCollectionsRequest(collection_names=["nope"]))
        assert reply.status.code == 100
        c.create_partition("a", "p")
        c.release_partitions("a", ["p"])
        reply = stub.ShowPartitions(pb.ShowPartitionsRequest(collection_name="a"))
        assert (list(reply.partition_names), list(reply.inMemory_percentages)) == (["_default", "p"], [100, 0])
        reply = stub.ShowPartitions(pb.ShowPartitionsRequest(collection_name="a", partition_names=["p"]))
        assert list(reply.partition_names) == ["p"]
    finally:
        c.close()


def test_pymilvus_compaction_plans_and_optimize(server: Server) -> None:
    _needs("optimize")
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, rows=6)
        c.delete("c", ids=[0, 1])
        job = c.compact("c")
        plans = c.get_compaction_plans(job)
        assert plans.state.name == "Completed" and plans.plans == []
        assert c.list_compaction_tasks("c").plans == []
        result = c.optimize("c", timeout=60)
        assert result.status == "success"
        assert sum(s.num_rows for s in c.list_loaded_segments("c")) == 4
    finally:
        c.close()


def test_schema_changes_snapshots_and_file_resources_need_privileges(start_server: Any, tmp_path: Any) -> None:
    import heron

    password = "s3cret-Root"
    server = start_server("--auth", "--root-password", password)
    admin = pymilvus.MilvusClient(server.uri, token=f"root:{password}")
    try:
        _collection(admin)
        admin.create_user("bob", "bob-pw")
        admin.create_role("viewer")
        admin.grant_role("bob", "viewer")
        for privilege in ("Query", "DescribeCollection"):
            admin.grant_privilege("viewer", "Collection", privilege, "c")
    finally:
        admin.close()
    src = tmp_path / "words.txt"
    src.write_text("a\n")
    with heron.Client(server.uri, token="bob:bob-pw") as bob:
        assert len(bob.query("c", ids=[1])) == 1
        with pytest.raises(heron.PermissionDeniedError):
            bob.add_collection_field("c", "x", heron.DataType.INT64, nullable=True)
        with pytest.raises(heron.PermissionDeniedError):
            bob.alter_index_properties("c", "v", {"mmap.enabled": True})
        with pytest.raises(heron.PermissionDeniedError):
            bob.add_file_resource("words", str(src))
        with pytest.raises(heron.PermissionDeniedError):
            bob.flush_all()
    with heron.Client(server.uri, token=f"root:{password}") as root:
        assert "x" not in [f["name"] for f in root.describe_collection("c")["fields"]]
        assert root.list_file_resources() == []
        root.add_collection_field("c", "x", heron.DataType.INT64, nullable=True)
