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
    beyond[3000:] = False  # later steps compare with the radii grown meanwhile, if wider than the reach
    assert beyond.any() and float(np.mean(lists[beyond] == flat[beyond])) > 0.999


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


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_the_lists_are_trained_by_heron_s_kmeans(metric: str) -> None:
    x = _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, _clustered(16384, 32, 7))
    trained = _interim_ivf.train_lists(32, metric, x)
    centres = trained.quantizer.reconstruct_n(0, trained.nlist)
    ours = _interim_assign.kmeans(x, trained.nlist, _interim_ivf.TRAIN_ROUNDS, l2=metric == "L2",
                                  spherical=metric != "L2", max_per_centre=_interim_ivf.TRAIN_PER_LIST * 16,
                                  exact_rounds=_interim_ivf.TRAIN_EXACT_ROUNDS
                                  if trained.nlist >= _interim_ivf.TWO_STEP_TRAIN_LISTS else None)
    assert np.array_equal(centres, ours)  # faiss's `train` kept the quantizer it was given
    if metric == "COSINE":
        assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_kmeans_rounds_past_the_exact_ones_assign_in_two_steps_and_end_about_as_close(
        metric: str, monkeypatch: pytest.MonkeyPatch) -> None:
    l2 = metric == "L2"
    x = _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, _clustered(8192, 16, 13))
    exact = _interim_assign.kmeans(x, 512, 3, l2=l2, spherical=not l2)
    calls = []
    real = _interim_assign.nearest_centres
    monkeypatch.setattr(_interim_assign, "nearest_centres", lambda *a, **k: calls.append(1) or real(*a, **k))
    mixed = _interim_assign.kmeans(x, 512, 3, l2=l2, spherical=not l2, exact_rounds=1)
    assert len(calls) == 1  # the first round against every centre, the other two in two steps
    assert not np.array_equal(mixed, exact)
    monkeypatch.setattr(_interim_assign, "nearest_centres", real)

    def spread(centres: np.ndarray) -> float:
        """Mean squared distance of the rows to their nearest centre."""
        best, _ = real(x, centres, True)
        return float(np.mean(np.einsum("nd,nd->n", x, x) - 2 * best))

    assert spread(mixed) <= 1.02 * spread(exact)
    few = _interim_assign.kmeans(x, 64, 3, l2=l2, spherical=not l2, exact_rounds=1)
    assert np.array_equal(few, _interim_assign.kmeans(x, 64, 3, l2=l2, spherical=not l2))  # few centres: all exact


def test_a_centre_no_row_chose_takes_half_of_a_large_list() -> None:
    x = np.repeat(_clustered(8, 16, 8), 40, axis=0)  # 8 distinct rows, 16 centres: some start on the same row
    centres = _interim_assign.kmeans(x, 16, 3, l2=True, spherical=False)
    assert np.isfinite(centres).all()
    assert len(np.unique(centres, axis=0)) == 16  # none left on top of another
    _, lists = _interim_assign.nearest_centres(x, centres, True)
    assert len(np.unique(lists)) == 8  # every row still goes to a centre at its own place


def test_nearest_centres_matches_a_flat_search_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_interim_assign, "BLOCK_ROWS", 100)
    x = _clustered(1050, 16, 9)
    c = _clustered(64, 16, 10)
    for l2, flat in ((True, faiss.IndexFlatL2(16)), (False, faiss.IndexFlatIP(16))):
        flat.add(c)
        best, lists = _interim_assign.nearest_centres(x, c, l2)
        want_d, want = flat.search(x, 1)
        assert float(np.mean(lists == want.ravel())) > 0.999
        got_d = np.einsum("nd,nd->n", x, x) - 2 * best if l2 else best
        assert np.allclose(got_d, want_d.ravel(), rtol=1e-4, atol=1e-3)


def test_kmeans_starts_from_faiss_s_draw_and_ends_where_faiss_s_clustering_does() -> None:
    x = _interim_ivf.prepared(DataType.FLOAT_VECTOR, "COSINE", _clustered(6000, 16, 11))
    km = faiss.Kmeans(16, 128, niter=3, seed=1234, spherical=True, min_points_per_centroid=1,
                      max_points_per_centroid=10**6)
    km.train(x)
    ours = _interim_assign.kmeans(x, 128, 3, l2=False, spherical=True)
    assert float(np.mean(np.all(np.abs(ours - km.centroids) < 1e-4, axis=1))) > 0.95


def test_kmeans_samples_many_rows_per_centre_as_faiss_does() -> None:
    x = _interim_ivf.prepared(DataType.FLOAT_VECTOR, "L2", _clustered(5000, 16, 12))
    km = faiss.Kmeans(16, 32, niter=3, seed=1234, min_points_per_centroid=1, max_points_per_centroid=64)
    km.train(x)  # 2,048 of the 5,000 rows
    ours = _interim_assign.kmeans(x, 32, 3, l2=True, spherical=False, max_per_centre=64)
    assert float(np.mean(np.all(np.abs(ours - km.centroids) < 1e-4, axis=1))) > 0.95
    whole = _interim_assign.kmeans(x, 32, 3, l2=True, spherical=False, max_per_centre=1000)
    assert not np.allclose(whole, ours)
