"""langchain-milvus's vector store, unchanged, against ``heron serve``.

The store is used as its documentation shows: add texts with metadata,
similarity search (with a filter expression), MMR, delete by ids and by
expression, dynamic fields, a partition key, array metadata and several
vector fields searched together with a ranker, through both the blocking and
the asyncio methods. Scenarios that an open Heron bug fails also run against
Milvus Lite (a local ``.db`` path), the reference, so the expected failure
is known to be Heron's and not the test's. Embeddings are langchain_core's
`DeterministicFakeEmbedding`: the same text always gives the same vector, so
searching with a stored text finds that text first, and nothing is downloaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, require_module

langchain_milvus = require_module("langchain_milvus")
embeddings_mod = require_module("langchain_core.embeddings")
pymilvus = require_module("pymilvus")

DIM = 16
TEXTS = [f"document number {i} about {topic}" for i, topic in enumerate(["cats", "dogs", "birds"] * 4)]
SOURCES = ["a", "b", "c"] * 4


def embedding(seed: int = 0) -> Any:
    return embeddings_mod.DeterministicFakeEmbedding(size=DIM + seed)


@pytest.fixture
def uri(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> str:
    """``heron serve``, unless a test asks for Milvus Lite (a local ``.db`` path) as well."""
    return server.uri if getattr(request, "param", "heron") == "heron" else str(tmp_path / "lite.db")


#: Heron and Milvus Lite, the reference.
WITH_LITE = pytest.mark.parametrize(
    "uri", ["heron", "milvus-lite"], indirect=True
)


@pytest.fixture
def make_store(uri: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Build ``langchain_milvus.Milvus`` stores on a collection named for the test; drop them after."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        name = f"lc_{request.node.originalname}"
        kwargs.setdefault("embedding_function", embedding())
        store = langchain_milvus.Milvus(
            collection_name=f"{name}_{len(made)}",
            connection_args={"uri": uri},
            drop_old=True,
            **kwargs,
        )
        made.append(store)
        return store

    yield make
    for store in made:
        if store.client.has_collection(store.collection_name):
            store.client.drop_collection(store.collection_name)


def _ids(n: int = len(TEXTS)) -> list[str]:
    return [f"id{i}" for i in range(n)]


def _metadatas() -> list[dict[str, Any]]:
    return [{"source": s, "n": i} for i, s in enumerate(SOURCES)]


def _count(store: Any, expr: str = "") -> int:
    rows = store.client.query(store.collection_name, filter=expr, output_fields=["count(*)"])
    return int(rows[0]["count(*)"])


# -- blocking API ----------------------------------------------------------------------------


def test_add_texts_and_search_with_filter(make_store):
    store = make_store()
    assert store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids()) == _ids()
    assert _count(store) == len(TEXTS)
    top = store.similarity_search(TEXTS[4], k=3)
    assert top[0].page_content == TEXTS[4]
    assert top[0].metadata["source"] == SOURCES[4] and top[0].metadata["pk"] == "id4"
    filtered = store.similarity_search(TEXTS[4], k=10, expr='source == "c"')
    assert {d.metadata["source"] for d in filtered} == {"c"}
    assert sorted(d.metadata["n"] for d in filtered) == [2, 5, 8, 11]
    scored = store.similarity_search_with_score(TEXTS[7], k=2, expr="n >= 6")
    assert scored[0][0].page_content == TEXTS[7]
    assert scored[0][1] == pytest.approx(0.0, abs=1e-4)  # L2 distance to itself
    assert all(doc.metadata["n"] >= 6 for doc, _ in scored)


def test_max_marginal_relevance(make_store):
    store = make_store()
    store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
    docs = store.max_marginal_relevance_search(TEXTS[2], k=3, fetch_k=8, lambda_mult=0.5)
    assert len(docs) == 3 and docs[0].page_content == TEXTS[2]
    assert len({d.page_content for d in docs}) == 3
    only_b = store.max_marginal_relevance_search(TEXTS[1], k=2, fetch_k=4, expr='source == "b"')
    assert [d.metadata["source"] for d in only_b] == ["b", "b"]
    assert only_b[0].page_content == TEXTS[1]
    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 1, "fetch_k": 4})
    assert retriever.invoke(TEXTS[9])[0].page_content == TEXTS[9]


def test_delete_by_ids_and_by_expr(make_store):
    store = make_store()
    store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
    assert store.delete(ids=["id0", "id1"]) is True
    assert _count(store) == len(TEXTS) - 2
    assert _count(store, 'pk in ["id0", "id1"]') == 0
    assert store.delete(expr='source == "c"') is True
    left = store.search_by_metadata("n >= 0", limit=100)
    assert sorted(d.metadata["n"] for d in left) == [3, 4, 6, 7, 9, 10]
    assert store.similarity_search(TEXTS[0], k=1)[0].page_content != TEXTS[0]


def test_upsert_replaces_documents(make_store):
    docs_mod = require_module("langchain_core.documents")
    store = make_store()
    store.add_texts(TEXTS[:3], metadatas=_metadatas()[:3], ids=_ids(3))
    store.upsert(ids=["id1"], documents=[docs_mod.Document(page_content="replaced", metadata={"source": "z", "n": 99})])
    assert _count(store) == 3
    [doc] = store.search_by_metadata('pk == "id1"')
    assert doc.page_content == "replaced" and doc.metadata["source"] == "z" and doc.metadata["n"] == 99


def test_partition_key_from_metadata_schema(make_store):
    store = make_store(
        metadata_schema={
            "tenant": {"dtype": pymilvus.DataType.VARCHAR, "kwargs": {"max_length": 64, "is_partition_key": True}},
        },
        num_partitions=4,
    )
    tenants = ["t1", "t2", "t3"] * 4
    store.add_texts(TEXTS, metadatas=[{"tenant": t} for t in tenants], ids=_ids())
    fields = {f["name"]: f for f in store.client.describe_collection(store.collection_name)["fields"]}
    assert fields["tenant"].get("is_partition_key") is True
    hits = store.similarity_search(TEXTS[4], k=12, expr='tenant == "t2"')
    assert hits[0].page_content == TEXTS[4]
    assert {d.metadata["tenant"] for d in hits} == {"t2"} and len(hits) == 4


def test_array_metadata_fields(make_store):
    store = make_store(
        metadata_schema={
            "tags": {
                "dtype": pymilvus.DataType.ARRAY,
                "kwargs": {"element_type": pymilvus.DataType.VARCHAR, "max_capacity": 8, "max_length": 32},
            },
            "scores": {
                "dtype": pymilvus.DataType.ARRAY,
                "kwargs": {"element_type": pymilvus.DataType.INT64, "max_capacity": 8},
            },
        }
    )
    metas = [{"tags": ["even" if i % 2 == 0 else "odd", f"t{i}"], "scores": [i, i * 10]} for i in range(len(TEXTS))]
    store.add_texts(TEXTS, metadatas=metas, ids=_ids())
    hits = store.similarity_search(TEXTS[6], k=20, expr='array_contains(tags, "even")')
    assert hits[0].page_content == TEXTS[6] and hits[0].metadata["tags"] == ["even", "t6"]
    assert sorted(d.metadata["scores"][0] for d in hits) == [0, 2, 4, 6, 8, 10]
    big = store.search_by_metadata("scores[1] >= 90", limit=20)
    assert sorted(d.metadata["scores"][0] for d in big) == [9, 10, 11]


@pytest.mark.parametrize(
    ("ranker_type", "ranker_params"),
    [("rrf", {"k": 60}), ("weighted", {"weights": [0.3, 0.7]}), (None, {})],
)
def test_multi_vector_with_ranker(make_store, ranker_type, ranker_params):
    store = make_store(
        embedding_function=[embedding(0), embedding(8)],
        vector_field=["dense_a", "dense_b"],
    )
    store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
    fields = {f["name"] for f in store.client.describe_collection(store.collection_name)["fields"]}
    assert {"dense_a", "dense_b"} <= fields
    hits = store.similarity_search_with_score(
        TEXTS[5], k=4, ranker_type=ranker_type, ranker_params=ranker_params
    )
    assert len(hits) == 4 and hits[0][0].page_content == TEXTS[5]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    filtered = store.similarity_search(TEXTS[5], k=4, expr='source == "a"', ranker_type=ranker_type,
                                       ranker_params=ranker_params)
    assert {d.metadata["source"] for d in filtered} == {"a"}


def test_multi_vector_with_rerank_function(make_store):
    store = make_store(embedding_function=[embedding(0), embedding(8)], vector_field=["dense_a", "dense_b"])
    store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
    rrf = pymilvus.Function(
        name="rrf",
        input_field_names=[],
        function_type=pymilvus.FunctionType.RERANK,
        params={"reranker": "rrf", "k": 60},
    )
    hits = store.similarity_search(TEXTS[5], k=4, reranker=rrf)
    assert len(hits) == 4 and hits[0].page_content == TEXTS[5]


@WITH_LITE
def test_dynamic_fields(make_store):
    store = make_store(enable_dynamic_field=True)
    metas = [{"source": s, "n": i, "tags": [s, "x"], "extra": {"k": i}} for i, s in enumerate(SOURCES)]
    store.add_texts(TEXTS, metadatas=metas, ids=_ids())
    hits = store.similarity_search(TEXTS[3], k=12, expr='source == "a" and n > 0')
    assert hits[0].page_content == TEXTS[3]
    assert sorted(d.metadata["n"] for d in hits) == [3, 6, 9]
    assert hits[0].metadata["tags"] == ["a", "x"] and hits[0].metadata["extra"] == {"k": 3}


@WITH_LITE
def test_partition_key_with_dynamic_fields(make_store):
    store = make_store(enable_dynamic_field=True, partition_key_field="namespace")
    metas = [{"namespace": f"ns{i % 2}", "n": i} for i in range(len(TEXTS))]
    store.add_texts(TEXTS, metadatas=metas, ids=_ids())
    hits = store.similarity_search(TEXTS[1], k=12, expr='namespace == "ns1"')
    assert hits[0].page_content == TEXTS[1] and len(hits) == 6


# -- asyncio API -----------------------------------------------------------------------------


def test_async_add_search_mmr_delete(make_store):
    store = make_store()

    async def scenario() -> None:
        assert await store.aadd_texts(TEXTS, metadatas=_metadatas(), ids=_ids()) == _ids()
        top = await store.asimilarity_search(TEXTS[8], k=2)
        assert top[0].page_content == TEXTS[8]
        filtered = await store.asimilarity_search_with_score(TEXTS[8], k=10, expr='source == "b"')
        assert sorted(d.metadata["n"] for d, _ in filtered) == [1, 4, 7, 10]
        mmr = await store.amax_marginal_relevance_search(TEXTS[0], k=3, fetch_k=6)
        assert mmr[0].page_content == TEXTS[0] and len({d.page_content for d in mmr}) == 3
        assert await store.adelete(ids=["id8"]) is True
        assert await store.adelete(expr="n < 3") is True
        after = await store.asimilarity_search(TEXTS[8], k=12)
        assert sorted(d.metadata["n"] for d in after) == [3, 4, 5, 6, 7, 9, 10, 11]

    asyncio.run(scenario())


def test_async_multi_vector_with_ranker(make_store):
    store = make_store(embedding_function=[embedding(0), embedding(8)], vector_field=["dense_a", "dense_b"])

    async def scenario() -> None:
        await store.aadd_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
        hits = await store.asimilarity_search(TEXTS[10], k=3, ranker_type="rrf", ranker_params={"k": 10})
        assert hits[0].page_content == TEXTS[10]

    asyncio.run(scenario())


@WITH_LITE
def test_async_dynamic_fields(make_store):
    store = make_store(enable_dynamic_field=True)

    async def scenario() -> None:
        await store.aadd_texts(TEXTS, metadatas=[{"lang": "en", "n": i} for i in range(len(TEXTS))], ids=_ids())
        hits = await store.asimilarity_search(TEXTS[2], k=3, expr='lang == "en" and n < 3')
        assert hits[0].page_content == TEXTS[2] and {d.metadata["n"] for d in hits} == {0, 1, 2}

    asyncio.run(scenario())


# -- full-text search: langchain-milvus's BM25BuiltInFunction ----------------------------------------------
# Heron only: Milvus Lite refuses the store's default index for the BM25 field (AUTOINDEX with metric BM25,
# "requires SPARSE_INVERTED_INDEX"), which the Milvus server takes.


def test_bm25_builtin_function_alone_searches_by_words(make_store):
    store = make_store(embedding_function=None, builtin_function=langchain_milvus.BM25BuiltInFunction(),
                       vector_field="sparse")
    store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
    docs = store.similarity_search("dogs", k=4)
    assert {d.page_content for d in docs} == {t for t in TEXTS if t.endswith("dogs")}
    assert store.similarity_search("number 7", k=1)[0].page_content == TEXTS[7]


def test_bm25_builtin_function_beside_a_dense_field_searches_hybrid(make_store):
    store = make_store(builtin_function=langchain_milvus.BM25BuiltInFunction(output_field_names="sparse"),
                       vector_field=["dense", "sparse"])
    store.add_texts(TEXTS, metadatas=_metadatas(), ids=_ids())
    top = store.similarity_search(TEXTS[5], k=3, ranker_type="rrf", ranker_params={"k": 60})
    assert top[0].page_content == TEXTS[5]
    weighted = store.similarity_search(TEXTS[10], k=2, ranker_type="weighted", ranker_params={"weights": [0.5, 0.5]})
    assert weighted[0].page_content == TEXTS[10]
    # An explicit ranker each time: the store adds its BM25 field to its own list of vector fields on every
    # search, so its default WeightedRanker soon has more weights than requests (Milvus refuses that too).
    filtered = store.similarity_search("birds", k=10, expr='source == "c"', ranker_type="rrf")
    assert {d.page_content for d in filtered} == {t for t, s in zip(TEXTS, SOURCES) if s == "c"}
