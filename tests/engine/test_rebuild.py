"""A graph grown by merges is built again from all its rows once no newer segment waits to merge into it.

While it is built the segment answers from the grown graph's index file; a
segment sealed meanwhile stops the build (the grown graph stays, and grows
with the next merge); an index file records how many rows it was grown by,
so an open builds again a graph that a close left grown.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import heron
from heron.engine import _rebuild
from heron.engine._engine import open_engine, release_engine
from heron.engine.index._base import BuildCancelled
from heron.engine.index._vector_index import load_index

DIM = 16


def _create(c: Any, name: str = "r", ef_construction: int = 40) -> None:
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": ef_construction})
    c.create_collection(name, schema=schema, index_params=idx)


def _load(c: Any, vecs: np.ndarray, lo: int = 0, step: int = 1000, name: str = "r") -> None:
    for start in range(0, len(vecs), step):
        part = vecs[start : start + step]
        c.insert(name, {"id": np.arange(lo + start, lo + start + len(part)), "vec": part})


def _sealed(e: Any, name: str = "r") -> list[Any]:
    coll = e.collections[("default", name)]
    return [s for p in coll.partitions.values() for s in p.sealed]


def _own_rows_found(c: Any, vecs: np.ndarray, rows: np.ndarray, name: str = "r") -> float:
    hits = c.search(name, vecs[rows], limit=1, search_params={"params": {"ef": 64}})
    return float(np.mean([row[0]["id"] == i for row, i in zip(hits, rows)]))


@pytest.fixture
def small(monkeypatch):
    """Segments of 1,000 rows merging into one; graphs of 1,000 rows or more are built again."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_SEAL_ROWS", "1000")
    monkeypatch.setattr(_rebuild, "REBUILD_MIN_ROWS", 1000)
    monkeypatch.setattr(_rebuild, "REBUILD_SHARE", 0.2)


def test_the_graph_a_load_ends_with_is_built_again_from_all_its_rows_and_saved(tmp_path, small):
    vecs = np.random.default_rng(1).standard_normal((6000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    details: list[str] = []
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            e.progress.callback = lambda step: details.append(step.detail)
            _create(c)
            _load(c, vecs)
            c.flush("r")  # every segment merged into one, and its graph built again
            (seg,) = _sealed(e)
            idx = seg.vindex["vec"][1]
            assert seg.n == 6000 and idx.ntotal == 6000 and idx.grown == 0
            assert idx._mapped is None  # the new graph, not the grown one's file standing in
            assert any(d.startswith(f"rebuilding segment {seg.id} field vec") for d in details)
            coll = e.collections[("default", "r")]
            assert load_index(e.dir.index_path(coll.id, seg.id, "vec")).grown == 0
        finally:
            release_engine(e)
        assert _own_rows_found(c, vecs, np.arange(0, 6000, 97)) >= 0.95


def test_a_graph_below_the_share_or_the_size_is_left_grown(tmp_path, small, monkeypatch):
    monkeypatch.setattr(_rebuild, "REBUILD_SHARE", 0.9)  # 5,000 of 6,000 rows grown: under 90%
    vecs = np.random.default_rng(2).standard_normal((6000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c)
            _load(c, vecs)
            c.flush("r")
            (seg,) = _sealed(e)
            assert seg.vindex["vec"][1].grown == 5000
            coll = e.collections[("default", "r")]
            assert load_index(e.dir.index_path(coll.id, seg.id, "vec")).grown == 5000  # recorded in its file
            monkeypatch.setattr(_rebuild, "REBUILD_SHARE", 0.2)
            monkeypatch.setattr(_rebuild, "REBUILD_MIN_ROWS", 6001)
            assert not _rebuild.wants_rebuild(seg.vindex["vec"][1])
            monkeypatch.setattr(_rebuild, "REBUILD_MIN_ROWS", 6000)
            assert _rebuild.wants_rebuild(seg.vindex["vec"][1])
        finally:
            release_engine(e)


def test_a_graph_built_with_a_large_ef_construction_is_left_grown(tmp_path, small, monkeypatch):
    monkeypatch.setattr(_rebuild, "REBUILD_EF_BELOW", 100)
    vecs = np.random.default_rng(4).standard_normal((5000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c, "low", ef_construction=99)
            _create(c, "high", ef_construction=100)
            for name in ("low", "high"):
                _load(c, vecs, name=name)
                c.flush(name)
            (low,) = _sealed(e, "low")
            (high,) = _sealed(e, "high")
            assert low.vindex["vec"][1].grown == 0  # built again
            idx = high.vindex["vec"][1]
            assert idx.grown == 4000 and not _rebuild.wants_rebuild(idx)
            monkeypatch.setattr(_rebuild, "REBUILD_EF_BELOW", 101)
            assert _rebuild.wants_rebuild(idx)
            monkeypatch.setattr(_rebuild, "REBUILD_EF_BELOW", 100)
        finally:
            release_engine(e)
    with heron.Client(path) as c:  # an open reads efConstruction back from the index file
        e = open_engine(path)
        try:
            e.wait_background()
            (high,) = _sealed(e, "high")
            idx = high.vindex["vec"][1]
            assert idx.grown == 4000 and idx._index.hnsw.efConstruction == 100
        finally:
            release_engine(e)
        assert _own_rows_found(c, vecs, np.arange(0, 5000, 89), name="high") >= 0.95


def test_an_open_builds_again_a_graph_that_was_left_grown(tmp_path, small, monkeypatch):
    monkeypatch.setattr(_rebuild, "REBUILD_SHARE", 2.0)  # as if a close had stopped the rebuild
    vecs = np.random.default_rng(3).standard_normal((5000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _create(c)
        _load(c, vecs)
        c.flush("r")
    monkeypatch.setattr(_rebuild, "REBUILD_SHARE", 0.2)
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            (seg,) = _sealed(e)
            e.wait_background()
            assert seg.vindex["vec"][1].grown == 0
        finally:
            release_engine(e)
        assert _own_rows_found(c, vecs, np.arange(0, 5000, 89)) >= 0.95


def test_a_segment_sealed_during_the_rebuild_stops_it_and_the_grown_graph_answers(tmp_path, small, monkeypatch):
    vecs = np.random.default_rng(4).standard_normal((6000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    real_build = _rebuild.build_index
    calls: list[str] = []
    started, go = threading.Event(), threading.Event()

    def build(*args: Any, cancelled: Any, **kwargs: Any) -> Any:
        first = not calls
        calls.append("built")
        if first:
            started.set()
            assert go.wait(60)
        try:
            return real_build(*args, cancelled=cancelled, **kwargs)
        except BuildCancelled:
            calls[-1] = "stopped"
            raise

    monkeypatch.setattr(_rebuild, "build_index", build)
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c)
            _load(c, vecs[:5000])  # five segments of 1,000 rows, merged in the background
            assert started.wait(60)
            (seg,) = [s for s in _sealed(e) if s.vindex.get("vec") and s.vindex["vec"][1].grown]
            assert seg.vindex["vec"][1]._mapped is not None  # the grown graph answers from its file
            assert _own_rows_found(c, vecs, np.arange(0, seg.n, 53)) >= 0.95
            _load(c, vecs[5000:], lo=5000)  # seals a sixth segment, which will merge into it
        finally:
            go.set()
        try:
            c.flush("r")
            assert calls[0] == "stopped" and calls[-1] == "built"
            (seg,) = _sealed(e)
            assert seg.n == 6000 and seg.vindex["vec"][1].grown == 0
        finally:
            release_engine(e)
        assert _own_rows_found(c, vecs, np.arange(0, 6000, 97)) >= 0.95


def test_settled_means_no_newer_segment_would_merge_into_it(tmp_path, small, monkeypatch):
    vecs = np.random.default_rng(5).standard_normal((2500, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")  # no merging: three segments side by side
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c)
            _load(c, vecs)
            c.flush("r")
            coll = e.collections[("default", "r")]
            (p,) = coll.partitions.values()
            a, b, last = p.sealed
            m = e.maintenance
            assert _rebuild.settled(m, coll, p, last)
            monkeypatch.setenv("HERON_MERGE_ROWS", "1500")  # `a` (1,000) and `b` (1,000) could not merge
            assert _rebuild.settled(m, coll, p, a) and not _rebuild.settled(m, coll, p, b)  # `last` has 500
            monkeypatch.setenv("HERON_MERGE_ROWS", "100000")
            assert not _rebuild.settled(m, coll, p, a) and _rebuild.settled(m, coll, p, last)
        finally:
            release_engine(e)
