"""Schema functions through pymilvus against ``heron serve``, beside Milvus Lite for what it implements.

The server runs the small test factories of `_factories` as BM25 and
TEXTEMBEDDING (``sitecustomize``); what is checked is what pymilvus sends
and reads back: functions inside the schema, text placeholders in searches,
the function RPCs, and the errors.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import numpy as np
import pytest

from tests.conftest import require_module
from tests.functions._factories import dense_of, sparse_of
from tests.functions.test_schema_functions import DIM, SERVER_ENV, TEXTS

pm = require_module("pymilvus")
DataType = pm.DataType


def _schema(embedding: bool = True) -> Any:
    s = pm.MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(pm.Function("bm", pm.FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    if embedding:
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
        s.add_function(pm.Function("emb", pm.FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                                   output_field_names=["dense"], params={"provider": "hashed"}))
    return s


@pytest.fixture
def milvus(start_server) -> Any:
    server = start_server(env=SERVER_ENV)
    client = pm.MilvusClient(server.uri)
    yield client
    client.close()


def test_pymilvus_creates_inserts_text_and_searches_by_text(milvus):
    milvus.create_collection("c", schema=_schema())
    assert milvus.insert("c", [{"id": i, "text": t} for i, t in enumerate(TEXTS)])["insert_count"] == len(TEXTS)
    got = {r["id"]: r for r in milvus.query("c", filter="id >= 0", output_fields=["sparse", "dense"])}
    for i, t in enumerate(TEXTS):
        assert got[i]["sparse"] == pytest.approx(sparse_of(t))
        np.testing.assert_allclose(got[i]["dense"], dense_of(t, DIM), rtol=1e-6)
    hits = milvus.search("c", ["cats and dogs", "hello"], anns_field="sparse", limit=1, output_fields=["text"])
    assert [q[0]["id"] for q in hits] == [1, 3] and hits[0][0]["entity"]["text"] == TEXTS[1]
    assert milvus.search("c", ["hello world"], anns_field="dense", limit=1)[0][0]["id"] == 3
    reqs = [pm.AnnSearchRequest(["quick fox"], "sparse", {}, 5), pm.AnnSearchRequest(["brown fox"], "dense", {}, 5)]
    assert milvus.hybrid_search("c", reqs, pm.RRFRanker(), limit=1)[0][0]["id"] == 0


def test_pymilvus_sees_the_errors_and_nothing_is_written(milvus):
    milvus.create_collection("c", schema=_schema())
    milvus.insert("c", [{"id": 0, "text": "kept"}])
    with pytest.raises(pm.exceptions.MilvusException, match="function 'bm' \\(BM25\\) failed") as err:
        milvus.insert("c", [{"id": 1, "text": "fine"}, {"id": 2, "text": "FAIL"}])
    assert err.value.code == 1100
    with pytest.raises(pm.exceptions.MilvusException, match="unexpected function output field `sparse`"):
        milvus.insert("c", [{"id": 3, "text": "x", "sparse": {1: 1.0}}])
    assert milvus.query("c", output_fields=["count(*)"])[0]["count(*)"] == 1
    bad = _schema(embedding=False)
    bad.add_field("other", DataType.VARCHAR, max_length=10)
    bad.add_function(pm.Function("bm2", pm.FunctionType.BM25, input_field_names=["other"],
                                 output_field_names=["sparse"]))
    with pytest.raises(pm.exceptions.MilvusException, match="used by multiple functions") as err:
        milvus.create_collection("x", schema=bad)
    assert err.value.code == 1100 and not milvus.has_collection("x")


def test_pymilvus_adds_alters_and_drops_a_function(milvus):
    schema = _schema(embedding=False)
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    milvus.create_collection("c", schema=schema)
    emb = pm.Function("emb", pm.FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                      output_field_names=["dense"], params={"provider": "hashed"})
    milvus.add_collection_function("c", emb)
    desc = milvus.describe_collection("c")
    assert [f["name"] for f in desc["functions"]] == ["bm", "emb"]
    assert [f["name"] for f in desc["fields"] if f.get("is_function_output")] == ["sparse", "dense"]
    milvus.insert("c", [{"id": 1, "text": "hello world"}])
    np.testing.assert_allclose(milvus.get("c", ids=[1], output_fields=["dense"])[0]["dense"],
                               dense_of("hello world", DIM), rtol=1e-6)
    milvus.alter_collection_function("c", "bm", pm.Function("bm", pm.FunctionType.BM25, input_field_names=["text"],
                                                             output_field_names=["sparse"], description="words"))
    assert milvus.describe_collection("c")["functions"][0]["description"] == "words"
    milvus.drop_collection_function("c", "emb")
    assert [f["name"] for f in milvus.describe_collection("c")["functions"]] == ["bm"]
    with pytest.raises(pm.exceptions.MilvusException, match="function 'emb' not found"):
        milvus.drop_collection_function("c", "emb")
    with pytest.raises(pm.exceptions.MilvusException, match="used by multiple functions"):
        milvus.add_collection_function("c", pm.Function("bm2", pm.FunctionType.BM25, input_field_names=["text"],
                                                        output_field_names=["sparse"]))


def _comparable(desc: dict[str, Any]) -> dict[str, Any]:
    fields = [{k: v for k, v in f.items() if k != "field_id"} for f in desc["fields"]]
    functions = [{k: v for k, v in f.items() if not k.endswith("id") and not k.endswith("ids")}
                 for f in desc["functions"]]
    return {"fields": fields, "functions": functions}


def test_describe_matches_milvus_lite_for_a_bm25_schema(milvus):
    require_module("milvus_lite")
    from tests.server.test_milvus_lite_interop import start_milvus_lite

    data = tempfile.mkdtemp()
    lite = start_milvus_lite(data)
    try:
        theirs = pm.MilvusClient(f"http://127.0.0.1:{lite.port}")
        for c in (theirs, milvus):
            c.create_collection("c", schema=_schema(embedding=False))
        assert _comparable(milvus.describe_collection("c")) == _comparable(theirs.describe_collection("c"))
        theirs.close()
    finally:
        lite.proc.kill()
        lite.proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)
