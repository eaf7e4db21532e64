"""Repeated filters: remembered bitmaps, cached kept rows and their grouped exact scan, never stale, always exact."""

from __future__ import annotations

import gc
import threading
import time

import numpy as np
import pytest

import heron
from heron.engine.index import _dense as _vindex_dense
from heron.engine.index import _grouped_scan
from heron.engine.index._faiss import faiss
from heron.engine.index._grouped_scan import GroupedRows, Groupings
from heron.engine.index._half_scan import HalfRows
from heron.engine.index._subset_cache import SubsetCache
from heron.engine.index._top_one import ip_top_one


def _clustered(n, dim, seed, centres=40, spread=0.15):
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(99).standard_normal((centres, dim)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def _frozen(a):
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _same_top(got, want, tol=1e-5):
    """`got` is the full scan's answer `want`, up to the order of rows whose scores differ by rounding.

    BLAS may round a row's product differently at another position in a matrix,
    so rows that tie to within an ulp may swap; all else must agree.
    """
    (gs,), (gi,), (ws,), (wi,) = got[0], got[1], want[0], want[1]
    np.testing.assert_allclose(gs, ws, rtol=0, atol=tol)
    assert len(set(gi.tolist())) == len(gi)
    assert set(wi[ws > ws[-1] + tol].tolist()) <= set(gi.tolist())  # every row clearly in the top-k is there
    swapped = gi != wi
    assert (np.abs(gs - ws)[swapped] <= tol).all()
    tie = gs[1:] == gs[:-1]
    assert (gi[1:][tie] > gi[:-1][tie]).all()  # exact ties: the lower id first


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("normalise", [True, False])
def test_grouped_scan_equals_the_full_scan(k, normalise):
    x = _frozen(_clustered(6000, 24, 1))
    ids = np.sort(np.random.default_rng(2).choice(10**6, 6000, replace=False))
    q = _clustered(60, 24, 3) * (1.0 if normalise else 3.7)  # IP: a query's length only scales the bounds
    g = GroupedRows(ids, x)
    answered = 0
    for qi in q:
        got = g.top_k(qi, k)
        if got is None:
            continue
        answered += 1
        assert got[0].shape == (1, k) and got[1].shape == (1, k)
        _same_top(got, ip_top_one(x, ids, qi, k), tol=1e-5 * (1.0 if normalise else 3.7))
    assert answered == len(q)  # clustered rows: the bounds prune
    assert g.share < _grouped_scan.GIVE_UP_SHARE


@pytest.mark.parametrize("spread", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("dim", [3, 8])  # in few dimensions rows reach their bounds: a loose one shows
def test_the_bounds_hold_where_groups_overlap(monkeypatch, spread, dim):
    monkeypatch.setattr(_grouped_scan, "FULL_SCAN_SHARE", 1.0)  # never hand over to the full scan
    x = _frozen(_clustered(4000, dim, 70, centres=12, spread=spread))
    ids = np.arange(4000) * 3
    g = GroupedRows(ids, x)
    for qi in _clustered(150, dim, 71, centres=12, spread=spread):
        got = g.top_k(qi, 20)
        assert got is not None
        _same_top(got, ip_top_one(x, ids, qi, 20))
    assert 0.0 < g.share < 1.0  # some groups pruned, but not by a wide margin


def test_duplicated_rows_are_answered_as_by_the_full_scan():
    base = _clustered(2500, 16, 4)
    x = _frozen(np.concatenate([base, base]))  # every vector twice, under two ids
    ids = np.arange(5000) * 2
    g = GroupedRows(ids, x)
    for qi in _clustered(20, 16, 5):
        got = g.top_k(qi, 10)
        assert got is not None
        _same_top(got, ip_top_one(x, ids, qi, 10))


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("scale", [1.0, 250.0])
def test_the_float16_scan_equals_the_full_scan(k, scale):
    rng = np.random.default_rng(80)
    x = rng.standard_normal((5000, 48)).astype(np.float32)
    x = _frozen(x / np.linalg.norm(x, axis=1, keepdims=True) * scale)  # IP rows of any length
    ids = np.sort(rng.choice(10**7, 5000, replace=False))
    h = HalfRows(x)
    answered = 0
    for qi in rng.standard_normal((60, 48)).astype(np.float32):
        got = h.top_k(ids, x, qi, k)
        if got is not None:
            answered += 1
            _same_top(got, ip_top_one(x, ids, qi, k), tol=1e-5 * scale * 8)
    assert answered >= 55


def test_the_float16_scan_runs_faiss_on_one_thread_and_gives_the_caller_its_setting_back():
    before = faiss.omp_get_max_threads()
    x = _frozen(_clustered(3000, 16, 82))
    h = HalfRows(x)
    seen = []
    real = h.index.search_c

    class Spy:
        def search_c(self, *a):
            seen.append(faiss.omp_get_max_threads())
            return real(*a)

    h.index = Spy()
    faiss.omp_set_num_threads(2)
    try:
        assert h.top_k(np.arange(3000), x, x[5], 10) is not None
        assert seen == [1] and faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)


def test_rows_the_float16_copy_cannot_tell_apart_are_never_misranked():
    rng = np.random.default_rng(81)
    base = rng.standard_normal((50, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    # 100 rows a centre, each within float16's rounding of it: their float16 scores coincide
    x = np.repeat(base, 100, axis=0) + 1e-5 * rng.standard_normal((5000, 32)).astype(np.float32)
    x = _frozen(x)
    ids = np.arange(5000)
    h = HalfRows(x)
    fell_back = 0
    for qi in base[:20] + 0.01 * rng.standard_normal((20, 32)).astype(np.float32):
        got = h.top_k(ids, x, qi, 10)
        if got is None:
            fell_back += 1
            continue
        want = ip_top_one(x, ids, qi, 10)
        assert (got[1] == want[1]).all()
        assert (got[0] == want[0]).all()
    assert fell_back == 20  # 100 candidates within the margin, more than are asked of the float16 scan


def test_rows_too_large_or_not_finite_get_no_float16_copy():
    x = np.ones((600, 8), np.float32)
    x[3, 1] = 70_000.0
    with pytest.raises(ValueError, match="float16"):
        HalfRows(x)
    x[3, 1] = np.inf
    with pytest.raises(ValueError, match="float16"):
        HalfRows(x)


def test_rows_spread_evenly_are_scanned_in_full_and_the_grouping_given_up(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)  # rows of 16 to 64 values
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 2)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5000, 64)).astype(np.float32)
    x = _frozen(x / np.linalg.norm(x, axis=1, keepdims=True))
    ids = np.arange(5000)
    gs = Groupings()
    for qi in rng.standard_normal((40, 64)).astype(np.float32):
        got = gs.top_k(ids, x, qi, 10)  # the float16 copy answers, or the caller scans them all
        if got is not None:
            _same_top(got, ip_top_one(x, ids, qi, 10))
    assert gs.built == 1 and gs.answered == 0 and gs.answered_half > 30
    (entry,) = gs._entries.values()
    assert entry.state == "refused" and entry.grouped is None and gs.nbytes == entry.half.nbytes


def test_an_owner_whose_rows_do_not_prune_is_not_grouped_again(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 1)
    rng = np.random.default_rng(64)
    gs = Groupings()
    arrays = []
    for owner in (7, 7, 7, 8):
        x = rng.standard_normal((4000, 32)).astype(np.float32)
        x = _frozen(x / np.linalg.norm(x, axis=1, keepdims=True))
        arrays.append(x)  # kept alive: each is another filter's rows
        for qi in rng.standard_normal((30, 32)).astype(np.float32):
            got = gs.top_k(np.arange(4000), x, qi, 10, owner=owner)
            assert got is None or (got[1] == ip_top_one(x, np.arange(4000), qi, 10)[1]).all()
    assert gs.built == 3  # owner 7 twice (each given up), never a third time; owner 8 is its own
    assert gs._refusals == {7: 2, 8: 1}


def test_rows_that_are_not_finite_are_never_grouped(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)  # rows of 16 to 64 values
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 1)
    x = _clustered(5000, 16, 63)
    x[17, 3] = np.nan
    x = _frozen(x)
    with pytest.raises(ValueError, match="not finite"):
        GroupedRows(np.arange(5000), x)
    gs = Groupings()
    for _ in range(3):
        assert gs.top_k(np.arange(5000), x, x[0], 10) is None
    assert gs.built == 0 and next(iter(gs._entries.values())).state == "refused"


def test_groupings_are_made_after_repeated_use_and_kept_within_their_byte_budget(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)  # rows of 16 to 64 values
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 3)
    q = _clustered(1, 16, 7)[0]
    arrays = [_frozen(_clustered(5000, 16, 10 + i)) for i in range(4)]
    one = GroupedRows(np.arange(5000), arrays[0]).nbytes + HalfRows(arrays[0]).nbytes
    gs = Groupings(max_bytes=2 * one + one // 2)  # room for two groupings
    for x in arrays:
        ids = np.arange(5000)
        for i in range(5):
            got = gs.top_k(ids, x, q, 10)
            assert (got is None) == (i < 2)  # counted, grouped on the third use, then answered from it
            if got is not None:
                _same_top(got, ip_top_one(x, ids, q, 10))
        assert gs.nbytes <= gs.max_bytes
    assert gs.built == 4 and gs.answered == 4 * 3
    assert sum(e.grouped is not None for e in gs._entries.values()) == 2
    writable = _clustered(5000, 16, 20)
    for _ in range(5):  # an array that may change is never grouped
        assert gs.top_k(np.arange(5000), writable, q, 10) is None
    assert gs.built == 4
    small = _frozen(_clustered(_grouped_scan.MIN_VALUES // 16 - 1, 16, 21))
    for _ in range(5):
        assert gs.top_k(np.arange(len(small)), small, q, 10) is None
    assert gs.built == 4


def test_a_grouping_is_freed_with_its_rows_and_made_off_the_search_path(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)  # rows of 16 to 64 values
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 2)
    gs = Groupings()
    x = _frozen(_clustered(5000, 16, 60))
    ids = np.arange(5000)
    q = _clustered(1, 16, 61)[0]
    assert gs.top_k(ids, x, q, 10) is None
    assert gs.top_k(ids, x, q, 10) is None  # the second use starts the grouping on a thread of its own
    deadline = time.monotonic() + 60
    while gs.built == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    got = gs.top_k(ids, x, q, 10)
    assert got is not None
    _same_top(got, ip_top_one(x, ids, q, 10))
    assert gs.nbytes > x.nbytes
    del x, got
    gc.collect()  # the gathered rows are gone (evicted from the subset cache): so is their grouping
    assert gs.nbytes == 0 and not gs._entries


def test_threads_searching_while_the_rows_are_grouped_get_full_scan_answers(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 4)
    gs = Groupings()
    x = _frozen(_clustered(6000, 16, 65))
    ids = np.arange(6000) * 5
    qs = _clustered(64, 16, 66)
    want = [ip_top_one(x, ids, q, 10) for q in qs]
    errors: list[BaseException] = []

    def work(seed):
        try:
            for i in np.random.default_rng(seed).integers(0, len(qs), 300).tolist():
                got = gs.top_k(ids, x, qs[i], 10)
                _same_top(got if got is not None else ip_top_one(x, ids, qs[i], 10), want[i])
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    deadline = time.monotonic() + 60
    while gs.built == 0 and time.monotonic() < deadline:  # the grouping may still be running
        time.sleep(0.01)
    work(99)  # and searches from it
    assert not errors, errors[0]
    assert gs.built == 1 and len(gs._entries) == 1 and gs.answered > 0


def test_the_grouping_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("HERON_GROUPED_SCAN_BYTES", "12345")
    assert _grouped_scan._budget() == 12345
    monkeypatch.setenv("HERON_GROUPED_SCAN_BYTES", "nonsense")
    assert _grouped_scan._budget() == 64 << 20
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 1)
    off = Groupings(max_bytes=0)  # a budget of 0 turns grouping off
    x = _frozen(_clustered(5000, 16, 62))
    for _ in range(3):
        assert off.top_k(np.arange(5000), x, x[0], 10) is None
    assert off.built == 0


# -- through the client: sealed and growing segments, writes, partitions, compaction ---------------------------


@pytest.fixture()
def small_caches(monkeypatch):
    """Fresh caches, grouping inline after two uses, and thresholds that let a small collection use them."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    subsets = SubsetCache(max_bytes=32 << 20)
    groupings = Groupings()
    monkeypatch.setattr(_vindex_dense, "SUBSETS", subsets)
    monkeypatch.setattr(_grouped_scan, "GROUPINGS", groupings)
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 2)
    monkeypatch.setattr(_grouped_scan, "MIN_ROWS", 256)
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 0)
    monkeypatch.setattr(_grouped_scan, "GROUP_ROWS", 16)
    return subsets, groupings


class Mirror:
    """What the collection holds, by id: vector, bucket, partition; the exact filtered top-k of it."""

    def __init__(self):
        self.rows: dict[int, tuple[np.ndarray, int, str]] = {}

    def put(self, ids, x, bucket, part="_default"):
        for i, v, b in zip(ids.tolist(), x, bucket.tolist()):
            self.rows[i] = (v, b, part)

    def top(self, q, k, keep, parts=None):
        ids = [i for i, (_, b, p) in self.rows.items() if keep(b) and (parts is None or p in parts)]
        x = np.stack([self.rows[i][0] for i in ids]).astype(np.float64)
        s = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
        order = np.lexsort((np.asarray(ids), -s))[:k]
        return [ids[j] for j in order]


def _insert(c, m, ids, x, bucket, part="_default", upsert=False):
    data = {"id": ids, "vector": x, "b": bucket}
    (c.upsert if upsert else c.insert)("x", [dict(zip(data, t)) for t in zip(ids.tolist(), x, bucket.tolist())],
                                       partition_name=part)
    m.put(ids, x, bucket, part)


def _search(c, q, expr="b < 5", parts=None):
    hits = c.search("x", data=[q], limit=10, filter=expr, partition_names=parts, output_fields=[])
    return [h["id"] for h in hits[0]]


def test_repeated_filtered_searches_use_the_caches_and_see_every_write(tmp_path, small_caches):
    _, groupings = small_caches
    rng = np.random.default_rng(8)
    m = Mirror()
    n = 6000
    x = _clustered(n, 16, 30)
    bucket = rng.integers(0, 10, n)
    queries = _clustered(12, 16, 31)
    keep = lambda b: b < 5  # noqa: E731
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=16, metric_type="COSINE")
        for lo in range(0, n, 2000):
            _insert(c, m, np.arange(lo, lo + 2000), x[lo:lo + 2000], bucket[lo:lo + 2000])
        c.flush("x")
        _insert(c, m, np.arange(n, n + 300), _clustered(300, 16, 32), rng.integers(0, 10, 300))  # growing

        def check():
            for q in queries:
                assert _search(c, q) == m.top(q, 10, keep)

        for _ in range(3):
            check()
        sealed = c._transport._engine.collection("default", "x").partitions["_default"].sealed
        memo = [mask for s in sealed for _, mask in s._filter_memo.values()]
        assert len(sealed) == 3 and len(memo) == 3 and not any(mask.flags.writeable for mask in memo)
        hot = [s.vindex["vector"][1]._hot for s in sealed]
        assert all(h is not None and not h[1][1].flags.writeable for h in hot)  # kept rows, gathered once
        assert groupings.built == 3 and groupings.answered > 0  # and grouped, and answered from the groups
        answered = groupings.answered
        check()
        assert groupings.answered > answered

        q = queries[0]
        top = _search(c, q)
        c.delete("x", ids=top[:3])  # deleted rows leave at once
        for i in top[:3]:
            del m.rows[i]
        check()
        near = np.repeat(q[None], 4, 0) + 0.01 * rng.standard_normal((4, 16)).astype(np.float32)
        _insert(c, m, np.arange(10**6, 10**6 + 4), near, np.array([1, 2, 3, 7]))  # new rows arrive at once
        check()
        assert set(_search(c, q)) >= {10**6, 10**6 + 1, 10**6 + 2}
        old = _search(c, queries[1])
        far = -np.repeat(queries[1][None], 2, 0)
        _insert(c, m, np.array(old[:2]), far, np.array([0, 0]), upsert=True)  # upserted: the new vector counts
        check()
        assert not set(old[:2]) & set(_search(c, queries[1]))

        c.create_partition("x", "p")
        _insert(c, m, np.arange(2 * 10**6, 2 * 10**6 + 2500), _clustered(2500, 16, 33),
                rng.integers(0, 10, 2500), part="p")
        c.flush("x")
        check()
        assert _search(c, queries[2], parts=["p"]) == m.top(queries[2], 10, keep, parts={"p"})
        c.release_partitions("x", ["p"])
        c.drop_partition("x", "p")
        m.rows = {i: r for i, r in m.rows.items() if r[2] != "p"}
        check()

        job = c.compact("x")
        deadline = time.monotonic() + 60
        while c.get_compaction_state(job) != "Completed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get_compaction_state(job) == "Completed"
        for _ in range(3):
            check()
        assert _search(c, queries[3], expr="b >= 5") == m.top(queries[3], 10, lambda b: b >= 5)


def test_filtered_searches_of_rows_that_do_not_cluster_use_the_float16_copy(tmp_path, small_caches):
    _, groupings = small_caches
    rng = np.random.default_rng(13)
    m = Mirror()
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=32, metric_type="COSINE")
        for lo in range(0, 6000, 2000):
            x = rng.standard_normal((2000, 32)).astype(np.float32)
            _insert(c, m, np.arange(lo, lo + 2000), x, rng.integers(0, 10, 2000))
        c.flush("x")
        queries = rng.standard_normal((10, 32)).astype(np.float32)
        for _ in range(4):
            for q in queries:
                assert _search(c, q, "b < 6") == m.top(q, 10, lambda b: b < 6)
        assert groupings.answered_half > 0
        gone = _search(c, queries[0], "b < 6")[:2]
        c.delete("x", ids=gone)
        for i in gone:
            del m.rows[i]
        for _ in range(4):
            for q in queries:
                assert _search(c, q, "b < 6") == m.top(q, 10, lambda b: b < 6)


def test_the_grouped_scan_of_a_filter_equals_the_exact_search_on_random_data(tmp_path, small_caches):
    _, groupings = small_caches
    rng = np.random.default_rng(12)
    m = Mirror()
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=16, metric_type="COSINE")
        for lo in range(0, 8000, 2000):  # four sealed segments and a growing one
            _insert(c, m, np.arange(lo, lo + 2000), _clustered(2000, 16, 40 + lo, spread=0.3),
                    rng.integers(0, 10, 2000))
        c.flush("x")
        _insert(c, m, np.arange(8000, 8500), _clustered(500, 16, 50), rng.integers(0, 10, 500))
        for expr, keep in (("b < 7", lambda b: b < 7), ("b in [1, 4, 8]", lambda b: b in (1, 4, 8))):
            for _ in range(3):
                for q in _clustered(10, 16, 51):
                    assert _search(c, q, expr) == m.top(q, 10, keep)
    assert groupings.answered > 0
