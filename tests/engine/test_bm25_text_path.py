"""BM25 searched by text, one query per call: the fast path and what it remembers between calls.

A search with ``data=["text"]`` on a BM25 function's output field takes the
function's term counts as `QueryRows` (no sparse matrix), and the engine
remembers, per collection state, the IDF of each query term seen, per
segment the postings weighted for the current avgdl, and per function the
hash of each token. These tests check that the answers are the numpy
reference's (`tests/engine/test_bm25.reference_top`) one query at a time,
while those memos are warm, and after each change of state that must make
them stale: a delete, an upsert, an insert, a merge, a reopen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from heron._errors import ParamError
from heron.engine import _bm25_search
from heron.engine.functions import _bm25 as bm25_fn
from heron.engine.functions._analyzer import build_analyzer
from heron.engine.functions._base import FunctionDef, build
from heron.engine.functions._bm25 import TokenHasher, hash_tokens
from tests.engine.test_bm25 import _corpus, reference_top

ANALYZER = build_analyzer(None)
FN = FunctionDef("bm25", "BM25", ("text",), ("sparse",))


def _text_collection(c: heron.Client, name: str = "docs") -> None:
    s = c.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("text", heron.DataType.VARCHAR, max_length=4000, enable_analyzer=True)
    s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(heron.Function("bm25", heron.FunctionType.BM25, input_field_names=["text"],
                                  output_field_names=["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    c.create_collection(name, schema=s, index_params=ip)


def _one_by_one(c: heron.Client, queries: list[str], k: int = 10, **kw: Any) -> list[list[dict[str, Any]]]:
    return [c.search("docs", data=[q], anns_field="sparse", limit=k, search_params={"metric_type": "BM25"}, **kw)[0]
            for q in queries]


def _assert_reference(got: list[list[dict[str, Any]]], want: list[list[tuple[int, float]]], label: str) -> None:
    """The reference's scores in order, each hit with its own reference score (equal scores may come in
    either order, and a row tied at the k-th place may stand for another)."""
    for qi, (hits, ref) in enumerate(zip(got, want)):
        assert len(hits) == len(ref), f"{label}, query {qi}: {len(hits)} hits, reference {len(ref)}"
        np.testing.assert_allclose([h["distance"] for h in hits], [s for _, s in ref], rtol=1e-5,
                                   err_msg=f"{label}, query {qi}")
        own = dict(ref)
        cut = ref[-1][1] if ref else 0.0
        for h in hits:
            s = own.get(h["id"], cut)  # not in the reference's top k: only a tie at the cut
            assert h["distance"] == pytest.approx(s, rel=1e-5), f"{label}, query {qi}: id {h['id']}"


def test_one_text_per_call_matches_the_reference_through_every_change_of_state(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "700")  # several sealed segments and a growing one
    texts, queries = _corpus()
    texts, queries = texts[:2500], queries[:25]
    qtok = ANALYZER.tokenize_many(queries)
    docs = dict(enumerate(ANALYZER.tokenize_many(texts)))
    path = str(tmp_path / "db")

    def check(c: heron.Client, label: str) -> None:
        want = reference_top(docs, qtok, 10)
        for rnd in range(2):  # the second time every memo is warm
            _assert_reference(_one_by_one(c, queries), want, f"{label} (pass {rnd + 1})")

    with heron.Client(path) as c:
        _text_collection(c)
        for lo in range(0, 2000, 500):
            c.insert("docs", [{"id": i, "text": texts[i]} for i in range(lo, lo + 500)])
        for i in range(2000, 2500):
            docs.pop(i)
        check(c, "fresh")
        c.insert("docs", [{"id": i, "text": texts[i]} for i in range(2000, 2500)])
        docs.update((i, ANALYZER.tokenize(texts[i])) for i in range(2000, 2500))
        check(c, "after an insert")
        gone = list(range(0, 2500, 9))
        c.delete("docs", ids=gone)
        for i in gone:
            del docs[i]
        check(c, "after a delete")
        changed = list(range(4, 2500, 11))
        new = {i: texts[(i * 37) % len(texts)] for i in changed}
        c.upsert("docs", [{"id": i, "text": t} for i, t in new.items()])
        docs.update((i, ANALYZER.tokenize(t)) for i, t in new.items())
        check(c, "after an upsert")
        c.flush("docs")
        c.compact("docs")
        check(c, "after a merge")
    with heron.Client(path) as c:
        c.load_collection("docs")
        check(c, "after reopening")


def test_a_term_seen_before_a_delete_gets_its_new_idf(tmp_path):
    texts = ["apple pie", "apple tart", "banana bread", "cherry apple crumble", "plain bread"]
    with heron.Client(str(tmp_path / "db")) as c:
        _text_collection(c)
        c.insert("docs", [{"id": i, "text": t} for i, t in enumerate(texts)])
        docs = {i: ANALYZER.tokenize(t) for i, t in enumerate(texts)}
        before = _one_by_one(c, ["apple bread"])
        _assert_reference(before, reference_top(docs, [["apple", "bread"]], 10), "before")
        c.delete("docs", ids=[0, 1])  # "apple" gets rarer: its IDF and every score move
        del docs[0], docs[1]
        after = _one_by_one(c, ["apple bread"])
        _assert_reference(after, reference_top(docs, [["apple", "bread"]], 10), "after")
        assert after[0][0]["distance"] != pytest.approx(before[0][0]["distance"])
        c.upsert("docs", [{"id": 2, "text": "apple apple"}])  # a row rewritten in place
        docs[2] = ["apple", "apple"]
        _assert_reference(_one_by_one(c, ["apple bread"]), reference_top(docs, [["apple", "bread"]], 10), "upsert")


def test_the_idf_memo_when_full_starts_over_and_answers_stay_right(tmp_path, monkeypatch):
    monkeypatch.setattr(_bm25_search, "_IDF_MEMO_MAX", 3)
    texts, queries = _corpus()
    texts, queries = texts[:600], queries[:12]
    docs = dict(enumerate(ANALYZER.tokenize_many(texts)))
    with heron.Client(str(tmp_path / "db")) as c:
        _text_collection(c)
        c.insert("docs", [{"id": i, "text": t} for i, t in enumerate(texts)])
        want = reference_top(docs, ANALYZER.tokenize_many(queries), 5)
        for _ in range(2):
            _assert_reference(_one_by_one(c, queries, k=5), want, "small memo")


def test_text_queries_equal_the_same_rows_sent_as_sparse_vectors(tmp_path):
    texts, queries = _corpus()
    texts, queries = texts[:800], queries[:15] + ["", "zzzz unknownword", "the the the of a"]
    with heron.Client(str(tmp_path / "db")) as c:
        _text_collection(c)
        c.insert("docs", [{"id": i, "text": t} for i, t in enumerate(texts)])
        by_text = _one_by_one(c, queries)
        rows = build(FN, None).query(queries)
        by_rows = c.search("docs", data=rows, anns_field="sparse", limit=10, search_params={"metric_type": "BM25"})
        batch = c.search("docs", data=queries, anns_field="sparse", limit=10, search_params={"metric_type": "BM25"})
        for a, b, d in zip(by_text, by_rows, batch):
            assert [(h["id"], h["distance"]) for h in a] == [(h["id"], h["distance"]) for h in b]
            assert [(h["id"], h["distance"]) for h in a] == [(h["id"], h["distance"]) for h in d]
        assert by_text[15] == [] and by_text[16] == []
        # drop_ratio_search and a range search take the same path
        sp_ = {"metric_type": "BM25", "params": {"drop_ratio_search": 0.3}}
        assert [h["id"] for h in c.search("docs", data=[queries[0]], anns_field="sparse", search_params=sp_)[0]] == \
            [h["id"] for h in c.search("docs", data=rows[0], anns_field="sparse", search_params=sp_)[0]]
        lo = by_text[0][4]["distance"]
        ranged = c.search("docs", data=[queries[0]], anns_field="sparse", limit=100,
                          search_params={"metric_type": "BM25", "params": {"radius": lo - 1e-6}})[0]
        assert [h["id"] for h in ranged] == [h["id"] for h in by_text[0][:5]]


@pytest.mark.parametrize("texts", [
    ["dogs dogs hello"], ["one"], [""], ["Mixed CASE text, with punctuation; and REPEATS repeats"],
    [" ".join(f"w{i % 70}" for i in range(200))],  # more tokens than the one-row shortcut takes
    ["first text", "second text text", ""],
])
def test_query_rows_are_the_query_matrix(texts):
    f = build(FN, None)
    rows, m = f.query_rows(texts), f.query(texts)
    assert rows.shape[0] == m.shape[0] == len(texts)
    assert rows.indptr.tolist() == m.indptr.tolist()
    assert rows.indices.tolist() == m.indices.tolist()
    assert rows.data.tolist() == m.data.tolist() and rows.data.dtype == np.float32
    for i in range(len(texts)):  # sorted and distinct within a row, as topk reads them
        idx = rows.indices[rows.indptr[i]:rows.indptr[i + 1]]
        assert (np.diff(idx) > 0).all()
    assert (rows.csr() != m).nnz == 0


def test_the_token_memo_when_full_starts_over_with_the_same_hashes(monkeypatch):
    monkeypatch.setattr(bm25_fn, "_CACHE_MAX", 4)
    h = TokenHasher()
    words = [f"tok{i}" for i in range(12)]
    for lo in range(0, 12, 3):
        chunk = words[lo:lo + 3] + words[:2]
        assert h.id_list(chunk) == hash_tokens(chunk).tolist()
        assert h.ids(chunk).tolist() == hash_tokens(chunk).tolist()
    assert len(h._memo) <= 4 + 3


def test_a_bad_timezone_is_refused_on_a_collection_without_timestamps(tmp_path):
    with heron.Client(str(tmp_path / "db")) as c:
        _text_collection(c)
        c.insert("docs", [{"id": 0, "text": "hello"}])
        with pytest.raises(ParamError, match="Not/AZone"):
            c.search("docs", data=["hello"], anns_field="sparse", timezone="Not/AZone")
        assert c.search("docs", data=["hello"], anns_field="sparse", timezone="Asia/Tokyo")[0][0]["id"] == 0


def test_the_standard_tokenizer_splits_ascii_texts_as_its_unicode_pattern_does():
    from heron.engine.functions import _analyzer_tokenizers as tk

    texts, queries = _corpus()
    odd = ["don't foo_bar x-y 3.14 a1b2 __init__ ~!@#$%^&*()[]{} tab\there\nnew line", "", "   ", "UPPER lower 007",
           "naïve café", "ŋ ǅ Ⅻ ½ ٣", "日本語のテキスト", "mixed ascii and ünïcödé words"]
    tok = tk.StandardTokenizer()
    for t in texts[:3000] + queries + odd:
        assert tok.words(t) == tk._ALNUM_RUN.findall(t), t
