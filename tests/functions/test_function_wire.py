"""The wire forms of schema functions and text queries: pure round trips, and what pymilvus sends decodes."""

from __future__ import annotations

import numpy as np
import pytest

import heron
from heron import _requests as rq
from heron.wire import CODECS
from heron.wire import _schema as ws
from heron.wire._text_queries import queries_from_placeholder, queries_to_placeholder
from tests.conftest import require_module

pm = require_module("pymilvus")


def _schema() -> heron.CollectionSchema:
    s = heron.CollectionSchema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("text", heron.DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", heron.DataType.FLOAT_VECTOR, dim=8)
    s.add_function(heron.Function("bm", heron.FunctionType.BM25, "text", "sparse", "words"))
    s.add_function(heron.Function("emb", heron.FunctionType.TEXTEMBEDDING, "text", "dense",
                                  params={"provider": "openai", "dim": 8, "opts": {"a": [1, 2]}}))
    s.validate()
    s.assign_field_ids()
    return s


def test_a_schema_with_functions_round_trips_through_protobuf():
    d = _schema().to_json_dict()
    pb = ws.schema_to_pb(d, "c")
    assert [f.name for f in pb.functions] == ["bm", "emb"]
    assert [f.is_function_output for f in pb.fields] == [False, False, True, True]
    back = ws.json_schema(ws.schema_from_pb(pb))
    assert back["functions"] == d["functions"]
    assert [f.get("is_function_output") for f in back["fields"]] == [f.get("is_function_output") for f in d["fields"]]
    assert heron.CollectionSchema.from_dict(back).functions == heron.CollectionSchema.from_dict(d).functions


def test_function_params_travel_as_pymilvus_sends_them():
    pb = ws.function_to_pb(_schema().to_json_dict()["functions"][1])
    assert {kv.key: kv.value for kv in pb.params} == {"provider": "openai", "dim": "8", "opts": '{"a": [1, 2]}'}
    sent = pm.client.prepare.Prepare.convert_function_to_function_schema(
        pm.Function("e", pm.FunctionType.TEXTEMBEDDING, ["text"], ["dense"], params={"provider": "openai", "dim": 8}))
    got = ws.function_from_pb(sent)
    assert got["type"] is heron.FunctionType.TEXTEMBEDDING and got["params"] == {"provider": "openai", "dim": 8}


def test_text_queries_round_trip_as_a_varchar_placeholder():
    texts = np.array(["héllo wörld", "", "三"], dtype=object)
    raw = queries_to_placeholder(texts)
    group = pm.grpc_gen.common_pb2.PlaceholderGroup.FromString(raw)
    assert group.placeholders[0].type == pm.grpc_gen.common_pb2.VarChar
    assert queries_from_placeholder(raw).tolist() == texts.tolist()
    vectors = np.ones((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(queries_from_placeholder(queries_to_placeholder(vectors)), vectors)


def test_a_text_search_request_round_trips():
    r = rq.Search("default", "c", np.array(["a b", "c"], dtype=object), "sparse", limit=3)
    codec = CODECS["Search"]
    back = codec.decode(codec.request(r, lambda name: _schema()), "default", lambda name: _schema())
    assert back.data.tolist() == ["a b", "c"] and back.anns_field == "sparse"


@pytest.mark.parametrize("rpc, req", [
    ("AddCollectionFunction", rq.AddCollectionFunction("db", "c", {**_schema().to_json_dict()["functions"][0]})),
    ("AlterCollectionFunction", rq.AlterCollectionFunction("db", "c", "bm", _schema().to_json_dict()["functions"][0])),
    ("DropCollectionFunction", rq.DropCollectionFunction("db", "c", "bm")),
])
def test_the_function_requests_round_trip(rpc, req):
    codec = CODECS[rpc]
    back = codec.decode(codec.request(req, lambda name: _schema()), "db", lambda name: _schema())
    assert type(back) is type(req) and back.collection_name == "c"
    if hasattr(req, "function"):
        assert heron.Function.from_dict(back.function) == heron.Function.from_dict(req.function)
