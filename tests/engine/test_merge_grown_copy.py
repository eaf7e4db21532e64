"""A merge grows the older segment's index while that segment answers from an index until the merged one is in.

An index in memory grows in place, the older segment answering from the same
index read in place from its file meanwhile; an index searched from its file
grows as a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine import _maintenance
from heron.engine._engine import open_engine, release_engine
from heron.engine.index._grow import copies_on_growth, grown_copy
from heron.engine.index._vector_index import build_index

DIM = 16


@pytest.mark.parametrize(("index_type", "params"), [
    ("HNSW", {"M": 8, "efConstruction": 40}), ("IVF_FLAT", {"nlist": 8}), ("HNSW_SQ", {"M": 8}), ("FLAT", {}),
])
@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_the_copy_grows_and_the_original_is_untouched(index_type, params, metric):
    rng = np.random.default_rng(21)
    a, b = rng.standard_normal((1200, DIM)).astype(np.float32), rng.standard_normal((600, DIM)).astype(np.float32)
    q = rng.standard_normal((20, DIM)).astype(np.float32)
    base = build_index(DataType.FLOAT_VECTOR, DIM, index_type, metric, params, a)
    sp = {"ef": 128, "nprobe": 8}
    before = base.search(q, 10, params=sp, rows=1200)
    assert copies_on_growth(base)
    grown = grown_copy(base, b)
    assert grown is not None and grown is not base and grown.ntotal == 1800
    assert base.ntotal == 1200
    after = base.search(q, 10, params=sp, rows=1200)  # still searchable, same answers
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)
    # the copy answers like an index extended in place
    fresh = build_index(DataType.FLOAT_VECTOR, DIM, index_type, metric, params, a).extended(b)
    assert fresh is not None
    rows = grown.search(q, 10, params=sp, rows=1800)[1]
    want = fresh.search(q, 10, params=sp, rows=1800)[1]
    overlap = np.mean([len(set(r) & set(w)) / 10 for r, w in zip(rows.tolist(), want.tolist())])
    assert overlap >= 0.9
    assert (rows >= 1200).any()  # rows of `b` are found


def _collection(c: Any, name: str) -> None:
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 40})
    c.create_collection(name, schema=schema, index_params=idx)


def _indexed_base(c: Any, e: Any, a: np.ndarray) -> tuple[Any, Any]:
    """Collection "m" holding rows `a` in one sealed, indexed segment: the collection and the segment."""
    _collection(c, "m")
    c.insert("m", {"id": np.arange(len(a)), "vec": a})
    c.flush("m")
    e.wait_background()
    coll = e.collections[("default", "m")]
    (base,) = [s for p in coll.partitions.values() for s in p.sealed]
    return coll, base


def test_the_older_segment_answers_from_its_index_file_while_its_index_grows_in_place(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(22)
    a, b = rng.standard_normal((2000, DIM)).astype(np.float32), rng.standard_normal((1000, DIM)).astype(np.float32)
    seen: list[dict[str, Any]] = []
    path = str(tmp_path / "db")

    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            coll, base = _indexed_base(c, e, a)
            base_index = base.vindex["vec"][1]
            assert base_index._mapped is None  # built in memory
            real_extended = type(base_index).extended

            def spy(index: Any, vectors: Any, *how: Any) -> Any:
                held = base.vindex["vec"][1]
                seen.append({"grown": index is base_index, "held_mapped": held._mapped is not None,
                             "held_rows": held.ntotal,
                             "answers": held.search(a[:5], 1, rows=held.ntotal)[1][:, 0].tolist()})
                return real_extended(index, vectors, *how)

            monkeypatch.setattr(type(base_index), "extended", spy)
            c.insert("m", {"id": np.arange(2000, 3000), "vec": b})
            c.flush("m")
            e.wait_background()
            (merged,) = [s for p in coll.partitions.values() for s in p.sealed]
            assert merged.n == 3000 and merged.vindex["vec"][1] is base_index  # the same index, grown
            assert base_index.ntotal == 3000
        finally:
            release_engine(e)
        assert seen == [{"grown": True, "held_mapped": True, "held_rows": 2000, "answers": [0, 1, 2, 3, 4]}]
        hits = c.search("m", b[:5], limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == list(range(2000, 2005))
    with heron.Client(path) as c:  # and the merged index file reads back after a restart
        hits = c.search("m", np.concatenate([a[:3], b[:3]]), limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == [0, 1, 2, 2000, 2001, 2002]


def test_an_index_read_from_its_file_grows_as_a_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(22)
    a, b = rng.standard_normal((2000, DIM)).astype(np.float32), rng.standard_normal((1000, DIM)).astype(np.float32)
    seen: list[dict[str, Any]] = []
    real = _maintenance.grown_copy
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _collection(c, "m")
        c.insert("m", {"id": np.arange(2000), "vec": a})
        c.flush("m")

    with heron.Client(path) as c:  # reopened: the older segment's index is searched in place from its file
        e = open_engine(path)
        try:
            e.wait_background()
            coll = e.collections[("default", "m")]
            (base,) = [s for p in coll.partitions.values() for s in p.sealed]
            base_index = base.vindex["vec"][1]
            assert base_index._mapped is not None

            def spy(index: Any, vectors: Any, *how: Any) -> Any:
                # what a search of the older segment finds while the copy grows
                seen.append({"held": base.vindex.get("vec", (None, None))[1] is index,
                             "answers": index.search(a[:5], 1, rows=index.ntotal)[1][:, 0].tolist()})
                return real(index, vectors, *how)

            monkeypatch.setattr(_maintenance, "grown_copy", spy)
            c.insert("m", {"id": np.arange(2000, 3000), "vec": b})
            c.flush("m")
            e.wait_background()
            (merged,) = [s for p in coll.partitions.values() for s in p.sealed]
            assert merged.n == 3000 and merged.vindex["vec"][1].ntotal == 3000
        finally:
            release_engine(e)
        assert seen == [{"held": True, "answers": [0, 1, 2, 3, 4]}]
        assert base_index.ntotal == 2000  # the older segment's index was never grown in place
        hits = c.search("m", b[:5], limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == list(range(2000, 2005))


def _arrays_at(index: Any) -> tuple[int, int]:
    """Where an HNSW index's vectors and links lie in memory."""
    from heron.engine.index._faiss import faiss

    raw = index._index
    codes = faiss.downcast_index(raw.storage).codes
    return (faiss.rev_swig_ptr(codes.data(), 1).ctypes.data,
            faiss.rev_swig_ptr(raw.hnsw.neighbors.data(), 1).ctypes.data)


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_a_rehoused_index_answers_the_same_and_grows_without_moving_its_arrays(tmp_path, monkeypatch, metric):
    from heron.engine.index import _grow

    monkeypatch.setattr(_grow, "REHOUSE_MIN_ROWS", 1000)
    rng = np.random.default_rng(31)
    a, b = rng.standard_normal((3000, DIM)).astype(np.float32), rng.standard_normal((3000, DIM)).astype(np.float32)
    params = {"M": 8, "efConstruction": 40}
    idx = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", metric, params, a)
    control = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", metric, params, a)
    stand_in = _grow.file_stand_in(idx, str(tmp_path / "a.index"))
    before = idx.search(a[:50], 5, rows=3000)
    trimmed: list[bool] = []
    monkeypatch.setattr(_grow, "trim_heap", lambda: trimmed.append(idx._index is None))

    assert _grow.rehouse(idx, stand_in, len(b))
    assert trimmed == [True]  # the heap let go of what was free once the old arrays went, before the new ones came
    after = idx.search(a[:50], 5, rows=3000)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_allclose(after[0], before[0], rtol=1e-6)
    at = _arrays_at(idx)
    assert idx.extended(b) is idx and idx.ntotal == 6000
    assert _arrays_at(idx) == at  # the rows went into the room made for them
    found = idx.search(np.concatenate([a[:20], b[:20]]), 1, rows=6000)[1][:, 0]
    assert np.mean(found == np.r_[0:20, 3000:3020]) >= 0.95

    control_at = _arrays_at(control)
    control.extended(b)
    assert _arrays_at(control) != control_at  # grown as it was, faiss moves the arrays: the test can tell


def test_an_index_is_not_rehoused_from_a_file_that_holds_another_graph(tmp_path, monkeypatch):
    from heron.engine.index import _grow

    monkeypatch.setattr(_grow, "REHOUSE_MIN_ROWS", 1000)
    rng = np.random.default_rng(32)
    a, other = rng.standard_normal((2000, DIM)).astype(np.float32), rng.standard_normal((2000, DIM)).astype(np.float32)
    params = {"M": 8, "efConstruction": 40}
    idx = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", params, a)
    elsewhere = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", params, other)
    stand_in = _grow.file_stand_in(elsewhere, str(tmp_path / "other.index"))
    raw = idx._index
    assert not _grow.rehouse(idx, stand_in, 500)
    assert idx._index is raw
    assert idx.search(a[:5], 1, rows=2000)[1][:, 0].tolist() == [0, 1, 2, 3, 4]


def test_a_merge_rehouses_the_older_index_and_answers_before_and_after_a_restart(tmp_path, monkeypatch):
    from heron.engine.index import _grow

    monkeypatch.setattr(_grow, "REHOUSE_MIN_ROWS", 1000)
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(33)
    a, b = rng.standard_normal((2000, DIM)).astype(np.float32), rng.standard_normal((1000, DIM)).astype(np.float32)
    rehoused: list[bool] = []
    real = _grow.rehouse
    monkeypatch.setattr(_maintenance, "rehouse", lambda *args: (rehoused.append(real(*args)), rehoused[-1])[1])
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _collection(c, "m")
        c.insert("m", {"id": np.arange(2000), "vec": a})
        c.flush("m")
        c.insert("m", {"id": np.arange(2000, 3000), "vec": b})
        c.flush("m")
        assert rehoused == [True]
        hits = c.search("m", np.concatenate([a[:3], b[:3]]), limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == [0, 1, 2, 2000, 2001, 2002]
    with heron.Client(path) as c:
        hits = c.search("m", np.concatenate([a[:3], b[:3]]), limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == [0, 1, 2, 2000, 2001, 2002]


def test_a_merge_whose_rehousing_fails_builds_the_merged_index_from_its_rows(tmp_path, monkeypatch):
    from heron.engine.index import _grow

    monkeypatch.setattr(_grow, "REHOUSE_MIN_ROWS", 1000)
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")

    def refuse(*args: Any) -> Any:
        raise MemoryError("no room for the rehoused arrays")

    monkeypatch.setattr(_grow, "_from_stand_in", refuse)
    rng = np.random.default_rng(34)
    a, b = rng.standard_normal((2000, DIM)).astype(np.float32), rng.standard_normal((1000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            coll, base = _indexed_base(c, e, a)
            old = base.vindex["vec"][1]
            c.insert("m", {"id": np.arange(2000, 3000), "vec": b})
            c.flush("m")
            e.wait_background()
            (merged,) = [s for p in coll.partitions.values() for s in p.sealed]
            assert old.ntotal == -1  # left unusable, and not the merged segment's index
            assert merged.n == 3000 and merged.vindex["vec"][1] is not old and merged.vindex["vec"][1].ntotal == 3000
        finally:
            release_engine(e)
        hits = c.search("m", np.concatenate([a[:3], b[:3]]), limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == [0, 1, 2, 2000, 2001, 2002]
