"""Rows assigned to an interim index's many lists in two steps: nearly always the nearest, never past a radius."""

from __future__ import annotations

import numpy as np
import pytest

from heron._types import DataType
from heron.engine import _interim_assign, _interim_ivf
from heron.engine.index._faiss import faiss


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    centres = np.random.default_rng(12345).standard_normal((64, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim), dtype=np.float32)
    return np.ascontiguousarray(x * rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32))


def _rows_lists(ivf: _interim_ivf.GrowingIVF) -> np.ndarray:
    """The list each row of `ivf` is in, read from its lists."""
    inv = ivf._index.invlists
    out = np.full(ivf.ntotal, -1, dtype=np.int64)
    for lst in range(ivf._index.nlist):
        size = inv.list_size(lst)
        if size:
            out[faiss.rev_swig_ptr(inv.get_ids(lst), size).copy()] = lst
    return out


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_two_steps_pick_nearly_always_the_nearest_list_and_report_its_score_exactly(metric: str) -> None:
    x = _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, _clustered(9000, 16, 1))
    trained = _interim_ivf.train_lists(16, metric, x[:6000])
    assert trained.nlist >= _interim_assign.TWO_STEP_LISTS
    assigner = _interim_assign.assigner_for(trained)
    assert assigner is not None
    near, lists = assigner.assign(x[6000:])
    flat_near, flat_lists = trained.quantizer.search(x[6000:], 1)
    assert float(np.mean(lists == flat_lists.ravel())) > 0.9
    centres = trained.quantizer.reconstruct_n(0, trained.nlist)[lists]
    exact = np.square(x[6000:] - centres).sum(axis=1) if metric == "L2" else np.einsum("nd,nd->n", x[6000:], centres)
    assert np.allclose(near, exact, rtol=1e-4, atol=1e-4)
    same = lists == flat_lists.ravel()
    assert np.allclose(near[same], flat_near.ravel()[same], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_a_row_past_the_reach_is_compared_with_every_centre_as_a_flat_search_does(metric: str) -> None:
    x = _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, _clustered(9000, 16, 6))
    trained = _interim_ivf.train_lists(16, metric, x[:6000])
    assigner = _interim_assign.assigner_for(trained)
    assert assigner is not None
    near, lists = assigner.nearest(x[6000:])
    flat_near, flat_lists = trained.quantizer.search(x[6000:], 1)
    assert float(np.mean(lists == flat_lists.ravel())) > 0.999  # ties aside, the very nearest
    assert np.allclose(near, flat_near.ravel(), rtol=1e-4, atol=1e-4)


def test_few_lists_are_assigned_against_every_centre() -> None:
    x = _clustered(2000, 16, 2)
    trained = _interim_ivf.train_lists(16, "L2", x)
    assert trained.nlist < _interim_assign.TWO_STEP_LISTS
    assert _interim_assign.assigner_for(trained) is None
    assert _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", trained).assigner is None


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_no_row_lies_past_its_lists_radius_and_rows_past_the_reach_go_to_their_nearest_list(metric: str) -> None:
    x = _clustered(20000, 16, 3)
    trained = _interim_ivf.train_lists(16, metric, _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, x[:6000]))
    ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, metric, trained)
    assert ivf.assigner is not None and ivf.assigner.reach is not None
    reach = ivf.assigner.reach.copy()
    two_step = ivf.assigner.assign(ivf.prepared(x[6000:]))[1]
    for lo in range(6000, 20000, 3000):
        ivf.grow(x[lo : lo + 3000])
    lists = _rows_lists(ivf)
    assert not np.array_equal(lists, two_step)  # some rows were assigned again against every centre
    p = ivf.prepared(x[6000:])
    centres = trained.quantizer.reconstruct_n(0, trained.nlist)
    dist = np.sqrt(np.square(p - centres[lists]).sum(axis=1))
    assert bool(np.all(dist <= ivf.radius[lists] + 1e-5))
    flat = trained.quantizer.search(p, 1)[1].ravel()
    beyond = np.sqrt(np.square(p - centres[two_step]).sum(axis=1)) > reach[two_step] * 1.01
    assert beyond.any() and float(np.mean(lists[beyond] == flat[beyond])) > 0.99


def test_an_index_assigned_in_two_steps_finds_the_exact_top_k() -> None:
    x = _clustered(20000, 16, 4)
    q = _clustered(50, 16, 5)
    trained = _interim_ivf.train_lists(16, "L2", x[:6000])
    ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, 16, "L2", trained)
    assert ivf.assigner is not None
    ivf.grow(x)
    got = ivf.search(x, q, 10, len(x), None)
    assert got is not None
    truth = np.argsort(np.square(q[:, None, :] - x[None, :, :]).sum(axis=2), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got[1].tolist(), truth.tolist())])
    assert recall >= 0.95
