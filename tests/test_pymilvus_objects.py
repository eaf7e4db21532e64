"""pymilvus's own objects handed to Heron's clients: "change the import" holds literally.

Schemas (``CollectionSchema(FieldSchema(...))``, ``MilvusClient.create_schema()``),
index params (``MilvusClient.prepare_index_params()``), hybrid requests
(``AnnSearchRequest``) and rankers (``RRFRanker``, ``WeightedRanker``, rerank
``Function``) work with `heron.Client` and `heron.AsyncClient`, embedded and
served, and give what Heron's own objects give.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import heron
from tests.conftest import require_module

pm = require_module("pymilvus")
DataType = pm.DataType


def _rows(n: int = 30) -> list[dict]:
    return [{"id": i, "v": [float(i), 1.0, 0.0, 0.5], "w": [1.0, float(i % 7), 2.0, 0.0], "tag": f"t{i % 3}"}
            for i in range(n)]


def _pymilvus_schema():
    return pm.CollectionSchema([
        pm.FieldSchema("id", DataType.INT64, is_primary=True),
        pm.FieldSchema("v", DataType.FLOAT_VECTOR, dim=4),
        pm.FieldSchema("w", DataType.FLOAT_VECTOR, dim=4),
        pm.FieldSchema("tag", DataType.VARCHAR, max_length=16),
        pm.FieldSchema("note", DataType.VARCHAR, max_length=16, nullable=True, default_value="none"),
    ], description="from pymilvus")


def _pymilvus_index():
    idx = pm.MilvusClient.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    idx.add_index("w", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64}, index_name="w_idx")
    return idx


def _heron_index():
    idx = heron.Client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    idx.add_index("w", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64}, index_name="w_idx")
    return idx


def _heron_schema():
    s = heron.Client.create_schema(description="from pymilvus")
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("w", heron.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("tag", heron.DataType.VARCHAR, max_length=16)
    s.add_field("note", heron.DataType.VARCHAR, max_length=16, nullable=True, default_value="none")
    return s


def test_a_pymilvus_schema_and_index_params_make_the_collection_heron_objects_make(client):
    client.create_collection("p", schema=_pymilvus_schema(), index_params=_pymilvus_index())
    client.create_collection("h", schema=_heron_schema(), index_params=_heron_index())
    dp, dh = client.describe_collection("p"), client.describe_collection("h")
    assert dp["fields"] == dh["fields"] and dp["description"] == "from pymilvus"
    assert client.describe_index("p", "w_idx") == client.describe_index("h", "w_idx")
    assert client.describe_index("p", "w_idx")["M"] == 8
    client.insert("p", _rows())
    assert client.get("p", ids=[4], output_fields=["tag", "note"]) == [{"id": 4, "tag": "t1", "note": "none"}]


def test_create_schema_output_with_every_option(client):
    s = pm.MilvusClient.create_schema(auto_id=True, enable_dynamic_field=True)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=3)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    s.add_field("key", DataType.VARCHAR, max_length=8, is_partition_key=True)
    s.add_field("flag", DataType.INT32, nullable=True)
    client.create_collection("d", schema=s)
    desc = client.describe_collection("d")
    assert desc["auto_id"] and desc["enable_dynamic_field"]
    by_name = {f["name"]: f for f in desc["fields"]}
    assert by_name["arr"]["element_type"] == heron.DataType.INT64 and by_name["arr"]["params"]["max_capacity"] == 4
    assert by_name["key"].get("is_partition_key") and by_name["flag"].get("nullable")
    res = client.insert("d", [{"vec": [1.0, 2.0, 3.0], "arr": [1, 2], "key": "a", "extra": 5}])
    assert res["insert_count"] == 1
    rows = client.query("d", filter="key == 'a'", output_fields=["arr", "extra", "flag"])
    assert rows[0]["arr"] == [1, 2] and rows[0]["extra"] == 5 and rows[0]["flag"] is None


def test_create_index_takes_pymilvus_index_params(client):
    client.create_collection("c", schema=_pymilvus_schema())
    idx = pm.MilvusClient.prepare_index_params()
    idx.add_index("v", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 4}, index_name="v_ivf")
    client.create_index("c", idx)
    d = client.describe_index("c", "v_ivf")
    assert (d["index_type"], d["metric_type"], d["field_name"], d["nlist"]) == ("IVF_FLAT", "L2", "v", 4)


def _fused(client, name, reqs, ranker):
    return [[(h["id"], round(h["distance"], 6)) for h in q] for q in client.hybrid_search(name, reqs, ranker, limit=6)]


@pytest.mark.parametrize("ranker", ["rrf", "weighted", "rrf_function", "weighted_function"])
def test_hybrid_search_with_pymilvus_requests_and_rankers_fuses_as_heron_objects_do(client, ranker):
    client.create_collection("c", schema=_pymilvus_schema(), index_params=_pymilvus_index())
    client.insert("c", _rows())
    q1, q2 = [[3.0, 1.0, 0.0, 0.5]], [[1.0, 2.0, 2.0, 0.0]]
    ours = [heron.AnnSearchRequest(q1, "v", {"metric_type": "L2"}, 8),
            heron.AnnSearchRequest(q2, "w", {"metric_type": "IP"}, 8, expr="tag != 't0'")]
    theirs = [pm.AnnSearchRequest(q1, "v", {"metric_type": "L2"}, 8),
              pm.AnnSearchRequest(q2, "w", {"metric_type": "IP"}, 8, expr="tag != 't0'")]
    heron_ranker = {"rrf": heron.RRFRanker(20), "weighted": heron.WeightedRanker(0.3, 0.7),
                    "rrf_function": heron.RRFRanker(20),
                    # Milvus's weighted rerank Function does not normalise unless norm_score is given
                    "weighted_function": heron.WeightedRanker(0.3, 0.7, norm_score=False)}[ranker]
    pm_ranker = {
        "rrf": pm.RRFRanker(20),
        "weighted": pm.WeightedRanker(0.3, 0.7),
        "rrf_function": pm.Function("r", pm.FunctionType.RERANK, input_field_names=[],
                                    params={"reranker": "rrf", "k": 20}),
        "weighted_function": pm.Function("r", pm.FunctionType.RERANK, input_field_names=[],
                                         params={"reranker": "weighted", "weights": [0.3, 0.7]}),
    }[ranker]
    expected = _fused(client, "c", ours, heron_ranker)
    assert len(expected[0]) == 6
    assert _fused(client, "c", theirs, pm_ranker) == expected


def test_what_heron_does_not_run_is_refused_by_name(client):
    client.create_collection("c", schema=_pymilvus_schema(), index_params=_pymilvus_index())
    req = pm.AnnSearchRequest([[1.0] * 4], "v", {"metric_type": "L2"}, 5)
    model = pm.Function("near", pm.FunctionType.RERANK, input_field_names=["id"],
                        params={"reranker": "model", "provider": "tei"})
    with pytest.raises(heron.ParamError, match=r"function 'near': Unsupported rerank function: \[model\]"):
        client.hybrid_search("c", [req], model)
    with pytest.raises(heron.ParamError, match="reqs: got dict"):
        client.hybrid_search("c", [{"data": [[1.0] * 4]}], pm.RRFRanker())
    with pytest.raises(heron.ParamError, match="index_params: got str"):
        client.create_index("c", "v")
    with pytest.raises(heron.ParamError, match="schema: got dict"):
        client.create_collection("x", schema={"fields": []})
    bm25 = pm.MilvusClient.create_schema()
    bm25.add_field("id", DataType.INT64, is_primary=True)
    bm25.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    bm25.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    bm25.add_function(pm.Function("mh", pm.FunctionType.MINHASH, input_field_names=["text"],
                                  output_field_names=["sparse"]))
    with pytest.raises(heron.SchemaError, match="MINHASH.*Unknown function type"):
        client.create_collection("x", schema=bm25)
    assert not client.has_collection("x")


def test_the_conversions_do_not_import_pymilvus():
    source = Path(heron.__file__).parent / "client" / "_milvus_objects.py"
    imported = {alias.name for node in ast.walk(ast.parse(source.read_text()))
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(ast.parse(source.read_text()))
                 if isinstance(node, ast.ImportFrom)}
    assert not any("pymilvus" in name for name in imported)
