"""pymilvus 3's search(ids=...), search_iterator(external_filter_func=...) and compact's options,
through both Heron clients (embedded and served) and pymilvus against heron serve."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import heron
import heron.client._async_session
from tests.conftest import make_collection, require_module


@pytest.fixture
def server(wiped_server):
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


pm = require_module("pymilvus")

DIM = 8


def _random_collection(c: Any, n: int = 200, seed: int = 7) -> np.ndarray:
    vecs = np.random.default_rng(seed).random((n, DIM), dtype=np.float32)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_collection("c", schema=_schema(c), index_params=idx)
    c.insert("c", [{"id": i, "vec": vecs[i].tolist(), "n": i % 7} for i in range(n)])
    return vecs


def _schema(c: Any) -> Any:
    s = c.create_schema()
    mod = pm if isinstance(c, pm.MilvusClient) else heron
    s.add_field("id", mod.DataType.INT64, is_primary=True)
    s.add_field("vec", mod.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("n", mod.DataType.INT64)
    return s


def _pairs(res: Any) -> list[list[tuple[Any, float]]]:
    return [[(h["id"], round(float(h["distance"]), 4)) for h in hits] for hits in res]


# -- search(ids=...) ---------------------------------------------------------------------------------------


def test_search_by_ids_is_search_with_the_stored_vectors(client: Any) -> None:
    vecs = _random_collection(client)
    keys = [17, 3, 17, 150]
    got = client.search("c", ids=keys, limit=5, filter="n != 2", output_fields=["n"])
    want = client.search("c", data=vecs[keys].tolist(), limit=5, filter="n != 2", output_fields=["n"])
    assert len(got) == len(keys)
    assert _pairs(got) == _pairs(want)
    assert [hits[0]["id"] for hits in got] == [17, 3, 17, 150]  # each key's own row is nearest (n != 2 for these)
    assert all(h["entity"]["n"] != 2 for hits in got for h in hits)
    ranged = client.search("c", ids=[3], limit=50, search_params={"params": {"radius": 0.5, "range_filter": 0.0}})
    assert ranged[0] and all(0.0 <= h["distance"] < 0.5 for h in ranged[0])


def test_search_by_ids_refuses_bad_keys_and_both_inputs(client: Any) -> None:
    vecs = _random_collection(client, n=20)
    with pytest.raises(heron.ParamError, match=r"\[99\]"):
        client.search("c", ids=[3, 99])
    with pytest.raises(heron.ParamError, match="not both"):
        client.search("c", data=[vecs[0].tolist()], ids=[3])
    with pytest.raises(heron.ParamError, match="empty"):
        client.search("c", ids=[])
    with pytest.raises(heron.ParamError, match="boolean"):
        client.search("c", ids=[True])
    with pytest.raises(heron.ParamError, match="data=.*or ids="):
        client.search("c")


def test_search_by_string_keys(client: Any) -> None:
    s = client.create_schema()
    s.add_field("pk", heron.DataType.VARCHAR, is_primary=True, max_length=16)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="IP")
    client.create_collection("s", schema=s, index_params=idx)
    client.insert("s", [{"pk": f"k{i}", "vec": [1.0, float(i)]} for i in range(6)])
    got = client.search("s", ids="k2", limit=2)
    assert [h["pk"] for h in got[0]] == ["k5", "k4"]  # IP with (1, 2): the larger second coordinate wins
    assert got[0][0]["distance"] == pytest.approx(11.0)


def test_pymilvus_search_by_ids_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        vecs = _random_collection(mc)
        got = mc.search("c", ids=[8, 42], limit=4, search_params={"metric_type": "L2"})
        want = mc.search("c", data=vecs[[8, 42]].tolist(), limit=4, search_params={"metric_type": "L2"})
        assert _pairs(got) == _pairs(want)
        with pytest.raises(pm.MilvusException, match="99"):
            mc.search("c", ids=[99999], limit=4)
    finally:
        mc.close()


# -- search_iterator(external_filter_func=...) -------------------------------------------------------------


def _drain(it: Any) -> list[list[Any]]:
    pages = []
    while True:
        page = it.next()
        if not page:
            return pages
        pages.append(list(page))


def test_search_iterator_external_filter_keeps_pages_full(client: Any) -> None:
    vecs = _random_collection(client, n=120)
    q = [vecs[0].tolist()]
    everything = [h["id"] for h in client.search("c", data=q, limit=120)[0]]
    seen: list[int] = []

    def even(hits: Any) -> list[Any]:
        seen.append(len(hits))
        return [h for h in hits if h["id"] % 2 == 0]

    pages = _drain(client.search_iterator("c", data=q, batch_size=7, external_filter_func=even))
    assert [len(p) for p in pages] == [7] * 8 + [4]  # 60 even keys: full pages, then the rest
    assert [h["id"] for p in pages for h in p] == [i for i in everything if i % 2 == 0]
    assert seen and all(n <= 7 for n in seen)
    limited = _drain(client.search_iterator("c", data=q, batch_size=7, limit=10, external_filter_func=even))
    assert [len(p) for p in limited] == [7, 3]
    with pytest.raises(heron.ParamError, match="external_filter_func"):
        client.search_iterator("c", data=q, external_filter_func=3)


def test_pymilvus_search_iterator_external_filter_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        vecs = _random_collection(mc, n=60)
        q = [vecs[5].tolist()]
        everything = [h["id"] for h in mc.search("c", data=q, limit=60, search_params={"metric_type": "L2"})[0]]
        it = mc.search_iterator("c", data=q, batch_size=4, search_params={"metric_type": "L2"},
                                external_filter_func=lambda hits: [h for h in hits if h["id"] % 3 == 0])
        pages = _drain(it)
        assert [h["id"] for p in pages for h in p] == [i for i in everything if i % 3 == 0]
        assert all(len(p) == 4 for p in pages[:-1])
    finally:
        mc.close()


# -- compact(is_clustering=, is_l0=, target_size=, target_size_unit=) --------------------------------------


def test_clustering_compaction_needs_a_clustering_key(client: Any) -> None:
    make_collection(client)
    with pytest.raises(heron.HeronError, match="clustering") as e:
        client.compact("c", is_clustering=True)
    assert e.value.code == 2304
    assert isinstance(client.compact("c", is_l0=True), int)
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("k", heron.DataType.INT64, is_clustering_key=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("k", schema=s, index_params=idx)
    client.insert("k", [{"id": i, "k": i % 3, "vec": [float(i), 0.0]} for i in range(10)])
    client.delete("k", ids=[1, 2])
    client.flush("k")
    assert isinstance(client.compact("k", is_clustering=True), int)
    assert client.query("k", output_fields=["count(*)"])[0]["count(*)"] == 8


def test_compact_options_are_checked(client: Any) -> None:
    make_collection(client)
    for kwargs, field in [({"target_size": 0}, "target_size"), ({"target_size": 1.5}, "target_size"),
                          ({"target_size": 10, "target_size_unit": "parsecs"}, "target_size_unit"),
                          ({"target_size": 10, "target_size_unit": "kb"}, "under 1 MB"),
                          ({"is_l0": "yes"}, "is_l0"), ({"is_clustering": None}, "is_clustering")]:
        with pytest.raises(heron.ParamError, match=field):
            client.compact("c", **kwargs)


@pytest.mark.heron_env(HERON_MERGE_ROWS="1")
def test_target_size_merges_adjacent_segments_within_it(client: Any) -> None:
    dim, per = 128, 1500  # about 0.77 MB of vectors per segment file
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection("big", schema=s, index_params=idx)
    vecs = np.random.default_rng(1).random((3 * per, dim), dtype=np.float32)
    for b in range(3):
        client.insert("big", [{"id": i, "vec": vecs[i]} for i in range(b * per, (b + 1) * per)])
        client.flush("big")

    def sealed() -> list[int]:
        return sorted(x.num_rows for x in client.list_segments("big") if x.state != "Growing" and x.num_rows)

    before = client.search("big", data=vecs[[0, 2000, 4000]], limit=3)
    assert sealed() == [per] * 3
    client.compact("big", target_size=1)  # no two files fit in 1 MB
    assert sealed() == [per] * 3
    client.compact("big", target_size=2)  # the first two fit; a third would not
    assert sealed() == [per, 2 * per]
    client.compact("big", target_size=4, target_size_unit="gb")
    assert sealed() == [3 * per]
    assert _pairs(client.search("big", data=vecs[[0, 2000, 4000]], limit=3)) == _pairs(before)


def test_pymilvus_compact_options_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        mc.create_collection("c", dimension=4)
        mc.insert("c", [{"id": i, "vector": [float(i)] * 4} for i in range(10)])
        assert isinstance(mc.compact("c", is_l0=True, target_size=64), int)
        with pytest.raises(pm.MilvusException) as e:
            mc.compact("c", is_clustering=True)
        assert e.value.code == 2304
    finally:
        mc.close()


# -- search(highlighter=...) ---------------------------------------------------------------------------------

DOCS = [
    "Machine learning boosts efficiency in learning systems",
    "Deep learning: a machine that learns",
    "Nothing to see here",
    "Straße und Maschine: learning über alles",
]


def _bm25_collection(c: Any, mod: Any) -> None:
    """Text with an analyzer, its BM25 vectors (computed here: schemas carry no functions yet) and a 2-d vector."""
    s = c.create_schema()
    s.add_field("id", mod.DataType.INT64, is_primary=True)
    s.add_field("t", mod.DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True)
    s.add_field("sparse", mod.DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("v", mod.DataType.FLOAT_VECTOR, dim=2)
    idx = c.prepare_index_params()
    idx.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection("docs", schema=s, index_params=idx)
    sparse = _bm25().compute({"t": DOCS})["sparse"]
    c.insert("docs", [{"id": i, "t": t, "v": [float(i), 0.0], "sparse": sparse[i]} for i, t in enumerate(DOCS)])


def _bm25() -> Any:
    from heron.engine.functions._base import FunctionDef, build

    return build(FunctionDef("bm25", "BM25", ("t",), ("sparse",)), None)


def _expected(text: str, words: set[str], pre: str = "<em>", post: str = "</em>") -> str:
    """``text`` with each word (standard analyzer: lower-cased) in ``words`` wrapped in tags."""
    import re

    return re.sub(r"\w+", lambda m: f"{pre}{m.group(0)}{post}" if m.group(0).lower() in words else m.group(0), text)


def test_highlight_of_text_match_terms_on_a_vector_search(client: Any) -> None:
    _bm25_collection(client, heron)
    h = {"highlight_query": [{"type": "TextMatch", "field": "t", "text": "learning machine"}],
         "pre_tags": ["<b>"], "post_tags": ["</b>"]}
    got = client.search("docs", data=[[0.0, 0.0]], anns_field="v", limit=4, highlighter=h,
                        filter="text_match(t, 'learning machine')")[0]
    assert [x["id"] for x in got] == [0, 1, 3]
    for x in got:  # no fragment_offset: each fragment starts at its first match
        text = DOCS[x["id"]]
        first = min(text.lower().find(w) for w in ("learning", "machine") if w in text.lower())
        want = _expected(text[first:], {"learning", "machine"}, "<b>", "</b>")
        assert x["highlight"]["t"]["fragments"] == [want], x
        assert x["highlight"]["t"]["scores"] == [float(want.count("<b>"))]
    frag = client.search("docs", data=[[0.0, 0.0]], anns_field="v", limit=1, highlighter={
        "highlight_query": [{"type": "TextMatch", "field": "t", "text": "learning"}],
        "fragment_size": 8, "num_of_fragments": 2, "pre_tags": ["[", "{"], "post_tags": ["]", "}"]})[0][0]
    # "Machine learning boosts efficiency in learning systems": two fragments of about 8 characters
    assert frag["highlight"]["t"] == {"fragments": ["[learning]", "{learning}"], "scores": [1.0, 1.0]}


def test_highlight_of_search_terms_needs_a_bm25_function(client: Any) -> None:
    _bm25_collection(client, heron)
    q = _bm25().query(["machine learns"])
    with pytest.raises(heron.ParamError, match="highlight_search_text.*'sparse'.*BM25"):
        client.search("docs", data=q, anns_field="sparse", highlighter={"highlight_search_text": True})
    with pytest.raises(heron.ParamError, match="fragment_size"):
        client.search("docs", data=q, anns_field="sparse", highlighter={"fragment_size": 0})
    with pytest.raises(heron.ParamError, match="'v'"):
        client.search("docs", data=q, anns_field="sparse",
                      highlighter={"highlight_query": [{"type": "TextMatch", "field": "v", "text": "x"}]})
    with pytest.raises(heron.ParamError, match="lexical"):
        client.search("docs", data=q, anns_field="sparse", highlighter={"type": "semantic", "params": {}})


def test_fragments_of_bm25_query_terms_with_offsets_and_non_ascii_text() -> None:
    """The terms of a BM25 query vector (hashes) highlighted in text, cut in characters around the matches."""
    from heron.engine._highlight import DEFAULTS, _highlight
    from heron.engine.functions._analyzer import cached_analyzer

    q = _bm25().query(["machine learns", "straße"])
    terms = [set(q.indices[q.indptr[i]:q.indptr[i + 1]].tolist()) for i in range(2)]
    analyzer = cached_analyzer(None)
    spec = {**DEFAULTS, "fragment_offset": 3, "fragment_size": 20}
    got = _highlight(DOCS[1], analyzer, terms[0], spec)
    assert got == {"fragments": [" a <em>machine</em> that <em>learns</em>"], "scores": [2.0]}
    assert _highlight(DOCS[3], analyzer, terms[1], spec) == {
        "fragments": ["<em>Straße</em> und Maschine:"], "scores": [1.0]}
    assert _highlight(DOCS[2], analyzer, terms[0], spec) == {"fragments": [], "scores": []}


def test_pymilvus_lexical_highlighter_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        _bm25_collection(mc, pm)
        h = pm.LexicalHighlighter(pre_tags=["<<"], post_tags=[">>"], highlight_query=[
            {"type": "TextMatch", "field": "t", "text": "deep"}])
        got = mc.search("docs", data=[[1.0, 0.0]], anns_field="v", limit=2, highlighter=h,
                        search_params={"metric_type": "L2"})[0]
        assert got[0]["id"] == 1
        assert got[0]["highlight"] == {"t": {"fragments": ["<<Deep>> learning: a machine that learns"],
                                             "scores": [1.0]}}
        assert got[1]["highlight"] == {"t": {"fragments": [], "scores": []}}
    finally:
        mc.close()


# -- session(cluster_id) -------------------------------------------------------------------------------------


def test_session_reads_from_the_one_cluster(client: Any) -> None:
    vecs = _random_collection(client, n=30)
    s = raw = client.session("cluster-a")
    if isinstance(s, heron.client._async_session.AsyncClientSession):  # driven on the test client's loop too
        proxy = object.__new__(type(client))
        proxy._loop, proxy._client = client._loop, s
        s = proxy
    assert s.cluster_id == "cluster-a"
    assert _pairs(s.search("c", data=[vecs[1].tolist()], limit=3)) == \
        _pairs(client.search("c", data=[vecs[1].tolist()], limit=3))
    assert s.get("c", ids=[4], output_fields=["n"])[0]["n"] == 4
    assert [r["id"] for r in s.query("c", filter="id < 3", output_fields=["id"])] == [0, 1, 2]
    assert sum(len(b) for b in _drain(s.query_iterator("c", batch_size=7, filter="id >= 0"))) == 30
    raw.close()
    with pytest.raises(heron.ClientClosedError, match="session"):
        s.search("c", data=[vecs[1].tolist()])
    assert client.query("c", filter="id < 1")  # the client stays open
    with pytest.raises(heron.ParamError, match="cluster_id"):
        client.session(7)


def test_pymilvus_session_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        vecs = _random_collection(mc, n=20)
        s = mc.session("cluster-a")
        got = s.search("c", data=[vecs[2].tolist()], limit=3, search_params={"metric_type": "L2"})
        assert got[0][0]["id"] == 2
        assert [r["id"] for r in s.query("c", filter="id < 2", output_fields=["id"])] == [0, 1]
    finally:
        mc.close()


def test_searches_with_highlighters_or_keys_are_never_batched_together() -> None:
    from heron import _requests as rq
    from heron.engine._coalesce import batch_key

    base = rq.Search("default", "c", np.zeros((1, 2), np.float32))
    assert batch_key(base) is not None
    assert batch_key(dataclasses.replace(base, highlighter={"type": "lexical", "params": {}})) is None
    assert batch_key(dataclasses.replace(base, data=None, ids=(1,))) is None


# -- search(search_aggregation=...) ---------------------------------------------------------------------------


def _shop(c: Any, mod: Any, n: int = 60) -> list[dict[str, Any]]:
    s = c.create_schema()
    s.add_field("id", mod.DataType.INT64, is_primary=True)
    s.add_field("v", mod.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("brand", mod.DataType.VARCHAR, max_length=8)
    s.add_field("size", mod.DataType.INT64)
    s.add_field("price", mod.DataType.DOUBLE)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection("shop", schema=s, index_params=idx)
    rng = np.random.default_rng(3)
    rows = [{"id": i, "v": rng.random(2).tolist(), "brand": "ABCD"[int(rng.integers(4))],
             "size": int(rng.integers(3)), "price": round(float(rng.random() * 100), 2)} for i in range(n)]
    c.insert("shop", rows)
    return rows


def _expected_buckets(rows: list[dict[str, Any]], q: list[float]) -> list[dict[str, Any]]:
    """Brand buckets ordered by count desc then brand, top 3; per bucket the 2 priciest and size sub-buckets."""
    d = {r["id"]: float(np.sum((np.asarray(r["v"], np.float32) - np.asarray(q, np.float32)) ** 2)) for r in rows}
    by_brand: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (d[r["id"]], r["id"])):
        by_brand.setdefault(r["brand"], []).append(r)
    out = []
    for brand, members in sorted(by_brand.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:3]:
        prices = [m["price"] for m in members]
        sizes: dict[int, int] = {}
        for m in members:
            sizes[m["size"]] = sizes.get(m["size"], 0) + 1
        out.append({"key": brand, "count": len(members), "avg": sum(prices) / len(prices), "max": max(prices),
                    "top": [m["id"] for m in sorted(members, key=lambda m: -m["price"])[:2]],
                    "sizes": sorted(sizes.items())})
    return out


def _agg_spec(mod: Any) -> Any:
    args = {"fields": ["brand"], "size": 3, "metrics": {"n": {"count": "*"}, "avg_price": {"avg": "price"},
                                                     "top_price": {"max": "price"}},
            "order": [{"n": "desc"}, {"_key": "asc"}]}
    if mod is heron:
        return {**args, "top_hits": {"size": 2, "sort": [{"price": "desc"}]},
                "sub_aggregation": {"fields": ["size"], "size": 5, "order": [{"_key": "asc"}]}}
    return mod.SearchAggregation(**args, top_hits=mod.TopHits(size=2, sort=[{"price": "desc"}]),
                                 sub_aggregation=mod.SearchAggregation(fields=["size"], size=5, order=[{"_key": "asc"}]))


def _check_buckets(got: list[Any], want: list[dict[str, Any]]) -> None:
    def get(b: Any, name: str) -> Any:
        return b[name] if isinstance(b, dict) else getattr(b, name)

    assert [get(b, "key")[0]["value"] for b in got] == [w["key"] for w in want]
    for b, w in zip(got, want):
        m = get(b, "metrics")
        assert get(b, "count") == w["count"] and m["n"] == w["count"]
        assert m["avg_price"] == pytest.approx(w["avg"]) and m["top_price"] == pytest.approx(w["max"])
        assert [h["pk"] if isinstance(h, dict) else h.pk for h in get(b, "hits")] == w["top"]
        assert [(get(s, "key")[0]["value"], get(s, "count")) for s in get(b, "sub_groups")] == w["sizes"]


def test_search_aggregation_buckets_the_hits(client: Any) -> None:
    rows = _shop(client, heron)
    q = [0.3, 0.6]
    res = client.search("shop", data=[q, [0.9, 0.1]], search_aggregation=_agg_spec(heron), limit=5)
    assert len(res.agg_buckets) == 2 and all(len(hits) == 0 for hits in res)
    _check_buckets(res.agg_buckets[0], _expected_buckets(rows, q))
    _check_buckets(res.agg_buckets[1], _expected_buckets(rows, [0.9, 0.1]))
    assert client.search("shop", data=[q], limit=2).agg_buckets == []
    with pytest.raises(heron.ParamError, match="group_by_field"):
        client.search("shop", data=[q], search_aggregation=_agg_spec(heron), group_by_field="brand")
    with pytest.raises(heron.ParamError, match="'nope'"):
        client.search("shop", data=[q], search_aggregation={"fields": ["nope"], "size": 2})
    with pytest.raises(heron.ParamError, match="size"):
        client.search("shop", data=[q], search_aggregation={"fields": ["brand"], "size": 0})


def test_pymilvus_search_aggregation_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        rows = _shop(mc, pm)
        q = [0.5, 0.5]
        res = mc.search("shop", data=[q], search_aggregation=_agg_spec(pm), search_params={"metric_type": "L2"})
        _check_buckets(res.agg_buckets[0], _expected_buckets(rows, q))
    finally:
        mc.close()


def test_top_hits_sort_by_text_and_metrics_skip_nulls(client: Any) -> None:
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("g", heron.DataType.INT64)
    s.add_field("name", heron.DataType.VARCHAR, max_length=8)
    s.add_field("x", heron.DataType.INT64, nullable=True)
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection("t", schema=s, index_params=idx)
    client.insert("t", [{"id": i, "v": [float(i), 0.0], "g": i % 2, "name": "dcba"[i % 4] + str(i),
                         "x": None if i % 3 == 0 else i} for i in range(8)])
    spec = {"fields": ["g"], "size": 5, "order": [{"_key": "desc"}],
            "metrics": {"sx": {"sum": "x"}, "cx": {"count": "x"}, "lo": {"min": "x"}},
            "top_hits": {"size": 3, "sort": [{"name": "asc"}]}}
    res = client.search("t", data=[[0.0, 0.0]], search_aggregation=spec, output_fields=["name"])
    b1, b0 = res.agg_buckets[0]
    assert (b1["key"][0]["value"], b0["key"][0]["value"]) == (1, 0)
    # g=0: ids 0 2 4 6, x = None 2 4 None; g=1: ids 1 3 5 7, x = 1 None 5 7
    assert b0["metrics"] == {"sx": 6, "cx": 2, "lo": 2} and b1["metrics"] == {"sx": 13, "cx": 3, "lo": 1}
    assert [h["fields"]["name"] for h in b0["hits"]] == ["b2", "b6", "d0"]  # of d0 b2 d4 b6
    assert [h["pk"] for h in b1["hits"]] == [3, 7, 1]  # a3 a7 c1, of c1 a3 c5 a7
