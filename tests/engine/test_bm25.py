"""BM25: the function's rows, the index, the scores, and agreement with a reference BM25.

The reference (`reference_top`) is written from the formula alone, over the
analyzer's token strings (no hashing), with numpy: IDF
``log(1 + (N - df + 0.5) / (df + 0.5))`` and the length-normalised term
factor, N, df and avgdl taken over the live rows of the whole collection.

The agreement tests insert the function's output (`BM25Function.compute`)
into a sparse field indexed with metric BM25 and search with its query rows
(`BM25Function.query`); `_text_rows`/`_text_queries` are the two places to
change once collections carry the function in their schema (text in).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heron
from heron.data import _sparse as sp
from heron.engine.functions._analyzer import build_analyzer
from heron.engine.functions._base import FunctionDef, build
from heron.engine.functions._bm25 import hash_tokens, term_frequencies
from heron.engine.index import _bm25 as bm25_index
from heron.engine.index._bm25 import BM25Index, Bm25Terms, idf
from heron.engine.index._vector_index import build_index, load_index
from tests.conftest import require_module, shared_path

K1, B = 1.2, 0.75
FN = FunctionDef("bm25", "BM25", ("text",), ("sparse",))


# -- the reference -------------------------------------------------------------------------


def reference_top(docs: dict[int, list[str]], queries: list[list[str]], k: int, k1: float = K1, b: float = B,
                  among: set[int] | None = None) -> list[list[tuple[int, float]]]:
    """Top-``k`` (id, score) per query over ``docs`` (id -> tokens), statistics from all of ``docs``."""
    ids = np.array(sorted(docs))
    vocab: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for r, i in enumerate(ids):
        for tok, tf in Counter(docs[int(i)]).items():
            rows.append(r)
            cols.append(vocab.setdefault(tok, len(vocab)))
            vals.append(tf)
    x = sp.csr_matrix((np.array(vals, np.float64), (rows, cols)), shape=(len(ids), max(len(vocab), 1)))
    n = len(ids)
    dl = np.asarray(x.sum(axis=1)).ravel()
    avgdl = dl.mean() if n else 0.0
    df = np.bincount(x.indices, minlength=x.shape[1])
    idf_ = np.log(1 + (n - df + 0.5) / (df + 0.5))
    xc = x.tocsc()
    keep = np.ones(n, bool) if among is None else np.isin(ids, list(among))
    out = []
    for q in queries:
        score = np.zeros(n)
        for tok, qtf in Counter(q).items():
            t = vocab.get(tok)
            if t is None:
                continue
            lo, hi = xc.indptr[t], xc.indptr[t + 1]
            r, tf = xc.indices[lo:hi], xc.data[lo:hi]
            score[r] += qtf * idf_[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl[r] / avgdl))
        cand = np.flatnonzero((score > 0) & keep)
        best = cand[np.lexsort((ids[cand], -score[cand]))][:k]
        out.append([(int(ids[j]), float(score[j])) for j in best])
    return out


def agreement(got: list[list[dict[str, Any]]], want: list[list[tuple[int, float]]]) -> float:
    """Share of the reference's top-k found in Heron's top-k (ties at the cut count as found)."""
    found = total = 0
    for hits, ref in zip(got, want):
        if not ref:
            continue
        ids = {h["id"] for h in hits}
        cut = ref[-1][1]
        for i, s in ref:
            total += 1
            found += i in ids or (abs(s - cut) <= 1e-5 * max(1.0, cut) and len(hits) == len(ref))
    return found / max(total, 1)


# -- the function ---------------------------------------------------------------------------


def test_token_keys_are_milvus_fnv1a_hashes():
    # The keys Milvus Lite's BM25 function stores for these tokens (queried from its output field).
    assert hash_tokens(["hello", "world", "of", "dogs"]).tolist() == [1335831723, 933488787, 1765031016, 820135694]
    one_by_one = [hash_tokens([t])[0] for t in ["ü", "a", "longer-token", "日本語"]]
    assert hash_tokens(["ü", "a", "longer-token", "日本語"]).tolist() == one_by_one
    assert hash_tokens([]).shape == (0,)


def test_compute_counts_terms_per_row_and_empty_text_gives_an_empty_row():
    f = build(FN, None)
    out = f.compute({"text": ["hello world hello", "", "World of dogs", None]})["sparse"]
    assert out.shape[0] == 4 and list(np.diff(out.indptr)) == [2, 0, 3, 0]
    h = dict(zip(["hello", "world", "of", "dogs"], hash_tokens(["hello", "world", "of", "dogs"]).tolist()))
    row0 = dict(zip(out.indices[0:2].tolist(), out.data[0:2].tolist()))
    assert row0 == {h["hello"]: 2.0, h["world"]: 1.0}
    q = f.query(["dogs dogs hello"])
    assert dict(zip(q.indices.tolist(), q.data.tolist())) == {h["dogs"]: 2.0, h["hello"]: 1.0}


def test_compute_refuses_what_is_not_text():
    f = build(FN, None)
    with pytest.raises(heron.ParamError, match=r"text\[1\].*int"):
        f.compute({"text": ["fine", 7]})
    with pytest.raises(heron.ParamError, match="input field 'text' is missing"):
        f.compute({"other": ["x"]})
    with pytest.raises(heron.ParamError, match="one input field and one output field"):
        build(FunctionDef("two", "BM25", ("a", "b"), ("s",)), None)


def test_matches_milvus_lite_term_rows(tmp_path):
    require_module("milvus_lite")
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    texts = ["hello world hello", "world of dogs", "The quick brown fox jumps over the lazy dog", ""]
    lite = MilvusClient(str(tmp_path / "lite.db"))
    try:
        s = lite.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
        ip = lite.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        lite.create_collection("c", schema=s, index_params=ip)
        lite.insert("c", [{"id": i, "text": t} for i, t in enumerate(texts)])
        got = {r["id"]: r["sparse"] for r in lite.query("c", filter="id >= 0", output_fields=["sparse"])}
    finally:
        lite.close()
    mine = build(FN, None).compute({"text": texts})["sparse"]
    for i in range(len(texts)):
        lo, hi = mine.indptr[i], mine.indptr[i + 1]
        assert dict(zip(mine.indices[lo:hi].tolist(), mine.data[lo:hi].tolist())) == \
            {int(k): float(v) for k, v in got[i].items()}


# -- the index --------------------------------------------------------------------------------


def _random_tf(seed: int, n: int = 400, vocab: int = 60) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    docs = [list(rng.integers(0, vocab, rng.integers(0, 12))) for _ in range(n)]
    return term_frequencies([[f"t{t}" for t in d] for d in docs])


@pytest.mark.parametrize("prune_min", [0, 10**9])  # MaxScore pruning from the first term on; never
def test_maxscore_topk_equals_scoring_every_posting(prune_min, monkeypatch):
    monkeypatch.setattr(bm25_index, "PRUNE_MIN_POSTINGS", prune_min)
    monkeypatch.setattr(bm25_index, "PRUNE_MIN_PER_ROW", 0.0 if prune_min == 0 else 4.0)
    x = _random_tf(1)
    terms = Bm25Terms.from_rows(x)
    q = _random_tf(2, n=40)
    q = q[np.diff(q.indptr) > 0]
    for k in (1, 5, 50):
        s, r = terms.topk(q, k, None, 4.0, K1, B)
        full = terms.scores(q, 4.0, K1, B).toarray()
        for i in range(q.shape[0]):
            want = np.sort(full[i][full[i] > 0])[::-1][:k]
            got = s[i][r[i] >= 0]
            np.testing.assert_allclose(got, want, rtol=1e-5)
            np.testing.assert_allclose(full[i][r[i][r[i] >= 0]], got, rtol=1e-5)
        allow = np.arange(x.shape[0]) % 3 == 0
        s, r = terms.topk(q, k, allow, 4.0, K1, B)
        assert allow[r[r >= 0]].all()


def test_index_params_are_checked_and_defaulted():
    from heron.engine.index._params import normalize_index_params

    t, m, p = normalize_index_params(heron.DataType.SPARSE_FLOAT_VECTOR, "AUTOINDEX", "BM25", {})
    assert (t, m, p["bm25_k1"], p["bm25_b"]) == ("SPARSE_INVERTED_INDEX", "BM25", 1.2, 0.75)
    t, m, p = normalize_index_params(heron.DataType.SPARSE_FLOAT_VECTOR, "SPARSE_WAND", "BM25", {"bm25_k1": "1.5"})
    assert p["bm25_k1"] == 1.5
    with pytest.raises(heron.ParamError, match=r"bm25_k1 must be a number in \[0.0, 3.0\], got 5"):
        normalize_index_params(heron.DataType.SPARSE_FLOAT_VECTOR, "AUTOINDEX", "BM25", {"bm25_k1": 5})
    with pytest.raises(heron.ParamError, match=r"bm25_b must be a number in \[0.0, 1.0\], got 'x'"):
        normalize_index_params(heron.DataType.SPARSE_FLOAT_VECTOR, "AUTOINDEX", "BM25", {"bm25_b": "x"})
    with pytest.raises(heron.ParamError, match="metric_type 'BM25' is not valid for HNSW"):
        normalize_index_params(heron.DataType.FLOAT_VECTOR, "HNSW", "BM25", {})


def test_index_saves_and_loads(tmp_path):
    x = _random_tf(3)
    idx = build_index(heron.DataType.SPARSE_FLOAT_VECTOR, 0, "SPARSE_INVERTED_INDEX", "BM25", {"bm25_b": 0.5}, x)
    assert isinstance(idx, BM25Index) and idx.metric == "BM25" and idx.b == 0.5
    idx.save(str(tmp_path / "i.npz"))
    back = load_index(str(tmp_path / "i.npz"))
    assert isinstance(back, BM25Index)
    q = _random_tf(4, n=5)
    a, b = idx.search(q, 7), back.search(q, 7)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_array_equal(back.terms.dl, idx.terms.dl)


def test_doc_freq_counts_only_live_rows():
    x = term_frequencies([["a", "b"], ["a"], ["c"], ["a", "a"]])
    t = Bm25Terms.from_rows(x)
    ids = hash_tokens(["a", "b", "c", "zzz"])
    order = np.argsort(ids)
    live = np.array([True, False, True, True])
    df = dict(zip(ids[order].tolist(), t.doc_freq(ids[order], live).tolist()))
    assert [df[i] for i in ids.tolist()] == [2, 1, 1, 0]
    assert t.live_stats(live) == (3, 5.0)
    assert idf(3, np.array([2]))[0] == pytest.approx(np.log(1 + 1.5 / 2.5))


# -- through the client -----------------------------------------------------------------------

ANALYZER = build_analyzer(None)


def _collection(client: heron.Client, name: str = "docs", **index_params: Any) -> None:
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("text", heron.DataType.VARCHAR, max_length=4000)
    s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=index_params)
    client.create_collection(name, schema=s, index_params=ip)


def _text_rows(ids: list[int], texts: list[str]) -> list[dict[str, Any]]:
    """Rows as the client sends them: with the schema function, only id and text."""
    sparse = build(FN, None).compute({"text": texts})["sparse"]
    return [{"id": i, "text": t, "sparse": sparse[j]} for j, (i, t) in enumerate(zip(ids, texts))]


def _text_queries(texts: list[str]) -> Any:
    """Search data: with the schema function, the texts themselves."""
    return build(FN, None).query(texts)


def _search(client: heron.Client, queries: list[str], k: int = 10, name: str = "docs", **kw: Any):
    kw.setdefault("search_params", {"metric_type": "BM25"})
    return client.search(name, data=_text_queries(queries), anns_field="sparse", limit=k, **kw)


def test_scores_are_milvus_bm25_with_statistics_over_all_partitions(tmp_path):
    texts = ["hello world hello", "world of dogs", "", "cats and dogs", "a world apart"]
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        c.create_partition("docs", "other")
        c.insert("docs", _text_rows([0, 1, 2], texts[:3]))
        c.insert("docs", _text_rows([3, 4], texts[3:]), partition_name="other")
        docs = {i: ANALYZER.tokenize(t) for i, t in enumerate(texts)}
        want = reference_top(docs, [ANALYZER.tokenize("hello dogs world")], 10)[0]
        got = _search(c, ["hello dogs world"])[0]
        assert [h["id"] for h in got] == [i for i, _ in want]
        np.testing.assert_allclose([h["distance"] for h in got], [s for _, s in want], rtol=1e-5)
        # one partition searched, the statistics still the collection's
        part = _search(c, ["hello dogs world"], partition_names=["_default"])[0]
        want_p = reference_top(docs, [ANALYZER.tokenize("hello dogs world")], 10, among={0, 1, 2})[0]
        np.testing.assert_allclose([h["distance"] for h in part], [s for _, s in want_p], rtol=1e-5)
        # a filter, a limit, a range
        f = _search(c, ["dogs world"], filter="id >= 3", k=1)[0]
        assert [h["id"] for h in f] == [i for i, _ in reference_top(docs, [["dogs", "world"]], 10, among={3, 4})[0]][:1]
        lo = want[1][1]
        r = _search(c, ["hello dogs world"], search_params={"metric_type": "BM25", "params": {"radius": lo - 1e-4}})
        assert {h["id"] for h in r[0]} == {i for i, s in want if s > lo - 1e-4}
        assert _search(c, ["nothing matches"])[0] == []


def test_k1_and_b_from_the_index_change_the_scores(tmp_path):
    texts = ["short doc", "a much longer doc with many many words in it doc"]
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c, bm25_k1=2.0, bm25_b=0.3)
        c.insert("docs", _text_rows([0, 1], texts))
        got = _search(c, ["doc"])[0]
        docs = {i: ANALYZER.tokenize(t) for i, t in enumerate(texts)}
        want = reference_top(docs, [["doc"]], 10, k1=2.0, b=0.3)[0]
        np.testing.assert_allclose([h["distance"] for h in got], [s for _, s in want], rtol=1e-5)
        assert [h["id"] for h in got] == [i for i, _ in want]


# -- agreement on the real corpus ---------------------------------------------------------------


def _corpus() -> tuple[list[str], list[str]]:
    base = shared_path("data", "minilm-dev-10k", "base.jsonl.gz")
    qs = shared_path("data", "minilm-dev-10k", "queries.jsonl.gz")

    def read(p: Path) -> list[str]:
        with gzip.open(p, "rt") as fh:
            return [json.loads(line)["text"] for line in fh]

    return read(base), read(qs)


def test_agrees_with_the_reference_through_deletes_upserts_merges_and_reopening(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "1500")  # several sealed segments and a growing one
    texts, queries = _corpus()
    qtok = ANALYZER.tokenize_many(queries)
    docs = dict(enumerate(ANALYZER.tokenize_many(texts)))
    rows = _text_rows(list(range(len(texts))), texts)
    path = str(tmp_path / "db")

    def check(c: heron.Client, label: str) -> None:
        got = _search(c, queries)
        want = reference_top(docs, qtok, 10)
        share = agreement(got, want)
        assert share >= 0.95, f"{label}: top-10 agreement {share:.3f}"
        # and the scores are the reference's: statistics of the whole collection, not of a segment
        ref = {(qi, i): s for qi, hits in enumerate(want) for i, s in hits}
        pairs = [(h["distance"], ref[qi, h["id"]]) for qi, hits in enumerate(got) for h in hits if (qi, h["id"]) in ref]
        same = np.mean([abs(a - b) <= 1e-4 * max(1.0, b) for a, b in pairs])
        assert len(pairs) >= 0.95 * len(ref) and same >= 0.99, f"{label}: {same:.3f} of the scores agree"

    c = heron.Client(path)
    try:
        _collection(c)
        c.create_partition("docs", "b")
        half = len(rows) // 2
        for lo in range(0, half, 2000):
            c.insert("docs", rows[lo:min(lo + 2000, half)])
        c.insert("docs", rows[half:], partition_name="b")
        check(c, "fresh")
        gone = list(range(0, len(texts), 10))  # 10%
        c.delete("docs", ids=gone)
        for i in gone:
            del docs[i]
        check(c, "after deleting 10%")
        changed = list(range(5, 2000, 7))  # rewritten with another row's text
        new_texts = [texts[(i * 31) % len(texts)] for i in changed]
        c.upsert("docs", _text_rows(changed, new_texts))
        for i, t in zip(changed, new_texts):
            docs[i] = ANALYZER.tokenize(t)
        check(c, "after upserts")
        c.flush("docs")
        c.compact("docs")
        check(c, "after merging")
    finally:
        c.close()
    with heron.Client(path) as c:
        c.load_collection("docs")
        check(c, "after reopening")


def test_drop_ratio_search_and_search_iterator(tmp_path):
    texts = [f"common word{i % 7} filler" for i in range(60)] + ["rare common"]
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        c.insert("docs", _text_rows(list(range(len(texts))), texts))
        docs = {i: ANALYZER.tokenize(t) for i, t in enumerate(texts)}
        # the query's lower-weighted half (the common term) is dropped: only the rare term scores
        dropped = _search(c, ["rare common"], k=5,
                          search_params={"metric_type": "BM25", "params": {"drop_ratio_search": 0.5}})[0]
        assert [h["id"] for h in dropped] == [60]
        full = _search(c, ["rare common"], k=100)[0]
        assert len(full) == 61 and full[0]["id"] == 60
        want = reference_top(docs, [["word3", "filler"]], 100)[0]
        it = c.search_iterator("docs", data=_text_queries(["word3 filler"]), batch_size=7, anns_field="sparse",
                               search_params={"metric_type": "BM25"})
        got: list[tuple[int, float]] = []
        while batch := it.next():
            got.extend((h["id"], h["distance"]) for h in batch)
        it.close()
        assert len(got) == len(want) == 60
        np.testing.assert_allclose(sorted(s for _, s in got), sorted(s for _, s in want), rtol=1e-5)
        assert {i for i, _ in got[:9]} == {i for i, _ in want[:9]}  # the 9 rows holding word3 first


def test_empty_collection_and_only_deleted_rows_give_no_hits(tmp_path):
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        assert _search(c, ["anything"]) == [[]]
        c.insert("docs", _text_rows([1, 2], ["some text", "more text"]))
        c.delete("docs", ids=[1, 2])
        assert _search(c, ["text"]) == [[]]


def test_a_column_dict_takes_the_function_output_matrix_as_its_sparse_column(tmp_path):
    texts = ["one two", "two three three", "", "four"]
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        c.insert("docs", {"id": np.arange(4, dtype=np.int64), "text": texts,
                          **build(FN, None).compute({"text": texts})})
        assert c.query("docs", filter="", output_fields=["count(*)"])[0]["count(*)"] == 4
        assert [h["id"] for h in _search(c, ["three two"])[0]] == [1, 0]
        with pytest.raises(heron.DataError, match="column has 3 values but other columns have 4"):
            c.insert("docs", {"id": np.arange(4, dtype=np.int64), "text": texts,
                              "sparse": build(FN, None).compute({"text": texts[:3]})["sparse"]})


def test_hybrid_search_fuses_a_bm25_field_with_a_dense_one(tmp_path):
    texts = ["red apple pie", "green apple", "red car", "blue sky"]
    with heron.Client(str(tmp_path / "db")) as c:
        s = c.create_schema()
        s.add_field("id", heron.DataType.INT64, is_primary=True)
        s.add_field("text", heron.DataType.VARCHAR, max_length=100)
        s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("dense", heron.DataType.FLOAT_VECTOR, dim=2)
        ip = c.prepare_index_params()
        ip.add_index("sparse", index_type="AUTOINDEX", metric_type="BM25")
        ip.add_index("dense", index_type="FLAT", metric_type="IP")
        c.create_collection("h", schema=s, index_params=ip)
        rows = _text_rows(list(range(4)), texts)
        for i, r in enumerate(rows):
            r["dense"] = [float(i == 3), float(i != 3)]
        c.insert("h", rows)
        sparse = heron.AnnSearchRequest(_text_queries(["red apple"]), "sparse", {"metric_type": "BM25"}, limit=4)
        dense = heron.AnnSearchRequest([[1.0, 0.0]], "dense", {"metric_type": "IP"}, limit=4)
        only_text = c.hybrid_search("h", [sparse, dense], heron.WeightedRanker(1.0, 0.0), limit=3)[0]
        assert [h["id"] for h in only_text] == [h["id"] for h in _search(c, ["red apple"], name="h", k=3)[0]]
        assert only_text[0]["id"] == 0
        rrf = c.hybrid_search("h", [sparse, dense], heron.RRFRanker(), limit=4)[0]
        assert {h["id"] for h in rrf} == {0, 1, 2, 3}


def test_a_growing_segment_searched_between_inserts_scores_as_the_reference(tmp_path):
    texts, queries = _corpus()
    texts, queries = texts[:1200], queries[:40]
    qtok = ANALYZER.tokenize_many(queries)
    docs: dict[int, list[str]] = {}
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        for step, lo in enumerate(range(0, len(texts), 100)):  # 12 inserts: past MAX_CHUNKS chunks
            ids = list(range(lo, lo + 100))
            c.insert("docs", _text_rows(ids, texts[lo:lo + 100]))
            docs.update((i, ANALYZER.tokenize(texts[i])) for i in ids)
            got = _search(c, queries, filter="id % 3 != 0" if step % 2 else "")
            among = {i for i in docs if i % 3} if step % 2 else None
            want = reference_top(docs, qtok, 10, among=among)
            assert agreement(got, want) >= 0.95
            ref = {(qi, i): s for qi, hits in enumerate(want) for i, s in hits}
            for qi, hits in enumerate(got):
                for h in hits:
                    if (qi, h["id"]) in ref:
                        assert h["distance"] == pytest.approx(ref[qi, h["id"]], rel=1e-4)
        lo_score = want[0][-1][1]
        r = _search(c, queries[:1], k=1000,
                    search_params={"metric_type": "BM25", "params": {"radius": lo_score - 1e-3}})
        every = reference_top(docs, qtok[:1], 1000)[0]
        assert {h["id"] for h in r[0]} == {i for i, s in every if s > lo_score - 1e-3}
        assert all(h["distance"] > lo_score - 1e-3 for h in r[0])


LITE_TEXTS = ["the cat sat on the mat", "the dog chased the cat", "a bird in the hand", "cats and dogs and birds",
              "the quick brown fox", "a lazy dog sleeps all day long in the sun", "the sun rises", "fox and hound",
              "hand in hand", "the mat is red"]
LITE_QUERIES = ["the cat", "dog sun", "hand", "quick fox", "red mat bird"]


def test_ranks_as_milvus_lite_on_one_segment(tmp_path):
    """Same hits in the same order as Milvus Lite's BM25 (text in there, the function's rows here).

    Lite's scores come out negated and a few percent off the formula (it approximates row
    lengths); Heron computes the formula, so only the order and the rough size are compared.
    """
    require_module("milvus_lite")
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    lite = MilvusClient(str(tmp_path / "lite.db"))
    try:
        s = lite.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
        ip = lite.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        lite.create_collection("c", schema=s, index_params=ip)
        lite.insert("c", [{"id": i, "text": t} for i, t in enumerate(LITE_TEXTS)])
        want = lite.search("c", data=LITE_QUERIES, anns_field="sparse", limit=10, search_params={"metric_type": "BM25"})
    finally:
        lite.close()
    with heron.Client(str(tmp_path / "db")) as c:
        _collection(c)
        c.insert("docs", _text_rows(list(range(len(LITE_TEXTS))), LITE_TEXTS))
        got = _search(c, LITE_QUERIES)
    for g, w in zip(got, want):
        assert [h["id"] for h in g] == [h["id"] for h in w]
        np.testing.assert_allclose([h["distance"] for h in g], [abs(h["distance"]) for h in w], rtol=0.1)
