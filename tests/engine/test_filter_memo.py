"""A filter that comes back reuses the sealed segment's remembered result, never a stale one."""

from __future__ import annotations

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine import _vindex_exact
from heron.engine._subset_cache import mask_facts
from heron.engine._vindex_exact import exact_search


@pytest.fixture
def sealed(monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "1000")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")


def _data(n, dim=8, seed=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, dim)).astype(np.float32), rng.integers(0, 10, n)


def _truth(x, bucket, alive, q, k, keep):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ (q / np.linalg.norm(q))
    s[~(keep(bucket) & alive)] = -np.inf
    return [int(i) for i in np.argsort(-s, kind="stable")[:k] if np.isfinite(s[i])]


def test_repeated_filters_use_the_remembered_result_and_see_deletes(tmp_path, sealed):
    x, bucket = _data(3000)
    q = x[17] + 0.1
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=8)
        for s in range(0, 3000, 1000):
            c.insert("x", [{"id": i, "vector": x[i], "b": int(bucket[i])} for i in range(s, s + 1000)])
        c.flush("x")
        segs = c._transport._engine.collection("default", "x").partitions["_default"].sealed
        assert len(segs) == 3
        alive = np.ones(3000, bool)
        for _ in range(3):
            hits = c.search("x", data=[q], limit=10, filter="b < 3", search_params={"params": {"ef": 200}})
            assert [h["id"] for h in hits[0]] == _truth(x, bucket, alive, q, 10, lambda b: b < 3)
        memo = [m for s in segs for _, m in s._filter_memo.values()]
        assert len(memo) == 3 and not any(m.flags.writeable for m in memo)
        gone = [h["id"] for h in hits[0][:4]]
        c.delete("x", ids=gone)
        alive[gone] = False
        hits = c.search("x", data=[q], limit=10, filter="b < 3", search_params={"params": {"ef": 200}})
        assert [h["id"] for h in hits[0]] == _truth(x, bucket, alive, q, 10, lambda b: b < 3)
        # other filters and queries that modify their masks are not confused by the memo
        assert c.query("x", filter="b < 3", output_fields=["count(*)"])[0]["count(*)"] == int(
            ((bucket < 3) & alive).sum()
        )
        c.delete("x", filter="b == 1")
        alive[bucket == 1] = False
        hits = c.search("x", data=[q], limit=10, filter="b < 3", search_params={"params": {"ef": 200}})
        assert [h["id"] for h in hits[0]] == _truth(x, bucket, alive, q, 10, lambda b: b < 3)
        hits = c.search("x", data=[q], limit=10, filter="b >= 3", search_params={"params": {"ef": 200}})
        assert [h["id"] for h in hits[0]] == _truth(x, bucket, alive, q, 10, lambda b: b >= 3)


def test_mask_facts_are_shared_only_for_read_only_masks():
    m = np.random.default_rng(0).random(5000) < 0.3
    a, b = mask_facts(m), mask_facts(m)
    assert a is not b  # a writable mask may change between calls
    frozen = m.copy()
    frozen.flags.writeable = False
    f = mask_facts(frozen)
    assert f is mask_facts(frozen)
    assert f.count == int(m.sum())
    assert (f.rows == np.flatnonzero(m)).all()
    assert (np.unpackbits(f.bits, bitorder="little")[: len(m)].astype(bool) == m).all()
    other = m.copy()
    other[0] = not other[0]
    other.flags.writeable = False
    assert mask_facts(other).digest != f.digest


@pytest.mark.parametrize("nq", [1, 3, 8])
def test_few_query_inner_product_scans_match_brute_force(nq):
    rng = np.random.default_rng(nq)
    n = _vindex_exact.BLAS_IP_MIN_ELEMENTS // 16 + 500
    x = rng.standard_normal((n, 16)).astype(np.float32)
    q = rng.standard_normal((nq, 16)).astype(np.float32)
    x[7] = x[100] = q[0] * 10  # the best match twice: a tie, the lower row comes first
    allow = rng.random(n) < 0.9
    allow[[7, 100]] = True
    scores, rows = exact_search(DataType.FLOAT_VECTOR, "IP", x, q, 10)
    ref = (q.astype(np.float64) @ x.T.astype(np.float64))
    for i in range(nq):
        want = np.argsort(-ref[i], kind="stable")[:10]
        assert list(rows[i]) == list(want)
        np.testing.assert_allclose(scores[i], ref[i, want], rtol=1e-5, atol=1e-4)
    assert list(rows[0][:2]) == [7, 100]
    kept = np.flatnonzero(allow)
    scores, rows = exact_search(DataType.FLOAT_VECTOR, "IP", x, q, 10, allow=allow)
    for i in range(nq):
        r = ref[i].copy()
        r[~allow] = -np.inf
        assert list(rows[i]) == list(np.argsort(-r, kind="stable")[:10])
        assert set(rows[i]) <= set(kept)
    # more rows asked for than there are: unfilled slots hold -1
    s, r = exact_search(DataType.FLOAT_VECTOR, "IP", x, q[:1], n + 100)
    assert sorted(r[0, :n]) == list(range(n)) and (r[0, n:] == -1).all()
    assert np.isneginf(s[0, n:]).all()


def test_the_parser_warm_up_expressions_parse():
    from heron.engine.filter import _parser

    _parser._build_and_exercise()  # raises if the grammar stopped accepting one of them
    assert _parser._lark_parser is not None


@pytest.mark.parametrize("metric", ["IP", "L2"])
def test_top_k_row_by_row_equals_the_matrix_form(metric, monkeypatch):
    rng = np.random.default_rng(3)
    for nq in (1, 3, 8):
        m = rng.standard_normal((nq, 500)).astype(np.float32)
        m[:, 7] = m[:, 9]  # ties: the lower column first
        m[0, 3] = np.inf if metric == "L2" else -np.inf  # never a hit
        for k in (5, 500, 600):
            rowwise = _vindex_exact.select_topk(m, k, metric)
            monkeypatch.setattr(_vindex_exact, "_ROWWISE_TOPK", 0)
            matrix = _vindex_exact.select_topk(m, k, metric)
            monkeypatch.undo()
            assert np.array_equal(rowwise[1], matrix[1]) and np.array_equal(rowwise[0], matrix[0])
            assert 3 not in rowwise[1][0]
