"""Interim indexes: fresh rows searched through one growing IVF index per segment, on real embeddings too."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heron
from heron.engine import _maintenance, _reads
from tests.conftest import shared_path

K = 10


def _engine(c: heron.Client) -> Any:
    return c._transport._engine


def _part(c: heron.Client) -> Any:
    return _engine(c).collection("default", "c").partitions["_default"]


def _covered(seg: Any) -> int:
    e = seg.interim.get("vec")
    return e[1].covered if e else 0


def _until(check: Any, timeout: float = 60.0) -> Any:
    import time
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.02)


def _create(c: heron.Client, dim: int, metric: str = "COSINE", index_type: str = "AUTOINDEX") -> None:
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=dim)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type=index_type, metric_type=metric)
    c.create_collection("c", schema=schema, index_params=idx)


def _insert(c: heron.Client, x: np.ndarray, start: int) -> None:
    for lo in range(0, len(x), 5000):
        part = x[lo : lo + 5000]
        c.insert("c", {"id": np.arange(start + lo, start + lo + len(part), dtype=np.int64), "vec": part})


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Idle sealing off; returns a list counting the searches interim indexes answered."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    hits: list[int] = []
    real = _reads.interim_search

    def counted(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if out is not None:
            hits.append(1)
        return out

    monkeypatch.setattr(_reads, "interim_search", counted)
    return hits


def _ids(hits: list[list[dict[str, Any]]]) -> list[list[int]]:
    return [[h["id"] for h in q] for q in hits]


def test_minilm_rows_just_inserted_are_found_through_the_interim_index(tmp_path: Path, used: list[int]) -> None:
    data = shared_path("data", "minilm-dev-10k")
    base = np.load(data / "base_f16.npy").astype(np.float32)
    queries = np.load(data / "queries.npy").astype(np.float32)[:100]
    moved = base + np.random.default_rng(3).normal(0, 0.02, base.shape).astype(np.float32)
    x = np.concatenate([base, moved])  # 20,000 rows: more than the 16,384 the index is trained on
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c, x.shape[1])
        _insert(c, x, 0)
        seg = _part(c).growing
        assert seg is not None and seg.n == len(x) and not _part(c).sealed
        assert _until(lambda: _covered(seg) == len(x))  # kept current as the rows came
        exact = c.search("c", data=queries, limit=K, search_params={"interim": False})
        assert not used
        fast = c.search("c", data=queries, limit=K)
        assert used
        recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(_ids(fast), _ids(exact))])
        assert recall >= 0.95, recall
        every = {h["id"]: h["distance"] for h in c.search("c", data=queries[:1], limit=len(x) // 2,
                                                            search_params={"interim": False})[0]}
        assert all(abs(h["distance"] - every[h["id"]]) < 1e-4 for h in fast[0])  # scored exactly


def test_later_segments_start_from_the_first_ones_training(
        tmp_path: Path, used: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1000")
    monkeypatch.setenv("HERON_SEAL_ROWS", "3000")
    release = threading.Event()
    build = _maintenance.build_index
    monkeypatch.setattr(_maintenance, "build_index", lambda *a, **k: (release.wait(60), build(*a, **k))[1])
    x = np.random.default_rng(4).standard_normal((3200, 32)).astype(np.float32)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c, 32, "L2", "HNSW")
        try:
            _insert(c, x[:3000], 0)  # sealed for its size: its index waits
            first = _part(c).sealed[0]
            assert _until(lambda: _covered(first) == 3000)
            _insert(c, x[3000:], 3000)  # 200 rows: too few to train on, enough to start from the template
            grown = _part(c).growing
            assert _until(lambda: _covered(grown) == 200)
            got = c.search("c", data=x[3100:3105], limit=1)
            assert [r[0]["id"] for r in got] == [3100, 3101, 3102, 3103, 3104] and used
        finally:
            release.set()


def test_a_search_brings_an_index_that_fell_behind_up_to_date(
        tmp_path: Path, used: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1000")
    x = np.random.default_rng(5).standard_normal((4000, 32)).astype(np.float32)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c, 32, "IP", "HNSW")
        _insert(c, x[:1500], 0)
        seg = _part(c).growing
        assert _until(lambda: _covered(seg) == 1500)
        monkeypatch.setattr(_engine(c).interim, "_queue", lambda *a, **k: None)  # the thread adds nothing more
        _insert(c, x[1500:1800], 1500)
        got = c.search("c", data=x[1700:1702] * 10, limit=1)  # 300 rows behind: scanned exactly
        assert _covered(seg) == 1500 and [r[0]["id"] for r in got] == [1700, 1701] and used
        _insert(c, x[1800:4000], 1800)
        got = c.search("c", data=x[3900:3902] * 10, limit=1)  # 2,500 behind: added first
        assert _covered(seg) == 4000 and [r[0]["id"] for r in got] == [3900, 3901]
        c.delete("c", ids=[3900])
        assert c.search("c", data=x[3900:3901] * 10, limit=1)[0][0]["id"] != 3900


@pytest.mark.parametrize("dtype", [heron.DataType.FLOAT16_VECTOR, heron.DataType.BFLOAT16_VECTOR])
def test_half_precision_fields_get_interim_indexes_with_exact_scores(
        tmp_path: Path, used: list[int], monkeypatch: pytest.MonkeyPatch, dtype: heron.DataType) -> None:
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1000")
    x = np.random.default_rng(6).standard_normal((2000, 32)).astype(np.float32)
    with heron.Client(str(tmp_path / "db")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vec", dtype, dim=32)
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="HNSW", metric_type="COSINE")
        c.create_collection("c", schema=schema, index_params=idx)
        _insert(c, x, 0)
        seg = _part(c).growing
        assert _until(lambda: _covered(seg) == 2000)
        q = x[[5, 500, 1500]]
        fast = c.search("c", data=q, limit=5)
        exact = c.search("c", data=q, limit=5, search_params={"interim": False})
        assert used and [r[0]["id"] for r in fast] == [5, 500, 1500]
        for a, b in zip(fast, exact):  # the rows both found, with the same scores
            want = {h["id"]: h["distance"] for h in b}
            both = [(h["distance"], want[h["id"]]) for h in a if h["id"] in want]
            assert len(both) >= 3
            np.testing.assert_allclose(*zip(*both), atol=1e-5)


def test_a_search_sees_only_the_rows_of_its_view() -> None:
    from heron.engine._interim import train_interim

    x = np.random.default_rng(7).standard_normal((3000, 32)).astype(np.float32)
    fresh = train_interim(heron.DataType.FLOAT_VECTOR, 32, "L2", x)
    fresh.grow(x, 3000)  # rows added after a search's view was taken
    rows = fresh.search(x[2500:2510], 100, 1000, None)
    assert rows.max() < 1000 and (rows >= 0).sum() == 1000
    allow = np.zeros(1000, dtype=bool)
    allow[::2] = True
    rows = fresh.search(x[:5], 100, 1000, allow)
    kept = rows[rows >= 0]
    assert kept.size and kept.max() < 1000 and not (kept % 2).any()
