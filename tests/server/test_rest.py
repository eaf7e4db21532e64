"""The Milvus RESTful API v2 of ``heron serve --http-port``: each endpoint answers what the gRPC call answers.

Every check runs the REST endpoint and the matching pymilvus call against
the same server and compares them (or reads back over gRPC what the REST
call wrote, and the other way round).
"""

from __future__ import annotations

import numpy as np
import pytest

from heron import IndexNotFoundError
from tests.conftest import require_module
from tests.server.http_helpers import http_url, post

require_module("starlette")
require_module("uvicorn")
require_module("prometheus_client")
require_module("pymilvus")

from pymilvus import (  # noqa: E402
    AnnSearchRequest,
    DataType,
    MilvusClient,
    MilvusException,
    RRFRanker,
    WeightedRanker,
)

DIM = 4


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from tests.conftest import launch_server

    server = launch_server(str(tmp_path_factory.mktemp("rest") / "data"), "--http-port", "0")
    yield server, http_url(server) + "/v2/vectordb", MilvusClient(server.uri)
    server.stop()


def _ok(answer: dict) -> object:
    assert answer["code"] == 0, answer
    return answer["data"]


def _rows(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": i, "vector": rng.random(DIM).round(4).tolist(), "color": ["red", "blue"][i % 2], "n": i}
            for i in range(n)]


def test_collections(live):
    _, v2, client = live
    _ok(post(f"{v2}/collections/create", {"collectionName": "c1", "dimension": DIM, "metricType": "L2",
                                           "params": {"ttlSeconds": 3600}}))
    assert "c1" in client.list_collections()
    props = _ok(post(f"{v2}/collections/describe", {"collectionName": "c1"}))["properties"]
    assert {"key": "collection.ttl.seconds", "value": "3600"} in props
    grpc_props = client.describe_collection("c1").get("properties")
    if grpc_props is not None:  # pymilvus 2.5 does not list them
        assert str(grpc_props["collection.ttl.seconds"]) == "3600"
    assert sorted(_ok(post(f"{v2}/collections/list", {}))) == sorted(client.list_collections())
    assert _ok(post(f"{v2}/collections/has", {"collectionName": "c1"})) == {"has": client.has_collection("c1")}
    assert _ok(post(f"{v2}/collections/has", {"collectionName": "zz"})) == {"has": client.has_collection("zz")}
    d = _ok(post(f"{v2}/collections/describe", {"collectionName": "c1"}))
    g = client.describe_collection("c1")
    assert d["collectionName"] == g["collection_name"] and d["collectionID"] == g["collection_id"]
    assert d["autoId"] == g["auto_id"] and d["enableDynamicField"] == g["enable_dynamic_field"]
    assert [(f["name"], f["type"]) for f in d["fields"]] == [(f["name"], f["type"].name) for f in g["fields"]] or \
        [f["name"] for f in d["fields"]] == [f["name"] for f in g["fields"]]
    assert [f["primaryKey"] for f in d["fields"]] == [bool(f.get("is_primary")) for f in g["fields"]]
    assert d["indexes"] == [{"fieldName": "vector", "indexName": i, "metricType": "L2"} for i in client.list_indexes("c1")]
    client.insert("c1", _rows(6))
    assert _ok(post(f"{v2}/collections/get_stats", {"collectionName": "c1"})) == {
        "rowCount": client.get_collection_stats("c1")["row_count"]}
    _ok(post(f"{v2}/collections/release", {"collectionName": "c1"}))
    assert str(client.get_load_state("c1")["state"]).endswith("NotLoad")
    assert _ok(post(f"{v2}/collections/get_load_state", {"collectionName": "c1"}))["loadState"] == "LoadStateNotLoad"
    _ok(post(f"{v2}/collections/load", {"collectionName": "c1"}))
    assert str(client.get_load_state("c1")["state"]).endswith("Loaded")
    assert _ok(post(f"{v2}/collections/get_load_state", {"collectionName": "c1"})) == {
        "loadState": "LoadStateLoaded", "loadProgress": 100}
    _ok(post(f"{v2}/collections/rename", {"collectionName": "c1", "newCollectionName": "c1b"}))
    assert client.has_collection("c1b") and not client.has_collection("c1")
    _ok(post(f"{v2}/collections/drop", {"collectionName": "c1b"}))
    assert not client.has_collection("c1b")


def test_create_with_schema_and_index_params(live):
    _, v2, client = live
    body = {
        "collectionName": "s1",
        "schema": {"autoId": False, "enableDynamicField": False, "fields": [
            {"fieldName": "pk", "dataType": "VarChar", "isPrimary": True, "elementTypeParams": {"max_length": 16}},
            {"fieldName": "emb", "dataType": "FloatVector", "elementTypeParams": {"dim": DIM}},
            {"fieldName": "tags", "dataType": "Array", "elementDataType": "Int64",
             "elementTypeParams": {"max_capacity": 4}},
            {"fieldName": "score", "dataType": "Double", "nullable": True},
        ]},
        "indexParams": [{"fieldName": "emb", "indexName": "emb_idx", "metricType": "IP",
                         "params": {"index_type": "HNSW", "M": 8, "efConstruction": 64}}],
    }
    _ok(post(f"{v2}/collections/create", body))
    g = client.describe_collection("s1")
    types = {f["name"]: f["type"] for f in g["fields"]}
    assert types == {"pk": DataType.VARCHAR, "emb": DataType.FLOAT_VECTOR, "tags": DataType.ARRAY,
                     "score": DataType.DOUBLE}
    idx = client.describe_index("s1", "emb_idx")
    assert (idx["index_type"], idx["metric_type"], int(idx["M"])) == ("HNSW", "IP", 8)
    d = _ok(post(f"{v2}/collections/describe", {"collectionName": "s1"}))
    assert {f["name"]: f["type"] for f in d["fields"]} == {
        "pk": "VarChar", "emb": "FloatVector", "tags": "Array", "score": "Double"}
    assert next(f for f in d["fields"] if f["name"] == "tags")["elementType"] == "Int64"
    assert next(f for f in d["fields"] if f["name"] == "score")["nullable"] is True
    bad = post(f"{v2}/collections/create", {"collectionName": "s2", "schema": {"fields": [
        {"fieldName": "pk", "dataType": "Int65", "isPrimary": True}]}})
    assert bad["code"] == 1100 and "Int65" in bad["message"]
    assert not client.has_collection("s2")
    client.drop_collection("s1")


def test_entities(live):
    _, v2, client = live
    client.create_collection("e1", dimension=DIM)
    rows = _rows(10)
    ins = _ok(post(f"{v2}/entities/insert", {"collectionName": "e1", "data": rows}))
    assert ins == {"insertCount": 10, "insertIds": list(range(10))}
    q = {"filter": "n >= 3", "output_fields": ["color", "n"], "limit": 5}
    assert _ok(post(f"{v2}/entities/query", {"collectionName": "e1", "filter": "n >= 3",
                                              "outputFields": ["color", "n"], "limit": 5})) == \
        [dict(r) for r in client.query("e1", **q)]
    assert _ok(post(f"{v2}/entities/get", {"collectionName": "e1", "id": [2, 7], "outputFields": ["n"]})) == \
        [dict(r) for r in client.get("e1", ids=[2, 7], output_fields=["n"])]
    queries = [rows[1]["vector"], rows[8]["vector"]]
    hits = post(f"{v2}/entities/search", {"collectionName": "e1", "data": queries, "limit": 3,
                                          "filter": "color == 'red'", "outputFields": ["n"]})
    ref = client.search("e1", queries, limit=3, filter="color == 'red'", output_fields=["n"])
    assert hits["topks"] == [len(h) for h in ref]
    flat = [(h["id"], h["entity"]["n"]) for q_hits in ref for h in q_hits]
    assert [(h["id"], h["n"]) for h in hits["data"]] == flat
    assert np.allclose([h["distance"] for h in hits["data"]], [h["distance"] for q_hits in ref for h in q_hits])
    hybrid = post(f"{v2}/entities/hybrid_search", {
        "collectionName": "e1", "limit": 4, "outputFields": ["color"],
        "search": [{"data": [queries[0]], "annsField": "vector", "limit": 5},
                   {"data": [queries[1]], "annsField": "vector", "limit": 5, "filter": "n > 2"}],
        "rerank": {"strategy": "rrf", "params": {"k": 60}}})
    ref_h = client.hybrid_search("e1", [AnnSearchRequest([queries[0]], "vector", {}, 5),
                                        AnnSearchRequest([queries[1]], "vector", {}, 5, expr="n > 2")],
                                 RRFRanker(60), limit=4, output_fields=["color"])
    assert [(h["id"], h["color"]) for h in hybrid["data"]] == [(h["id"], h["entity"]["color"]) for h in ref_h[0]]
    assert np.allclose([h["distance"] for h in hybrid["data"]], [h["distance"] for h in ref_h[0]])
    ranker = WeightedRanker(0.3, 0.7)  # its parameters (norm_score's default moved between releases) go as they are
    weighted = post(f"{v2}/entities/hybrid_search", {
        "collectionName": "e1", "limit": 3,
        "search": [{"data": [queries[0]], "annsField": "vector", "limit": 5},
                   {"data": [queries[1]], "annsField": "vector", "limit": 5}],
        "rerank": {"strategy": "weighted", "params": ranker.dict()["params"]}})
    ref_w = client.hybrid_search("e1", [AnnSearchRequest([queries[0]], "vector", {}, 5),
                                        AnnSearchRequest([queries[1]], "vector", {}, 5)],
                                 ranker, limit=3)
    assert [h["id"] for h in weighted["data"]] == [h["id"] for h in ref_w[0]]
    assert np.allclose([h["distance"] for h in weighted["data"]], [h["distance"] for h in ref_w[0]])
    up = _ok(post(f"{v2}/entities/upsert", {"collectionName": "e1", "data": [{**rows[4], "color": "green"}]}))
    assert up == {"upsertCount": 1, "upsertIds": [4]}
    assert client.get("e1", ids=[4], output_fields=["color"])[0]["color"] == "green"
    _ok(post(f"{v2}/entities/delete", {"collectionName": "e1", "filter": "id in [0, 1, 2]"}))
    assert client.query("e1", filter="id < 3") == []
    assert client.get_collection_stats("e1")["row_count"] == 7 or client.query(
        "e1", filter="", output_fields=["count(*)"])[0]["count(*)"] == 7
    bad = post(f"{v2}/entities/insert", {"collectionName": "e1", "data": [{"id": "x", "vector": [0.0] * DIM},
                                                                          {"id": 99, "vector": [0.0] * DIM}]})
    assert bad["code"] == 1100 and "'id'" in bad["message"] and "'x'" in bad["message"]
    assert client.get("e1", ids=[99]) == []  # a failing batch writes nothing
    client.drop_collection("e1")


def test_indexes(live):
    _, v2, client = live
    client.create_collection("i1", dimension=DIM)
    client.insert("i1", _rows(5))
    assert _ok(post(f"{v2}/indexes/list", {"collectionName": "i1"})) == client.list_indexes("i1")
    d = _ok(post(f"{v2}/indexes/describe", {"collectionName": "i1", "indexName": "vector"}))[0]
    g = client.describe_index("i1", "vector")
    assert (d["indexName"], d["fieldName"], d["indexType"], d["metricType"], d["totalRows"], d["indexedRows"]) == (
        g["index_name"], g["field_name"], g["index_type"], g["metric_type"], g["total_rows"], g["indexed_rows"])
    client.release_collection("i1")
    _ok(post(f"{v2}/indexes/drop", {"collectionName": "i1", "indexName": "vector"}))
    assert client.list_indexes("i1") == []
    _ok(post(f"{v2}/indexes/create", {"collectionName": "i1", "indexParams": [
        {"fieldName": "vector", "indexName": "v_ivf", "metricType": "L2",
         "params": {"index_type": "IVF_FLAT", "nlist": 4}}]}))
    g = client.describe_index("i1", "v_ivf")
    assert (g["index_type"], g["metric_type"]) == ("IVF_FLAT", "L2")
    missing = post(f"{v2}/indexes/describe", {"collectionName": "i1", "indexName": "nope"})
    try:  # pymilvus answers None (3.x) or raises (older releases)
        assert client.describe_index("i1", "nope") is None
    except MilvusException as exc:
        assert exc.code == missing["code"]
    assert missing["code"] == IndexNotFoundError.code and "nope" in missing["message"]
    client.drop_collection("i1")


def test_partitions(live):
    _, v2, client = live
    client.create_collection("p1", dimension=DIM)
    _ok(post(f"{v2}/partitions/create", {"collectionName": "p1", "partitionName": "part"}))
    assert _ok(post(f"{v2}/partitions/list", {"collectionName": "p1"})) == client.list_partitions("p1")
    assert _ok(post(f"{v2}/partitions/has", {"collectionName": "p1", "partitionName": "part"})) == {
        "has": client.has_partition("p1", "part")}
    client.insert("p1", _rows(3), partition_name="part")
    assert _ok(post(f"{v2}/partitions/get_stats", {"collectionName": "p1", "partitionName": "part"})) == {
        "rowCount": client.get_partition_stats("p1", "part")["row_count"]}
    _ok(post(f"{v2}/partitions/release", {"collectionName": "p1", "partitionNames": ["part"]}))
    _ok(post(f"{v2}/partitions/load", {"collectionName": "p1", "partitionNames": ["part"]}))
    client.release_collection("p1")
    _ok(post(f"{v2}/partitions/drop", {"collectionName": "p1", "partitionName": "part"}))
    assert not client.has_partition("p1", "part")
    client.drop_collection("p1")


def test_aliases(live):
    _, v2, client = live
    client.create_collection("a1", dimension=DIM)
    client.create_collection("a2", dimension=DIM)
    _ok(post(f"{v2}/aliases/create", {"collectionName": "a1", "aliasName": "al"}))
    assert _ok(post(f"{v2}/aliases/list", {"collectionName": "a1"})) == client.list_aliases("a1")["aliases"]
    d = _ok(post(f"{v2}/aliases/describe", {"aliasName": "al"}))
    g = client.describe_alias("al")
    assert d == {"aliasName": g["alias"], "collectionName": g["collection_name"], "dbName": g["db_name"]}
    _ok(post(f"{v2}/aliases/alter", {"collectionName": "a2", "aliasName": "al"}))
    assert client.describe_alias("al")["collection_name"] == "a2"
    _ok(post(f"{v2}/aliases/drop", {"aliasName": "al"}))
    assert client.list_aliases("a2")["aliases"] == []
    client.drop_collection("a1")
    client.drop_collection("a2")


def test_databases(live):
    _, v2, client = live
    _ok(post(f"{v2}/databases/create", {"dbName": "d1"}))
    assert sorted(_ok(post(f"{v2}/databases/list", {}))) == sorted(client.list_databases())
    _ok(post(f"{v2}/databases/alter", {"dbName": "d1", "properties": {"database.max.collections": 7}}))
    d = _ok(post(f"{v2}/databases/describe", {"dbName": "d1"}))
    g = client.describe_database("d1")
    assert d["dbName"] == g["name"] == "d1"
    assert {p["key"]: p["value"] for p in d["properties"]}["database.max.collections"] == str(
        g["database.max.collections"])
    # a call in another database
    _ok(post(f"{v2}/collections/create", {"dbName": "d1", "collectionName": "x", "dimension": DIM}))
    assert MilvusClient(live[0].uri, db_name="d1").list_collections() == ["x"]
    assert "x" not in client.list_collections()
    MilvusClient(live[0].uri, db_name="d1").drop_collection("x")
    _ok(post(f"{v2}/databases/drop", {"dbName": "d1"}))
    assert "d1" not in client.list_databases()


def test_errors_carry_milvus_codes(live):
    _, v2, client = live
    answer = post(f"{v2}/collections/describe", {"collectionName": "missing"})
    with pytest.raises(MilvusException) as exc:
        client.describe_collection("missing")
    assert answer["code"] == exc.value.code and "missing" in answer["message"]
    assert post(f"{v2}/collections/describe", {})["code"] == 1100
    assert "jobId" in post(f"{v2}/jobs/import/get_progress", {"jobId": "x"})["message"]


def test_properties_flush_and_compact(live):
    _, v2, client = live
    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("title", DataType.VARCHAR, max_length=8)
    idx = client.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection("pr", schema=schema, index_params=idx)
    _ok(post(f"{v2}/collections/alter_properties", {"collectionName": "pr",
                                                     "properties": {"collection.ttl.seconds": 60}}))
    props = {p["key"]: p["value"] for p in _ok(post(f"{v2}/collections/describe", {"collectionName": "pr"}))["properties"]}
    assert props["collection.ttl.seconds"] == "60"
    grpc_props = client.describe_collection("pr").get("properties")
    if grpc_props is not None:
        assert str(grpc_props["collection.ttl.seconds"]) == "60"
    _ok(post(f"{v2}/collections/drop_properties", {"collectionName": "pr", "propertyKeys": ["collection.ttl.seconds"]}))
    props = _ok(post(f"{v2}/collections/describe", {"collectionName": "pr"}))["properties"]
    assert "collection.ttl.seconds" not in {p["key"] for p in props}
    _ok(post(f"{v2}/collections/fields/alter_properties", {"collectionName": "pr", "fieldName": "title",
                                                            "fieldParams": {"max_length": 32}}))
    title = next(f for f in client.describe_collection("pr")["fields"] if f["name"] == "title")
    assert int(title["params"]["max_length"]) == 32
    client.release_collection("pr")
    _ok(post(f"{v2}/indexes/alter_properties", {"collectionName": "pr", "indexName": "vector",
                                                 "properties": {"mmap.enabled": True}}))
    assert str(client.describe_index("pr", "vector").get("mmap.enabled")).lower() == "true"
    _ok(post(f"{v2}/indexes/drop_properties", {"collectionName": "pr", "indexName": "vector",
                                                "propertyKeys": ["mmap.enabled"]}))
    assert "mmap.enabled" not in client.describe_index("pr", "vector")
    client.load_collection("pr")
    client.insert("pr", [{"id": i, "vector": [float(i)] * DIM, "title": "t"} for i in range(4)])
    _ok(post(f"{v2}/collections/flush", {"collectionName": "pr"}))
    assert client.get_collection_stats("pr")["row_count"] == 4
    compaction = _ok(post(f"{v2}/collections/compact", {"collectionName": "pr"}))
    assert isinstance(compaction["compactionID"], int)
    client.drop_collection("pr")
    _ok(post(f"{v2}/databases/create", {"dbName": "dp", "properties": {"database.max.collections": 3}}))
    _ok(post(f"{v2}/databases/drop_properties", {"dbName": "dp", "propertyKeys": ["database.max.collections"]}))
    assert "database.max.collections" not in client.describe_database("dp")
    client.drop_database("dp")
