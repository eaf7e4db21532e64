"""run_analyzer and analyzed VARCHAR fields through every client: both Heron clients, and pymilvus against heron serve."""

from __future__ import annotations

from typing import Any

import pytest

import heron
from heron import DataType
from heron.engine.functions._analyzer import build_analyzer
from tests.conftest import require_module


@pytest.fixture
def server(wiped_server):
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


pm = require_module("pymilvus")

TEXTS = ["The Milvus vector database is built for scale!", "Café déjà vu, don't RUN", "", "北京 hello_world 3.14"]
ANALYZERS: list[Any] = [
    None,
    {"type": "standard"},
    {"type": "english"},
    {"type": "whitespace"},
    {"tokenizer": "standard", "filter": ["lowercase", "asciifolding", {"type": "length", "max": 5}]},
    '{"tokenizer": "whitespace", "filter": [{"type": "stop", "stop_words": ["_english_", "The"]}]}',
]


def _text_schema(api: Any) -> Any:
    schema = api.create_schema() if hasattr(api, "create_schema") else heron.CollectionSchema()
    schema.add_field("id", DataType.INT64 if api is heron else pm.DataType.INT64, is_primary=True)
    vec = DataType.FLOAT_VECTOR if api is heron else pm.DataType.FLOAT_VECTOR
    varchar = DataType.VARCHAR if api is heron else pm.DataType.VARCHAR
    schema.add_field("v", vec, dim=2)
    schema.add_field("t", varchar, max_length=200, enable_analyzer=True, enable_match=True,
                     analyzer_params={"type": "english"})
    schema.add_field("plain", varchar, max_length=20)
    return schema


def test_run_analyzer_gives_the_analyzer_tokens(client: Any) -> None:
    for params in ANALYZERS:
        expected = build_analyzer(params).tokenize_many(TEXTS)
        results = client.run_analyzer(TEXTS, params) if params is not None else client.run_analyzer(TEXTS)
        assert [r.tokens for r in results] == expected, params
    one = client.run_analyzer("Running dogs", analyzer_params={"type": "english"})
    assert one.tokens == ["run", "dog"]


def test_run_analyzer_details_and_hashes(client: Any) -> None:
    res = client.run_analyzer("é Ab", with_detail=True, with_hash=True)
    assert [t.dict for t in res.tokens] == [
        {"token": "é", "start_offset": 0, "end_offset": 2, "position": 0, "position_length": 1,
         "hash": heron.engine.functions._analyzer.token_hash("é")},
        {"token": "ab", "start_offset": 3, "end_offset": 5, "position": 1, "position_length": 1,
         "hash": heron.engine.functions._analyzer.token_hash("ab")},
    ]
    assert res.tokens[1]["token"] == "ab" and res.tokens[1].position == 1
    hashed = client.run_analyzer(["a b"], with_hash=True)[0]
    assert set(hashed.tokens[0].dict) == {"token", "hash"}


def test_a_fields_analyzer_and_its_description(client: Any) -> None:
    client.create_collection("docs", schema=_text_schema(heron))
    res = client.run_analyzer(["The runners ran"], collection_name="docs", field_name="t")
    assert res[0].tokens == ["runner", "ran"]
    params = next(f for f in client.describe_collection("docs")["fields"] if f["name"] == "t")["params"]
    assert params == {"max_length": 200, "enable_analyzer": "true", "enable_match": "true",
                      "analyzer_params": '{"type":"english"}'}
    with pytest.raises(heron.ParamError, match="'plain'"):
        client.run_analyzer(["x"], collection_name="docs", field_name="plain")
    with pytest.raises(heron.ParamError, match="'nope'"):
        client.run_analyzer(["x"], collection_name="docs", field_name="nope")


def test_bad_analyzers_are_refused(client: Any) -> None:
    with pytest.raises(heron.ParamError, match="'bogus'"):
        client.run_analyzer(["x"], {"type": "bogus"})
    with pytest.raises(heron.ParamError, match="'klingon'"):
        client.run_analyzer(["x"], {"tokenizer": "standard", "filter": [{"type": "stemmer", "language": "klingon"}]})
    schema = heron.CollectionSchema()
    schema.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("t", DataType.VARCHAR, max_length=20, enable_analyzer=True, analyzer_params={"type": "nope"})
    with pytest.raises(heron.SchemaError, match="'t'.*'nope'"):
        client.create_collection("bad", schema=schema)
    assert not client.has_collection("bad")
    for kwargs in ({"enable_match": True}, {"enable_analyzer": True}, {"analyzer_params": {"type": "english"}}):
        schema = heron.CollectionSchema()
        schema.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
        schema.add_field("n", DataType.INT64, **kwargs)
        with pytest.raises(heron.SchemaError, match=f"'n'.*{next(iter(kwargs))}.*VARCHAR"):
            client.create_collection("bad", schema=schema)
    schema = heron.CollectionSchema()
    schema.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("t", DataType.VARCHAR, max_length=20, enable_match="maybe")
    with pytest.raises(heron.SchemaError, match="'t'.*enable_match 'maybe'"):
        client.create_collection("bad", schema=schema)


def test_pymilvus_run_analyzer_and_schema_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        for params in ANALYZERS:
            expected = build_analyzer(params).tokenize_many(TEXTS)
            results = mc.run_analyzer(TEXTS, analyzer_params=params)
            assert [list(r.tokens) for r in results] == expected, params
        detailed = mc.run_analyzer("é Ab", with_detail=True, with_hash=True)
        assert [(t.token, t.start_offset, t.end_offset, t.position) for t in detailed.tokens] == [
            ("é", 0, 2, 0), ("ab", 3, 5, 1)]
        mc.create_collection("docs", schema=_text_schema(pm.MilvusClient))
        field = next(f for f in mc.describe_collection("docs")["fields"] if f["name"] == "t")
        assert field["params"]["enable_analyzer"] is True or field["params"]["enable_analyzer"] == "true"
        assert field["params"]["analyzer_params"] in ('{"type":"english"}', {"type": "english"})
        res = mc.run_analyzer(["The runners ran"], collection_name="docs", field_name="t")
        assert list(res[0].tokens) == ["runner", "ran"]
        with pytest.raises(pm.MilvusException, match="bogus"):
            mc.run_analyzer(["x"], analyzer_params={"type": "bogus"})
        # The schema pymilvus reads back makes the same collection again (create is idempotent).
        described = mc.describe_collection("docs")
        with heron.Client(server.uri) as hc:
            again = next(f for f in hc.describe_collection("docs")["fields"] if f["name"] == "t")
            assert again["params"]["analyzer_params"] == '{"type":"english"}'
        assert described["fields"][2]["name"] == "t"
    finally:
        mc.close()


MULTI = {"analyzers": {"english": {"type": "english"}, "default": {"type": "whitespace"}},
         "by_field": "lang", "alias": {"en": "english"}}


def _multi_schema(multi: Any, **extra: Any) -> heron.CollectionSchema:
    schema = heron.CollectionSchema()
    schema.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("lang", DataType.VARCHAR, max_length=10)
    schema.add_field("t", DataType.VARCHAR, max_length=200, enable_analyzer=True, multi_analyzer_params=multi,
                     **extra)
    return schema


def test_multi_analyzer_fields_and_analyzer_names(client: Any) -> None:
    client.create_collection("m", schema=_multi_schema(MULTI))
    texts = ["The Runners ran", "The Runners ran"]
    one = client.run_analyzer(texts, collection_name="m", field_name="t", analyzer_names="en")
    assert [r.tokens for r in one] == [["runner", "ran"]] * 2
    each = client.run_analyzer(texts, collection_name="m", field_name="t", analyzer_names=["english", "nope"])
    assert [r.tokens for r in each] == [["runner", "ran"], ["The", "Runners", "ran"]]
    default = client.run_analyzer(texts[:1], collection_name="m", field_name="t")
    assert default[0].tokens == ["The", "Runners", "ran"]
    with pytest.raises(heron.ParamError, match="analyzer_names"):
        client.run_analyzer(texts, collection_name="m", field_name="t", analyzer_names=["en", "en", "en"])
    params = next(f for f in client.describe_collection("m")["fields"] if f["name"] == "t")["params"]
    assert json_of(params["multi_analyzer_params"]) == MULTI


def json_of(raw: Any) -> Any:
    import json

    return json.loads(raw) if isinstance(raw, str) else raw


@pytest.mark.parametrize(("multi", "extra", "phrase"), [
    ({**MULTI, "by_field": "nope"}, {}, "'nope'"),
    ({**MULTI, "by_field": "t"}, {}, "by_field"),
    ({"analyzers": {"english": {"type": "english"}}, "by_field": "lang"}, {}, "'default'"),
    ({**MULTI, "alias": {"x": "klingon"}}, {}, "alias"),
    ({**MULTI, "analyzers": {"english": {}, "default": {"type": "bogus"}}}, {}, "'bogus'"),
    ({**MULTI, "colour": 1}, {}, "'colour'"),
    (MULTI, {"enable_match": True}, "enable_match"),
    (MULTI, {"analyzer_params": {"type": "english"}}, "not both"),
])
def test_bad_multi_analyzer_params_are_refused(client: Any, multi: Any, extra: dict, phrase: str) -> None:
    with pytest.raises(heron.SchemaError, match=phrase):
        client.create_collection("bad", schema=_multi_schema(multi, **extra))
    assert not client.has_collection("bad")


def test_pymilvus_multi_analyzer_field_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        schema = mc.create_schema()
        schema.add_field("id", pm.DataType.INT64, is_primary=True)
        schema.add_field("v", pm.DataType.FLOAT_VECTOR, dim=2)
        schema.add_field("lang", pm.DataType.VARCHAR, max_length=10)
        schema.add_field("t", pm.DataType.VARCHAR, max_length=200, enable_analyzer=True, multi_analyzer_params=MULTI)
        mc.create_collection("m", schema=schema)
        res = mc.run_analyzer(["The Runners ran"], collection_name="m", field_name="t", analyzer_names=["en"])
        assert list(res[0].tokens) == ["runner", "ran"]
        field = next(f for f in mc.describe_collection("m")["fields"] if f["name"] == "t")
        assert json_of(field["params"]["multi_analyzer_params"]) == MULTI
    finally:
        mc.close()
