"""Interim indexes that grow with their segment: fresh rows are searched through IVF lists, not scanned."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine import _interim, _interim_ivf, _maintenance, _reads
from heron.engine.index import _dense, _faiss
from heron.engine.index._faiss import build_threads, faiss
from tests.conftest import shared_path
from tests.engine._held import held_builds


def _engine(c: heron.Client) -> Any:
    return c._transport._engine


def _part(c: heron.Client) -> Any:
    return _engine(c).collection("default", "c").partitions["_default"]


def _covered(c: heron.Client) -> int:
    return sum((e[1].ntotal if (e := s.interim.get("vec")) else 0) for s in _part(c).segments())


def _until(check: Any, timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.02)


@pytest.fixture(scope="module")
def minilm() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MiniLM rows of shared/data/minilm-dev-10k and its 200 queries (float32)."""
    base = np.load(shared_path("data", "minilm-dev-10k", "base_f16.npy")).astype(np.float32)
    queries = np.load(shared_path("data", "minilm-dev-10k", "queries.npy")).astype(np.float32)
    return base, queries


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Lists trained from 4,096 rows on, idle sealing off; counts the rows scanned exactly and the searches of lists."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "4096")
    seen = {"scanned": 0, "lists": 0}
    scan, search = _interim.exact_search, _interim_ivf.GrowingIVF.search
    assigned = _interim_ivf.GrowingIVF.search_assigned

    def counted_scan(dtype: Any, metric: str, vectors: Any, *a: Any, **kw: Any) -> Any:
        seen["scanned"] += len(vectors)
        return scan(dtype, metric, vectors, *a, **kw)

    def counted_search(self: Any, *a: Any, **kw: Any) -> Any:
        seen["lists"] += 1
        return search(self, *a, **kw)

    monkeypatch.setattr(_interim, "exact_search", counted_scan)
    monkeypatch.setattr(_reads, "exact_search", counted_scan)
    def counted_assigned(self: Any, *a: Any, **kw: Any) -> None:
        seen["lists"] += 1
        assigned(self, *a, **kw)

    stacked = _interim_ivf._Stacked.search

    def counted_stacked(self: Any, *a: Any, **kw: Any) -> Any:
        seen["lists"] += len(self.refs)  # the lists of each index, read in one search
        return stacked(self, *a, **kw)

    monkeypatch.setattr(_interim_ivf.GrowingIVF, "search", counted_search)
    monkeypatch.setattr(_interim_ivf.GrowingIVF, "search_assigned", counted_assigned)
    monkeypatch.setattr(_interim_ivf._Stacked, "search", counted_stacked)
    return seen


def _create(c: heron.Client, metric: str = "COSINE", dim: int = 384) -> None:
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("tag", heron.DataType.INT64)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=dim)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type=metric, params={"M": 16, "efConstruction": 64})
    c.create_collection("c", schema=schema, index_params=idx)


def _insert(c: heron.Client, x: np.ndarray, start: int = 0, batch: int = 1000) -> None:
    for lo in range(0, len(x), batch):
        ids = np.arange(start + lo, start + min(lo + batch, len(x)), dtype=np.int64)
        c.insert("c", {"id": ids, "tag": ids % 10, "vec": x[lo : lo + batch]})


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """Rows around 64 centres (the same for every seed), as bench/mixed_load.py draws them."""
    centres = np.random.default_rng(12345).standard_normal((64, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim), dtype=np.float32)
    return np.ascontiguousarray(x * rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32))


def _ids(hits: list[list[dict[str, Any]]]) -> list[list[int]]:
    return [[h["id"] for h in q] for q in hits]


def _recall(got: list[list[int]], want: list[list[int]]) -> float:
    return float(np.mean([len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(got, want)]))


def _through_lists(c: heron.Client, fresh: dict[str, int], queries: np.ndarray) -> tuple[Any, Any]:
    """20 queries answered through the lists with no row scanned exactly, then scanned exactly; recall >= 0.95."""
    fresh["lists"], fresh["scanned"] = 0, 0
    got = c.search("c", data=queries[:20], limit=10)
    assert fresh["lists"] and fresh["scanned"] == 0  # no row scanned exactly
    exact = c.search("c", data=queries[:20], limit=10, search_params={"interim": False})
    assert _recall(_ids(got), _ids(exact)) >= 0.95
    return got, exact


def test_inserted_rows_join_the_lists_without_waiting_for_the_sealer(
        tmp_path: Path, fresh: dict[str, int], minilm: tuple[np.ndarray, np.ndarray]) -> None:
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _engine(c).idle_sealer.stop()  # only the inserts themselves ask for the rows to be indexed
        _create(c)
        _insert(c, base)
        assert _until(lambda: _covered(c) == len(base))
        assert _part(c).growing is not None and not _part(c).sealed
        _through_lists(c, fresh, queries)
        assert fresh["scanned"] == len(base)  # interim False: every row scanned exactly
        _insert(c, base[:500] + 0.01, start=len(base))  # a tail the lists have not taken yet may be scanned
        assert _until(lambda: _covered(c) == len(base) + 500)


def test_recall_against_an_exact_search_on_minilm_rows(
        tmp_path: Path, fresh: dict[str, int], minilm: tuple[np.ndarray, np.ndarray]) -> None:
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, base)
        assert _until(lambda: _covered(c) == len(base))
        fresh["lists"] = 0
        got = c.search("c", data=queries, limit=10)
        assert fresh["lists"]
        exact = c.search("c", data=queries, limit=10, search_params={"interim": False})
        truth = np.load(shared_path("data", "minilm-dev-10k", "gt_top100.npy"))[:, :10]
        assert _recall(_ids(exact), truth.tolist()) >= 0.99  # the exact scan itself agrees with the data set's truth
        assert _recall(_ids(got), _ids(exact)) >= 0.95
        by_id = [{h["id"]: h["distance"] for h in q} for q in exact]
        for q, want in zip(got, by_id):  # re-scored exactly: a row found by both has the exact score
            scores = [h["distance"] for h in q]
            assert scores == sorted(scores, reverse=True)
            assert all(abs(h["distance"] - want[h["id"]]) < 1e-5 for h in q if h["id"] in want)
        # A filter keeping one row in ten, and one keeping a handful (the lists cannot find 10: scanned exactly).
        for expr in ("tag == 3", "id in [5, 17, 905, 4000, 9999]"):
            got = c.search("c", data=queries[:50], limit=10, filter=expr)
            want = c.search("c", data=queries[:50], limit=10, filter=expr, search_params={"interim": False})
            assert all(len(a) == len(b) for a, b in zip(got, want))
            assert _recall(_ids(got), _ids(want)) >= 0.95, expr


@pytest.mark.parametrize("metric", ["L2", "IP"])
def test_other_metrics_score_as_the_exact_scan_does(tmp_path: Path, fresh: dict[str, int], metric: str) -> None:
    x = _clustered(6000, 32, seed=3)
    q = _clustered(30, 32, seed=4)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c, metric, dim=32)
        _insert(c, x)
        assert _until(lambda: _covered(c) == len(x))
        got = c.search("c", data=q, limit=10)
        exact = c.search("c", data=q, limit=10, search_params={"interim": False})
        assert _recall(_ids(got), _ids(exact)) >= 0.95
        for a, b in zip(got, exact):
            want = {h["id"]: h["distance"] for h in b}
            assert all(abs(h["distance"] - want[h["id"]]) < 1e-3 * max(1.0, abs(h["distance"]))
                       for h in a if h["id"] in want)


@pytest.mark.parametrize("dtype", [heron.DataType.FLOAT16_VECTOR, heron.DataType.BFLOAT16_VECTOR])
def test_half_precision_fields_are_searched_through_the_lists(
        tmp_path: Path, fresh: dict[str, int], dtype: heron.DataType,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vec", dtype, dim=384)
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 64})
        c.create_collection("c", schema=schema, index_params=idx)
        for lo in range(0, 6000, 1000):
            c.insert("c", [{"id": i, "vec": base[i].tolist()} for i in range(lo, lo + 1000)])
        assert _until(lambda: _covered(c) == 6000)
        got, exact = _through_lists(c, fresh, queries)
        for a, b in zip(got, exact):
            want = {h["id"]: h["distance"] for h in b}
            assert all(abs(h["distance"] - want[h["id"]]) < 1e-3 for h in a if h["id"] in want)


def test_a_reopened_segment_without_its_index_is_searched_through_the_lists(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    def no_index(*a: Any, **k: Any) -> Any:
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(_maintenance, "build_index", no_index)
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, base[:6000])
        c.flush("c")
    with heron.Client(str(tmp_path / "db")) as c:  # the segment's rows are read from its file now
        seg = _part(c).sealed[0]
        assert "vec" not in seg.vindex
        assert _until(lambda: _covered(c) == 6000)
        _through_lists(c, fresh, queries)


def test_every_segment_of_a_field_starts_from_the_same_trained_lists(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "5000")
    release = held_builds(monkeypatch)
    trained: list[int] = []
    train = _interim.train_lists
    monkeypatch.setattr(_interim, "train_lists", lambda *a: (trained.append(1), train(*a))[1])
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        try:
            _create(c)
            _insert(c, base[:8000])  # one sealed segment of 5,000 (its HNSW build waits) and 3,000 growing rows
            assert _until(lambda: _covered(c) == 8000)
            p = _part(c)
            assert len(p.sealed) == 1 and p.growing is not None and p.growing.n == 3000
            assert len(trained) == 1  # the growing segment got a copy of the sealed one's lists
            _through_lists(c, fresh, queries)
        finally:
            release.set()


def test_segments_queued_while_the_lists_are_trained_wait_for_them(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "5000")
    monkeypatch.setenv("HERON_INTERIM_WORKERS", "2")
    release = held_builds(monkeypatch)
    trained: list[int] = []
    train = _interim.train_lists

    def slow_train(*a: Any) -> Any:  # the second segment is queued, and taken by the other worker, meanwhile
        trained.append(1)
        time.sleep(0.5)
        return train(*a)

    monkeypatch.setattr(_interim, "train_lists", slow_train)
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        try:
            _create(c)
            _insert(c, base[:5000])  # a sealed segment of 5,000: enough rows to train the field's lists
            _insert(c, base[5000:], start=5000)  # a second one, at once
            assert _until(lambda: _covered(c) == len(base))
            segs = _part(c).segments()
            assert len([s for s in segs if s.n >= 4096]) >= 2
            assert len(trained) == 1  # trained once: the other worker waited for the lists
            assert len({id(s.interim["vec"][1].lists) for s in segs}) == 1  # ... and every segment took them
            _through_lists(c, fresh, queries)
        finally:
            release.set()


def test_lists_trained_on_a_small_sealed_segment_serve_it_alone(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    release = held_builds(monkeypatch)
    lists: list[int] = []
    train = _interim.train_lists
    monkeypatch.setattr(_interim, "train_lists", lambda *a: (t := train(*a), lists.append(t.nlist))[0])
    base, _ = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        try:
            _create(c)
            _insert(c, base[:3000])
            threading.Thread(target=c.flush, args=("c",), daemon=True).start()
            assert _until(lambda: _covered(c) == 3000)  # sealed with 3,000 rows: lists of its own
            _insert(c, base[3000:5000], start=3000)
            assert _until(lambda: _part(c).growing.n == 2000) and _covered(c) == 3000  # too few to train on
            _insert(c, base[5000:8000], start=5000)
            assert _until(lambda: _covered(c) == 8000)  # 5,000 growing rows: lists for the field, from 4,096
            _insert(c, base[8000:], start=8000)
            assert _until(lambda: _covered(c) == len(base))
            assert lists == [3000 // 16, 4096 // 16]
        finally:
            release.set()


def test_a_dropped_collections_lists_go_when_another_trains_its_own(
        tmp_path: Path, fresh: dict[str, int], minilm: tuple[np.ndarray, np.ndarray]) -> None:
    base, _ = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, base[:5000])
        assert _until(lambda: _covered(c) == 5000)
        indexer = _engine(c).interim
        first = {k[0] for k in indexer._trained}
        assert len(first) == 1
        c.drop_collection("c")
        _create(c)
        _insert(c, base[:5000])
        assert _until(lambda: _covered(c) == 5000)
        second = {k[0] for k in indexer._trained}
        assert len(second) == 1 and second != first


def test_the_interim_index_answers_through_sealing_until_the_segment_has_its_own(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    release = held_builds(monkeypatch)
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, base[:6000])
        assert _until(lambda: _covered(c) == 6000)
        seg = _part(c).growing
        ivf = seg.interim["vec"][1]
        try:
            threading.Thread(target=c.flush, args=("c",), daemon=True).start()
            assert _until(lambda: _part(c).growing is None and seg.persisted)
            assert seg.sealed and seg.interim["vec"][1] is ivf  # the same index, through the seal
            fresh["scanned"], fresh["lists"] = 0, 0
            c.search("c", data=queries[:5], limit=10)
            assert fresh["lists"] and fresh["scanned"] == 0
        finally:
            release.set()
        assert _until(lambda: "vec" in seg.vindex)
        assert _until(lambda: not seg.interim)  # dropped by the next look once the HNSW index is in
        fresh["lists"] = 0
        got = c.search("c", data=base[10:13], limit=1)
        assert _ids(got) == [[10], [11], [12]] and not fresh["lists"]


def test_growing_while_searched_returns_only_the_rows_a_view_holds() -> None:
    x = np.random.default_rng(7).standard_normal((20000, 24)).astype(np.float32)
    trained = _interim_ivf.train_lists(24, "L2", x[:4000])
    ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 24, "L2", trained)
    ivf.grow(x[:2000])
    errors: list[BaseException] = []
    done = threading.Event()

    def searcher() -> None:
        try:
            while not done.is_set():
                n = ivf.ntotal
                got = ivf.search(x, x[:3], 5, n, None)
                assert got is not None and int(got[1].max()) < n
                allow = np.zeros(n, dtype=bool)
                allow[::2] = True
                got = ivf.search(x, x[:3], 5, n, allow)
                assert got is not None and bool(np.all(got[1] % 2 == 0))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for lo in range(2000, 20000, 500):
        ivf.grow(x[lo : lo + 500])
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert ivf.ntotal == 20000
    s, r = ivf.search(x, x[100:103], 1, 1000, None)  # a view of the first 1,000 rows
    assert r[:, 0].tolist() == [100, 101, 102] and np.allclose(s[:, 0], 0, atol=1e-4)
    assert ivf.search(x, x[:1], 10, 20000, np.isin(np.arange(20000), [3, 4]).astype(bool)) is None


def test_background_builds_leave_callers_a_core(monkeypatch: pytest.MonkeyPatch) -> None:
    cores = os.cpu_count() or 1
    assert build_threads(8, False) == 8
    assert build_threads(8, True) == max(1, min(8, cores - 1))
    assert build_threads(1, True) == 1
    before = faiss.omp_get_max_threads()
    asked: list[bool] = []
    real = _faiss.build_threads
    monkeypatch.setattr(_dense, "build_threads", lambda full, busy: (asked.append(busy), real(full, busy))[1])
    x = np.random.default_rng(1).standard_normal((300, 8)).astype(np.float32)
    idx = _dense.DenseIndex.build(DataType.FLOAT_VECTOR, 8, "HNSW", "L2", {"M": 8, "efConstruction": 16}, x,
                                  busy=lambda: True)
    assert asked and all(asked) and idx.ntotal == 300
    assert faiss.omp_get_max_threads() == before


def test_the_segments_of_a_search_share_one_coarse_assignment_per_query(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "3000")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "2048")  # the first segment trains the field's lists while it grows
    release = held_builds(monkeypatch)
    assigned: list[int] = []
    assign = _interim_ivf.GrowingIVF.assign
    monkeypatch.setattr(_interim_ivf.GrowingIVF, "assign", lambda self, q: (assigned.append(q.shape[0]), assign(self, q))[1])
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        try:
            _create(c)
            _insert(c, base)  # three sealed segments of 3,000 rows (their HNSW builds wait) and 1,000 growing
            assert _until(lambda: _covered(c) == len(base))
            segments = len(_part(c).segments())
            assert segments == 4
            assigned.clear()
            fresh["lists"], fresh["scanned"] = 0, 0
            got = c.search("c", data=queries[:30], limit=10)
            assert assigned == [30]  # the 30 queries' nearest lists found once, for all four segments
            assert fresh["lists"] == segments and fresh["scanned"] == 0
            exact = c.search("c", data=queries[:30], limit=10, search_params={"interim": False})
            assert fresh["scanned"] == len(base)
            assert _recall(_ids(got), _ids(exact)) >= 0.95
            by_id = [{h["id"]: h["distance"] for h in q} for q in exact]
            for q, want in zip(got, by_id):  # merged best first across segments, with the exact scores
                scores = [h["distance"] for h in q]
                assert len(q) == 10 and scores == sorted(scores, reverse=True)
                assert all(abs(h["distance"] - want[h["id"]]) < 1e-5 for h in q if h["id"] in want)
            one = c.search("c", data=queries[:1], limit=10)  # a single query: the same rows as in the batch
            assert _ids(one)[0] == _ids(got)[0]
        finally:
            release.set()


def test_lists_beyond_reach_of_the_top_k_are_skipped_without_changing_the_result() -> None:
    centres = np.random.default_rng(8).standard_normal((64, 32), dtype=np.float32)
    rng = np.random.default_rng(9)
    x = centres[rng.integers(0, 64, 20000)] + 0.15 * rng.standard_normal((20000, 32), dtype=np.float32)
    q = centres[rng.integers(0, 64, 40)] + 0.15 * rng.standard_normal((40, 32), dtype=np.float32)
    trained = _interim_ivf.train_lists(32, "COSINE", _interim_ivf.prepared(DataType.FLOAT_VECTOR, "COSINE", x[:8000]))
    parts = []
    for lo, hi in ((0, 12000), (12000, 20000)):
        ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 32, "COSINE", trained)
        for s in range(lo, hi, 3000):
            ivf.grow(x[s : min(hi, s + 3000)])
        parts.append((ivf, x[lo:hi], hi - lo))
    coarse, lists = parts[0][0].assign(parts[0][0].prepared(q))
    _, kept = _interim_ivf._bounded(parts, coarse, lists, 10)
    read = np.count_nonzero(kept >= 0, axis=1)
    assert lists.shape[1] == _interim_ivf.IVF_NPROBE and read.max() < lists.shape[1] // 2  # 64 tight clusters
    assert read.min() >= 1 and bool(np.all(kept[:, 0] == lists[:, 0]))  # the nearest list always
    bounded = _interim_ivf.search_together(parts, q, 10)
    assert bounded is not None
    every = _interim_ivf._bounded
    try:
        _interim_ivf._bounded = lambda parts, coarse, lists, k: (coarse, lists)  # type: ignore[assignment]
        full = _interim_ivf.search_together(parts, q, 10)
    finally:
        _interim_ivf._bounded = every
    assert full is not None
    for a, b in zip(bounded, full):
        assert np.array_equal(a, b)
    xs = _interim_ivf.prepared(DataType.FLOAT_VECTOR, "COSINE", x)
    truth = np.argsort(-(xs @ _interim_ivf.prepared(DataType.FLOAT_VECTOR, "COSINE", q).T), axis=0)[:10].T
    got = bounded[2] + np.where(bounded[1] == 1, 12000, 0)
    assert _recall(got.tolist(), truth.tolist()) >= 0.95


def test_an_index_build_waits_for_the_interim_indexes_to_catch_up(
        tmp_path: Path, fresh: dict[str, int], minilm: tuple[np.ndarray, np.ndarray]) -> None:
    base, _ = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _engine(c).idle_sealer.stop()
        _create(c)
        _insert(c, base[:9000], batch=3000)
        indexer = _engine(c).interim
        indexer.settle(60)
        assert _covered(c) == 9000  # caught up when settle returned
        indexer.settle(0)  # no time to wait: returns at once


def test_rows_the_lists_have_not_reached_are_scanned_and_merged_with_theirs(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch,
        minilm: tuple[np.ndarray, np.ndarray]) -> None:
    base, queries = minilm
    with heron.Client(str(tmp_path / "db")) as c:
        _engine(c).idle_sealer.stop()
        _create(c)
        _insert(c, base[:8000])
        assert _until(lambda: _covered(c) == 8000)
        monkeypatch.setattr(_interim.InterimIndexer, "_queue", lambda *a, **k: None)  # the lists stop growing
        _insert(c, base[8000:8700], start=8000)
        assert _covered(c) == 8000
        fresh["lists"], fresh["scanned"] = 0, 0
        probe = np.concatenate([base[8100:8105], queries[:25]])
        got = c.search("c", data=probe, limit=10)
        assert fresh["lists"] and fresh["scanned"] == 700  # only the rows the lists lack, exactly
        assert [q[0]["id"] for q in got[:5]] == list(range(8100, 8105))  # found by the scan, merged first
        exact = c.search("c", data=probe, limit=10, search_params={"interim": False})
        assert _recall(_ids(got), _ids(exact)) >= 0.95
        for q in got:
            scores = [h["distance"] for h in q]
            assert len(q) == 10 and scores == sorted(scores, reverse=True)


def test_the_best_candidates_of_all_segments_by_their_codes_are_shortlisted() -> None:
    approx = np.array([[[0.9, 0.5, 0.1]], [[0.8, 0.7, 0.0]]], dtype=np.float32)  # [indexes, queries, candidates]
    found = np.array([[[4, 7, 9]], [[2, 3, -1]]], dtype=np.int64)  # -1: no row, whatever its score
    at, rows = _interim_ivf._shortlist("IP", approx, found, 3)
    assert sorted(zip(at[0].tolist(), rows[0].tolist())) == [(0, 4), (1, 2), (1, 3)]  # larger is better
    at, rows = _interim_ivf._shortlist("L2", approx, found, 3)
    assert sorted(zip(at[0].tolist(), rows[0].tolist())) == [(0, 7), (0, 9), (1, 3)]  # smaller is better
    at, rows = _interim_ivf._shortlist("IP", approx[:1], found[:1], 3)  # one index: its candidates as they are
    assert at.tolist() == [[0, 0, 0]] and rows.tolist() == [[4, 7, 9]]


@pytest.mark.parametrize("metric", ["COSINE", "L2"])
def test_many_segments_rescore_as_many_candidates_as_one_and_keep_the_exact_top_k(
        tmp_path: Path, fresh: dict[str, int], monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "3000")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "2048")  # the first segment trains the field's lists while it grows
    release = held_builds(monkeypatch)
    rescored: list[int] = []
    exact_scores = _interim_ivf.exact_scores
    monkeypatch.setattr(_interim_ivf, "exact_scores",
                        lambda dtype, metric, x, *a: (rescored.append(x.shape[1]), exact_scores(dtype, metric, x, *a))[1])
    x, q = _clustered(18000, 32, 1), _clustered(30, 32, 2)
    with heron.Client(str(tmp_path / "db")) as c:
        try:
            _engine(c).idle_sealer.stop()
            _create(c, metric, dim=32)
            _insert(c, x)
            assert _until(lambda: _covered(c) == len(x))
            assert [s.n for s in _part(c).segments() if s.n] == [3000] * 6  # none with its own index
            rescored.clear()
            fresh["lists"], fresh["scanned"] = 0, 0
            got = c.search("c", data=q, limit=10)
            assert fresh["lists"] == 6 and fresh["scanned"] == 0
            assert rescored == [_interim_ivf.candidates(10)]  # not six times as many
            exact = c.search("c", data=q, limit=10, search_params={"interim": False})
            assert fresh["scanned"] == len(x)
            assert _recall(_ids(got), _ids(exact)) >= 0.95
            by_id = [{h["id"]: h["distance"] for h in hits} for hits in exact]
            for hits, want in zip(got, by_id):  # the exact scores, best first
                scores = [h["distance"] for h in hits]
                assert len(hits) == 10 and scores == sorted(scores, reverse=metric != "L2")
                assert all(abs(h["distance"] - want[h["id"]]) < 1e-4 * max(1.0, abs(want[h["id"]]))
                           for h in hits if h["id"] in want)
        finally:
            release.set()


def test_the_lists_radii_and_sizes_of_indexes_searched_together_follow_their_growth() -> None:
    x = _clustered(6000, 16, 5)
    trained = _interim_ivf.train_lists(16, "L2", x[:4000])
    a = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", trained)
    b = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", trained)
    a.grow(x[:2000])
    b.grow(x[2000:3000])
    radius, sizes = _interim_ivf._combined([a, b])
    assert np.array_equal(radius, np.maximum(a.radius, b.radius)) and np.array_equal(sizes, a.sizes + b.sizes)
    assert _interim_ivf._combined([a, b])[0] is radius  # kept while neither grows
    b.grow(x[3000:6000])
    radius, sizes = _interim_ivf._combined([a, b])
    assert int(sizes.sum()) == 6000 and np.array_equal(radius, np.maximum(a.radius, b.radius))


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
def test_indexes_read_as_one_stack_give_the_candidates_each_gives_on_its_own(metric: str) -> None:
    x, q = _clustered(9000, 16, 6), _clustered(25, 16, 7)
    trained = _interim_ivf.train_lists(16, metric, _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, x[:4000]))
    ivfs = []
    for lo, hi in ((0, 4000), (4000, 4500), (4500, 9000)):
        ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, metric, trained)
        ivf.grow(x[lo:hi])
        ivfs.append(ivf)
    prepared = ivfs[0].prepared(q)
    coarse, lists = ivfs[0].assign(prepared)
    want = _interim_ivf.candidates(10)
    approx = np.empty((3, len(q), want), dtype=np.float32)
    found = np.empty((3, len(q), want), dtype=np.int64)
    for i, ivf in enumerate(ivfs):
        ivf.search_assigned(prepared, want, lists, coarse, ivf.ntotal, approx[i], found[i])
    one_by_one = _interim_ivf._shortlist(metric, approx, found, want)
    stack = _interim_ivf._stacked(ivfs)
    assert _interim_ivf._stacked(ivfs) is stack  # made once per set of indexes
    at, rows = stack.search(prepared, want, lists, coarse)
    assert bool(np.all(rows >= 0)) and bool(np.all(rows < np.array([4000, 500, 4500])[at]))
    same = [len(set(zip(*a)) & set(zip(*b))) / want
            for a, b in zip(zip(at.tolist(), rows.tolist()), zip(one_by_one[0].tolist(), one_by_one[1].tolist()))]
    assert min(same) >= 0.9 and np.mean(same) >= 0.98  # the same candidates, but for ties among equal codes
    ivfs[1].grow(x[:100])  # the stack reads the lists as they are at each search
    at, rows = stack.search(prepared, want, lists, coarse)
    assert bool(np.all(rows < np.array([4000, 600, 4500])[at]))
    assert _interim_ivf._stacked(ivfs[:2]) is not stack


def test_candidates_of_several_segments_are_read_from_each_in_their_order() -> None:
    vectors = [np.arange(12, dtype=np.float32).reshape(6, 2) + 100 * i for i in range(3)]
    at, rows = np.array([2, 0, 2, 1, 0]), np.array([5, 1, 0, 3, 1])
    got = _interim_ivf._gathered(DataType.FLOAT_VECTOR, vectors, at, rows)
    assert np.array_equal(got, np.stack([vectors[a][r] for a, r in zip(at, rows)]))
    assert _interim_ivf._gathered(DataType.FLOAT_VECTOR, vectors, at[:0], rows[:0]).shape == (0, 2)


def test_indexes_of_the_same_trained_lists_share_one_gate() -> None:
    x = _clustered(3000, 16, 9)
    trained = _interim_ivf.train_lists(16, "L2", x[:2000])
    other = _interim_ivf.train_lists(16, "L2", x[1000:3000])
    a, b = (_interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", trained) for _ in range(2))
    c = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", other)
    assert a._gate is b._gate and a._gate is not c._gate
    a._gate.write_begin()  # a growth of one holds off the searches of both
    entered = threading.Event()
    t = threading.Thread(target=lambda: (b._gate.enter(), entered.set(), b._gate.leave()))
    t.start()
    assert not entered.wait(0.2)
    a._gate.write_end()
    t.join(5)
    assert entered.is_set()


def _two_indexes_of_one_set_of_lists() -> tuple[Any, Any]:
    """Two segments' interim indexes grown from the same trained lists (so sharing one gate), as two workers grow them."""
    trained = _interim_ivf.train_lists(16, "L2", _clustered(2000, 16, 9))
    a, b = (_interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", trained) for _ in range(2))
    assert a._gate is b._gate
    return a, b


def test_searches_wait_for_every_growth_of_indexes_sharing_a_gate() -> None:
    a, b = _two_indexes_of_one_set_of_lists()
    a._gate.write_begin()  # two workers grow two segments' indexes at once
    b._gate.write_begin()
    entered = threading.Event()
    t = threading.Thread(target=lambda: (a._gate.enter(), entered.set(), a._gate.leave()), daemon=True)
    t.start()
    a._gate.write_end()  # one growth ended: the other still holds searches off
    assert not entered.wait(0.2)
    b._gate.write_end()
    t.join(5)
    assert entered.is_set()


def test_a_growth_does_not_join_one_under_way_while_searches_wait() -> None:
    a, b = _two_indexes_of_one_set_of_lists()
    gate = a._gate
    gate.write_begin()
    done: list[str] = []
    reader = threading.Thread(target=lambda: (gate.enter(), done.append("search"), gate.leave()), daemon=True)
    reader.start()
    assert _until(lambda: gate.waiting == 1, 5)
    writer = threading.Thread(target=lambda: (b._gate.write_begin(), done.append("growth"), b._gate.write_end()),
                              daemon=True)
    writer.start()
    time.sleep(0.2)
    assert done == []  # the second growth waits with the search: the search waits for the first growth only
    gate.write_end()
    reader.join(5)
    writer.join(5)
    assert sorted(done) == ["growth", "search"] and gate.writers == gate.readers == gate.waiting == 0


def test_a_second_worker_grows_an_index_only_once_inserts_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    class Engine:
        closing = False

    monkeypatch.setattr(_interim, "INSERTS_QUIET", 3600.0)  # the last insert stays recent, however slow the machine
    indexer = _interim.InterimIndexer(Engine(), rows=1024, workers=2)  # type: ignore[arg-type]
    indexer._written_at = time.monotonic()
    indexer._turn()  # while inserts come in, the first worker's turn comes at once
    second = threading.Event()
    threading.Thread(target=lambda: (indexer._turn(), second.set()), daemon=True).start()
    assert not second.wait(0.3)  # one worker at a time meanwhile
    with indexer._lock:
        indexer._written_at = -math.inf  # the inserts stopped long ago
        indexer._lock.notify_all()
    assert second.wait(5) and indexer._growing == 2  # the second worker's turn came


def test_the_interim_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERON_INTERIM_WORKERS", raising=False)
    assert _interim.interim_workers() == _interim.INTERIM_WORKERS
    monkeypatch.setenv("HERON_INTERIM_WORKERS", "3")
    assert _interim.interim_workers() == 3
    for bad in ("0", "-1", "two"):
        monkeypatch.setenv("HERON_INTERIM_WORKERS", bad)
        with pytest.raises(ValueError, match=f"HERON_INTERIM_WORKERS='{bad}': expected a whole number >= 1"):
            _interim.interim_workers()
    monkeypatch.setenv("HERON_INTERIM_ROWS", "0")
    assert _interim.interim_rows() == 0  # interim indexes off
    for bad in ("-1", "many"):
        monkeypatch.setenv("HERON_INTERIM_ROWS", bad)
        with pytest.raises(ValueError, match=f"HERON_INTERIM_ROWS='{bad}': expected a whole number >= 0"):
            _interim.interim_rows()


def test_an_indexed_segment_keeps_its_interim_lists_while_segments_after_it_wait_for_their_merge():
    """Persisted segments whose merge is still queued may yet be merged into the segment before them."""
    from types import SimpleNamespace as NS

    def seg(persisted: bool, indexed: bool) -> Any:
        return NS(persisted=persisted, vindex={"vec": object()} if indexed else {}, n=1000)

    indexer = NS(engine=NS(maintenance=NS(merge_limit=lambda coll: 10**6)))
    base = seg(True, True)
    may = _interim.InterimIndexer._may_merge_into
    for after, expected in [
        (seg(False, False), True),  # sealed, not yet persisted
        (seg(True, False), True),  # persisted, its merge (or index build) queued
        (seg(True, True), False),  # persisted and indexed: it was not merged into `base`
    ]:
        p = NS(sealed=[base, after], growing=None)
        assert may(indexer, None, p, base) is expected
    assert may(indexer, None, NS(sealed=[base], growing=NS(n=10)), base) is True  # the growing rows may join it


def test_an_indexed_segment_is_outnumbered_by_the_rows_beside_it_without_an_index():
    from types import SimpleNamespace as NS

    base = NS(n=1000, vindex={"vec": object()})
    fresh = [NS(n=600, vindex={}), NS(n=300, vindex={"other": object()})]
    p = NS(segments=lambda: [base, *fresh])
    assert not _interim._outnumbered(p, base, "vec")  # 900 fresh rows against 1,000
    fresh.append(NS(n=101, vindex={}))
    assert _interim._outnumbered(p, base, "vec")
