"""One query through interim indexes (`engine/_interim_one.py`) finds what `search_together` finds for it."""

from __future__ import annotations

import numpy as np
import pytest

from heron import DataType
from heron.engine import _interim_ivf, _interim_one


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    centres = np.random.default_rng(12345).standard_normal((64, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim), dtype=np.float32)
    return np.ascontiguousarray(x * rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32))


def _parts(metric: str, bounds: list[int], x: np.ndarray) -> list[tuple[_interim_ivf.GrowingIVF, np.ndarray, int]]:
    trained = _interim_ivf.train_lists(x.shape[1], metric, _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, x[:4000]))
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, x.shape[1], metric, trained)
        ivf.grow(x[lo:hi])
        out.append((ivf, x[lo:hi], hi - lo))
    return out


def _exact(metric: str, x: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    if metric == "L2":
        s = -np.square(x - q).sum(axis=1)
    elif metric == "IP":
        s = x @ q
    else:
        s = (x @ q) / np.linalg.norm(x, axis=1) / np.linalg.norm(q)
    return np.argsort(-s, kind="stable")[:k].tolist()


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
@pytest.mark.parametrize("bounds", [[0, 9000], [0, 4000, 4500, 9000], [0, 1500, 3000, 4500, 6000, 7500, 9000]],
                         ids=["one", "three", "six-stacked"])
def test_one_query_finds_what_the_batch_search_finds(metric: str, bounds: list[int]) -> None:
    x, queries = _clustered(9000, 16, 1), _clustered(40, 16, 2)
    parts = _parts(metric, bounds, x)
    assert (len(parts) > _interim_one.STACK_ABOVE) == (len(bounds) > 6)
    starts = np.array(bounds[:-1])
    same, recall = [], []
    for qi in queries:
        got = _interim_one.together_one(parts, qi[None], 10)
        want = _interim_ivf.search_together(parts, qi[None], 10)
        assert got is not None and want is not None
        g = (starts[got[1][0]] + got[2][0]).tolist()
        w = (starts[want[1][0]] + want[2][0]).tolist()
        assert len(set(g)) == 10 and all(r >= 0 for r in got[2][0])
        scores = got[0][0]
        assert list(scores) == sorted(scores, reverse=metric != "L2")  # best first
        w_score = dict(zip(w, want[0][0].tolist()))
        assert all(abs(s - w_score[i]) <= 1e-4 * max(1.0, abs(s)) for i, s in zip(g, scores.tolist()) if i in w_score)
        same.append(len(set(g) & set(w)) / 10)
        recall.append(len(set(g) & set(_exact(metric, x, qi, 10))) / 10)
    assert np.mean(same) >= 0.99  # the same hits, but for ties among equal codes at the candidates' cut
    assert np.mean(recall) >= 0.95


def test_an_index_that_grew_past_the_rows_a_search_reads_is_read_up_to_them() -> None:
    x, queries = _clustered(6000, 16, 3), _clustered(20, 16, 4)
    parts = _parts("L2", [0, 3000, 6000], x)
    parts[1] = (parts[1][0], x[3000:6000], 2000)  # the view holds 2,000 of the index's 3,000 rows
    for qi in queries:
        got = _interim_one.search_fresh(parts, qi[None], 10)
        assert got is not None
        assert all(r < (3000 if a == 0 else 2000) for a, r in zip(got[1][0].tolist(), got[2][0].tolist()))
        lone = _interim_one.together_one(parts, qi[None], 10)
        assert lone is not None and np.array_equal(lone[2], got[2])


def test_too_few_candidates_are_said_so() -> None:
    x = _clustered(4010, 16, 5)
    parts = _parts("L2", [0, 4000, 4010], x)[1:]  # ten rows spread over a few of 250 lists: 48 lists miss some
    for i in range(4000, 4010):
        assert _interim_one.together_one(parts, x[i : i + 1], 10) is None
        assert _interim_ivf.search_together(parts, x[i : i + 1], 10) is None
