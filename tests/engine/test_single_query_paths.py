"""The short paths a single-query search takes give what the general paths give.

One query on an HNSW index goes to faiss without switching thread counts (faiss
opens no OpenMP team for one query); hits are shaped into `Hit` objects without
a Python-level constructor per hit.
"""

from __future__ import annotations

import pickle
import threading

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.client._results import Hit, Hits, SearchResult, shape_search
from heron.engine.index import _faiss
from heron.engine.index._dense import DenseIndex
from heron.engine.index._faiss import faiss
from heron.engine.index._vector_index import exact_search


def _hnsw(x: np.ndarray, metric: str = "COSINE") -> DenseIndex:
    return DenseIndex.build(DataType.FLOAT_VECTOR, x.shape[1], "HNSW", metric, {"M": 16, "efConstruction": 64}, x)


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
def test_one_query_matches_its_row_of_a_batch(metric):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    q = rng.standard_normal((8, 16)).astype(np.float32)
    idx = _hnsw(x, metric)
    batch_s, batch_r = idx.search(q, 10, params={"ef": 64})
    for i in range(len(q)):
        s, r = idx.search(q[i : i + 1], 10, params={"ef": 64})
        assert s.shape == (1, 10) and r.shape == (1, 10) and s.dtype == np.float32 and r.dtype == np.int64
        np.testing.assert_array_equal(r[0], batch_r[i])
        np.testing.assert_array_equal(s[0], batch_s[i])


def test_one_query_asking_past_the_rows_gets_empty_slots_with_the_worst_score():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 8)).astype(np.float32)
    for metric, worst in (("COSINE", -np.inf), ("L2", np.inf)):
        idx = _hnsw(x, metric)
        s, r = idx.search(x[:1], 40, params={"ef": 64})
        found = r[0] >= 0
        assert found.sum() == 30 and not found[30:].any()  # empty slots only at the end
        assert np.all(s[0, 30:] == worst)
        exact_s, exact_r = exact_search(DataType.FLOAT_VECTOR, metric, x, x[:1], 30)
        assert set(r[0, :30].tolist()) == set(exact_r[0].tolist())


def test_one_query_leaves_the_callers_thread_settings_alone():
    x = np.random.default_rng(5).standard_normal((500, 8)).astype(np.float32)
    idx = _hnsw(x)
    before_omp = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        blas = _faiss._set_blas(3)
        try:
            idx.search(x[:1], 5)
            assert faiss.omp_get_max_threads() == 2
            now = _faiss._set_blas(3)
            assert now == [3] * len(now)
        finally:
            _faiss._restore_blas(blas)
    finally:
        faiss.omp_set_num_threads(before_omp)


def test_filtered_one_query_on_hnsw_keeps_to_the_allowed_rows():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    idx = _hnsw(x)
    allow = np.zeros(3000, dtype=bool)
    allow[::2] = True  # half kept: the index is searched with a selector, not the kept rows scanned
    s, r = idx.search(x[1:2], 10, allow=allow, params={"ef": 64})
    assert (r[0] >= 0).all() and allow[r[0]].all()
    assert np.all(np.diff(s[0]) <= 0)  # COSINE: best (largest) first


def _hit_like_before(h: dict, pk_name: str) -> Hit:
    """A hit as `shape_search` made it through `Hit.__init__`."""
    data = {pk_name: h["id"]}
    data.update((k, v) for k, v in h.items() if k != "id")
    return Hit(data, pk_name)


@pytest.mark.parametrize("pk_name", ["id", "pk", "doc_id"])
def test_shaped_hits_are_what_the_constructor_makes(pk_name):
    raw = [
        [{"id": 7, "distance": 0.5, "entity": {"color": "red"}}, {"id": 3, "distance": 0.25, "entity": {}}],
        [],
        [{"distance": 0.1, "id": 9, "entity": {"id": 1}, "highlight": {"text": ["a"]}}],  # unusual key order
    ]
    out = shape_search(raw, pk_name)
    assert type(out) is SearchResult and [type(q) for q in out] == [Hits, Hits, Hits]
    for q, hits in zip(raw, out):
        want = [_hit_like_before(h, pk_name) for h in q]
        assert all(isinstance(h, Hit) for h in hits) and len(hits) == len(q)
        assert hits == want
        assert [list(h) for h in hits] == [list(w) for w in want]  # same key order
        assert [h.id for h in hits] == [h["id"] for h in q] == [h.pk for h in hits]
    assert out[0][0]["color"] == "red" and out[0].ids == [7, 3] and out[0].distances == [0.5, 0.25]
    again = pickle.loads(pickle.dumps(out[0][0]))
    assert again == out[0][0] and again.id == 7
    out[0][0]["distance"] = 9.0
    assert raw[0][0]["distance"] == 0.5  # hits are copies: changing one leaves the engine's answer alone


def test_client_search_hits_keyed_by_a_named_primary_key(tmp_path):
    with heron.Client(str(tmp_path / "db")) as c:
        c.create_collection("c", dimension=4, primary_field_name="doc", id_type="int")
        c.insert("c", [{"doc": i, "vector": [float(i), 1.0, 0.0, 0.5]} for i in range(1, 20)])
        res = c.search("c", data=[[1.0, 1.0, 0.0, 0.5]], limit=3)
        assert len(res) == 1 and len(res[0]) == 3
        for h in res[0]:
            assert type(h) is Hit and list(h) == ["doc", "distance", "entity"] and h.id == h["doc"] == h.pk
        assert res[0].ids == [h["doc"] for h in res[0]]


def test_output_fields_of_hits_from_one_segment_and_from_several(tmp_path):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    tags = [f"t{i % 7}" for i in range(400)]
    with heron.Client(str(tmp_path / "db")) as c:
        c.create_collection("c", dimension=8, metric_type="L2")
        c.insert("c", [{"id": i, "vector": x[i], "tag": tags[i], "n": i * 3} for i in range(200)])
        c.flush("c")  # rows 0-199 sealed, 200-399 in a growing segment
        c.insert("c", [{"id": i, "vector": x[i], "tag": tags[i], "n": i * 3} for i in range(200, 400)])
        for flt, want_both in (("", True), ("id < 200", False), ("id >= 200", False)):
            res = c.search("c", data=x[[5, 250]], filter=flt, limit=30, output_fields=["tag", "n", "$meta"])
            ids = [h["id"] for q in res for h in q]
            if want_both:
                assert min(ids) < 200 <= max(ids)  # hits from both segments in one answer
            for q in res:
                for h in q:
                    assert h["entity"] == {"tag": tags[h["id"]], "n": h["id"] * 3}
                    assert list(h["entity"]) == ["tag", "n"]


def _blas_counts() -> list[int]:
    before = _faiss._set_blas(7)  # read by setting; put back at once
    _faiss._restore_blas(before)
    return before


def test_a_product_over_gathered_rows_sets_blas_alone_and_gives_it_back():
    outside = _blas_counts()
    assert outside  # numpy's OpenBLAS with per-thread counts: the setting is exercised
    omp = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        with _faiss.blas_threads_for(1):
            assert _blas_counts() == [1] * len(outside)
            assert faiss.omp_get_max_threads() == 2  # faiss's count is not this block's business
        assert _blas_counts() == outside and faiss.omp_get_max_threads() == 2
        with _faiss.blas_threads_for(_faiss.SINGLE_THREAD_BELOW_NQ):  # a batch keeps the thread's own settings
            assert _blas_counts() == outside
    finally:
        faiss.omp_set_num_threads(omp)
    seen: dict[str, list[int]] = {}

    def work() -> None:
        with _faiss.blas_threads_for(1):
            seen["in"] = _blas_counts()
        seen["after"] = _blas_counts()  # a worker thread keeps the setting for its next search, as threads_for does

    t = threading.Thread(target=work, name="heron-search-test")
    t.start()
    t.join()
    assert seen["in"] == seen["after"] == [1] * len(outside)


def test_a_faiss_scan_sets_faiss_alone_and_gives_it_back():
    outside = _blas_counts()
    omp = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        with _faiss.omp_threads_for(1):
            assert faiss.omp_get_max_threads() == 1
            assert _blas_counts() == outside  # BLAS's counts are not this block's business
        assert faiss.omp_get_max_threads() == 2 and _blas_counts() == outside
        with _faiss.omp_threads_for(_faiss.SINGLE_THREAD_BELOW_NQ):  # a batch keeps the thread's own settings
            assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(omp)
    seen: dict[str, int] = {}

    def work() -> None:
        with _faiss.omp_threads_for(1):
            seen["in"] = faiss.omp_get_max_threads()
        seen["after"] = faiss.omp_get_max_threads()  # a worker thread keeps the setting, as threads_for does

    t = threading.Thread(target=work, name="heron-search-test")
    t.start()
    t.join()
    assert seen == {"in": 1, "after": 1}


def test_gathered_rows_top_k_keeps_ties_to_the_lower_row_and_puts_nan_last():
    from heron.engine.index._top_one import ip_top_one

    rng = np.random.default_rng(8)
    for n in (5, 40, 3000):
        x = rng.integers(-2, 3, (n, 6)).astype(np.float32)  # many equal scores
        ids = np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64)
        q = rng.integers(-2, 3, 6).astype(np.float32)
        s, r = ip_top_one(x, ids, q, 10)
        full = x @ q
        order = np.lexsort((np.arange(n), -full))[:10]  # best first, ties to the lower row
        kk = min(10, n)
        np.testing.assert_array_equal(r[0, :kk], ids[order])
        np.testing.assert_array_equal(s[0, :kk], full[order])
        assert (r[0, kk:] == -1).all()
    x = rng.standard_normal((50, 4)).astype(np.float32)
    x[3] = np.nan
    s, r = ip_top_one(x, np.arange(50, dtype=np.int64), np.ones(4, np.float32), 50)
    assert r[0, -1] == -1 and 3 not in r[0].tolist()


def test_many_gathered_rows_are_scored_by_faiss_and_answer_as_the_product_and_sort_do():
    from heron.engine.index import _top_one

    rng = np.random.default_rng(9)
    n = _top_one._SORT_ALL_BELOW * 4
    x = rng.standard_normal((n, 24)).astype(np.float32)
    ids = np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64)
    for _ in range(20):
        q = rng.standard_normal(24).astype(np.float32)
        for k in (1, 10, 100):
            got = _top_one._faiss_top_one(x, ids, q, k)
            assert got is not None  # no ties at the cut, no rows out of range: faiss answers
            full = x @ q
            order = np.lexsort((np.arange(n), -full))[:k]
            np.testing.assert_array_equal(got[1][0], ids[order])
            np.testing.assert_allclose(got[0][0], full[order], rtol=1e-5, atol=1e-5)
    for k in (1, 10):  # two equal rows at the k-th place: the lower row is the one kept, whichever faiss put first
        q = rng.standard_normal(24).astype(np.float32)
        twin = x.copy()
        order = np.lexsort((np.arange(n), -(twin @ q)))
        kth, other = int(order[k - 1]), int(order[-1])
        twin[other] = twin[kth]
        full = twin @ q
        want = np.lexsort((np.arange(n), -full))[:k]
        assert min(kth, other) in want.tolist() and max(kth, other) not in want.tolist()
        got = _top_one._faiss_top_one(twin, ids, q, k)
        assert got is not None
        np.testing.assert_array_equal(got[1][0], ids[want])
    q = rng.integers(1, 3, 24).astype(np.float32)
    tied = rng.integers(-2, 2, (n, 24)).astype(np.float32)  # whole numbers: equal scores are exactly equal
    tied[: _top_one._TIE_ROOM + 12] = 2  # more rows tied at the top than faiss is asked for past k
    assert _top_one._faiss_top_one(tied, ids, q, 10) is None  # which tied rows come first is the sort's to say
    s, r = _top_one.ip_top_one(tied, ids, q, 10)
    assert set(r[0].tolist()) <= set(ids[:20].tolist()) and (np.diff(r[0]) > 0).all()  # tied rows, lower first
    bad = x.copy()
    bad[7] = np.nan
    assert _top_one._faiss_top_one(bad, ids, bad[8], n - 1) is None  # faiss drops the NaN row: the sort answers
    assert _top_one._faiss_top_one(x[:, ::2], ids, q[::2], 10) is None  # not contiguous
    assert _top_one._faiss_top_one(x, ids, q, n) is None  # every row asked for


@pytest.mark.parametrize("index_type", ["IVF_FLAT", "IVF_SQ8"])
def test_one_ivf_query_runs_faiss_on_one_thread_and_gives_the_caller_its_setting_back(index_type: str) -> None:
    x = np.random.default_rng(22).normal(0, 1, (5_000, 16)).astype(np.float32)
    idx = DenseIndex.build(DataType.FLOAT_VECTOR, 16, index_type, "L2", {"nlist": 32}, x)
    seen = []
    real = idx._index.search_c

    def spy(*a):  # type: ignore[no-untyped-def]
        seen.append(faiss.omp_get_max_threads())
        return real(*a)

    want = idx.search(x[3:4], 10, params={"nprobe": 8})
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        idx._index.search_c = spy
        got = idx.search_one(x[3:4], 10, {"nprobe": 8}, idx.ntotal)
        assert seen == [1] and faiss.omp_get_max_threads() == 2
    finally:
        del idx._index.search_c
        faiss.omp_set_num_threads(before)
    assert got[1].tolist() == want[1].tolist() and np.array_equal(got[0], want[0])
