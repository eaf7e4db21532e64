"""Indexed segments read through their interim indexes while fresh segments hold most rows (`_interim.interim_first`).

Right after a large load the first segments indexed, and the segments merged
from them, are a small part of the rows: one read of one copy of every
segment's lists costs less than that read plus a search of each indexed
segment's own index. A merged segment gets the interim indexes of the two it
joins (`_interim.join_interim`), so it stays in that one read.
"""

from __future__ import annotations

import gc
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine import (
    _interim,
    _interim_fast,
    _interim_ivf,
    _interim_merged,
    _interim_one,
    _maintenance,
    _quick_search,
    _reads,
)
from heron.engine._engine import open_engine, release_engine
from heron.engine._interim_merged import joined
from heron.engine.index._vector_index import build_index
from tests.engine._held import held_builds

DIM = 16


def _until(check: Any, timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)
    return got


def _lists(ivf: Any) -> list[tuple[list[int], bytes]]:
    """Per list of `ivf`: its ids in order and its codes."""
    inv, size = ivf._index.invlists, ivf._index.code_size
    out = []
    for lst in range(ivf._index.nlist):
        n = inv.list_size(lst)
        ids = _interim_ivf.faiss.rev_swig_ptr(inv.get_ids(lst), n).tolist() if n else []
        codes = bytes(_interim_ivf.faiss.rev_swig_ptr(inv.get_codes(lst), n * size)) if n else b""
        out.append((ids, codes))
    return out


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
def test_a_joined_index_holds_both_indexes_lists_and_answers_as_the_two(metric: str) -> None:
    rng = np.random.default_rng(31)
    x = rng.standard_normal((3000, DIM)).astype(np.float32)
    q = rng.standard_normal((8, DIM)).astype(np.float32)
    trained = _interim_ivf.train_lists(DIM, metric, _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, x[:2000]))
    a = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, DIM, metric, trained)
    b = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, DIM, metric, trained)
    a.grow(x[:1800])
    b.grow(x[1800:])
    j = joined(a, b)
    assert j.ntotal == 3000 and j.lists is trained
    for (ia, ca), (ib, cb), (ij, cj) in zip(_lists(a), _lists(b), _lists(j)):
        assert ij == ia + [i + 1800 for i in ib] and cj == ca + cb
    np.testing.assert_array_equal(j.sizes, a.sizes + b.sizes)
    np.testing.assert_array_equal(j.radius, np.maximum(a.radius, b.radius))
    assert a.ntotal == 1800 and b.ntotal == 1200  # the two are left as they were
    got = j.search(x, q, 10, 3000, None)
    assert got is not None
    scores, at, rows = _interim_ivf.search_together([(a, x[:1800], 1800), (b, x[1800:], 1200)], q, 10)
    np.testing.assert_array_equal(got[1], np.where(rows >= 0, rows + at * 1800, -1))
    np.testing.assert_allclose(got[0], scores, rtol=1e-5, atol=1e-6)


def _view(n: int) -> Any:
    return SimpleNamespace(n=n)


def test_an_indexed_segment_is_read_through_its_interim_index_while_fresh_rows_outnumber_it() -> None:
    lists, other = object(), object()
    ivf = lambda lst: SimpleNamespace(lists=lst)  # noqa: E731
    own = object()
    small, big, fresh1, fresh2 = _view(100), _view(500), _view(200), _view(250)
    read, owned = _interim.interim_first([(small, ivf(lists), own), (fresh1, ivf(lists), None),
                                          (big, ivf(lists), own), (fresh2, ivf(lists), None)])
    assert [v for v, _ in read] == [small, fresh1, fresh2] and owned == [(big, own)]  # 450 fresh rows: > 100, < 500
    read, owned = _interim.interim_first([(small, ivf(other), own), (fresh1, ivf(lists), None)])
    assert [v for v, _ in read] == [fresh1] and owned == [(small, own)]  # other lists: no fresh rows beside it
    read, owned = _interim.interim_first([(small, ivf(lists), own)])
    assert read == [] and owned == [(small, own)]  # nothing fresh: its own index
    read, owned = _interim.interim_first([(_view(450), ivf(lists), own), (fresh1, ivf(lists), None),
                                          (fresh2, ivf(lists), None)])
    assert owned and [v for v, _ in read] == [fresh1, fresh2]  # as many fresh rows as its own: its own index


@pytest.fixture()
def lane(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Small segments, no merging, no idle sealing, interim lists from 1,024 rows; a counter of quick answers."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1024")
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0)
    answered: list[bool] = []
    real = _quick_search.quick_search

    def counted(*args: Any) -> Any:
        out = real(*args)
        answered.append(out is not None)
        return out

    monkeypatch.setattr(_reads, "quick_search", counted)
    return monkeypatch, answered, counted


def _both(lane: Any, c: heron.Client, **kw: Any) -> tuple[Any, Any, bool]:
    """``(hits as they come, hits without the quick lane, whether the lane answered)``."""
    monkeypatch, answered, counted = lane
    answered.clear()
    fast = c.search("x", **kw)
    took = answered == [True]
    monkeypatch.setattr(_reads, "quick_search", lambda *a: None)
    try:
        slow = c.search("x", **kw)
    finally:
        monkeypatch.setattr(_reads, "quick_search", counted)
    shape = lambda res: [[(h["id"], h["distance"]) for h in q] for q in res]  # noqa: E731
    return shape(fast), shape(slow), took


def _create(c: heron.Client, metric: str = "COSINE", params: dict[str, int] | None = None, dim: int = DIM) -> None:
    """Collection "x": an INT64 key and a `dim`-d (16) vector field with an HNSW index defined first."""
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="HNSW", metric_type=metric, params=params or {"M": 16, "efConstruction": 64})
    c.create_collection("x", schema=schema, index_params=idx)


def _load(c: heron.Client, lane: Any, x: np.ndarray) -> tuple[Any, Any]:
    """Rows of `x` in 2,000-row segments, none indexed, all in their interim indexes; then the first one
    indexed, keeping its interim index (as it does while later rows may be merged into it), and the state
    frozen. Returns the first segment and its own index."""
    monkeypatch = lane[0]
    _create(c)
    for lo in range(0, len(x), 1000):
        c.insert("x", {"id": np.arange(lo, min(lo + 1000, len(x))), "vector": x[lo:lo + 1000]})
    coll = c._transport._engine.collection("default", "x")
    part = coll.partitions["_default"]

    def held() -> bool:
        segs = [s for s in part.segments() if s.n]
        return all("vector" in s.interim and s.interim["vector"][1].ntotal == s.n for s in segs)

    _until(held)
    monkeypatch.setattr(_interim.InterimIndexer, "look", lambda *a: None)  # nothing dropped or grown from here
    first = part.sealed[0]
    d = coll.index_for("vector")
    own = build_index(DataType.FLOAT_VECTOR, DIM, d.index_type, d.metric_type, d.params, first.snapshot().vectors("vector"))
    first.vindex["vector"] = (d.signature, own)
    return first, own


def _spied(monkeypatch: pytest.MonkeyPatch, own: Any) -> list[str]:
    """The calls made to `own`'s search methods."""
    calls: list[str] = []
    for name in ("search", "search_one"):
        real = getattr(own, name)
        monkeypatch.setattr(own, name, lambda *a, _r=real, _n=name, **k: (calls.append(_n), _r(*a, **k))[1])
    return calls


@pytest.mark.parametrize("rows", [11000, 3500])
def test_an_indexed_segment_is_read_through_its_interim_index_only_beside_more_fresh_rows(tmp_path, lane, rows) -> None:
    monkeypatch = lane[0]
    rng = np.random.default_rng(32)
    x = rng.standard_normal((rows, DIM)).astype(np.float32)
    through_lists = rows - 2000 > 2000
    release = held_builds(monkeypatch)
    with heron.Client(str(tmp_path / "d")) as c:
        try:
            first, own = _load(c, lane, x)  # 2,000 indexed rows; 9,000 or 1,500 fresh
            calls = _spied(monkeypatch, own)
            for qi in np.concatenate([x[:3], x[3000:3002], rng.standard_normal((4, DIM)).astype(np.float32)]):
                calls.clear()
                fast, slow, took = _both(lane, c, data=qi[None], limit=10)
                assert took and fast == slow and len(fast[0]) == 10
                assert calls == ([] if through_lists else ["search_one", "search"])  # the lane's, the general path's
            for i in (0, 1, 1999, 2000, rows - 1):  # each row finds itself, indexed segment or not
                assert c.search("x", data=x[i:i + 1], limit=1)[0][0]["id"] == i
            if through_lists:  # all of them read as one copy of the lists, the indexed segment's first
                key = next(iter(_interim_merged._MERGED))
                assert key[0][0] == id(first.interim["vector"][1])
            calls.clear()
            fast, slow, took = _both(lane, c, data=x[1:2], limit=5, filter="id >= 1")
            assert fast == slow and fast[0][0][0] == 1
            assert calls  # a filtered search asks its own index
        finally:
            release.set()  # before the close, which waits for the held builds


def test_a_merged_segment_gets_the_interim_indexes_of_the_two_it_joins(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1024")
    rng = np.random.default_rng(34)
    x = rng.standard_normal((3000, DIM)).astype(np.float32)
    seen: list[tuple[Any, Any, Any]] = []
    real = _maintenance.join_interim

    def spy(base: Any, seg: Any, new: Any) -> None:
        parts = (base.interim.get("vector"), seg.interim.get("vector"))
        real(base, seg, new)
        seen.append((*parts, new.interim.get("vector")))

    monkeypatch.setattr(_maintenance, "join_interim", spy)
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c, "L2", {"M": 8, "efConstruction": 40})
            part = e.collection("default", "x").partitions["_default"]
            # 1,100 rows sealed (the next insert would overflow the segment) and indexed while 1,900 more wait
            # in the growing segment: they may be merged into it and outnumber its rows, so it keeps its interim
            # index (searches read it with theirs); then those sealed and merged into it
            c.insert("x", {"id": np.arange(1100), "vector": x[:1100]})
            c.insert("x", {"id": np.arange(1100, 3000), "vector": x[1100:]})
            g = part.growing
            _until(lambda: part.sealed and "vector" in part.sealed[0].vindex and
                   g.interim.get("vector") and g.interim["vector"][1].ntotal == 1900)
            assert part.sealed[0].n == 1100 and part.sealed[0].interim["vector"][1].ntotal == 1100
            c.flush("x")
            e.wait_background()
            (merged,) = part.sealed
            assert merged.n == 3000 and len(seen) == 1
            a, b, j = seen[0]
            assert a is not None and b is not None and j is not None and j[0] == a[0]
            assert j[1].ntotal == 3000 and j[1].lists is a[1].lists
            for (ia, _), (ib, _), (ij, _) in zip(_lists(a[1]), _lists(b[1]), _lists(j[1])):
                assert ij == ia + [i + 1100 for i in ib]
            got = j[1].search(x, x[[0, 1099, 1100, 2999]], 1, 3000, None)
            assert got is not None and got[1][:, 0].tolist() == [0, 1099, 1100, 2999]
            # the last segment, nothing to merge into it: the interim index goes once `look` runs
            _until(lambda: (e.interim.look(e.collection("default", "x")), "vector" not in merged.interim)[1])
        finally:
            release_engine(e)


def test_a_copy_of_the_two_joined_indexes_lists_serves_the_joined_one(monkeypatch) -> None:
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0)
    rng = np.random.default_rng(35)
    x = rng.standard_normal((6000, DIM)).astype(np.float32)
    q = rng.standard_normal((12, DIM)).astype(np.float32)
    trained = _interim_ivf.train_lists(DIM, "L2", x[:4000])
    ivfs = []
    for lo in range(0, 6000, 1000):
        ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, DIM, "L2", trained)
        ivf.grow(x[lo:lo + 1000])
        ivfs.append(ivf)
    old = _interim_merged.merged_for(ivfs)
    assert old is not None
    j = joined(ivfs[1], ivfs[2])
    _interim_merged.carry_copies(ivfs[1], ivfs[2], j)
    now = [ivfs[0], j, *ivfs[3:]]
    key = tuple((id(ivf), ivf.ntotal) for ivf in now)
    assert key in _interim_merged._MERGED  # there before any search asked for it
    carried = _interim_merged.merged_for(now)
    assert carried is _interim_merged._MERGED[key] and carried._index is old._index
    assert carried.counts == (1000, 2000, 1000, 1000, 1000) and carried.bases.tolist() == [0, 1000, 3000, 4000, 5000, 6000]
    parts_old = [(ivf, x[lo:lo + 1000], 1000) for ivf, lo in zip(ivfs, range(0, 6000, 1000))]
    parts_new = [(ivfs[0], x[:1000], 1000), (j, x[1000:3000], 2000), *parts_old[3:]]
    for qi in np.concatenate([q, x[[5, 1500, 2500, 5999]]]):
        s_old, at_old, r_old = _interim_one.together_one(parts_old, qi[None], 10)
        s_new, at_new, r_new = _interim_one.together_one(parts_new, qi[None], 10)
        np.testing.assert_array_equal(s_new, s_old)
        glob_old = [int(a) * 1000 + int(r) for a, r in zip(at_old[0], r_old[0])]
        starts = [0, 1000, 3000, 4000, 5000]
        glob_new = [starts[int(a)] + int(r) for a, r in zip(at_new[0], r_new[0])]
        assert glob_new == glob_old
    del old, parts_old, carried
    ivfs[1:3] = []  # once the two are gone, their copy goes; the carried one stays
    gc.collect()
    assert list(_interim_merged._MERGED) == [key]


@pytest.mark.parametrize("dim", [DIM, 256], ids=["8-bit-codes", "4-bit-codes"])
def test_the_copy_of_the_fresh_lists_is_made_before_any_search_asks_for_it(tmp_path, lane, dim: int) -> None:
    """Wide rows' copy holds 4-bit codes (`_interim_fast`), narrow rows' the indexes' own; either is made ahead.

    Ahead of the searches of a collection searched lately: here once, early in the load.
    """
    monkeypatch = lane[0]
    x = np.random.default_rng(36).standard_normal((11000, dim)).astype(np.float32)
    release = held_builds(monkeypatch)
    with heron.Client(str(tmp_path / "d")) as c:
        try:
            _create(c, dim=dim)
            part = c._transport._engine.collection("default", "x").partitions["_default"]
            for lo in range(0, 11000, 1000):
                c.insert("x", {"id": np.arange(lo, lo + 1000), "vector": x[lo:lo + 1000]})
                if lo == 4000:  # a search while the load goes on reads the first segments' lists
                    _until(lambda: any("vector" in s.interim and s.interim["vector"][1].ntotal for s in part.segments()))
                    assert c.search("x", data=x[:1], limit=1)[0][0]["id"] == 0
            segs = part.segments()
            assert len(segs) == 6
            _until(lambda: all("vector" in s.interim and s.interim["vector"][1].ntotal == s.n for s in segs))
            ivfs = [s.interim["vector"][1] for s in segs]
            # the segments a search reads, in its order (one of the first five may have been made during the load)
            key = tuple((id(i), i.ntotal) for i in ivfs)
            _until(lambda: key in _interim_merged._MERGED)  # no search asked for it
            made = _interim_merged._MERGED[key]
            copies = set(_interim_merged._MERGED)
            assert made.fast == (dim >= _interim_fast.FAST_DIM)
            fast, slow, took = _both(lane, c, data=x[7:8], limit=10)
            assert took and fast == slow and fast[0][0][0] == 7
            assert set(_interim_merged._MERGED) == copies and _interim_merged._MERGED[key] is made  # read, no other made
        finally:
            release.set()  # before the close, which waits for the held builds
