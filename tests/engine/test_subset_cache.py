"""A repeated filter is answered by an exact scan of its gathered rows, exactly and without stale rows."""

from __future__ import annotations

import numpy as np
import pytest

from heron._types import DataType
from heron.engine.index import _dense as _vindex_dense
from heron.engine.index import _subset_cache
from heron.engine.index._subset_cache import SubsetCache
from heron.engine.index._vector_index import build_index
from tests.engine.test_vector_index import clustered, reference_topk


@pytest.fixture()
def cache(monkeypatch):
    c = SubsetCache(max_bytes=8 << 20)
    monkeypatch.setattr(_vindex_dense, "SUBSETS", c)
    monkeypatch.setattr(_vindex_dense, "FILTER_CROSSOVER", {"HNSW": 0.0, "IVF": 0.0})
    monkeypatch.setattr(_vindex_dense, "EXACT_SCAN_BUDGET", {"HNSW": 0, "IVF": 0})
    return c


@pytest.mark.parametrize("metric", ["L2", "COSINE", "IP"])
def test_a_repeated_filter_is_scanned_exactly_from_the_cache(cache, metric):
    x, q = clustered(6000, 16, 40, seed=2)
    idx = build_index(DataType.FLOAT_VECTOR, 16, "HNSW", metric, {"M": 8, "efConstruction": 40}, x)
    allow = np.random.default_rng(1).random(len(x)) < 0.2
    truth = reference_topk(metric, x, q, 10, allow)
    idx.search(q, 10, allow=allow, params={"ef": 16})  # first sighting: the index answers
    assert cache.hits == 0 and not cache._items
    for _ in range(2):  # second: gathered and cached; third: a hit
        scores, rows = idx.search(q, 10, allow=allow, params={"ef": 16})
        assert (rows == truth).mean() > 0.999  # exact (ties aside)
        assert allow[rows].all()
    assert cache.hits == 1 and len(cache._items) == 1


def test_other_bitmaps_and_grown_indexes_never_share_an_entry(cache):
    x, q = clustered(4000, 8, 10, seed=4)
    idx = build_index(DataType.FLOAT_VECTOR, 8, "HNSW", "L2", {"M": 8, "efConstruction": 40}, x)
    a = np.zeros(len(x), bool)
    a[::5] = True
    b = np.zeros(len(x), bool)
    b[1::5] = True
    for allow in (a, a, b, b, a, b):
        _, rows = idx.search(q, 5, allow=allow)
        assert allow[rows].all()
        assert (rows == reference_topk("L2", x, q, 5, allow)).all()
    assert len(cache._items) == 2
    more, _ = clustered(500, 8, 1, seed=9)
    grown = idx.extended(more)
    assert grown is idx and idx.ntotal == 4500
    x2 = np.concatenate([x, more])
    a2 = np.concatenate([a, np.ones(500, bool)])
    for _ in range(3):
        _, rows = idx.search(q, 5, allow=a2)
        assert (rows == reference_topk("L2", x2, q, 5, a2)).all()


def test_a_read_only_filter_that_comes_back_is_answered_from_the_index_hot_rows(cache):
    x, q = clustered(4000, 8, 10, seed=5)
    idx = build_index(DataType.FLOAT_VECTOR, 8, "HNSW", "COSINE", {"M": 8, "efConstruction": 40}, x)
    a = np.zeros(len(x), bool)
    a[::7] = True
    a.flags.writeable = False  # as a sealed segment's remembered filter result is
    b = a.copy()  # the same rows, but writable: its owner may change it between calls
    for allow in (a, a, a, b, b):
        _, rows = idx.search(q, 5, allow=allow)
        assert (rows == reference_topk("COSINE", x, q, 5, allow)).all()
    assert idx._hot is not None and idx._hot[0] is a
    b[:] = False
    b[1::7] = True  # changed in place: never mistaken for the rows it kept before
    _, rows = idx.search(q, 5, allow=b)
    assert (rows == reference_topk("COSINE", x, q, 5, b)).all()
    more, _ = clustered(300, 8, 1, seed=10)
    assert idx.extended(more) is idx and idx._hot is None  # grown: the kept rows are gone
    a2 = np.concatenate([a, np.zeros(300, bool)])
    a2.flags.writeable = False
    _, rows = idx.search(q, 5, allow=a2)
    assert (rows == reference_topk("COSINE", np.concatenate([x, more]), q, 5, a2)).all()


def _gatherer(calls: list):
    """``gather(tag, n)``: a gather function that notes `tag` in `calls` when it runs and returns `n` rows."""

    def gather(tag, n=10):
        def g():
            calls.append(tag)
            return np.arange(n), np.zeros((n, 4), np.float32)
        return g

    return gather


def test_the_cache_stays_within_its_byte_budget():
    c = SubsetCache(max_bytes=4000)
    gather = _gatherer([])
    for key in range(6):
        assert c.get(key, 1000, gather(key, 50), always=False) is None  # seen once
        got = c.get(key, 1000, gather(key, 50), always=False)
        assert got is not None and len(got[0]) == 50
    assert c._bytes <= 4000 and len(c._items) == 4000 // (50 * 8 + 50 * 16)
    assert c.get(5, 1000, gather(5, 50), always=False) is not None and c.hits == 1
    assert c.get("big", 10_000, gather("big", 1), always=True) is not None  # larger than a quarter: never kept
    assert c.get("big", 10_000, gather("big", 1), always=True) is not None and "big" not in c._items
    assert _subset_cache.CACHE.max_bytes == _subset_cache.MAX_BYTES


def test_rows_gathered_on_a_first_sighting_are_admitted_on_the_second_without_gathering_again():
    c = SubsetCache(max_bytes=4000)
    calls: list = []
    gather = _gatherer(calls)
    first = c.get("a", 240, gather("a1"), always=True)  # gathered for this call, not cached yet
    assert first is not None and calls == ["a1"] and "a" not in c._items
    assert c.get("a", 240, gather("a2"), always=True) is first and calls == ["a1"]  # admitted as it was
    assert c._items["a"] is first and c._last is None
    c.get("b", 240, gather("b1"), always=True)
    c.get("c", 240, gather("c1"), always=True)  # only the latest first sighting is held
    assert c.get("b", 240, gather("b2"), always=True) is not None and calls[-1] == "b2"
    assert c.get("c", 240, gather("c2"), always=False) is not None  # still held: not gathered again
    assert calls == ["a1", "b1", "c1", "b2"]


@pytest.mark.parametrize("index_type", ["HNSW", "HNSW_SQ"])
def test_rows_gathered_from_flat_storage_equal_the_index_own_reconstruction(cache, index_type):
    x, q = clustered(3000, 16, 8, seed=6)
    idx = build_index(DataType.FLOAT_VECTOR, 16, index_type, "COSINE", {"M": 8, "efConstruction": 40}, x)
    flat = idx._flat_storage()
    if index_type == "HNSW_SQ":
        assert flat is None  # quantized storage: rows are reconstructed by faiss
    else:
        rows = np.array([0, 5, 2999, 17])
        assert np.array_equal(flat[rows], idx._index.reconstruct_batch(rows))
    allow = np.zeros(len(x), bool)
    allow[::7] = True
    truth = reference_topk("COSINE", x, q, 10, allow)
    _, rows = idx.search(q, 10, allow=allow, params={"ef": 16})  # first sighting
    assert allow[rows[rows >= 0]].all()
    if index_type == "HNSW":  # gathered and scanned exactly at once, but not cached yet
        assert (rows == truth).mean() > 0.999 and not cache._items


def test_l2_scans_of_hot_rows_keep_their_norms(cache, monkeypatch):
    """An L2 scan of the hot rows re-checks its candidates with their norms, computed once and kept with them."""
    from heron.engine.index import _exact

    x, q = clustered(4000, 8, 10, seed=6)
    x[:280] = x[0]  # duplicates: 40 kept rows tie, so the scan re-checks with the norms
    idx = build_index(DataType.FLOAT_VECTOR, 8, "HNSW", "L2", {"M": 8, "efConstruction": 40}, x)
    a = np.zeros(len(x), bool)
    a[::7] = True
    a.flags.writeable = False
    q = np.concatenate([x[:1], q])
    seen = []
    real = _exact._guard_l2
    monkeypatch.setattr(_exact, "_guard_l2", lambda *args: (seen.append(args[-1]), real(*args))[1])
    for _ in range(3):
        scores, rows = idx.search(q, 5, allow=a)
        assert (rows == reference_topk("L2", x, q, 5, a)).all()
        assert rows[0].tolist() == [0, 7, 14, 21, 28] and (scores[0] == 0).all()
    assert idx._hot is not None and idx._hot[0] is a and idx._hot[2] is not None
    assert np.array_equal(idx._hot[2], np.einsum("ij,ij->i", idx._hot[1][1], idx._hot[1][1]))
    assert seen[-1] is idx._hot[2] and seen[-2] is idx._hot[2]  # the kept norms, not new ones per search
