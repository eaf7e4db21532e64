"""pymilvus's catalog calls against ``heron serve`` give what Milvus gives: index descriptions, properties, users.

Milvus is the reference here, not Milvus Lite: Lite drops index build
parameters from its descriptions and has no user management at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Server, require_module


@pytest.fixture
def server(wiped_server: Server) -> Server:
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


pymilvus = require_module("pymilvus")
DataType = pymilvus.DataType


def _collection(c: Any, name: str, index_type: str, metric: str, params: dict[str, Any]) -> None:
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type=index_type, metric_type=metric, params=params)
    c.create_collection(name, schema=schema, index_params=idx)
    c.insert(name, [{"id": i, "v": [float(i), 1.0, 0.5, -1.0]} for i in range(5)])


@pytest.mark.parametrize(
    ("index_type", "params", "flat"),
    [
        ("HNSW", {"M": 8, "efConstruction": 64}, {"M": "8", "efConstruction": "64"}),
        ("IVF_FLAT", {"nlist": 4}, {"nlist": "4"}),
        ("FLAT", {}, {}),
    ],
)
def test_describe_index_lists_build_parameters_beside_the_type(
    server: Server, index_type: str, params: dict[str, Any], flat: dict[str, str]
) -> None:
    """As Milvus answers: ``{"index_type": "HNSW", "metric_type": "L2", "M": "8", ...}``, no nested ``params``."""
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, "d", index_type, "L2", params)
        got = c.describe_index("d", "v")
        assert "params" not in got
        assert {k: got[k] for k in ("index_type", "metric_type", *flat)} == {
            "index_type": index_type,
            "metric_type": "L2",
            **flat,
        }
        assert (got["field_name"], got["index_name"], got["total_rows"]) == ("v", "v", 5)
    finally:
        c.close()


def test_heron_remote_client_reads_flat_index_parameters(server: Server) -> None:
    """Heron's own remote client gives the same description as the engine does embedded."""
    import heron

    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, "h", "HNSW", "IP", {"M": 8, "efConstruction": 64})
    finally:
        c.close()
    with heron.Client(server.uri) as h:
        got = h.describe_index("h", "v")
    assert (got["index_type"], got["metric_type"], got["M"], got["efConstruction"]) == ("HNSW", "IP", 8, 64)
    assert "params" not in got


def test_drop_collection_properties_removes_the_keys_for_good(start_server: Any, tmp_path: Any) -> None:
    data = str(tmp_path / "d")
    server = start_server(data=data)
    c = pymilvus.MilvusClient(server.uri)
    try:
        _collection(c, "p", "FLAT", "L2", {})
        c.alter_collection_properties("p", {"collection.ttl.seconds": 60, "collection.replica.number": 1})
        c.drop_collection_properties("p", ["collection.ttl.seconds"])
        assert c.describe_collection("p")["properties"] == {"collection.replica.number": "1"}
    finally:
        c.close()
    server.stop()
    again = start_server(data=data)
    c = pymilvus.MilvusClient(again.uri)
    try:
        assert c.describe_collection("p")["properties"] == {"collection.replica.number": "1"}
        c.drop_collection_properties("p", ["collection.replica.number", "never.set"])
        assert c.describe_collection("p")["properties"] == {}
    finally:
        c.close()


def test_users_and_roles_list_as_milvus_without_authorization(server: Server) -> None:
    """Milvus keeps ``root`` and the roles ``admin`` and ``public`` with authorization off, and lists them."""
    c = pymilvus.MilvusClient(server.uri)
    try:
        assert c.list_users() == ["root"]
        assert sorted(c.list_roles()) == ["admin", "public"]
        with pytest.raises(pymilvus.MilvusException, match="--auth"):
            c.create_user("alice", "secret-password")
        assert c.list_users() == ["root"]
    finally:
        c.close()
