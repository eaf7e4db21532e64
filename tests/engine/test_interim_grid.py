"""4-bit codes by table lookup (`engine/_interim_grid.py`), held to faiss's product quantizer on MiniLM rows."""

from __future__ import annotations

import numpy as np
import pytest

from heron.engine import _interim_grid
from heron.engine._interim_grid import GridCodes
from heron.engine.index._faiss import faiss
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    """The 10,000 MiniLM rows of shared/data/minilm-dev-10k, unit length (as cosine lists hold them)."""
    x = np.load(shared_path("data", "minilm-dev-10k", "base_f16.npy")).astype(np.float32)
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True))


def _pq(x: np.ndarray) -> faiss.ProductQuantizer:
    pq = faiss.ProductQuantizer(x.shape[1], x.shape[1] // 2, 4)
    pq.cp.niter = 10
    pq.train(x)
    return pq


def _unpacked(codes: np.ndarray, m: int) -> np.ndarray:
    """Packed 4-bit codes as one centroid number per sub-quantizer, ``[n, m]``."""
    return np.stack([codes & 15, codes >> 4], axis=2).reshape(codes.shape[0], -1)[:, :m]


def test_codes_are_the_nearest_centroid_or_within_a_cell_of_it(rows: np.ndarray) -> None:
    pq = _pq(rows[:2048])
    coder = GridCodes(pq, rows[:2048])
    got = coder.codes(rows)
    assert got.dtype == np.uint8 and got.shape == (len(rows), pq.code_size)
    m = pq.M
    sub = _unpacked(got, m)
    np.testing.assert_array_equal(sub, coder.sub_codes(rows))
    exact = _unpacked(pq.compute_codes(rows), m)
    assert (sub == exact).mean() >= 0.9  # 95% on these rows
    # faiss reads our codes as the centroids we picked: the same packing
    centroids = faiss.vector_to_array(pq.centroids).reshape(m, 16, 2)
    picked = centroids[np.arange(m), sub]  # [n, m, 2]
    np.testing.assert_array_equal(pq.decode(got), picked.reshape(len(rows), -1))
    pairs = rows.reshape(len(rows), m, 2)
    dist = np.sqrt(np.square(pairs - picked).sum(axis=2))
    nearest = np.sqrt(np.square(pairs - centroids[np.arange(m), exact]).sum(axis=2))
    cell = (pairs - coder.low) * coder.scale
    on_grid = ((cell >= 0) & (cell < _interim_grid.GRID)).all(axis=2)
    assert on_grid.mean() > 0.99
    assert (dist <= nearest + coder.diagonal + 1e-6)[on_grid].all()
    assert (dist[sub == exact] == nearest[sub == exact]).all()
    # what the codes keep of the rows: within 3% of exact coding (1% on these rows)
    assert np.square(dist).sum() <= 1.03 * np.square(nearest).sum()


def test_an_odd_count_of_sub_quantizers_leaves_the_last_high_half_zero(rows: np.ndarray) -> None:
    x = np.ascontiguousarray(rows[:3000, :258])
    pq = _pq(x)
    coder = GridCodes(pq, x)
    got = coder.codes(x)
    assert pq.M == 129 and got.shape == (3000, 65) and not (got[:, -1] >> 4).any()
    centroids = faiss.vector_to_array(pq.centroids).reshape(129, 16, 2)
    picked = centroids[np.arange(129), coder.sub_codes(x)]
    np.testing.assert_array_equal(pq.decode(got), picked.reshape(3000, -1))


def test_rows_off_the_grid_take_an_edge_cell() -> None:
    x = np.random.default_rng(0).standard_normal((2000, 256)).astype(np.float32)
    pq = _pq(x)
    coder = GridCodes(pq, x)
    far = np.concatenate([x[:5] * 100, -x[:5] * 100, np.full((1, 256), np.float32(1e30))])
    sub = coder.sub_codes(far)
    assert sub.shape == (11, 128) and sub.max() < 16


def test_only_two_component_sub_vectors_of_16_centroids() -> None:
    x = np.random.default_rng(1).standard_normal((1000, 64)).astype(np.float32)
    pq = faiss.ProductQuantizer(64, 16, 4)  # four components each
    pq.train(x)
    with pytest.raises(ValueError, match="two-component"):
        GridCodes(pq, x)
