"""One query through interim indexes (`engine/_interim_one.py`) finds what `search_together` finds for it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from heron import DataType
from heron.engine import _interim_ivf, _interim_merged, _interim_one


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


@pytest.fixture
def merge_at_once(monkeypatch):
    """Interim lists copied into one index as soon as they are searched, on the searching thread."""
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0)
    monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
    monkeypatch.setattr(_interim_merged, "_MERGED", {})


@pytest.fixture
def never_merge(monkeypatch):
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 1e9)


SIX = [0, 1500, 3000, 4500, 6000, 7500, 9000]


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
@pytest.mark.parametrize("bounds,how", [([0, 9000], "never_merge"), ([0, 4000, 4500, 9000], "never_merge"),
                                        (SIX, "never_merge"), (SIX, "merge_at_once")],
                         ids=["one", "three", "six-stacked", "six-merged"])
def test_one_query_finds_what_the_batch_search_finds(metric: str, bounds: list[int], how: str, request) -> None:
    request.getfixturevalue(how)
    x, queries = _clustered(9000, 16, 1), _clustered(40, 16, 2)
    parts = _parts(metric, bounds, x)
    assert (len(parts) > _interim_one.STACK_ABOVE) == (len(bounds) > 6)
    merged = _interim_merged.merged_for([ivf for ivf, _, _ in parts]) if len(parts) > _interim_one.STACK_ABOVE else None
    assert (merged is not None) == (how == "merge_at_once")
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


def _merged_hits(parts, q):
    got = _interim_one.together_one(parts, q[None], 10)
    assert got is not None
    return set(zip(got[1][0].tolist(), got[2][0].tolist()))


def test_merged_lists_serve_only_the_indexes_and_rows_they_were_copied_from(merge_at_once) -> None:
    """A copy is read while none of its indexes grew; an index that grows sends searches back to the stack."""
    x, queries = _clustered(9500, 16, 6), _clustered(20, 16, 7)
    parts = _parts("COSINE", SIX, x)
    ivfs = [ivf for ivf, _, _ in parts]
    first = _interim_merged.merged_for(ivfs)
    assert first is not None and first.counts == tuple(ivf.ntotal for ivf in ivfs)
    assert _interim_merged.merged_for(ivfs) is first
    ivfs[2].grow(x[9000:9500])  # its segment took 500 more rows
    parts[2] = (ivfs[2], np.concatenate([x[3000:4500], x[9000:9500]]), 2000)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_interim_merged, "SETTLED_AFTER", 1e9)  # it just grew: no copy yet
        assert _interim_merged.merged_for(ivfs) is None
        stacked = [_merged_hits(parts, q) for q in queries]
    second = _interim_merged.merged_for(ivfs)
    assert second is not None and second is not first and second.counts[2] == 2000
    assert [_merged_hits(parts, q) for q in queries] == stacked


def test_a_copy_goes_with_its_indexes(merge_at_once) -> None:
    x = _clustered(9000, 16, 8)
    parts = _parts("L2", SIX, x)
    assert _interim_merged.merged_for([ivf for ivf, _, _ in parts]) is not None
    assert len(_interim_merged._MERGED) == 1
    del parts[3]  # its segment got its own index: the interim index is dropped
    import gc
    gc.collect()
    assert _interim_merged._MERGED == {}


def test_copies_are_made_in_the_background_once_the_indexes_settled(monkeypatch) -> None:
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.3)
    x, q = _clustered(9000, 16, 9), _clustered(1, 16, 10)[0]
    parts = _parts("IP", SIX, x)
    ivfs = [ivf for ivf, _, _ in parts]
    for ivf in ivfs:
        ivf.grown_at = time.monotonic()
    assert _interim_merged.merged_for(ivfs) is None and not _interim_merged._MAKING  # not settled yet
    stacked = _merged_hits(parts, q)
    time.sleep(0.35)
    assert _interim_merged.merged_for(ivfs) is None  # being made now
    deadline = time.monotonic() + 30
    while (got := _interim_merged.merged_for(ivfs)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert got.counts == tuple(ivf.ntotal for ivf in ivfs)
    assert _merged_hits(parts, q) == stacked


def test_copies_in_use_are_not_dropped_for_another(merge_at_once, monkeypatch) -> None:
    """Room for one copy: a second set of indexes is read as a stack while the first copy is in use."""
    x = _clustered(9000, 16, 11)
    one, two = _parts("L2", SIX, x), _parts("COSINE", SIX, x)
    first = _interim_merged.merged_for([ivf for ivf, _, _ in one])
    assert first is not None
    monkeypatch.setattr(_interim_merged, "MAX_BYTES", first.nbytes + first.nbytes // 2)
    monkeypatch.setattr(_interim_merged, "_REFUSED", {})
    assert _interim_merged.merged_for([ivf for ivf, _, _ in two]) is None  # made, and not kept
    assert list(_interim_merged._MERGED.values()) == [first] and len(_interim_merged._REFUSED) == 1
    assert _interim_merged.merged_for([ivf for ivf, _, _ in two]) is None and not _interim_merged._MAKING
    first.used -= _interim_merged.IN_USE  # not read for a while: it makes room once the refusal is old too
    for key in _interim_merged._REFUSED:
        _interim_merged._REFUSED[key] -= _interim_merged.IN_USE
    second = _interim_merged.merged_for([ivf for ivf, _, _ in two])
    assert second is not None and list(_interim_merged._MERGED.values()) == [second]
    assert _interim_merged.merged_for([ivf for ivf, _, _ in one]) is None  # now it is the one refused


@pytest.mark.parametrize("by_segment", [0, 10], ids=["a-row-at-a-time", "a-segment-at-a-time"])
def test_candidates_are_gathered_in_their_order_from_their_segments(by_segment: int, monkeypatch) -> None:
    monkeypatch.setattr(_interim_one, "GATHER_BY_SEGMENT", by_segment)
    x = _clustered(9000, 16, 7)
    parts = _parts("L2", [0, 4000, 4500, 9000], x)
    rng = np.random.default_rng(3)
    at = rng.integers(0, 3, 40)
    at[:5] = 2  # one segment may hold none, or most
    rows = np.array([rng.integers(0, parts[a][2]) for a in at.tolist()])
    got = _interim_one._gathered(parts, at, rows)
    want = np.stack([parts[a][1][r] for a, r in zip(at.tolist(), rows.tolist())])
    assert np.array_equal(got, want)
    none_from_first = at.copy()
    none_from_first[none_from_first == 0] = 1
    rows1 = np.minimum(rows, 499)
    assert np.array_equal(_interim_one._gathered(parts, none_from_first, rows1),
                          np.stack([parts[a][1][r] for a, r in zip(none_from_first.tolist(), rows1.tolist())]))
