"""A filter that comes back reuses the sealed segment's remembered result, never a stale one."""

from __future__ import annotations

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine.index import _exact as _vindex_exact
from heron.engine.index import _top_one
from heron.engine.index._exact import exact_search
from heron.engine.index._subset_cache import mask_facts


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


@pytest.mark.parametrize("n", [5, 300, 20_000])
def test_one_query_scan_of_gathered_rows_matches_brute_force(n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    q = rng.standard_normal(16).astype(np.float32)
    x[1] = x[3] = q * 10  # the best match twice: the lower row first
    ids = np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64)
    ref = x.astype(np.float64) @ q.astype(np.float64)
    order = np.argsort(-ref, kind="stable")
    for k in (2, 10):
        scores, rows = _top_one.ip_top_one(x, ids, q, k)
        assert scores.shape == rows.shape == (1, k)
        kk = min(k, n)
        assert list(rows[0, :kk]) == list(ids[order[:kk]])  # the tie inside the hits: lower row first
        np.testing.assert_allclose(scores[0, :kk], ref[order[:kk]], rtol=1e-5, atol=1e-4)
        assert (rows[0, kk:] == -1).all() and np.isneginf(scores[0, kk:]).all()
    scores, rows = _top_one.ip_top_one(x, ids, q, 1)
    assert rows[0, 0] in (ids[1], ids[3])  # a tie at the cut: either may be kept
    scores, rows = _top_one.ip_top_one(x, ids, q, n + 5)  # more asked for than there are
    assert sorted(rows[0, :n]) == list(ids) and (rows[0, n:] == -1).all()
    assert (np.diff(scores[0, :n]) <= 0).all() and np.isneginf(scores[0, n:]).all()


def test_a_sealed_segment_hands_out_one_view_until_a_delete(tmp_path, sealed):
    x, bucket = _data(1500)
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=8)
        c.insert("x", [{"id": i, "vector": x[i], "b": int(bucket[i])} for i in range(1000)])
        c.insert("x", [{"id": i, "vector": x[i], "b": int(bucket[i])} for i in range(1000, 1500)])
        coll = c._transport._engine.collection("default", "x")
        part = coll.partitions["_default"]
        seg, growing = part.sealed[0], part.growing
        assert seg.snapshot() is seg.snapshot()
        assert growing.snapshot() is not growing.snapshot()  # its rows may still change
        before = seg.snapshot()
        c.delete("x", ids=[0, 1])
        after = seg.snapshot()
        assert after is not before and after is seg.snapshot()
        c.delete("x", ids=[2])  # later deletes show through the same view
        assert c.query("x", filter="id < 10", output_fields=["id"]) == [{"id": i} for i in range(3, 10)]
        assert seg.snapshot() is after


def test_a_collection_remembers_its_filter_plans(tmp_path):
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=8)
        coll = c._transport._engine.collection("default", "x")
        plan = coll.filter_plan("b < 3")
        assert coll.filter_plan("b < 3") is plan
        templ = coll.filter_plan("b < {v}", {"v": 3})
        assert templ is not plan and templ.expr == "b < {v}"
        with pytest.raises(heron.FilterError):
            coll.filter_plan("b <")
        assert "b <" not in coll._plans


def test_the_filter_warm_up_compiles_and_evaluates_every_expression():
    from heron.engine.filter import _warm, evaluate_reference

    masks = _warm.run()  # raises if an expression stopped compiling or evaluating
    rows = [
        {"id": 0, "a": 1, "f": 1.0, "b": "x", "c": {"k": 1}, "d": [1]},
        {"id": 1, "a": 2, "f": 2.5, "b": "p1", "c": {"k": 5, "s": "u"}, "d": [2, 3]},
        {"id": 2, "a": 3, "f": 3.0, "b": "y", "c": None, "d": []},
        {"id": 3, "a": 4, "f": 0.5, "b": "z", "c": {"k": 2}, "d": [1, 4]},
    ]
    for (expr, params), mask in zip(_warm._EXPRS, masks):
        assert mask.tolist() == evaluate_reference(expr, _warm._schema(), rows, params), expr
    assert any(m.any() for m in masks) and not all(m.all() for m in masks)


def test_sealed_segments_extract_their_common_json_keys_ahead_of_filters(tmp_path, sealed):
    from heron.engine.filter import _extract

    few = np.random.default_rng(0).random(1000) < 0.2
    vals = np.empty(1000, dtype=object)
    vals[:] = [{"g": i % 10, "t": 1} if few[i] else {"g": i % 10, "s": str(i)} for i in range(1000)]
    vals[7] = {"rare": 1}
    assert sorted(_extract.prewarm_json_keys(vals)) == ["g", "s"]  # "t" is in a fifth of the rows
    x, _ = _data(2000)
    with heron.Client(str(tmp_path / "d")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=8)
        schema.add_field("meta", heron.DataType.JSON)
        index = c.prepare_index_params()
        index.add_index(field_name="vector", index_type="HNSW", metric_type="COSINE")
        c.create_collection("x", schema=schema, index_params=index)
        rows = [{"id": i, "vector": x[i], "meta": {"group": i % 50, "name": f"n{i}"}} for i in range(2000)]
        c.insert("x", rows[:1000])
        c.insert("x", rows[1000:])
        c.flush("x")
        seg = c._transport._engine.collection("default", "x").partitions["_default"].sealed[0]
        values = seg.column("meta", seg.n).values
        root = _extract.CACHE._root(values)
        cached = {what for (rid, what) in _extract.CACHE._items if rid == id(root)}
        assert {("json", ("group",)), ("json", ("name",))} <= cached
        got = c.query("x", filter='meta["group"] == 7', output_fields=["id"])
        assert sorted(r["id"] for r in got) == [i for i in range(2000) if i % 50 == 7]
