"""The grouped scan of a filter's gathered rows under L2: the nearest rows, exactly those of the full scan."""

from __future__ import annotations

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine.index import _dense as _vindex_dense
from heron.engine.index import _grouped_scan
from heron.engine.index._exact import exact_search
from heron.engine.index._grouped_scan import GroupedRows, Groupings
from heron.engine.index._half_scan import HalfRows
from heron.engine.index._subset_cache import SubsetCache


def _clustered(n, dim, seed, centres=40, spread=0.3, offset=0.0):
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(99).standard_normal((centres, dim)).astype(np.float32) * 3
    return (c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, dim)) + offset).astype(np.float32)


def _frozen(a):
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


def _exact(x, ids, q, k):
    """The full scan's answer: sums of squared differences, nearest first, ties to the lower row."""
    s, r = exact_search(DataType.FLOAT_VECTOR, "L2", x, q[None], k)
    return s[0].tolist(), ids[r[0]].tolist()


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("offset", [0.0, 1000.0])  # rows far from the origin: long vectors, close together
def test_grouped_l2_scan_equals_the_full_scan(k, offset):
    x = _frozen(_clustered(6000, 24, 1, offset=offset))
    ids = np.sort(np.random.default_rng(2).choice(10**6, 6000, replace=False))
    g = GroupedRows(ids, x)
    for q in _clustered(40, 24, 3, offset=offset):
        got = g.top_k_l2(q, k)
        assert got is not None  # clustered rows: the bounds prune
        assert got[0].shape == (1, k) and got[1].shape == (1, k)
        assert (got[0][0].tolist(), got[1][0].tolist()) == _exact(x, ids, q, k)  # the same sums, bit for bit
    assert g.share < _grouped_scan.GIVE_UP_SHARE


@pytest.mark.parametrize("spread", [0.5, 1.5, 4.0])
@pytest.mark.parametrize("dim", [2, 3, 8])  # in few dimensions rows reach their bounds: a loose one shows
def test_the_l2_bounds_hold_where_groups_overlap(monkeypatch, spread, dim):
    monkeypatch.setattr(_grouped_scan, "FULL_SCAN_SHARE", 1.0)  # never hand over to the full scan
    x = _frozen(_clustered(4000, dim, 70, centres=12, spread=spread))
    ids = np.arange(4000) * 3
    g = GroupedRows(ids, x)
    for q in _clustered(150, dim, 71, centres=12, spread=spread):
        got = g.top_k_l2(q, 20)
        assert got is not None
        assert (got[0][0].tolist(), got[1][0].tolist()) == _exact(x, ids, q, 20)
    assert 0.0 < g.share < 1.0  # some groups pruned, but not by a wide margin


def test_duplicated_rows_keep_the_lower_id_and_a_bad_query_is_left_to_the_full_scan():
    base = _clustered(2500, 16, 4)
    x = _frozen(np.concatenate([base, base]))  # every vector twice, under two ids
    ids = np.arange(5000) * 2
    g = GroupedRows(ids, x)
    for q in list(_clustered(20, 16, 5)) + [base[7], base[2400]]:  # the last two: distance 0, twice
        got = g.top_k_l2(q, 10)
        assert got is not None and (got[0][0].tolist(), got[1][0].tolist()) == _exact(x, ids, q, 10)
    bad = base[0].copy()
    bad[3] = np.nan
    assert g.top_k_l2(bad, 10) is None
    assert g.top_k_l2(base[0], 5000) is None  # every row asked for


def test_groupings_keep_one_metric_and_a_float16_copy_for_l2_too(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    groupings = Groupings()
    x = _frozen(_clustered(6000, 64, 6))
    ids = np.arange(6000)
    q = _clustered(1, 64, 7)[0]
    answers = [groupings.top_k(ids, x, q, 10, owner=1, metric="L2") for _ in range(_grouped_scan.GROUP_AFTER + 2)]
    assert answers[0] is None  # counted first, grouped after repeated use
    assert answers[-1] is not None and (answers[-1][0][0].tolist(), answers[-1][1][0].tolist()) == _exact(x, ids, q, 10)
    assert groupings.built == 1 and groupings.answered >= 1
    (entry,) = groupings._entries.values()
    assert entry.grouped is not None and entry.half is not None and entry.half.l2
    assert groupings.top_k(ids, x, q, 10, owner=1, metric="IP") is None  # grouped for L2: the other metric scans


@pytest.mark.parametrize("k", [1, 10, 100])
@pytest.mark.parametrize("rows", ["clustered", "spread", "far"])
def test_the_float16_l2_scan_equals_the_full_scan(k, rows):
    rng = np.random.default_rng(80)
    if rows == "spread":
        x = rng.standard_normal((5000, 48)).astype(np.float32) * 20
        qs = rng.standard_normal((40, 48)).astype(np.float32) * 20
    else:  # far: rows 1,000 from the origin, where float16 rounds them by ~0.5
        offset = 1000.0 if rows == "far" else 0.0
        x, qs = _clustered(5000, 48, 81, offset=offset), _clustered(40, 48, 82, offset=offset)
    x = _frozen(x)
    ids = np.sort(rng.choice(10**7, 5000, replace=False))
    h = HalfRows(x, "L2")
    answered = 0
    for q in qs:
        got = h.top_k(ids, x, q, k)
        if got is not None:
            answered += 1
            assert (got[0][0].tolist(), got[1][0].tolist()) == _exact(x, ids, q, k)  # the same sums, bit for bit
    if rows != "far":  # far out, where float16 cannot tell a cluster's rows apart, it hands queries back instead
        assert answered >= 36


def test_rows_the_float16_l2_copy_cannot_tell_apart_are_never_misranked():
    rng = np.random.default_rng(83)
    base = rng.standard_normal((50, 32)).astype(np.float32)
    # 100 rows a centre, each within float16's rounding of it: their float16 distances coincide
    x = _frozen(np.repeat(base, 100, axis=0) + 1e-5 * rng.standard_normal((5000, 32)).astype(np.float32))
    ids = np.arange(5000)
    h = HalfRows(x, "L2")
    for q in base[:20] + 0.01 * rng.standard_normal((20, 32)).astype(np.float32):
        assert h.top_k(ids, x, q, 10) is None  # 100 candidates within the margin: more than the scan is asked


def test_l2_rows_spread_evenly_are_answered_by_the_float16_copy_once_the_grouping_is_given_up(monkeypatch):
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 50_000)
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 2)
    rng = np.random.default_rng(6)
    x = _frozen(rng.standard_normal((5000, 64)).astype(np.float32))
    ids = np.arange(5000) * 5
    gs = Groupings()
    for q in rng.standard_normal((40, 64)).astype(np.float32):
        got = gs.top_k(ids, x, q, 10, owner=3, metric="L2")  # the float16 copy answers, or the caller scans
        if got is not None:
            assert (got[0][0].tolist(), got[1][0].tolist()) == _exact(x, ids, q, 10)
    assert gs.built == 1 and gs.answered == 0 and gs.answered_half > 30
    (entry,) = gs._entries.values()
    assert entry.state == "refused" and entry.grouped is None and gs.nbytes == entry.half.nbytes


def test_repeated_l2_filters_through_the_client_are_exact(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    groupings = Groupings()
    monkeypatch.setattr(_vindex_dense, "SUBSETS", SubsetCache(max_bytes=32 << 20))
    monkeypatch.setattr(_grouped_scan, "GROUPINGS", groupings)
    monkeypatch.setattr(_grouped_scan, "BACKGROUND", False)
    monkeypatch.setattr(_grouped_scan, "GROUP_AFTER", 2)
    monkeypatch.setattr(_grouped_scan, "MIN_ROWS", 256)
    monkeypatch.setattr(_grouped_scan, "MIN_VALUES", 0)
    monkeypatch.setattr(_grouped_scan, "GROUP_ROWS", 16)
    rng = np.random.default_rng(12)
    x = _clustered(8000, 16, 40)
    bucket = rng.integers(0, 10, 8000)
    with heron.Client(str(tmp_path / "d")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=16)
        schema.add_field("b", heron.DataType.INT64)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2")
        c.create_collection("x", schema=schema, index_params=idx)
        for lo in range(0, 8000, 2000):  # four sealed segments
            c.insert("x", {"id": np.arange(lo, lo + 2000), "vector": x[lo:lo + 2000], "b": bucket[lo:lo + 2000]})
        c.flush("x")
        for expr, keep in (("b < 7", bucket < 7), ("b in [1, 4, 8]", np.isin(bucket, [1, 4, 8]))):
            kept = np.flatnonzero(keep)
            for _ in range(3):
                for q in _clustered(10, 16, 51):
                    hits = c.search("x", data=[q], limit=10, filter=expr, output_fields=[])[0]
                    want_s, want_ids = _exact(x[kept], kept, q, 10)
                    assert [h["id"] for h in hits] == want_ids
                    np.testing.assert_allclose([h["distance"] for h in hits], want_s, rtol=1e-6)
    assert groupings.answered > 0 and groupings.built > 0
