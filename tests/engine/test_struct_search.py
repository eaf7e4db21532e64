"""Embedding-list search over a struct's vector sub-field, checked against a plain-Python oracle.

A query is a list of vectors; a row's score is the sum over them of the
best match among the row's element vectors (MAX_SIM_IP, MAX_SIM_COSINE and
MAX_SIM, which is MAX_SIM_COSINE) or of the smallest squared L2 distance
(MAX_SIM_L2). Null and empty struct lists never match; filters, offsets and
sealed segments behave as in any search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from heron import DataType

DIM = 5


def _oracle(rows: list[dict[str, Any]], query: list[list[float]], metric: str) -> list[tuple[int, float]]:
    def sim(a: list[float], b: list[float]) -> float:
        a_, b_ = np.float64(a), np.float64(b)
        if metric == "MAX_SIM_L2":
            return float(((a_ - b_) ** 2).sum())
        if metric != "MAX_SIM_IP":
            a_, b_ = a_ / np.linalg.norm(a_), b_ / np.linalg.norm(b_)
        return float(a_ @ b_)
    pick = min if metric == "MAX_SIM_L2" else max
    out = []
    for r in rows:
        if r["chunks"]:
            out.append((r["id"], sum(pick(sim(q, e["emb"]) for e in r["chunks"]) for q in query)))
    return sorted(out, key=lambda x: x[1], reverse=metric != "MAX_SIM_L2")


def _rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"id": i, "vec": rng.random(DIM).tolist(), "tag": i % 3,
             "chunks": None if i % 7 == 6 else [{"emb": (rng.random(DIM) - 0.3).tolist(), "w": j}
                                                 for j in range(i % 5)]}
            for i in range(n)]


def _setup(client: Any, rows: list[dict[str, Any]]) -> None:
    st = client.create_struct_field_schema()
    st.add_field("emb", DataType.FLOAT_VECTOR, dim=DIM)
    st.add_field("w", DataType.INT32)
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.INT64)
    s.add_field("chunks", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=st, max_capacity=8,
                nullable=True)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("e", schema=s, index_params=idx)
    client.insert("e", rows)


def _queries(seed: int) -> list[list[list[float]]]:
    rng = np.random.default_rng(seed)
    return [(rng.random((k, DIM)) - 0.3).tolist() for k in (1, 3, 2)]


@pytest.mark.parametrize("metric", ["MAX_SIM", "MAX_SIM_COSINE", "MAX_SIM_IP", "MAX_SIM_L2"])
def test_scores_and_order_match_the_oracle(client: Any, metric: str) -> None:
    rows = _rows(60)
    _setup(client, rows)
    client.flush("e")
    client.insert("e", _rows(90, seed=1)[60:])  # a growing segment beside the sealed one
    every = rows + _rows(90, seed=1)[60:]
    queries = _queries(3)
    res = client.search("e", queries, anns_field="chunks[emb]", limit=7, search_params={"metric_type": metric})
    for q, hits in zip(queries, res):
        want = _oracle(every, q, metric)[:7]
        assert [h["id"] for h in hits] == [i for i, _ in want]
        np.testing.assert_allclose([h["distance"] for h in hits], [s for _, s in want], rtol=1e-4, atol=1e-5)


def test_filter_offset_and_output_fields_apply(client: Any) -> None:
    rows = _rows(50)
    _setup(client, rows)
    q = _queries(5)[1]
    res = client.search("e", [q], anns_field="chunks[emb]", limit=4, filter="tag == 1",
                        search_params={"metric_type": "MAX_SIM_IP", "offset": 2}, output_fields=["tag", "chunks"])
    want = _oracle([r for r in rows if r["tag"] == 1], q, "MAX_SIM_IP")[2:6]
    assert [h["id"] for h in res[0]] == [i for i, _ in want]
    by_id = {r["id"]: r for r in rows}
    for h in res[0]:
        assert h["entity"]["tag"] == 1
        assert [e["w"] for e in h["entity"]["chunks"]] == [e["w"] for e in by_id[h["id"]]["chunks"]]


def test_null_and_empty_struct_lists_never_match(client: Any) -> None:
    rows = _rows(14)
    _setup(client, rows)
    res = client.search("e", _queries(1), anns_field="chunks[emb]", limit=100,
                        search_params={"metric_type": "MAX_SIM_COSINE"})
    matchable = {r["id"] for r in rows if r["chunks"]}
    assert all({h["id"] for h in hits} == matchable for hits in res)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"search_params": {"metric_type": "L2"}}, heron.ParamError, "MAX_SIM_L2"),
    ({"anns_field": "chunks[w]"}, heron.ParamError, r"chunks\[emb\]"),
    ({"anns_field": "chunks[nope]"}, heron.ParamError, "struct"),
    ({"data": [[0.5] * DIM]}, heron.DataError, "EmbeddingList"),
    ({"data": [[[0.5] * (DIM + 1)]]}, heron.DataError, f"dim {DIM}"),
    ({"data": [[[float("nan")] * DIM]]}, heron.DataError, "NaN"),
    ({"group_by_field": "tag"}, heron.ParamError, "group_by_field"),
])
def test_bad_embedding_list_searches_are_refused(client: Any, kwargs: dict[str, Any], error: type,
                                                 message: str) -> None:
    _setup(client, _rows(10))
    args: dict[str, Any] = {"data": _queries(0), "anns_field": "chunks[emb]", "limit": 3,
                            "search_params": {"metric_type": "MAX_SIM_IP"}, **kwargs}
    with pytest.raises(error, match=message):
        client.search("e", **args)


def test_an_index_on_the_sub_field_sets_the_metric_and_survives_a_reopen(client: Any) -> None:
    rows = _rows(40)
    _setup(client, rows)
    client.create_index("e", client.prepare_index_params("chunks[emb]", index_type="EMB_LIST_HNSW",
                                                         metric_type="MAX_SIM_L2", params={"M": 16}))
    assert "chunks[emb]" in client.list_indexes("e")
    assert client.describe_index("e", "chunks[emb]")["metric_type"] == "MAX_SIM_L2"
    client.flush("e")
    q = _queries(9)
    res = client.search("e", q, anns_field="chunks[emb]", limit=5)
    for query, hits in zip(q, res):
        assert [h["id"] for h in hits] == [i for i, _ in _oracle(rows, query, "MAX_SIM_L2")[:5]]
    with pytest.raises(heron.ParamError, match="does not match the index"):
        client.search("e", q, anns_field="chunks[emb]", limit=5, search_params={"metric_type": "MAX_SIM_IP"})
    with pytest.raises(heron.ParamError, match="metric_type one of"):
        client.create_index("e", client.prepare_index_params("chunks[emb]", index_type="HNSW", metric_type="L2",
                                                             index_name="other"))


def test_hybrid_search_fuses_an_embedding_list_request_with_a_vector_one(client: Any) -> None:
    rows = _rows(40)
    _setup(client, rows)
    q = _queries(4)[1]
    vq = np.random.default_rng(2).random(DIM).tolist()
    reqs = [heron.AnnSearchRequest([q], "chunks[emb]", {"metric_type": "MAX_SIM_IP"}, 10),
            heron.AnnSearchRequest([vq], "vec", {"metric_type": "L2"}, 10)]
    res = client.hybrid_search("e", reqs, heron.RRFRanker(60), limit=5)
    ranks: dict[int, float] = {}
    by_list = [i for i, _ in _oracle(rows, q, "MAX_SIM_IP")[:10]]
    by_vec = sorted(rows, key=lambda r: float(((np.float32(r["vec"]) - np.float32(vq)) ** 2).sum()))[:10]
    for ids in (by_list, [r["id"] for r in by_vec]):
        for rank, i in enumerate(ids):
            ranks[i] = ranks.get(i, 0.0) + 1 / (60 + rank + 1)
    want = sorted(ranks.items(), key=lambda x: -x[1])[:5]
    np.testing.assert_allclose([h["distance"] for h in res[0]], [s for _, s in want], rtol=1e-6)
    for h in res[0]:  # ties may come in either order; each hit scores what the oracle gives its id
        assert ranks[h["id"]] == pytest.approx(h["distance"], rel=1e-6)


def test_a_struct_field_dropped_and_added_again_is_searched_with_its_new_values(client: Any) -> None:
    rows = _rows(20)
    _setup(client, rows)
    client.flush("e")
    q = _queries(2)
    assert client.search("e", q, anns_field="chunks[emb]", limit=3, search_params={"metric_type": "MAX_SIM_IP"})[0]
    client.drop_collection_field("e", "chunks")
    st = client.create_struct_field_schema()
    st.add_field("emb", DataType.FLOAT_VECTOR, dim=DIM)
    client.add_collection_struct_field("e", "chunks", st, max_capacity=2)
    res = client.search("e", q, anns_field="chunks[emb]", limit=3, search_params={"metric_type": "MAX_SIM_IP"})
    assert res == [[], [], []] or all(not hits for hits in res)
    client.insert("e", [{"id": 100, "vec": [0.0] * DIM, "tag": 0, "chunks": [{"emb": [1.0] * DIM}]}])
    res = client.search("e", q, anns_field="chunks[emb]", limit=3, search_params={"metric_type": "MAX_SIM_IP"})
    assert [[h["id"] for h in hits] for hits in res] == [[100]] * 3
