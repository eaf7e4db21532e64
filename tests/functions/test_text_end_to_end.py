"""Text in, text out, with the real functions: BM25 and the local all-MiniLM-L6-v2 embedding.

One schema with both functions, rows given as text only, search by text on
each output field, hybrid search by text, and ``text_match``: through both
Heron clients (embedded and served) and through pymilvus against ``heron
serve``. Then the bad input of the issue: a function whose input is not an
analyzed VARCHAR, an output field given by the user, an unknown provider or
analyzer, a provider that fails mid-batch; each a clear error, nothing written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from tests.conftest import require_module

require_module("tokenizers")
require_module("safetensors")

DataType = heron.DataType
DIM = 384
DOCS = [
    "Grey herons wade in shallow water to catch fish",
    "The stock market fell sharply on Monday",
    "A recipe for lemon cake with a crisp sugar crust",
    "Herons and egrets nest together in tall trees",
    "Interest rates and the bond market moved together",
    "The football match ended in a draw after extra time",
]


def _schema(module: Any, provider: dict[str, Any] | None = None) -> Any:
    s = module.MilvusClient.create_schema() if module is not heron else heron.CollectionSchema()
    s.add_field("id", DataType.INT64 if module is heron else module.DataType.INT64, is_primary=True)
    types = DataType if module is heron else module.DataType
    s.add_field("text", types.VARCHAR, max_length=1000, enable_analyzer=True, enable_match=True)
    s.add_field("words", types.SPARSE_FLOAT_VECTOR)
    s.add_field("meaning", types.FLOAT_VECTOR, dim=DIM)
    s.add_function(module.Function("bm25", module.FunctionType.BM25, input_field_names=["text"],
                                   output_field_names=["words"]))
    s.add_function(module.Function("embed", module.FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                                   output_field_names=["meaning"], params=provider or {"provider": "local"}))
    return s


def _index(client: Any) -> Any:
    idx = client.prepare_index_params()
    idx.add_index("words", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    idx.add_index("meaning", index_type="AUTOINDEX", metric_type="COSINE")
    return idx


def _search_by_text(client: Any, module: Any) -> None:
    client.create_collection("docs", schema=_schema(module), index_params=_index(client))
    assert client.insert("docs", [{"id": i, "text": t} for i, t in enumerate(DOCS)])["insert_count"] == len(DOCS)
    words = client.search("docs", ["herons"], anns_field="words", limit=5, output_fields=["text"])
    assert {h["id"] for h in words[0]} == {0, 3}  # only rows holding the word score
    market = client.search("docs", ["market", "cake recipe"], anns_field="words", limit=2)
    assert {h["id"] for h in market[0]} == {1, 4} and market[1][0]["id"] == 2
    meaning = client.search("docs", ["birds catching fish in a lake"], anns_field="meaning", limit=1)
    assert meaning[0][0]["id"] == 0
    soccer = client.search("docs", ["soccer game result"], anns_field="meaning", limit=1)
    assert soccer[0][0]["id"] == 5
    reqs = [module.AnnSearchRequest(["heron nest"], "words", {"metric_type": "BM25"}, 4),
            module.AnnSearchRequest(["where do wading birds breed"], "meaning", {"metric_type": "COSINE"}, 4)]
    fused = client.hybrid_search("docs", reqs, module.RRFRanker(), limit=2, output_fields=["text"])
    assert fused[0][0]["id"] == 3 and fused[0][0]["entity"]["text"] == DOCS[3]
    matched = client.query("docs", filter='text_match(text, "market")', output_fields=["id"])
    assert sorted(r["id"] for r in matched) == [1, 4]
    stored = client.get("docs", ids=[0], output_fields=["meaning"])[0]["meaning"]
    query = client.search("docs", [DOCS[0]], anns_field="meaning", limit=1)[0][0]
    assert len(stored) == DIM and query["id"] == 0 and query["distance"] == pytest.approx(1.0, abs=1e-4)


def test_both_heron_clients_search_text_by_words_and_by_meaning(client):
    _search_by_text(client, heron)


def test_pymilvus_against_heron_serve_searches_text(start_server):
    pm = require_module("pymilvus")
    c = pm.MilvusClient(start_server().uri)
    try:
        _search_by_text(c, pm)
        tokens = c.run_analyzer("Grey Herons WADE", analyzer_params={"type": "standard"})
        assert list(tokens.tokens if hasattr(tokens, "tokens") else tokens) == ["grey", "herons", "wade"]
    finally:
        c.close()


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path) -> Any:
    with heron.Client(str(tmp_path / "db")) as c:
        yield c


def _bad_schema(**text: Any) -> heron.CollectionSchema:
    s = heron.CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=1000, **text)
    s.add_field("words", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(heron.Function("bm25", heron.FunctionType.BM25, ["text"], ["words"]))
    return s


def test_bad_function_definitions_are_refused_and_create_nothing(local):
    with pytest.raises(heron.SchemaError, match="input field 'text' must have enable_analyzer=True"):
        local.create_collection("c", schema=_bad_schema())
    with pytest.raises(heron.ParamError, match="nope"):
        local.create_collection("c", schema=_bad_schema(enable_analyzer=True, analyzer_params={"type": "nope"}))
    with pytest.raises(heron.ParamError, match="provider"):
        local.create_collection("c", schema=_schema(heron, {"provider": "nope"}))
    assert local.list_collections() == []


def test_an_output_field_given_by_the_user_is_refused(local):
    local.create_collection("c", schema=_bad_schema(enable_analyzer=True))
    with pytest.raises(heron.DataError, match="unexpected function output field `words`"):
        local.insert("c", [{"id": 1, "text": "a b", "words": {3: 1.0}}])
    assert local.query("c", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_a_provider_failing_mid_batch_writes_nothing(local):
    calls: list[int] = []

    def flaky(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        if len(calls) == 2:
            raise ConnectionError("the embedding service went away")
        return np.ones((len(texts), 8), dtype=np.float32)

    heron.register_embedding_function("flaky", flaky)
    try:
        s = heron.CollectionSchema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=100)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=8)
        s.add_function(heron.Function("e", heron.FunctionType.TEXTEMBEDDING, ["text"], ["v"],
                                      params={"provider": "callable", "name": "flaky", "batch_size": 2}))
        local.create_collection("c", schema=s)
        with pytest.raises(heron.HeronError, match="the embedding service went away"):
            local.insert("c", [{"id": i, "text": f"text {i}"} for i in range(5)])
        assert len(calls) == 2
        assert local.query("c", output_fields=["count(*)"])[0]["count(*)"] == 0
        assert local.insert("c", [{"id": 9, "text": "fine"}])["insert_count"] == 1
    finally:
        heron.register_embedding_function("flaky", None)


def test_bm25_outputs_and_rankings_agree_with_milvus_lite(start_server, tmp_path):
    """The same pymilvus program against Milvus Lite and heron serve: equal sparse outputs, equal rankings.

    Scores differ a little and only in size (Milvus Lite reports BM25 scores negated, and keeps its
    statistics per segment), so the comparison is of the hits' order.
    """
    pm = require_module("pymilvus")
    require_module("milvus_lite")
    from tests.server.test_milvus_lite_interop import start_milvus_lite

    lite = start_milvus_lite(str(tmp_path / "lite"))
    answers = []
    try:
        for uri in (f"http://127.0.0.1:{lite.port}", start_server().uri):
            c = pm.MilvusClient(uri)
            s = c.create_schema()
            s.add_field("id", pm.DataType.INT64, is_primary=True)
            s.add_field("text", pm.DataType.VARCHAR, max_length=1000, enable_analyzer=True)
            s.add_field("sparse", pm.DataType.SPARSE_FLOAT_VECTOR)
            s.add_function(pm.Function("bm", pm.FunctionType.BM25, ["text"], ["sparse"]))
            idx = c.prepare_index_params()
            idx.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
            c.create_collection("c", schema=s, index_params=idx)
            c.insert("c", [{"id": i, "text": t} for i, t in enumerate(DOCS)])
            stored = {r["id"]: r["sparse"] for r in c.query("c", filter="id >= 0", output_fields=["sparse"])}
            hits = c.search("c", ["herons market", "cake", "the bond"], anns_field="sparse", limit=3)
            answers.append((stored, [[h["id"] for h in q] for q in hits],
                            [[abs(h["distance"]) for h in q] for q in hits]))
            c.close()
    finally:
        lite.proc.kill()
        lite.proc.wait(10)
    (lite_stored, lite_ids, lite_scores), (ours_stored, our_ids, our_scores) = answers
    assert ours_stored == lite_stored
    for theirs, ours, scores in zip(lite_ids, our_ids, our_scores):
        tied = {i for i, s in zip(ours, scores) if s == pytest.approx(scores[0], rel=1e-6)}
        assert ours[0] in tied and theirs[0] in tied
        assert set(theirs) == set(ours)
    for theirs, ours in zip(lite_scores, our_scores):
        assert ours == pytest.approx(theirs, rel=0.05)
