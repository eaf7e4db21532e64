"""The insert path's helpers: JSON texts kept by segments, memory populated ahead, paced segment files."""

from __future__ import annotations

import os
import sys

import numpy as np
import pyarrow as pa

import heron
from heron.engine._segment import _Buffer
from heron.engine.storage import _files as _storage
from heron.engine.storage import _ipc as _arrow
from heron.engine.storage import _prefault
from tests.conftest import require
from tests.engine._smaps import mapping_field


def test_sealing_writes_the_json_texts_kept_from_the_insert(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "50")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        s = c.create_schema(enable_dynamic_field=True)
        s.add_field("id", heron.DataType.INT64, is_primary=True)
        s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
        s.add_field("doc", heron.DataType.JSON, nullable=True)
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
        c.create_collection("x", schema=s, index_params=ip)

        def no_encoding(value):
            raise AssertionError("a JSON value was encoded again when its segment was written")

        monkeypatch.setattr(_arrow, "dumps_json", no_encoding)
        for start in (0, 40, 80):  # three segments of 40 rows (a fourth batch would not fit in 50)
            c.insert("x", [{"id": i, "v": [1.0, float(i)], "doc": None if i % 7 == 0 else {"i": i, "s": "é"},
                            "extra": [i]} for i in range(start, start + 40)])
        c.flush("x")
        segs = os.listdir(os.path.join(path, "segments", "c1"))
        assert sum(f.endswith(".arrow") for f in segs) == 3
    monkeypatch.undo()
    with heron.Client(path) as c:
        rows = c.query("x", filter="id >= 0", output_fields=["doc", "extra"], limit=200)
        got = {r["id"]: (r["doc"], r["extra"]) for r in rows}
        assert got == {i: (None if i % 7 == 0 else {"i": i, "s": "é"}, [i]) for i in range(120)}


def test_growing_buffers_populate_memory_ahead_of_their_rows(monkeypatch):
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(_prefault, "_enabled", True)
    monkeypatch.setattr(_prefault, "populate", lambda data, lo, hi: calls.append((lo, hi)))
    buf = _Buffer(np.float32, 128)
    buf.reserve(20_000)
    ahead = _prefault.AHEAD_BYTES // (128 * 4)
    for i in range(20):
        buf.append(np.full((1000, 128), i, dtype=np.float32))
        assert calls[-1][1] >= min(20_000, buf.n + ahead // 2)
    assert calls[0][0] >= 1000  # never behind the rows written
    assert all(a[1] == b[0] for a, b in zip(calls, calls[1:]))  # contiguous, no range twice
    assert calls[-1][1] == 20_000  # up to the room there is, never past it
    assert all(buf.data[i * 1000, 0] == i for i in range(20))


def test_populating_memory_keeps_its_contents():
    require(sys.platform.startswith("linux"), "MADV_POPULATE_WRITE is Linux's")
    data = np.arange(3 * 1024 * 1024, dtype=np.float32).reshape(-1, 1024)
    before = data.copy()
    _prefault._populate(data, data.ctypes.data + 4096 * 3 + 12, data.nbytes - 4096 * 3 - 12)
    assert np.array_equal(data, before)


def test_segment_files_are_synced_in_steps_and_read_back_whole(tmp_path, monkeypatch):
    syncs = []
    real = os.fdatasync
    monkeypatch.setattr(_storage, "SYNC_EVERY_BYTES", 1 << 16)
    monkeypatch.setattr(_storage.os, "fdatasync", lambda fd: (syncs.append(fd), real(fd)))
    rb = pa.RecordBatch.from_arrays(
        [pa.array(np.arange(200_000)), pa.array([f"row {i}" for i in range(200_000)])], names=["a", "b"]
    )
    path = str(tmp_path / "s.arrow")
    _storage.write_segment_file(path, rb)
    assert len(syncs) >= os.path.getsize(path) // (1 << 16)
    assert _storage.read_segment_file(path).combine_chunks().to_batches()[0].equals(rb)
    assert not os.path.exists(path + ".tmp")


def test_segments_of_a_dropped_collection_are_freed_without_waiting_for_the_garbage_collector(tmp_path, monkeypatch):
    import gc
    import weakref

    monkeypatch.setenv("HERON_SEAL_ROWS", "50")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=2)
        for start in (0, 40, 80):
            c.insert("x", [{"id": i, "vector": [1.0, float(i)]} for i in range(start, start + 40)])
        c.flush("x")
        c.search("x", data=[[1.0, 0.0]], limit=3)  # sealed segments cache their views
        coll = c._transport._engine.collection("default", "x")
        refs = [weakref.ref(s) for p in coll.partitions.values() for s in p.segments()]
        assert len(refs) >= 2
        del coll
        gc.disable()
        try:
            c.drop_collection("x")
            c._transport._engine.wait_background()
            assert [r() for r in refs] == [None] * len(refs)
        finally:
            gc.enable()


def test_sealing_gives_back_memory_populated_ahead_and_keeps_the_rows(monkeypatch):
    released: list[tuple[int, int]] = []
    monkeypatch.setattr(_prefault, "_enabled", True)
    monkeypatch.setattr(_prefault, "populate", lambda data, lo, hi: None)
    real = _prefault.release
    monkeypatch.setattr(_prefault, "release", lambda data, lo, hi: (released.append((lo, hi)), real(data, lo, hi)))
    buf = _Buffer(np.float32, 128)
    buf.reserve(50_000)
    rows = np.arange(3000 * 128, dtype=np.float32).reshape(3000, 128)
    buf.append(rows)
    frozen = buf.freeze()
    assert released == [(3000, 3000 + _prefault.AHEAD_BYTES // (128 * 4))]
    assert np.array_equal(frozen, rows)


def test_growing_buffers_are_kept_out_of_huge_pages():
    require(sys.platform.startswith("linux"), "transparent huge pages are Linux's")
    buf = _Buffer(np.float32, 128)
    buf.reserve(65_536)  # 32 MiB: numpy would ask for huge pages
    start = buf.data.ctypes.data + 2 * 4096  # whole pages of the array
    flags = mapping_field(start, "VmFlags")
    require(flags is not None, "this kernel shows no VmFlags")
    assert flags is not None
    assert "nh" in flags and "hg" not in flags
