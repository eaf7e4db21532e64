"""The quick lane of a plain search (`engine/_quick_search.py`) answers as the general path does, hit for hit.

Every case runs the same search twice on the same state: once as it comes (the
quick lane where it applies) and once with the lane turned off, and compares
keys and distances exactly. Each case also says whether the lane must have
answered, so a lane that never engages fails here too.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import heron
from heron import DataType, ParamError
from heron.engine import _interim, _interim_merged, _quick_search, _reads
from tests.engine._held import held_builds


@pytest.fixture()
def lane(monkeypatch):
    """Small segments, no merging and no idle sealing (the state stays as the test makes it); a counter of answers."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    answered = []
    real = _quick_search.quick_search

    def counted(*args):
        out = real(*args)
        answered.append(out is not None)
        return out

    monkeypatch.setattr(_reads, "quick_search", counted)
    return monkeypatch, answered, counted


def _both(lane, c, name, **kw):
    """``(hits as they come, hits without the lane, whether the lane answered)`` as ``[(id, distance)]`` per query."""
    monkeypatch, answered, counted = lane
    answered.clear()
    fast = c.search(name, **kw)
    took = answered == [True]
    monkeypatch.setattr(_reads, "quick_search", lambda *a: None)
    try:
        slow = c.search(name, **kw)
    finally:
        monkeypatch.setattr(_reads, "quick_search", counted)
    shape = lambda res: [[(h["id"], h["distance"]) for h in q] for q in res]  # noqa: E731
    return shape(fast), shape(slow), took


def _indexed(c, name, field="vector"):
    deadline = time.monotonic() + 120
    while c.describe_index(name, field)["pending_index_rows"]:
        assert time.monotonic() < deadline, "index build did not finish"
        time.sleep(0.05)


def _collection(c, name, metric="COSINE", index="HNSW", pk=DataType.INT64, dim=16):
    schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
    if pk is DataType.VARCHAR:
        schema.add_field("id", pk, is_primary=True, max_length=32)
    else:
        schema.add_field("id", pk, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("b", DataType.INT64)
    idx = c.prepare_index_params()
    params = {"M": 16, "efConstruction": 64} if index == "HNSW" else {"nlist": 16}
    idx.add_index("vector", index_type=index, metric_type=metric, params=params)
    c.create_collection(name, schema=schema, index_params=idx)


def _rows(ids, x, as_str=False):
    return {"id": [f"k{i}" for i in ids] if as_str else np.asarray(ids), "vector": x, "b": np.asarray(ids) % 7}


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
def test_sealed_indexed_segments_answer_as_the_general_path(tmp_path, lane, metric):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6000, 16)).astype(np.float32)
    q = rng.standard_normal((20, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x", metric)
        c.insert("x", _rows(np.arange(2000), x[:2000]))
        c.flush("x")
        _indexed(c, "x")
        for limit in (1, 10, 100, 2000, 3000):  # one segment; past its rows too
            for qi in q[:5]:
                fast, slow, took = _both(lane, c, "x", data=qi[None], limit=limit, search_params={"params": {"ef": 32}})
                assert took and fast == slow
                assert len(fast[0]) == limit if limit <= 100 else 1900 < len(fast[0]) <= 2000  # a graph may miss a few
        c.insert("x", _rows(np.arange(2000, 6000), x[2000:]))
        c.insert("x", _rows(np.arange(6000, 8000), x[:2000]))  # the first rows again: ties across segments
        c.flush("x")
        _indexed(c, "x")
        sealed = c._transport._engine.collection("default", "x").partitions["_default"].sealed
        assert len(sealed) >= 3
        for qi in np.concatenate([q, x[:5]]):
            for limit in (10, 50):
                fast, slow, took = _both(lane, c, "x", data=[qi.tolist()] if limit == 50 else qi[None], limit=limit,
                                         search_params={"metric_type": metric, "params": {"ef": 64}})
                assert took and fast == slow and len(fast[0]) == limit  # lists come as float32 arrays too


def test_ties_across_segments_keep_the_general_order(tmp_path, lane):
    x = np.tile(np.eye(8, dtype=np.float32), (500, 1))  # every vector many times over, in every segment
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x", "L2", index="IVF_FLAT", dim=8)
        for lo in range(0, 4000, 2000):
            c.insert("x", _rows(np.arange(lo, lo + 2000), x[lo:lo + 2000]))
        c.flush("x")
        _indexed(c, "x")
        for i in range(8):
            fast, slow, took = _both(lane, c, "x", data=x[i:i + 1], limit=25, search_params={"params": {"nprobe": 16}})
            assert took and fast == slow


def test_string_keys(tmp_path, lane):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4000, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "s", pk=DataType.VARCHAR)
        c.insert("s", _rows(np.arange(4000), x, as_str=True))
        c.flush("s")
        _indexed(c, "s")
        for qi in x[:10]:
            fast, slow, took = _both(lane, c, "s", data=qi[None], limit=10)
            assert took and fast == slow and all(isinstance(k, str) for k, _ in fast[0])


def test_states_the_lane_leaves_to_the_general_path(tmp_path, lane):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5000, 16)).astype(np.float32)
    q = x[:1] + 0.01
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x")
        c.insert("x", _rows(np.arange(4000), x[:4000]))
        c.flush("x")
        _indexed(c, "x")
        assert _both(lane, c, "x", data=q, limit=10)[2]
        c.insert("x", _rows(np.arange(4000, 4100), x[4000:4100]))  # growing rows
        fast, slow, took = _both(lane, c, "x", data=q, limit=10)
        assert not took and fast == slow
        c.flush("x")
        _indexed(c, "x")
        assert _both(lane, c, "x", data=q, limit=10)[2]
        top = _both(lane, c, "x", data=q, limit=3)[0][0]
        c.delete("x", ids=[top[0][0]])  # a deleted row
        fast, slow, took = _both(lane, c, "x", data=q, limit=10)
        assert not took and fast == slow and top[0][0] not in [k for k, _ in fast[0]]
        c.compact("x")
        deadline = time.monotonic() + 60
        while not _both(lane, c, "x", data=q, limit=10)[2]:  # compaction drops the row: the lane answers again
            assert time.monotonic() < deadline
            time.sleep(0.1)
        c.upsert("x", _rows([int(top[1][0])], x[4999:5000]))  # a key written again, then sealed
        c.flush("x")
        _indexed(c, "x")
        fast, slow, took = _both(lane, c, "x", data=q, limit=10)
        assert not took and fast == slow
        for kw in ({"output_fields": ["b"]}, {"offset": 2}, {"partition_names": ["_default"]}, {"filter": "b < 3"},
                   {"search_params": {"params": {"radius": 0.1}}}, {"round_decimal": 2}, {"timezone": "UTC"}):
            fast, slow, took = _both(lane, c, "x", data=q, limit=10, **kw)
            assert not took and fast == slow, kw


@pytest.mark.parametrize(("metric", "index"), [("COSINE", "HNSW"), ("L2", "HNSW"), ("IP", "IVF_FLAT")])
def test_filtered_searches_over_sealed_segments_answer_as_the_general_path(tmp_path, lane, metric, index):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8000, 16)).astype(np.float32)
    q = np.concatenate([rng.standard_normal((6, 16)).astype(np.float32), x[:3]])
    filters = [("b < 3", None), ("b == 2", None), ("id < 5", None), ("id in [7, 2500, 7999]", None),
               ("b > 100", None), ("b >= 0", None), ("b == {v} and id > {lo}", {"v": 4, "lo": 3000}),
               ("id % 100 == 0", None)]
    all_ids = np.arange(8000)
    kept = {"b < 3": lambda i: i % 7 < 3, "b == 2": lambda i: i % 7 == 2, "id < 5": lambda i: i < 5,
            "id in [7, 2500, 7999]": lambda i: np.isin(i, [7, 2500, 7999]), "b > 100": lambda i: i < 0,
            "b >= 0": lambda i: i >= 0, "b == {v} and id > {lo}": lambda i: (i % 7 == 4) & (i > 3000),
            "id % 100 == 0": lambda i: i % 100 == 0}
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x", metric, index=index)
        for lo in range(0, 8000, 2000):
            c.insert("x", _rows(np.arange(lo, lo + 2000), x[lo:lo + 2000]))
        c.flush("x")
        _indexed(c, "x")
        for expr, params in filters:
            for limit in (1, 10, 100):
                for qi in q:
                    kw = {"data": qi[None], "limit": limit, "filter": expr, "filter_params": params or {},
                          "search_params": {"params": {"ef": 64} if index == "HNSW" else {"nprobe": 8}}}
                    c.search("x", **kw)  # a filter's kept rows are gathered for a scan from its second sighting
                    fast, slow, took = _both(lane, c, "x", **kw)
                    assert took and fast == slow, (expr, limit)
                    ids = np.array([k for k, _ in fast[0]], dtype=np.int64)
                    assert len(ids) == min(limit, int(kept[expr](all_ids).sum()))
                    assert kept[expr](ids).all() and len(set(ids.tolist())) == len(ids)
        c.insert("x", _rows(np.arange(8000, 8100), x[:100]))  # growing rows: the general path scans them
        fast, slow, took = _both(lane, c, "x", data=q[:1], limit=10, filter="b < 3")
        assert not took and fast == slow
        for answered in (True, False):  # a bad filter: the same error with the lane and without
            lane[0].setattr(_reads, "quick_search", lane[2] if answered else lambda *a: None)
            with pytest.raises(ParamError, match="nope"):
                c.search("x", data=q[:1], limit=5, filter="nope > 3")


def test_a_released_partition_and_bad_requests(tmp_path, lane):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4000, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x")
        assert _both(lane, c, "x", data=x[:1], limit=5) == ([[]], [[]], True)  # nothing stored yet
        c.create_partition("x", "p")
        c.insert("x", _rows(np.arange(2000), x[:2000]))
        c.insert("x", _rows(np.arange(2000, 4000), x[2000:]), partition_name="p")
        c.flush("x")
        _indexed(c, "x")
        fast, slow, took = _both(lane, c, "x", data=x[2000:2001], limit=5)
        assert took and fast == slow and fast[0][0][0] == 2000
        c.release_partitions("x", ["p"])
        fast, slow, took = _both(lane, c, "x", data=x[2000:2001], limit=5)
        assert took and fast == slow and all(k < 2000 for k, _ in fast[0])
        with pytest.raises(ParamError, match="metric_type"):
            c.search("x", data=x[:1], limit=5, search_params={"metric_type": "L2"})
        with pytest.raises(ParamError, match="ef"):
            c.search("x", data=x[:1], limit=5, search_params={"params": {"ef": -3}})
        with pytest.raises(ParamError, match="NaN"):
            c.search("x", data=np.full((1, 16), np.nan, dtype=np.float32), limit=5)
        with pytest.raises(ParamError, match="limit"):
            c.search("x", data=x[:1], limit=20000)
        for answered in (True, False):  # an unknown output field: the same error with the lane and without
            lane[0].setattr(_reads, "quick_search", lane[2] if answered else lambda *a: None)
            with pytest.raises(ParamError, match="nope"):
                c.search("x", data=x[:1], limit=5, output_fields=["nope"])
        c.release_collection("x")
        with pytest.raises(heron.CollectionNotLoadedError):
            c.search("x", data=x[:1], limit=5)


def test_the_lane_waits_for_the_index(tmp_path, lane, monkeypatch):
    x = np.random.default_rng(5).standard_normal((3000, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x")
        c.insert("x", _rows(np.arange(3000), x))
        engine = c._transport._engine
        coll = engine.collection("default", "x")
        c.flush("x")
        _indexed(c, "x")
        seg = coll.partitions["_default"].sealed[0]
        held = seg.vindex.pop("vector")  # as while a segment's index is being built, with no interim index
        interim = seg.interim.pop("vector", None)
        try:
            fast, slow, took = _both(lane, c, "x", data=x[:1], limit=10)
            assert not took and fast == slow and fast[0][0][0] == 0
        finally:
            seg.vindex["vector"] = held
            if interim is not None:
                seg.interim["vector"] = interim
        assert _both(lane, c, "x", data=x[:1], limit=10)[2]


def test_the_lane_can_be_turned_off(tmp_path, lane, monkeypatch):
    x = np.random.default_rng(6).standard_normal((3000, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x")
        c.insert("x", _rows(np.arange(3000), x))
        c.flush("x")
        _indexed(c, "x")
        assert _both(lane, c, "x", data=x[:1], limit=10)[2]
        monkeypatch.setattr(_quick_search, "ENABLED", False)
        fast, slow, took = _both(lane, c, "x", data=x[:1], limit=10)
        assert not took and fast == slow


def test_the_compiled_entry_point_and_the_proxy_give_the_same_hits(tmp_path, lane, monkeypatch):
    """The lane calls faiss's ``IndexHNSW_search`` with ``this`` handles; without it, the proxy's ``search_c``."""
    from heron.engine.index import _dense, _faiss

    assert _faiss.hnsw_search_raw is not None  # this faiss build exposes it: the lane's usual way is tested
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x", "L2")
        c.insert("x", _rows(np.arange(3000), x))
        c.flush("x")
        _indexed(c, "x")
        kw = {"limit": 10, "search_params": {"params": {"ef": 32}}}
        raw = [_both(lane, c, "x", data=qi[None], **kw) for qi in x[:10]]
        monkeypatch.setattr(_dense, "hnsw_search_raw", None)
        proxy = [_both(lane, c, "x", data=qi[None], **kw) for qi in x[:10]]
    assert all(took for _, _, took in raw + proxy)
    assert raw == proxy and all(fast == slow for fast, slow, _ in raw)
    assert [f[0][0][0] for f, _, _ in raw] == list(range(10))  # each row finds itself first


def _full(lane, c, name, **kw):
    """``(hits as they come, hits without the lane, whether the lane answered)``, each hit as its whole dict."""
    monkeypatch, answered, counted = lane
    answered.clear()
    shape = lambda res: [[repr(dict(h)) for h in q] for q in res]  # noqa: E731  # entities with vectors, too
    fast = shape(c.search(name, **kw))
    took = answered == [True]
    monkeypatch.setattr(_reads, "quick_search", lambda *a: None)
    try:
        slow = shape(c.search(name, **kw))
    finally:
        monkeypatch.setattr(_reads, "quick_search", counted)
    return fast, slow, took


@pytest.mark.parametrize("segments", [1, 3])
def test_output_fields_and_rounding_are_shaped_as_the_general_path_does(tmp_path, lane, segments):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3000, 8)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        schema = c.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=16)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
        schema.add_field("n", DataType.INT64, nullable=True)
        schema.add_field("title", DataType.VARCHAR, max_length=32)
        schema.add_field("meta", DataType.JSON)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 64})
        c.create_collection("x", schema=schema, index_params=idx)
        rows = [{"pk": f"k{i}", "vector": x[i], "n": None if i % 5 == 0 else i, "title": f"t{i % 13}",
                 "meta": {"i": i, "tags": ["a", str(i % 3)]}, "color": ["red", "blue"][i % 2]} for i in range(3000)]
        for part in np.array_split(np.arange(3000), segments):
            c.insert("x", [rows[i] for i in part])
            c.flush("x")
        _indexed(c, "x")
        for kw in ({"output_fields": ["n"]}, {"output_fields": ["*"]}, {"output_fields": ["pk", "title", "meta"]},
                   {"output_fields": ["vector", "color"]}, {"output_fields": ["meta", "n"], "round_decimal": 3},
                   {"round_decimal": 1}, {"output_fields": []}, {"output_fields": ["nope"]}):
            for qi in x[:4]:
                fast, slow, took = _full(lane, c, "x", data=qi[None] + 0.01, limit=7, **kw)
                assert took and fast == slow, kw
        assert "'title': 't1'" in _full(lane, c, "x", data=x[1:2], limit=1, output_fields=["title"])[0][0][0]


def _held_by_interim(c, name):
    """Whether every segment without its own index has an interim index that holds all of its rows."""
    coll = c._transport._engine.collection("default", name)
    segs = [s for s in coll.partitions["_default"].segments() if s.n and "vector" not in s.vindex]
    return bool(segs) and all("vector" in s.interim and s.interim["vector"][1].ntotal == s.n for s in segs)


@pytest.mark.parametrize("metric,lists,pk", [("COSINE", "stacked", DataType.INT64), ("L2", "stacked", DataType.INT64),
                                             ("IP", "stacked", DataType.INT64), ("COSINE", "merged", DataType.INT64),
                                             ("L2", "merged", DataType.VARCHAR), ("IP", "merged", DataType.INT64)])
def test_fresh_segments_held_by_their_interim_indexes_answer_as_the_general_path(tmp_path, lane, metric, lists, pk):
    """Over fresh segments read as one stack, or (settled) through their lists copied into one index."""
    monkeypatch = lane[0]
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1024")
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0 if lists == "merged" else 1e9)
    rng = np.random.default_rng(11)
    x = rng.standard_normal((11000, 16)).astype(np.float32)
    q = rng.standard_normal((12, 16)).astype(np.float32)
    as_str = pk is DataType.VARCHAR
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x", metric, pk=pk)
        c.insert("x", _rows(np.arange(2000), x[:2000], as_str))
        c.flush("x")
        _indexed(c, "x")  # one indexed segment, then fresh ones: sealed without their index, and growing
        release = held_builds(monkeypatch)
        try:
            for lo in range(2000, 11000, 1500):
                c.insert("x", _rows(np.arange(lo, min(lo + 1500, 11000)), x[lo:lo + 1500], as_str))
            deadline = time.monotonic() + 60
            while not _held_by_interim(c, "x"):
                assert time.monotonic() < deadline, "the interim indexes did not catch up"
                time.sleep(0.05)
            part = c._transport._engine.collection("default", "x").partitions["_default"]
            assert part.growing is not None and part.growing.n and len(part.sealed) > 4  # read as one stack too
            for qi in np.concatenate([q, x[2000:2003], x[:2]]):
                for limit, fields in ((10, None), (40, ["b"]), (1, None)):
                    fast, slow, took = _both(lane, c, "x", data=qi[None], limit=limit, output_fields=fields)
                    assert took and fast == slow and len(fast[0]) == limit
            assert bool(_interim_merged._MERGED) == (lists == "merged")
            fast, slow, took = _both(lane, c, "x", data=x[5000:5001], limit=5, search_params={"interim": False})
            assert not took and fast == slow and fast[0][0][0] == ("k5000" if as_str else 5000)  # exact results stay
        finally:
            release.set()


def test_fresh_rows_the_interim_index_has_not_reached_go_the_general_way(tmp_path, lane):
    monkeypatch = lane[0]
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1024")
    x = np.random.default_rng(12).standard_normal((3000, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "d")) as c:
        _collection(c, "x")
        release = held_builds(monkeypatch)
        try:
            c.insert("x", _rows(np.arange(1500), x[:1500]))
            deadline = time.monotonic() + 60
            while not _held_by_interim(c, "x"):
                assert time.monotonic() < deadline, "the interim index did not catch up"
                time.sleep(0.05)
            assert _both(lane, c, "x", data=x[:1], limit=10)[2]
            monkeypatch.setattr(_interim.InterimIndexer, "_queue", lambda *a: None)  # the lists take no more rows
            c.insert("x", _rows(np.arange(1500, 1800), x[1500:1800]))
            fast, slow, took = _both(lane, c, "x", data=x[1700:1701], limit=10)
            assert not took and fast == slow and fast[0][0][0] == 1700
        finally:
            release.set()
