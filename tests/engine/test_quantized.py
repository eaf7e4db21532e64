"""Quantised indexes with refine (HNSW_SQ, HNSW_PQ, IVF_PQ, IVF_RABITQ): recall, files, errors.

Recall is measured against exact answers: on MiniLM embeddings (the stored
exact top 10) for HNSW_SQ and IVF_RABITQ, on clustered vectors (exact top 10
computed here) for the PQ indexes, whose training on 384-d data would make
the test slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from heron._errors import ParamError
from heron._types import DataType
from heron.engine.index import _dense as _vindex_dense
from heron.engine.index._vector_index import (
    build_index,
    load_index,
    normalize_index_params,
    normalize_search_params,
)
from tests.conftest import SHARED, shared_path

MINILM = SHARED / "data" / "minilm-dev-10k"
F32 = DataType.FLOAT_VECTOR


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(g.tolist()) & set(t.tolist())) / len(t) for g, t in zip(got, truth, strict=True)]))


@pytest.fixture(scope="module")
def minilm() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    folder = shared_path("data", MINILM.name)
    base = np.load(folder / "base_f16.npy").astype(np.float32)
    queries = np.load(folder / "queries.npy").astype(np.float32)
    truth = np.load(os.path.join(folder, "gt_top100.npy"))[:, :10]
    scores = np.load(os.path.join(folder, "gt_top100_scores.npy"))[:, :10]
    return base, queries, truth, scores


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(64, 32)).astype(np.float32)
    x = (centers[rng.integers(0, 64, 6000)] + 0.4 * rng.normal(size=(6000, 32))).astype(np.float32)
    q = (centers[rng.integers(0, 64, 100)] + 0.4 * rng.normal(size=(100, 32))).astype(np.float32)
    d = (q**2).sum(1)[:, None] - 2 * q @ x.T + (x**2).sum(1)[None, :]
    return x, q, np.argsort(d, axis=1)[:, :10]


@pytest.mark.parametrize(
    ("index_type", "params", "search"),
    [
        ("HNSW_SQ", {"sq_type": "SQ4U", "refine_type": "FP32"}, {"ef": 64, "refine_k": 2}),
        ("IVF_RABITQ", {"nlist": 64, "refine_type": "FP32"}, {"nprobe": 16, "refine_k": 8}),
        ("IVF_RABITQ", {"nlist": 64, "refine_type": "SQ8"}, {"nprobe": 32, "refine_k": 16, "rbq_query_bits": 8}),
    ],
)
def test_refine_raises_recall_on_real_embeddings(minilm, index_type: str, params: dict, search: dict) -> None:
    base, queries, truth, want = minilm
    plain = build_index(F32, 384, index_type, "COSINE", {k: v for k, v in params.items() if k != "refine_type"}, base)
    refined = build_index(F32, 384, index_type, "COSINE", {**params, "refine": True}, base)
    before = recall(plain.search(queries, 10, params=search)[1], truth)
    scores, rows = refined.search(queries, 10, params=search)
    after = recall(rows, truth)
    assert after >= 0.95
    assert after >= before + 0.05
    if params["refine_type"] == "FP32":  # re-ranked by the float vectors: the scores are exact
        hit = rows[:, 0] == truth[:, 0]
        assert hit.mean() >= 0.95
        np.testing.assert_allclose(scores[hit, 0], want[hit, 0], atol=2e-3)


_PQ = {
    "HNSW_PQ": ({"m": 8}, {"ef": 128, "refine_k": 8}),
    "IVF_PQ": ({"m": 8, "nlist": 32}, {"nprobe": 8, "refine_k": 4}),
}


@pytest.fixture(scope="module")
def pq_plain(clustered) -> dict[str, float]:
    """Recall@10 of each PQ index without refine."""
    x, q, truth = clustered
    out = {}
    for name, (params, search) in _PQ.items():
        out[name] = recall(build_index(F32, 32, name, "L2", params, x).search(q, 10, params=search)[1], truth)
    return out


@pytest.mark.parametrize(
    ("index_type", "refine_type"), [("HNSW_PQ", "SQ8"), ("HNSW_PQ", "FP16"), ("IVF_PQ", "SQ8"), ("IVF_PQ", "FP32")]
)
def test_refine_raises_recall_of_product_quantisation(clustered, pq_plain, index_type: str, refine_type: str) -> None:
    x, q, truth = clustered
    params, search = _PQ[index_type]
    refined = build_index(F32, 32, index_type, "L2", {**params, "refine": True, "refine_type": refine_type}, x)
    after = recall(refined.search(q, 10, params=search)[1], truth)
    assert after >= 0.95 > pq_plain[index_type]
    # refine_k 1 re-ranks exactly the candidates the quantised index found
    assert recall(refined.search(q, 10, params={**search, "refine_k": 1})[1], truth) < after


def test_refined_index_round_trips_through_its_file(clustered, tmp_path) -> None:
    x, q, truth = clustered
    params = {"nlist": 32, "refine": True, "refine_type": "SQ8"}
    idx = build_index(F32, 32, "IVF_RABITQ", "L2", params, x)
    search = {"nprobe": 8, "refine_k": 8, "rbq_query_bits": 4}
    want = idx.search(q, 10, params=search)
    path = str(tmp_path / "rabitq.npz")
    idx.save(path)
    again = load_index(path)
    got = again.search(q, 10, params=search)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    assert (again.index_type, again.params) == ("IVF_RABITQ", normalize_index_params(F32, "IVF_RABITQ", "L2", params)[2])
    assert recall(got[1], truth) >= 0.95


def test_refined_index_grows_and_keeps_refining(clustered) -> None:
    x, q, _ = clustered
    idx = build_index(F32, 32, "HNSW_SQ", "L2", {"sq_type": "SQ6", "refine": True, "refine_type": "FP32"}, x[:4000])
    grown = idx.extended(x[4000:])
    assert grown is not None and grown.ntotal == len(x)
    scores, rows = grown.search(x[4500:4510], 1, params={"ef": 32, "refine_k": 2})
    np.testing.assert_array_equal(rows[:, 0], np.arange(4500, 4510))
    np.testing.assert_allclose(scores[:, 0], 0.0, atol=1e-4)  # FP32 refine: the exact distance to itself


def test_filters_and_range_search_on_a_refined_index(clustered, monkeypatch) -> None:
    monkeypatch.setattr(_vindex_dense, "FILTER_CROSSOVER", {"HNSW": 0.0, "IVF": 0.0})
    monkeypatch.setattr(_vindex_dense, "EXACT_SCAN_BUDGET", {"HNSW": 0, "IVF": 0})
    monkeypatch.setattr(_vindex_dense, "CACHED_SCAN_BUDGET", 0)
    x, q, _ = clustered
    idx = build_index(F32, 32, "IVF_PQ", "L2", {"m": 8, "nlist": 32, "refine": True, "refine_type": "FP32"}, x)
    allow = np.zeros(len(x), bool)
    allow[::3] = True
    _, rows = idx.search(q, 10, allow=allow, params={"nprobe": 8, "refine_k": 4})
    assert allow[rows[rows >= 0]].all() and (rows >= 0).all()
    exact = ((x[None, :, :] - q[:3, None, :]) ** 2).sum(-1)
    radius = float(np.sort(exact, axis=1)[:, 20].max())
    for i, (scores, found) in enumerate(idx.range_search(q[:3], radius=radius)):
        assert set(found.tolist()) == set(np.flatnonzero(exact[i] < radius).tolist())
        np.testing.assert_allclose(scores, exact[i][found], rtol=1e-4, atol=1e-3)


def test_refine_type_defaults_to_the_fields_precision() -> None:
    from heron.engine.index._quantized import refine_type_for

    assert refine_type_for(F32, {"refine": True}) == "FP32"
    assert refine_type_for(DataType.FLOAT16_VECTOR, {"refine": True}) == "FP16"
    assert refine_type_for(DataType.BFLOAT16_VECTOR, {"refine": True}) == "BF16"
    assert refine_type_for(F32, {"refine": False, "refine_type": "SQ8"}) is None


def test_string_parameters_as_they_come_over_the_wire() -> None:
    _, _, params = normalize_index_params(F32, "HNSW_SQ", "L2", {"refine": "true", "refine_type": "fp16"})
    assert (params["refine"], params["refine_type"], params["sq_type"]) == (True, "FP16", "SQ8")
    assert normalize_search_params("IVF_RABITQ", {"refine_k": "2.5", "rbq_query_bits": "6"})["refine_k"] == 2.5
    assert normalize_search_params("IVF_RABITQ", {})["rbq_query_bits"] == 0


@pytest.mark.parametrize(
    ("index_type", "params", "message"),
    [
        ("HNSW_SQ", {"refine": True, "refine_type": "INT4"}, "invalid refine type : INT4, optional types are [sq6, sq8, fp16, bf16, fp32]"),
        ("HNSW_SQ", {"refine": True, "sq_type": "SQ8", "refine_type": "SQ8"}, "refine_type 'SQ8' must be of higher precision than sq_type 'SQ8'"),
        ("HNSW_SQ", {"refine": True, "sq_type": "FP16", "refine_type": "BF16"}, "expected one of ['FP32']"),
        ("IVF_RABITQ", {"refine": "yes"}, "refine must be true or false, got 'yes'"),
        ("IVF_RABITQ", {"nlist": 0}, "nlist must be an integer in 1..65536, got 0"),
        ("IVF_PQ", {"refine": True, "refine_type": 8}, "invalid refine type : 8"),
    ],
)
def test_bad_refine_parameters_are_named(index_type: str, params: dict, message: str) -> None:
    with pytest.raises(ParamError) as err:
        normalize_index_params(F32, index_type, "L2", params)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"refine_k": 0.5}, "refine_k must be a number in [1.0, "),
        ({"refine_k": "x"}, "refine_k must be a number in [1.0, "),
        ({"rbq_query_bits": 9}, "rbq_query_bits must be an integer in 0..8, got 9"),
    ],
)
def test_bad_refine_search_parameters_are_named(params: dict, message: str) -> None:
    with pytest.raises(ParamError) as err:
        normalize_search_params("IVF_RABITQ", params)
    assert message in str(err.value)


def test_a_bad_refine_definition_builds_nothing(tmp_path) -> None:
    import heron

    with heron.Client(str(tmp_path / "db")) as c:
        c.create_collection("c", dimension=8, auto_id=True)
        c.release_collection("c")
        c.drop_index("c", "vector")
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW_SQ", metric_type="L2",
                      params={"refine": True, "sq_type": "SQ8", "refine_type": "SQ6"})
        with pytest.raises(ParamError, match="higher precision than sq_type"):
            c.create_index("c", idx)
        assert c.list_indexes("c") == []
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="IVF_RABITQ", metric_type="L2",
                      params={"nlist": 4, "refine": True, "refine_type": "SQ8"})
        c.create_index("c", idx)
        c.insert("c", [{"vector": np.full(8, i, np.float32).tolist()} for i in range(50)])
        c.load_collection("c")
        got = c.describe_index("c", "vector")
        assert (got["index_type"], got["refine"], got["refine_type"]) == ("IVF_RABITQ", True, "SQ8")
        hits = c.search("c", [[3.0] * 8], limit=1, search_params={"params": {"nprobe": 4, "refine_k": 2}})
        assert hits[0][0]["distance"] == pytest.approx(0.0, abs=1e-3)
