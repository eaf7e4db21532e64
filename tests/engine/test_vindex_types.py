"""Sparse, binary and reduced-precision vectors against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from heron._errors import ParamError
from heron._types import DataType
from heron.data._vectors import float32_to_bfloat16_bits
from heron.engine.index._vector_index import build_index, exact_range_search, exact_search, load_index

SPARSE = DataType.SPARSE_FLOAT_VECTOR
BINARY = DataType.BINARY_VECTOR


def sparse_data(n: int, nq: int, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Rows over 500 distinct dimensions spread up to 2**32-2, and their dense equivalent."""
    rng = np.random.default_rng(seed)
    dims = np.sort(rng.choice(2**32 - 1, 500, replace=False))
    dense = np.where(rng.random((n + nq, 500)) < 0.03, rng.random((n + nq, 500)), 0).astype(np.float32)
    coo = sp.coo_matrix(dense)
    m = sp.csr_matrix((coo.data, (coo.row, dims[coo.col])), shape=(n + nq, 2**32 - 1))
    return m[:n], m[n:], dense


def sparse_reference(dense: np.ndarray, n: int, k: int, allow=None) -> list[dict[int, float]]:
    """Per query, the top-k rows with a non-zero inner product."""
    scores = dense[n:].astype(np.float64) @ dense[:n].T.astype(np.float64)
    out = []
    for row in scores:
        ok = row != 0 if allow is None else (row != 0) & allow
        ids = np.flatnonzero(ok)
        best = ids[np.argsort(-row[ids], kind="stable")[:k]]
        out.append({int(i): float(row[i]) for i in best})
    return out


@pytest.fixture(scope="module")
def sparse_set():
    x, q, dense = sparse_data(3000, 20)
    return x, q, dense, build_index(SPARSE, 0, "SPARSE_INVERTED_INDEX", "IP", {}, x)


def _check_sparse(scores, rows, want: list[dict[int, float]]) -> None:
    for s, r, w in zip(scores, rows, want):
        got = {int(i): float(v) for i, v in zip(r, s) if i >= 0}
        assert set(got) == set(w) or sorted(got.values()) == pytest.approx(sorted(w.values()), abs=1e-5)
        for i, v in got.items():
            assert v == pytest.approx(w.get(i, v), abs=1e-5)
        assert len(got) == len(w)


def test_sparse_index_and_exact_scan_are_exact(sparse_set) -> None:
    x, q, dense, idx = sparse_set
    want = sparse_reference(dense, 3000, 10)
    _check_sparse(*idx.search(q, 10), want)
    _check_sparse(*exact_search(SPARSE, "IP", x, q, 10), want)
    wand = build_index(SPARSE, 0, "SPARSE_WAND", "IP", {}, x)
    _check_sparse(*wand.search(q, 10), want)


def test_sparse_filter_range_and_unfilled_slots(sparse_set) -> None:
    x, q, dense, idx = sparse_set
    allow = np.arange(3000) % 4 == 0
    want = sparse_reference(dense, 3000, 10, allow)
    for scores, rows in (idx.search(q, 10, allow=allow), exact_search(SPARSE, "IP", x, q, 10, allow=allow)):
        assert allow[rows[rows >= 0]].all()
        _check_sparse(scores, rows, want)
    ref = dense[3000:].astype(np.float64) @ dense[:3000].T
    for res in (
        idx.range_search(q, radius=0.2, range_filter=0.6),
        exact_range_search(SPARSE, "IP", x, q, radius=0.2, range_filter=0.6),
    ):
        for i, (s, r) in enumerate(res):
            assert set(r) == set(np.flatnonzero((ref[i] > 0.2) & (ref[i] <= 0.6)))
            assert (np.diff(s) <= 0).all()
    one_doc = build_index(SPARSE, 0, "AUTOINDEX", None, {}, x[:1])
    s, r = one_doc.search(q[:1], 3)
    assert (r[0][1:] == -1).all() and (s[0][1:] == -np.inf).all()


def test_sparse_drop_ratios_and_files(tmp_path, sparse_set) -> None:
    x, q, _, idx = sparse_set
    pruned = idx.search(q, 10, params={"drop_ratio_search": 0.5})
    assert (pruned[1] >= -1).all()
    with pytest.raises(ParamError, match="drop_ratio_search"):
        idx.search(q, 10, params={"drop_ratio_search": 2})
    small = build_index(SPARSE, 0, "SPARSE_INVERTED_INDEX", "IP", {"drop_ratio_build": 0.3}, x)
    assert small.ntotal == 3000
    path = str(tmp_path / "sparse.idx")
    idx.save(path)
    back = load_index(path)
    for a, b in zip(idx.search(q, 10), back.search(q, 10)):
        np.testing.assert_array_equal(a, b)


def test_sparse_search_touches_only_query_columns() -> None:
    """100k documents over dimensions up to 2**32-2: no dense D is ever allocated."""
    rng = np.random.default_rng(1)
    n, nnz = 100_000, 20
    cols = rng.integers(0, 2**32 - 1, 5000)[rng.integers(0, 5000, n * nnz)]
    x = sp.csr_matrix(
        (rng.random(n * nnz).astype(np.float32), (np.repeat(np.arange(n), nnz), cols)), shape=(n, 2**32 - 1)
    )
    idx = build_index(SPARSE, 0, "SPARSE_INVERTED_INDEX", "IP", {}, x)
    s, r = idx.search(x[:3], 5)
    es, _ = exact_search(SPARSE, "IP", x, x[:3], 5)
    np.testing.assert_allclose(s, es, rtol=1e-5)
    _, compact = np.unique(x.indices, return_inverse=True)
    small = sp.csr_matrix((x.data, compact, x.indptr))
    want = np.sort((small[:3] @ small.T).toarray(), axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(s, want, rtol=1e-5)


# -- binary ---------------------------------------------------------------------


def binary_reference(metric: str, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    xb, qb = np.unpackbits(x, axis=1).astype(bool), np.unpackbits(q, axis=1).astype(bool)
    inter = (qb[:, None, :] & xb[None, :, :]).sum(-1)
    union = (qb[:, None, :] | xb[None, :, :]).sum(-1)
    if metric == "HAMMING":
        return (qb[:, None, :] ^ xb[None, :, :]).sum(-1).astype(np.float64)
    return np.where(union > 0, 1 - inter / np.maximum(union, 1), 0.0)


@pytest.mark.parametrize("metric", ["HAMMING", "JACCARD"])
@pytest.mark.parametrize("index_type", ["BIN_FLAT", "BIN_IVF_FLAT"])
def test_binary_indexes(tmp_path, index_type: str, metric: str) -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (2000, 8), dtype=np.uint8)
    q = np.vstack([x[:3], rng.integers(0, 256, (7, 8), dtype=np.uint8)])
    idx = build_index(BINARY, 64, index_type, metric, {"nlist": 16}, x)
    ref = binary_reference(metric, x, q)
    allow = np.arange(2000) % 3 == 0
    for a in (None, allow):
        scores, rows = idx.search(q, 10, allow=a, params={"nprobe": 16})
        masked = ref if a is None else np.where(a[None, :], ref, np.inf)
        np.testing.assert_allclose(scores, np.sort(masked, axis=1)[:, :10], atol=1e-6)
        np.testing.assert_allclose(np.take_along_axis(ref, rows, axis=1), scores, atol=1e-6)
        if a is not None:
            assert a[rows].all()
    radius = 30.0 if metric == "HAMMING" else 0.6
    res = idx.range_search(q, radius=radius, range_filter=0.0)
    assert [set(r) for _, r in res] == [set(np.flatnonzero((row < radius) & (row >= 0))) for row in ref]
    path = str(tmp_path / "bin.idx")
    idx.save(path)
    np.testing.assert_array_equal(load_index(path).search(q, 5)[1], idx.search(q, 5)[1])


def test_binary_exact_and_bad_dim() -> None:
    x = np.array([[0b1111_0000], [0b0000_0000], [0b1010_1010]], dtype=np.uint8)
    s, r = exact_search(BINARY, "JACCARD", x, np.array([[0]], dtype=np.uint8), 3)
    assert r[0][0] == 1 and s[0][0] == 0.0, "two empty sets are identical"
    s, r = exact_search(BINARY, "HAMMING", x, np.array([[0b1111_0000]], dtype=np.uint8), 3)
    assert list(r[0]) == [0, 1, 2] and list(s[0]) == [0, 4, 4]
    with pytest.raises(ParamError, match="multiple of 8"):
        build_index(BINARY, 12, "BIN_FLAT", "HAMMING", {}, x)


# -- reduced precision ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR, DataType.INT8_VECTOR])
@pytest.mark.parametrize("index_type", ["FLAT", "HNSW", "IVF_FLAT"])
def test_reduced_precision_vectors_score_as_float32(dtype: DataType, index_type: str) -> None:
    rng = np.random.default_rng(6)
    raw = rng.standard_normal((1500, 16)).astype(np.float32)
    if dtype is DataType.FLOAT16_VECTOR:
        stored, as_f32 = raw.astype(np.float16), raw.astype(np.float16).astype(np.float32)
    elif dtype is DataType.BFLOAT16_VECTOR:
        stored = float32_to_bfloat16_bits(raw)
        as_f32 = (stored.astype(np.uint32) << 16).view(np.float32)
    else:
        stored = np.clip(raw * 40, -128, 127).astype(np.int8)
        as_f32 = stored.astype(np.float32)
    q_stored, q_f32 = stored[:5], as_f32[:5]
    idx = build_index(dtype, 16, index_type, "L2", {"nlist": 16}, stored)
    scores, rows = idx.search(q_stored, 5, params={"nprobe": 16, "ef": 64})
    want = ((q_f32[:, None, :].astype(np.float64) - as_f32[None, :, :]) ** 2).sum(-1)
    assert (rows[:, 0] == np.arange(5)).all()
    np.testing.assert_allclose(scores, np.take_along_axis(want, rows, axis=1), rtol=1e-4, atol=1e-2)
    es, er = exact_search(dtype, "L2", stored, q_stored, 5)
    np.testing.assert_allclose(es, np.sort(want, axis=1)[:, :5], rtol=1e-4, atol=1e-2)
