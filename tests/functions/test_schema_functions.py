"""Schema functions end to end: defined in the schema, run by the engine at write and search time.

The functions here are the small test factories of `_factories` (hashed
words as a sparse vector, hashed words as a unit dense vector), registered
as BM25 and TEXTEMBEDDING in this process and, through ``sitecustomize``, in
the ``heron serve`` the served clients talk to. What is tested is the
plumbing: schema, describe, wire, write path, search by text, errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import heron
from tests.conftest import HERON_SRC, ROOT
from tests.functions._factories import SITE_DIR, dense_of, installed, sparse_of

DataType = heron.DataType
FunctionType = heron.FunctionType
DIM = 16
SERVER_ENV = {"PYTHONPATH": os.pathsep.join([SITE_DIR, str(ROOT), HERON_SRC])}
pytestmark = pytest.mark.heron_env(**SERVER_ENV)

TEXTS = ["the quick brown fox", "cats and dogs", "a dog chases a cat", "hello world", "brown bears eat fish"]


@pytest.fixture(autouse=True)
def _factories() -> Iterator[None]:
    with installed():
        yield


def text_schema() -> heron.CollectionSchema:
    s = heron.CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=1000, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.VARCHAR, max_length=20, nullable=True)
    s.add_function(heron.Function("bm", FunctionType.BM25, ["text"], ["sparse"]))
    s.add_function(heron.Function("emb", FunctionType.TEXTEMBEDDING, "text", "dense", params={"provider": "hashed"}))
    return s


def rows(texts: list[str] = TEXTS, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": start + i, "text": t} for i, t in enumerate(texts)]


def _stored(client: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in client.get("c", ids=ids, output_fields=["text", "sparse", "dense"])}


def _assert_outputs_match(client: Any, expected_texts: dict[int, str]) -> None:
    got = _stored(client, list(expected_texts))
    assert sorted(got) == sorted(expected_texts)
    for i, text in expected_texts.items():
        assert got[i]["text"] == text
        assert got[i]["sparse"] == pytest.approx(sparse_of(text))
        np.testing.assert_allclose(got[i]["dense"], dense_of(text, DIM), rtol=1e-6)


def test_a_schema_with_functions_is_described_as_milvus_describes_it(client):
    client.create_collection("c", schema=text_schema())
    desc = client.describe_collection("c")
    ids = {f["name"]: f["field_id"] for f in desc["fields"]}
    assert [f["name"] for f in desc["fields"] if f.get("is_function_output")] == ["sparse", "dense"]
    bm, emb = desc["functions"]
    assert bm["name"] == "bm" and bm["type"] == FunctionType.BM25 and bm["params"] == {}
    assert (bm["input_field_names"], bm["output_field_names"]) == (["text"], ["sparse"])
    assert (bm["input_field_ids"], bm["output_field_ids"]) == ([ids["text"]], [ids["sparse"]])
    assert emb["type"] == FunctionType.TEXTEMBEDDING and emb["params"] == {"provider": "hashed"}
    assert emb["output_field_ids"] == [ids["dense"]]
    assert bm["id"] != emb["id"]
    again = heron.CollectionSchema.from_dict(desc)
    assert [f.to_dict() for f in again.functions] == [f.to_dict() for f in text_schema().functions]


def test_text_only_rows_get_their_outputs_computed(client):
    client.create_collection("c", schema=text_schema())
    assert client.insert("c", rows())["insert_count"] == len(TEXTS)
    _assert_outputs_match(client, dict(enumerate(TEXTS)))


def test_search_by_text_on_each_output_field_and_hybrid(client):
    client.create_collection("c", schema=text_schema())
    client.insert("c", rows())
    sparse = client.search("c", ["brown fox"], anns_field="sparse", limit=3, output_fields=["text"])
    assert sparse[0][0]["id"] == 0  # two shared words; "brown bears..." has one
    assert [h["id"] for h in sparse[0]] == [0, 4]
    dense = client.search("c", data=["hello world"], anns_field="dense", limit=2)
    assert dense[0][0]["id"] == 3 and dense[0][0]["distance"] == pytest.approx(1.0, abs=1e-5)
    two = client.search("c", ["cats and dogs", "hello"], anns_field="sparse", limit=1)
    assert [q[0]["id"] for q in two] == [1, 3]
    reqs = [heron.AnnSearchRequest(["quick fox"], "sparse", {}, 5), heron.AnnSearchRequest(["brown fox"], "dense", {}, 5)]
    fused = client.hybrid_search("c", reqs, heron.RRFRanker(), limit=2, output_fields=["text"])
    assert fused[0][0]["id"] == 0 and fused[0][0]["entity"]["text"] == TEXTS[0]
    weighted = client.hybrid_search("c", reqs, heron.WeightedRanker(0.5, 0.5), limit=2)
    assert weighted[0][0]["id"] == 0


def test_a_text_search_on_a_field_no_function_fills_is_refused(client):
    s = text_schema()
    s.add_field("plain", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("c", schema=s)
    with pytest.raises(heron.ParamError, match="'plain' is not the output of a BM25 or TEXTEMBEDDING function"):
        client.search("c", ["words"], anns_field="plain", limit=1)


def test_rows_that_give_an_output_field_are_refused_and_nothing_is_written(client):
    client.create_collection("c", schema=text_schema())
    bad = [{"id": 1, "text": "a"}, {"id": 2, "text": "b", "sparse": {1: 1.0}}]
    with pytest.raises(heron.DataError, match="unexpected function output field `sparse`"):
        client.insert("c", bad)
    with pytest.raises(heron.DataError, match="unexpected function output field `dense`"):
        client.upsert("c", [{"id": 1, "text": "a", "dense": [0.0] * DIM}])
    assert client.query("c", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_a_function_failing_mid_batch_writes_nothing(client):
    client.create_collection("c", schema=text_schema())
    client.insert("c", rows())
    with pytest.raises(heron.DataError, match="function 'bm' \\(BM25\\) failed.*nothing was written"):
        client.insert("c", rows(["fine", "also fine", "FAIL here"], start=10))
    with pytest.raises(heron.DataError, match="nothing was written"):
        client.upsert("c", rows(["replaced", "FAIL"], start=0))
    assert client.query("c", output_fields=["count(*)"])[0]["count(*)"] == len(TEXTS)
    _assert_outputs_match(client, dict(enumerate(TEXTS)))


def test_upserts_recompute_outputs_and_partial_upserts_keep_them_unless_the_text_changes(client):
    client.create_collection("c", schema=text_schema())
    client.insert("c", rows())
    client.upsert("c", [{"id": 0, "text": "slow green turtle"}])
    client.upsert("c", [{"id": 1, "tag": "pets"}], partial_update=True)
    client.upsert("c", [{"id": 2, "text": "no more dogs"}], partial_update=True)
    expected = {**dict(enumerate(TEXTS)), 0: "slow green turtle", 2: "no more dogs"}
    _assert_outputs_match(client, expected)
    assert client.get("c", ids=[1], output_fields=["tag"])[0]["tag"] == "pets"
    assert client.search("c", ["turtle"], anns_field="sparse", limit=1)[0][0]["id"] == 0


def test_functions_can_be_added_altered_and_dropped(client):
    s = text_schema()
    s.functions = [f for f in s.functions if f.name == "bm"]
    client.create_collection("c", schema=s)
    client.insert("c", [{"id": 0, "text": "before", "dense": [1.0] + [0.0] * (DIM - 1)}])
    emb = heron.Function("emb", FunctionType.TEXTEMBEDDING, ["text"], ["dense"], params={"provider": "hashed"})
    client.add_collection_function("c", emb)
    assert [f["name"] for f in client.describe_collection("c")["functions"]] == ["bm", "emb"]
    client.insert("c", [{"id": 1, "text": "after"}])
    _assert_outputs_match(client, {1: "after"})
    with pytest.raises(heron.AlreadyExistsError, match="'emb' already exists"):
        client.add_collection_function("c", emb)
    client.alter_collection_function("c", "emb", heron.Function("emb", FunctionType.TEXTEMBEDDING, ["text"],
                                                                 ["dense"], "altered", {"provider": "hashed"}))
    assert client.describe_collection("c")["functions"][1]["description"] == "altered"
    with pytest.raises(heron.ParamError, match="type and fields cannot change"):
        client.alter_collection_function("c", "emb", heron.Function("emb", FunctionType.BM25, ["text"], ["sparse"]))
    with pytest.raises(heron.ParamError, match="unknown provider 'nope'"):
        client.alter_collection_function("c", "emb", heron.Function("emb", FunctionType.TEXTEMBEDDING, ["text"],
                                                                     ["dense"], params={"provider": "nope"}))
    client.drop_collection_function("c", "emb")
    desc = client.describe_collection("c")
    assert [f["name"] for f in desc["functions"]] == ["bm"]
    assert not any(f.get("is_function_output") for f in desc["fields"] if f["name"] == "dense")
    with pytest.raises(heron.DataError, match="'dense'"):
        client.insert("c", [{"id": 2, "text": "no vector"}])
    client.insert("c", [{"id": 2, "text": "given", "dense": [0.0, 1.0] + [0.0] * (DIM - 2)}])
    with pytest.raises(heron.ParamError, match="function 'emb' not found"):
        client.drop_collection_function("c", "emb")


def test_functions_and_their_outputs_survive_a_reopen(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        c.create_collection("c", schema=text_schema())
        c.insert("c", rows())
    with heron.Client(path) as c:
        assert [f["name"] for f in c.describe_collection("c")["functions"]] == ["bm", "emb"]
        c.insert("c", rows(["after the reopen"], start=10))
        _assert_outputs_match(c, {**dict(enumerate(TEXTS)), 10: "after the reopen"})
        assert c.search("c", ["reopen"], anns_field="sparse", limit=1)[0][0]["id"] == 10
        c.alter_collection_function("c", "bm", heron.Function("bm", BM, "text", "sparse", "altered"))
        c.drop_collection_function("c", "emb")
    with heron.Client(path) as c:
        functions = c.describe_collection("c")["functions"]
        assert [(f["name"], f["description"]) for f in functions] == [("bm", "altered")]
        c.insert("c", [{"id": 11, "text": "dense given", "dense": dense_of("anything", DIM).tolist()}])
        np.testing.assert_allclose(c.get("c", ids=[11], output_fields=["dense"])[0]["dense"],
                                   dense_of("anything", DIM), rtol=1e-6)


def _schema_with(function: heron.Function, analyzed: bool = True, extra: Any = None) -> heron.CollectionSchema:
    s = heron.CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=analyzed)
    s.add_field("text2", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s.add_field("n", DataType.INT64)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_function(function)
    if extra is not None:
        s.add_function(extra)
    return s


BM = FunctionType.BM25
TE = FunctionType.TEXTEMBEDDING
BAD_SCHEMAS = {
    "input not analyzed": (_schema_with(heron.Function("f", BM, "text", "sparse"), analyzed=False),
                           "input field 'text' must have enable_analyzer=True"),
    "input missing": (_schema_with(heron.Function("f", BM, "nope", "sparse")),
                      "Function input field not found in collection schema: 'nope'"),
    "output missing": (_schema_with(heron.Function("f", BM, "text", "nope")),
                       "Function output field not found in collection schema: 'nope'"),
    "BM25 to a dense field": (_schema_with(heron.Function("f", BM, "text", "dense")),
                              "BM25 function output field must be SPARSE_FLOAT_VECTOR"),
    "BM25 of an INT64": (_schema_with(heron.Function("f", BM, "n", "sparse")),
                         "BM25 function input field must be VARCHAR"),
    "two inputs": (_schema_with(heron.Function("f", BM, ["text", "text2"], "sparse")),
                   "must have exact 1 input and 1 output field"),
    "one output, two functions": (_schema_with(heron.Function("f", BM, "text", "sparse"),
                                               extra=heron.Function("g", BM, "text2", "sparse")),
                                  "function output field 'sparse' is used by multiple functions"),
    "output is the primary key": (_schema_with(heron.Function("f", BM, "text", "id")),
                                  "cannot be the primary key"),
    "embedding to a sparse field": (_schema_with(heron.Function("f", TE, "text", "sparse",
                                                                params={"provider": "hashed"})),
                                    "TextEmbedding function output field must be FLOAT_VECTOR or INT8_VECTOR"),
    "unknown provider": (_schema_with(heron.Function("f", TE, "text", "dense", params={"provider": "nope"})),
                         "unknown provider 'nope'"),
    "a rerank function in a schema": (_schema_with(heron.Function("f", FunctionType.RERANK, "text", "sparse")),
                                      "Unknown function type RERANK"),
}


@pytest.mark.parametrize("case", list(BAD_SCHEMAS))
def test_a_function_that_does_not_fit_the_schema_is_refused_at_create(case, tmp_path):
    schema, phrase = BAD_SCHEMAS[case]
    with heron.Client(str(tmp_path / "db")) as c:
        with pytest.raises(heron.ParamError, match=phrase) as err:
            c.create_collection("c", schema=schema)
        assert err.value.code == 1100
        assert not c.has_collection("c")


def test_function_arguments_are_checked_as_pymilvus_checks_them():
    with pytest.raises(heron.SchemaError, match="Unknown function type"):
        heron.Function("f", 42, "a", "b")
    with pytest.raises(heron.ParamError, match="must be different"):
        heron.Function("f", BM, "a", "a")
    with pytest.raises(heron.ParamError, match="duplicate field names"):
        heron.Function("f", BM, ["a", "a"], "b")
    assert heron.Function("f", "TextEmbedding", "a", "b").type is TE
    assert heron.Function("f", 1, "a", "b").function_type is BM


def test_dynamic_fields_and_nulls_keep_their_rules_beside_functions(client):
    s = text_schema()
    s.enable_dynamic_field = True
    client.create_collection("c", schema=s)
    client.insert("c", [{"id": 1, "text": "red apples", "colour": "red"}, {"id": 2, "text": "green pears", "tag": None}])
    got = {r["id"]: r for r in client.query("c", filter='colour == "red"', output_fields=["text", "colour", "tag"])}
    assert got == {1: {"id": 1, "text": "red apples", "colour": "red", "tag": None}}
    assert client.get("c", ids=[2], output_fields=["tag"])[0]["tag"] is None
    hits = client.search("c", ["apples"], anns_field="sparse", limit=1, filter='colour == "red"', output_fields=["colour"])
    assert hits[0][0]["id"] == 1 and hits[0][0]["entity"]["colour"] == "red"
    with pytest.raises(heron.DataError, match="'text'"):
        client.insert("c", [{"id": 3, "text": None}])
    assert client.query("c", output_fields=["count(*)"])[0]["count(*)"] == 2
