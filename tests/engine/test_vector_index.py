"""Dense vector indexes against a numpy brute-force reference: recall, scores, filters, files, parameters."""

from __future__ import annotations

import gzip
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from heron._errors import ParamError
from heron._types import DataType
from heron.engine.index import _dense as _vindex_dense
from heron.engine.index._base import BuildCancelled, IndexChanged
from heron.engine.index._vector_index import (
    IndexFileError,
    build_index,
    exact_range_search,
    exact_search,
    load_index,
    normalize_index_params,
    normalize_search_params,
)
from tests.conftest import SHARED, shared_path

F32 = DataType.FLOAT_VECTOR
MINILM = SHARED / "data" / "minilm-dev-10k"


def reference_scores(metric: str, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Brute-force scores in float64, as Milvus reports them."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "L2":
        return ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(-1)
    if metric == "COSINE":
        xn = np.linalg.norm(x64, axis=1)
        qn = np.linalg.norm(q64, axis=1)
        return (q64 @ x64.T) / np.maximum(np.outer(qn, xn), 1e-30)
    return q64 @ x64.T


def reference_topk(metric: str, x: np.ndarray, q: np.ndarray, k: int, allow=None) -> np.ndarray:
    s = reference_scores(metric, x, q)
    key = -s if metric in ("IP", "COSINE") else s
    if allow is not None:
        key[:, ~allow] = np.inf
    return np.argsort(key, axis=1, kind="stable")[:, :k]


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(g[g >= 0]) & set(t)) / len(t) for g, t in zip(got, truth)]))


def clustered(n: int, dim: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((64, dim)) * 3
    x = centres[rng.integers(0, 64, n)] + rng.standard_normal((n, dim))
    q = centres[rng.integers(0, 64, nq)] + rng.standard_normal((nq, dim))
    return x.astype(np.float32), q.astype(np.float32)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(4000, 32, 50)


# Honest floors on clustered 4k x 32 data with the search params below.
# PQ compresses 8x (m = dim/2, 8 bits) and is trained on only 4k rows here: its
# ranking is approximate (0.45-0.6 measured on this data).
FLOORS = {
    "FLAT": 1.0,
    "IVF_FLAT": 0.95,
    "HNSW": 0.95,
    "IVF_SQ8": 0.9,
    "HNSW_SQ": 0.9,
    "IVF_PQ": 0.4,
    "HNSW_PQ": 0.4,
}
# Allowed score error of returned hits, relative to the score range of the top 10.
SCORE_TOL = {
    "FLAT": 1e-4,
    "IVF_FLAT": 1e-4,
    "HNSW": 1e-4,
    "IVF_SQ8": 0.1,
    "HNSW_SQ": 0.1,
    "IVF_PQ": 2.0,
    "HNSW_PQ": 2.0,
}
SEARCH = {"ef": 128, "nprobe": 32}


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("index_type", list(FLOORS))
def test_recall_and_scores_match_brute_force(data, index_type: str, metric: str) -> None:
    x, q = data
    t, m, p = normalize_index_params(F32, index_type, metric, {"nlist": 64})
    idx = build_index(F32, 32, t, m, p, x)
    assert (idx.index_type, idx.metric, idx.ntotal) == (index_type, metric, len(x))
    scores, rows = idx.search(q, 10, params=SEARCH)
    assert scores.shape == rows.shape == (len(q), 10)
    assert scores.dtype == np.float32 and rows.dtype == np.int64
    truth = reference_topk(metric, x, q, 10)
    assert recall(rows, truth) >= FLOORS[index_type]
    ref = reference_scores(metric, x, q)
    want = np.take_along_axis(ref, rows, axis=1)
    spread = np.ptp(np.take_along_axis(ref, truth, axis=1), axis=1).mean() + 1e-6
    assert np.abs(scores - want).mean() / spread <= SCORE_TOL[index_type]
    order = -scores if metric != "L2" else scores
    assert (np.diff(order, axis=1) >= -1e-5).all(), "best first"


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_exact_search_is_exact(data, metric: str) -> None:
    x, q = data
    allow = np.random.default_rng(3).random(len(x)) < 0.3
    for a in (None, allow, ~allow):
        scores, rows = exact_search(F32, metric, x, q, 10, allow=a)
        truth = reference_topk(metric, x, q, 10, a)
        assert recall(rows, truth) == 1.0
        ref = np.take_along_axis(reference_scores(metric, x, q), rows, axis=1)
        np.testing.assert_allclose(scores, ref, rtol=1e-4, atol=1e-3)
        if a is not None:
            assert a[rows].all()


def test_unfilled_slots_hold_minus_one_and_worst_score() -> None:
    x = np.eye(4, dtype=np.float32)
    for metric, worst in (("L2", np.inf), ("IP", -np.inf), ("COSINE", -np.inf)):
        idx = build_index(F32, 4, "HNSW", metric, {}, x)
        s, r = idx.search(x[:1], 6)
        assert sorted(r[0][:4]) == [0, 1, 2, 3] and (r[0][4:] == -1).all() and (s[0][4:] == worst).all()
        s, r = exact_search(F32, metric, x, x[:1], 6, allow=np.array([True, False, False, False]))
        assert r[0][0] == 0 and (r[0][1:] == -1).all() and (s[0][1:] == worst).all()


def test_cosine_handles_zero_vectors_and_unnormalised_input() -> None:
    x = np.array([[0, 0, 0], [3, 0, 0], [0, 5, 0]], dtype=np.float32)
    q = np.array([[2, 0, 0], [0, 0, 0]], dtype=np.float32)
    for index_type in ("FLAT", "HNSW", "IVF_FLAT"):
        idx = build_index(F32, 3, index_type, "COSINE", {}, x)
        s, r = idx.search(q, 3)
        assert not np.isnan(s).any()
        assert r[0][0] == 1 and s[0][0] == pytest.approx(1.0, abs=1e-6)
    s, _ = exact_search(F32, "COSINE", x, q, 3)
    assert not np.isnan(s).any() and s[0][0] == pytest.approx(1.0, abs=1e-6)


# -- filters -------------------------------------------------------------------


def _load_minilm(minilm: Path):
    with gzip.open(minilm / "base.jsonl.gz", "rt") as f:
        cats = np.array([json.loads(line)["category"] for line in f])
    base = np.load(minilm / "base_f16.npy")
    return base, np.load(minilm / "queries.npy"), cats


@pytest.fixture(scope="module")
def minilm():
    base, queries, cats = _load_minilm(shared_path("data", MINILM.name))
    idx = {
        "HNSW": build_index(
            DataType.FLOAT16_VECTOR, 384, "HNSW", "COSINE", {"M": 16, "efConstruction": 200}, base
        ),
        "IVF_FLAT": build_index(DataType.FLOAT16_VECTOR, 384, "IVF_FLAT", "COSINE", {"nlist": 128}, base),
    }
    return base, queries, cats, idx


@pytest.fixture(params=["planner", "ann-only"])
def planner(request, monkeypatch):
    """Run with the planner as shipped, and with exact scans switched off to test the faiss selector path."""
    if request.param == "ann-only":
        monkeypatch.setattr(_vindex_dense, "FILTER_CROSSOVER", {"HNSW": 0.0, "IVF": 0.0})
        monkeypatch.setattr(_vindex_dense, "EXACT_SCAN_BUDGET", {"HNSW": 0, "IVF": 0})
        monkeypatch.setattr(_vindex_dense, "CACHED_SCAN_BUDGET", 0)
    return request.param


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT"])
@pytest.mark.parametrize(
    ("category", "gt_file"), [(6, "gt_filtered_10pct.npy"), (41, "gt_filtered_1pct.npy")]
)
def test_filtered_search_on_real_embeddings(
    minilm, planner, index_type: str, category: int, gt_file: str
) -> None:
    _, queries, cats, indexes = minilm
    allow = cats == category
    truth = np.load(os.path.join(MINILM, gt_file))[:, :10]
    scores, rows = indexes[index_type].search(queries, 10, allow=allow, params={"ef": 64, "nprobe": 16})
    assert allow[rows[rows >= 0]].all()
    assert recall(rows, truth) >= 0.95
    want = np.load(os.path.join(MINILM, gt_file.replace(".npy", "_scores.npy")))[:, :10]
    np.testing.assert_allclose(scores[:, 0], want[:, 0], atol=2e-3)


def test_unfiltered_search_on_real_embeddings(minilm) -> None:
    _, queries, _, indexes = minilm
    truth = np.load(os.path.join(MINILM, "gt_top100.npy"))[:, :10]
    assert recall(indexes["HNSW"].search(queries, 10, params={"ef": 64})[1], truth) >= 0.97
    assert recall(indexes["IVF_FLAT"].search(queries, 10, params={"nprobe": 32})[1], truth) >= 0.95


@pytest.fixture(scope="module")
def synthetic_filtered():
    x, q = clustered(20000, 32, 50, seed=5)
    idx = {
        "HNSW": build_index(F32, 32, "HNSW", "L2", {"M": 16, "efConstruction": 100}, x),
        "IVF_FLAT": build_index(F32, 32, "IVF_FLAT", "L2", {"nlist": 128}, x),
    }
    return x, q, idx


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT"])
@pytest.mark.parametrize("share", [0.1, 0.01])
def test_filtered_search_on_clustered_data(
    synthetic_filtered, planner, index_type: str, share: float
) -> None:
    x, q, indexes = synthetic_filtered
    allow = np.random.default_rng(11).random(len(x)) < share
    scores, rows = indexes[index_type].search(q, 10, allow=allow)
    assert allow[rows[rows >= 0]].all()
    assert recall(rows, reference_topk("L2", x, q, 10, allow)) >= 0.95


def test_filter_keeping_nothing_or_everything(synthetic_filtered) -> None:
    x, q, indexes = synthetic_filtered
    for idx in indexes.values():
        s, r = idx.search(q[:2], 5, allow=np.zeros(len(x), dtype=bool))
        assert (r == -1).all() and np.isinf(s).all()
        _, r_all = idx.search(q[:2], 5, allow=np.ones(len(x), dtype=bool))
        np.testing.assert_array_equal(r_all, idx.search(q[:2], 5)[1])
        with pytest.raises(ParamError, match="allow"):
            idx.search(q[:2], 5, allow=np.ones(3, dtype=bool))


def test_concurrent_searches_agree_with_serial(synthetic_filtered) -> None:
    _, q, indexes = synthetic_filtered
    idx = indexes["HNSW"]
    expected = [idx.search(q[i : i + 1], 10)[1] for i in range(len(q))]
    errors: list[int] = []

    def worker() -> None:
        for i in range(len(q)):
            if not np.array_equal(idx.search(q[i : i + 1], 10)[1], expected[i]):
                errors.append(i)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# -- range search -------------------------------------------------------------------


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """Integer points, so squared distances and inner products are exact."""
    rng = np.random.default_rng(2)
    return rng.integers(-5, 6, (3000, 8)).astype(np.float32), rng.integers(-5, 6, (5, 8)).astype(np.float32)


@pytest.mark.parametrize(
    ("metric", "radius", "range_filter"),
    [("L2", 40.0, 20.0), ("L2", 30.0, None), ("IP", 10.0, 20.0), ("IP", 25.0, None)],
)
def test_range_search_bounds(metric: str, radius: float, range_filter: float | None) -> None:
    x, q = _grid()
    ref = reference_scores(metric, x, q)
    if metric == "L2":
        want = (ref < radius) & (ref >= (range_filter if range_filter is not None else -np.inf))
    else:
        want = (ref > radius) & (ref <= (range_filter if range_filter is not None else np.inf))
    assert (ref == radius).any(), "the data must put some rows exactly on the boundary"
    for index_type in ("FLAT", "IVF_FLAT", "HNSW"):
        idx = build_index(F32, 8, index_type, metric, {"nlist": 16}, x)
        res = idx.range_search(q, radius=radius, range_filter=range_filter, params={"nprobe": 16, "ef": 512})
        for i, (scores, rows) in enumerate(res):
            assert want[i][rows].all(), "every hit is in range"
            np.testing.assert_allclose(scores, ref[i][rows], rtol=1e-5, atol=1e-3)
            key = -scores if metric == "IP" else scores
            assert (np.diff(key) >= 0).all()
            if index_type != "HNSW":
                assert set(rows) == set(np.flatnonzero(want[i]))
    exact = exact_range_search(F32, metric, x, q, radius=radius, range_filter=range_filter)
    assert [set(r) for _, r in exact] == [set(np.flatnonzero(w)) for w in want]


def test_range_search_with_filter_and_cosine() -> None:
    x, q = _grid()
    allow = np.arange(len(x)) % 3 == 0
    ref = reference_scores("COSINE", x, q)
    want = (ref > 0.5) & (ref <= 0.9) & allow[None, :]
    for index_type in ("FLAT", "IVF_FLAT"):
        idx = build_index(F32, 8, index_type, "COSINE", {"nlist": 16}, x)
        res = idx.range_search(q, radius=0.5, range_filter=0.9, allow=allow, params={"nprobe": 16})
        assert [set(r) for _, r in res] == [set(np.flatnonzero(w)) for w in want]


def test_range_bounds_in_the_wrong_order_are_rejected() -> None:
    x, q = _grid()
    idx = build_index(F32, 8, "FLAT", "L2", {}, x)
    with pytest.raises(ParamError, match="range_filter must be less than radius"):
        idx.range_search(q, radius=10, range_filter=20)
    with pytest.raises(ParamError, match="range_filter must be greater than radius"):
        exact_range_search(F32, "IP", x, q, radius=10, range_filter=5)
    with pytest.raises(ParamError, match="radius must be a number"):
        idx.range_search(q, radius="far")


# -- files -------------------------------------------------------------------


@pytest.mark.parametrize("index_type", ["FLAT", "IVF_FLAT", "IVF_SQ8", "HNSW", "HNSW_SQ"])
def test_save_and_load_round_trip(tmp_path, data, index_type: str) -> None:
    x, q = data
    idx = build_index(F32, 32, index_type, "COSINE", {"nlist": 32}, x)
    path = str(tmp_path / "seg.idx")
    idx.save(path)
    assert os.listdir(tmp_path) == ["seg.idx"], "no temporary file is left behind"
    back = load_index(path)
    assert (back.index_type, back.metric, back.ntotal, back.params) == (
        idx.index_type,
        idx.metric,
        idx.ntotal,
        idx.params,
    )
    allow = np.arange(len(x)) % 2 == 0
    for a in (None, allow):
        s1, r1 = idx.search(q, 10, allow=a)
        s2, r2 = back.search(q, 10, allow=a)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(s1, s2)


def test_missing_or_damaged_files_raise_index_file_error(tmp_path, data) -> None:
    x, _ = data
    path = str(tmp_path / "seg.idx")
    with pytest.raises(IndexFileError, match="does not exist"):
        load_index(path)
    build_index(F32, 32, "HNSW", "L2", {}, x).save(path)
    good = open(path, "rb").read()
    damaged = {
        "truncated": good[: len(good) // 2],
        "flipped": good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 0xFF]) + good[len(good) // 2 + 1 :],
        "garbage": b"not an index at all",
        "empty": b"",
    }
    for name, content in damaged.items():
        with open(path, "wb") as f:
            f.write(content)
        with pytest.raises(IndexFileError, match="damaged"):
            load_index(path)
        assert name


def test_save_replaces_an_existing_file(tmp_path, data) -> None:
    x, _ = data
    path = str(tmp_path / "seg.idx")
    build_index(F32, 32, "FLAT", "L2", {}, x[:10]).save(path)
    build_index(F32, 32, "FLAT", "L2", {}, x).save(path)
    assert load_index(path).ntotal == len(x)


# -- parameters ------------------------------------------------------------------


def test_defaults_and_autoindex() -> None:
    assert normalize_index_params(F32, None, None, None) == (
        "HNSW",
        "COSINE",
        {"M": 16, "efConstruction": 200},
    )
    assert normalize_index_params(F32, "autoindex", "l2", {"M": 8})[2]["M"] == 8
    assert normalize_index_params(DataType.SPARSE_FLOAT_VECTOR, "AUTOINDEX", None, {})[:2] == (
        "SPARSE_INVERTED_INDEX",
        "IP",
    )
    assert normalize_index_params(DataType.BINARY_VECTOR, "AUTOINDEX", None, {})[:2] == (
        "BIN_FLAT",
        "HAMMING",
    )
    assert normalize_index_params(F32, "IVF_PQ", "IP", {"m": "8"})[2] == {"m": 8, "nlist": 128, "nbits": 8}
    assert normalize_index_params(F32, "HNSW", None, {"mmap.enabled": True})[2]["mmap.enabled"] is True


@pytest.mark.parametrize(
    ("dtype", "index_type", "metric", "params", "message"),
    [
        (F32, "DISKANN_X", None, {}, "index_type 'DISKANN_X' cannot index a FLOAT_VECTOR"),
        (F32, "HNSW", "HAMMING", {}, "metric_type 'HAMMING' is not valid for HNSW"),
        (F32, "BIN_FLAT", None, {}, "cannot index a FLOAT_VECTOR"),
        (DataType.BINARY_VECTOR, "HNSW", None, {}, "cannot index a BINARY_VECTOR"),
        (DataType.SPARSE_FLOAT_VECTOR, "SPARSE_WAND", "L2", {}, "metric_type 'L2'"),
        (F32, "HNSW", None, {"M": "x"}, "M must be an integer in 2..2048, got 'x'"),
        (F32, "HNSW", None, {"M": 1}, "M must be an integer in 2..2048, got 1"),
        (F32, "HNSW", None, {"efConstruction": True}, "efConstruction must be an integer"),
        (F32, "IVF_FLAT", None, {"nlist": 0}, "nlist must be an integer in 1..65536, got 0"),
        (F32, "IVF_PQ", None, {"nbits": 40}, "nbits must be an integer in 1..16, got 40"),
        (F32, "HNSW_SQ", None, {"sq_type": "SQ3"}, "sq_type must be one of"),
        (F32, "HNSW_SQ", None, {"refine": True, "refine_type": "SQ4"}, "invalid refine type : SQ4"),
        (
            DataType.SPARSE_FLOAT_VECTOR,
            None,
            None,
            {"drop_ratio_build": 1.0},
            "drop_ratio_build must be a number in",
        ),
        (DataType.INT64, "HNSW", None, {}, "is not a vector type"),
    ],
)
def test_bad_index_params_are_named(dtype, index_type, metric, params, message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace("[", r"\[")):
        normalize_index_params(dtype, index_type, metric, params)


def test_search_params() -> None:
    assert normalize_search_params("HNSW", None) == {"ef": 64}
    assert normalize_search_params("HNSW", {"params": {"ef": "200"}}) == {"ef": 200}
    assert normalize_search_params("IVF_FLAT", {"nprobe": 4, "radius": 1})["radius"] == 1.0
    assert normalize_search_params("SPARSE_WAND", {})["drop_ratio_search"] == 0.0
    for index_type, params, message in [
        ("HNSW", {"ef": 0}, "ef must be an integer in 1..32768, got 0"),
        ("IVF_SQ8", {"nprobe": "a"}, "nprobe must be an integer"),
        ("SPARSE_INVERTED_INDEX", {"drop_ratio_search": 1.5}, "drop_ratio_search must be a number"),
        ("FLAT", {"range_filter": "x"}, "range_filter must be a number"),
    ]:
        with pytest.raises(ParamError, match=message):
            normalize_search_params(index_type, params)


def test_build_and_search_reject_bad_shapes_and_k(data) -> None:
    x, q = data
    with pytest.raises(ParamError, match="m must divide the vector dimension 32, got 5"):
        build_index(F32, 32, "IVF_PQ", "L2", {"m": 5}, x)
    with pytest.raises(ParamError, match=r"vectors must have shape \[n, 16\]"):
        build_index(F32, 16, "HNSW", "L2", {}, x)
    idx = build_index(F32, 32, "HNSW", "L2", {}, x)
    with pytest.raises(ParamError, match=r"queries must have shape \[nq, 32\]"):
        idx.search(q[:, :5], 3)
    with pytest.raises(ParamError, match="k must be a positive integer, got 0"):
        idx.search(q, 0)
    small_ef = idx.search(q, 50, params={"ef": 10})[1]
    assert (small_ef >= 0).all(), "ef below k is raised to k"


def test_tiny_segments_fall_back_to_exact_search() -> None:
    x, q = clustered(30, 16, 3)
    for index_type in ("IVF_FLAT", "IVF_PQ", "HNSW_PQ"):
        idx = build_index(F32, 16, index_type, "L2", {}, x)
        assert idx.ntotal == 30 and idx.index_type == index_type
        assert recall(idx.search(q, 5, params={"nprobe": 128})[1], reference_topk("L2", x, q, 5)) == 1.0
    empty = build_index(F32, 16, "HNSW", "L2", {}, np.zeros((0, 16), np.float32))
    assert (empty.search(q, 3)[1] == -1).all()


def test_exact_l2_keeps_precision_for_long_close_vectors() -> None:
    x = np.array([[float(i)] * 4 for i in range(20)], dtype=np.float32)
    q = np.array([[3.1] * 4], dtype=np.float32)
    want = ((x.astype(np.float64) - q) ** 2).sum(1)
    s, r = exact_search(F32, "L2", x, q, 3)
    assert list(r[0]) == [3, 4, 2]
    np.testing.assert_allclose(s[0], np.sort(want)[:3], rtol=1e-6)
    ((rs, rr),) = exact_range_search(F32, "L2", x, q, radius=0.05)
    assert list(rr) == [3] and rs[0] == pytest.approx(want[3], rel=1e-6)


# -- growing an index when segments merge ---------------------------------------------------


@pytest.mark.parametrize(("index_type", "params"), [
    ("HNSW", {"M": 8, "efConstruction": 40}), ("IVF_FLAT", {"nlist": 8}), ("IVF_SQ8", {"nlist": 8}),
    ("HNSW_SQ", {"M": 8}), ("FLAT", {}),
])
@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_extended_index_matches_a_fresh_build(index_type, params, metric):
    rng = np.random.default_rng(11)
    a, b = rng.standard_normal((1200, 16)).astype(np.float32), rng.standard_normal((600, 16)).astype(np.float32)
    q = rng.standard_normal((30, 16)).astype(np.float32)
    base = build_index(DataType.FLOAT_VECTOR, 16, index_type, metric, params, a)
    grown = base.extended(b)
    assert grown is not None and grown.ntotal == 1800
    scores, rows = grown.search(q, 10, params={"ef": 128, "nprobe": 8}, rows=1800)
    x = np.concatenate([a, b])
    truth = np.argsort(-reference_scores(metric, x, q) if metric != "L2" else reference_scores(metric, x, q),
                       axis=1)[:, :10]
    recall = np.mean([len(set(r) & set(t)) / 10 for r, t in zip(rows.tolist(), truth.tolist())])
    assert recall >= (0.9 if "SQ" in index_type else 0.97)
    assert (rows >= 0).all() and (rows < 1800).any()


def test_growing_in_place_waits_for_searches_and_turns_stale_readers_away():
    rng = np.random.default_rng(12)
    a, b = rng.standard_normal((500, 8)).astype(np.float32), rng.standard_normal((100, 8)).astype(np.float32)
    idx = build_index(DataType.FLOAT_VECTOR, 8, "HNSW", "L2", {"M": 8, "efConstruction": 40}, a)
    idx._enter(500)  # a search in flight
    done = threading.Event()
    t = threading.Thread(target=lambda: (idx.extended(b), done.set()))
    t.start()
    assert not done.wait(0.3)  # growth waits for the running search
    with pytest.raises(IndexChanged):
        idx.search(a[:1], 3, rows=500)  # and turns new ones away meanwhile
    idx._leave()
    t.join(10)
    assert done.is_set() and idx.ntotal == 600
    with pytest.raises(IndexChanged):
        idx.search(a[:1], 3, rows=500)  # a reader of the old segment
    assert idx.search(a[:1], 3, rows=600)[1].shape == (1, 3)


def test_a_build_stops_when_cancelled():
    x = np.random.default_rng(13).standard_normal((40_000, 8)).astype(np.float32)
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 1  # let the first slice through, stop before the second

    with pytest.raises(BuildCancelled):
        build_index(DataType.FLOAT_VECTOR, 8, "HNSW", "L2", {"M": 8, "efConstruction": 16}, x, cancelled=cancelled)
    assert len(calls) == 2
    done = build_index(DataType.FLOAT_VECTOR, 8, "HNSW", "L2", {"M": 8, "efConstruction": 16}, x,
                       cancelled=lambda: False)
    assert done.ntotal == 40_000
