"""Sealed segments keep their vectors in their files, and a merge never holds both segments' vectors in the heap.

Once a segment file is recorded, the segment's vector column is a view of the
mapped file (it owns no memory). A merge writes its file from the two files'
mappings, a step at a time, dropping their pages behind it, and the merged
segment is mapped from its file in turn; rows, keys, vectors and answers are
those of the two segments, before and after a restart. The older segment's
index in memory grows in place while the segment answers from the index's
file (`file_stand_in`), which is written when missing or stale.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import heron
from heron._types import DataType
from heron.engine._engine import open_engine, release_engine
from heron.engine._segment_map import _MappedBuffer
from heron.engine.index import _grow, _mapped
from heron.engine.index._faiss import faiss
from heron.engine.index._grow import file_stand_in, grows_in_place
from heron.engine.index._vector_index import build_index
from heron.engine.storage import _files, _prefault
from heron.engine.storage._files import Piece, read_segment_file, write_segment_file
from tests.engine._smaps import mapping_field

DIM = 16


def _reaches_mapping(arr: np.ndarray) -> bool:
    """The array owns no memory and its ``base`` chain ends in a file mapping (pyarrow's or Python's)."""
    base: Any = arr
    while isinstance(base, np.ndarray):
        if base.flags.owndata:
            return False
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, (pa.Buffer, mmap.mmap))


def _sealed(e: Any, name: str = "m") -> list[Any]:
    coll = e.collections[("default", name)]
    return [s for p in coll.partitions.values() for s in p.sealed]


def _create(c: Any) -> None:
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("tag", heron.DataType.VARCHAR, max_length=16)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 40})
    c.create_collection("m", schema=schema, index_params=idx)


def _insert(c: Any, lo: int, vecs: np.ndarray) -> None:
    ids = np.arange(lo, lo + len(vecs))
    c.insert("m", {"id": ids, "vec": vecs, "tag": [f"t{i % 7}" for i in ids]})
    c.flush("m")


def _answers(c: Any, q: np.ndarray) -> Any:
    hits = c.search("m", q, limit=5, search_params={"params": {"ef": 128}})
    return [[h["id"] for h in row] for row in hits]


@contextlib.contextmanager
def _one_sealed_segment(path: str, vecs: np.ndarray) -> Iterator[tuple[Any, Any]]:
    """A client of collection "m" holding `vecs` in one persisted segment, and that segment, while the engine is held."""
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c)
            _insert(c, 0, vecs)
            e.wait_background()
            (seg,) = _sealed(e)
            yield c, seg
        finally:
            release_engine(e)


def test_a_persisted_segment_serves_its_vectors_from_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    vecs = np.random.default_rng(1).standard_normal((1500, DIM)).astype(np.float32)
    with _one_sealed_segment(str(tmp_path / "db"), vecs) as (c, seg):
        store = seg.cols["vec"]
        assert isinstance(store, _MappedBuffer) and _reaches_mapping(store.data)
        np.testing.assert_array_equal(seg.snapshot().vectors("vec"), vecs)
        # the keys and sequence numbers too; the text column (not a plain array in the file) stays in memory
        assert isinstance(seg.cols["id"], _MappedBuffer) and _reaches_mapping(seg.cols["id"].data)
        assert isinstance(seg.seq, _MappedBuffer) and _reaches_mapping(seg.seq.data)
        assert not isinstance(seg.cols["tag"], _MappedBuffer)
        np.testing.assert_array_equal(seg.snapshot().column("id").values, np.arange(1500))
        got = c.query("m", filter="id in [0, 1499]", output_fields=["vec"])
        np.testing.assert_array_equal(np.array([r["vec"] for r in sorted(got, key=lambda r: r["id"])]),
                                      vecs[[0, 1499]])
        c.delete("m", ids=[0, 7])  # delete marks stay the segment's own
        assert c.query("m", filter="id in [0, 7, 8]", output_fields=["id"]) == [{"id": 8}]
        assert c.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1498


def test_an_index_build_lets_go_of_the_file_pages_of_the_vectors_it_read(tmp_path, monkeypatch):
    """The build reads a persisted segment's vectors through its mapping; their pages then leave the process."""
    from heron.engine import _maintenance

    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    vecs = np.random.default_rng(7).standard_normal((1500, DIM)).astype(np.float32)
    built: list[int] = []
    real_build = _maintenance.build_index
    monkeypatch.setattr(_maintenance, "build_index",
                        lambda *a, **k: (built.append(len(a[5])), real_build(*a, **k))[1])
    dropped: list[tuple[int, int]] = []
    real_drop = _prefault.drop_mapped
    monkeypatch.setattr(_prefault, "drop_mapped", lambda addr, n: (dropped.append((addr, n)), real_drop(addr, n)))
    with _one_sealed_segment(str(tmp_path / "db"), vecs) as (c, seg):
        assert built == [1500] and seg.persisted
        data = seg.cols["vec"].freeze()
        assert (data.ctypes.data, data.nbytes) in dropped
        assert _answers(c, vecs[:2])[0][0] == 0


def test_a_merge_keeps_rows_keys_vectors_and_answers_and_maps_the_merged_vectors(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2000, DIM)).astype(np.float32), rng.standard_normal((900, DIM)).astype(np.float32)
    q = np.concatenate([a[:4], b[:4]])
    dropped: list[int] = []
    real_drop = _prefault.drop_mapped
    monkeypatch.setattr(_prefault, "drop_mapped", lambda addr, n: (dropped.append(n), real_drop(addr, n)))
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c)
            _insert(c, 0, a)
            e.wait_background()
            (base,) = _sealed(e)
            base_index = base.vindex["vec"][1]
            dropped.clear()
            _insert(c, 2000, b)
            e.wait_background()
            (merged,) = _sealed(e)
            assert merged.id not in (base.id,) and merged.n == 2900 and merged.persisted
            store = merged.cols["vec"]
            assert isinstance(store, _MappedBuffer) and _reaches_mapping(store.data)
            np.testing.assert_array_equal(store.data, np.concatenate([a, b]))
            assert merged.vindex["vec"][1] is base_index and base_index.ntotal == 2900  # grown in place
        finally:
            release_engine(e)
        # pages of mapped columns dropped: both segments' (sequence numbers, keys, vectors: each segment serves
        # them from its file once written) once their rows were copied for the merged file and again once it
        # was written; both files' vectors as the merge wrote them from the mappings; the merged segment's
        # once it was written; the newer segment's vectors as the index took them (one slice) and once more after;
        # the older segment's keys and sequence numbers as the merged segment started from them
        row = 8 + 8 + DIM * 4
        assert sum(dropped) == (2 * (2000 + 900) * row + (2000 + 900) * DIM * 4 + 2900 * row + 2 * 900 * DIM * 4
                                + 2000 * (8 + 8))
        assert c.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"] == 2900
        rows = sorted(c.query("m", filter="id in [0, 1999, 2000, 2899]", output_fields=["vec", "tag"]),
                      key=lambda r: r["id"])
        assert [(r["id"], r["tag"]) for r in rows] == [(0, "t0"), (1999, "t4"), (2000, "t5"), (2899, "t1")]
        np.testing.assert_array_equal(np.array([r["vec"] for r in rows]), np.concatenate([a, b])[[0, 1999, 2000, 2899]])
        before = _answers(c, q)
        assert [row[0] for row in before] == [0, 1, 2, 3, 2000, 2001, 2002, 2003]
    with heron.Client(path) as c:
        assert _answers(c, q) == before


def test_deletes_before_and_after_a_merge_stay_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((1200, DIM)).astype(np.float32), rng.standard_normal((600, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _create(c)
        _insert(c, 0, a)
        c.delete("m", ids=[5, 7])
        _insert(c, 1200, b)
        c.delete("m", ids=[1300])
        assert c.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1797
        assert c.query("m", filter="id in [5, 7, 1300]") == []
    with heron.Client(path) as c:
        assert c.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1797
        assert c.query("m", filter="id in [5, 7, 1300]") == []


def test_spliced_pieces_are_written_in_place_of_their_stand_in(tmp_path):
    rng = np.random.default_rng(4)
    parts = [rng.standard_normal((300, 8)).astype(np.float32), rng.standard_normal((200, 8)).astype(np.float32)]
    stand_in = np.zeros((500, 8), np.float32)  # never read: the file holds the pieces
    flat = pa.array(stand_in.reshape(-1))
    rb = pa.record_batch([pa.FixedSizeListArray.from_arrays(flat, 8), pa.array(np.arange(500))], names=["v", "i"])
    buf = rb.column("v").values.buffers()[1]
    assert buf.address == stand_in.ctypes.data
    path = str(tmp_path / "s.arrow")
    checksum = write_segment_file(path, rb, {(buf.address, buf.size): [Piece(p) for p in parts]})
    table = read_segment_file(path, checksum, 500)  # every byte checked against the checksum
    got = np.asarray(table.column("v").combine_chunks().values).reshape(500, 8)
    np.testing.assert_array_equal(got, np.concatenate(parts))
    assert not stand_in.any()


@pytest.mark.parametrize("pieces", [[np.zeros(10, np.float32)], []], ids=["short", "unused"])
def test_a_splice_that_does_not_fit_leaves_no_file(tmp_path, pieces):
    stand_in = np.zeros(100, np.float32)
    rb = pa.record_batch([pa.array(stand_in)], names=["v"])
    buf = rb.column("v").buffers()[1]
    key = (buf.address, buf.size) if pieces else (buf.address + 1, buf.size)
    path = tmp_path / "s.arrow"
    with pytest.raises(ValueError, match="splice"):
        write_segment_file(str(path), rb, {key: [Piece(p) for p in pieces] or [Piece(stand_in)]})
    assert not path.exists() and not Path(str(path) + ".tmp").exists()


def test_the_stand_in_is_the_index_read_from_its_file_written_when_missing_or_stale(tmp_path, monkeypatch):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((800, DIM)).astype(np.float32)
    idx = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", {"M": 8, "efConstruction": 40}, x)
    assert grows_in_place(idx)
    path = str(tmp_path / "s1.vec.index")
    stale = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", {"M": 8, "efConstruction": 40}, x[:500])
    stale.save(path)
    saved: list[str] = []
    real_save = type(idx).save
    monkeypatch.setattr(type(idx), "save", lambda self, p: (saved.append(p), real_save(self, p))[1])
    dropped: list[tuple[int, int]] = []
    monkeypatch.setattr(_mapped, "drop_mapped", lambda addr, n: dropped.append((addr, n)))
    served = file_stand_in(idx, path)  # the file holds another index: written again
    assert saved == [path] and served is not idx and served.ntotal == 800 and not grows_in_place(served)
    assert served._mapped is not None
    # the pages faiss touched reading it are left to the page cache: the whole faiss member, once read
    blob = served._mapped.view
    assert dropped[-1] == (blob.ctypes.data, blob.size)
    q = x[:5]
    np.testing.assert_array_equal(served.search(q, 3, rows=800)[1], idx.search(q, 3, rows=800)[1])
    again = file_stand_in(idx, path)  # the file already holds it: read, not written
    assert saved == [path] and again.ntotal == 800
    assert not grows_in_place(again)


def test_paced_file_drops_only_mapped_pieces(tmp_path, monkeypatch):
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(_prefault, "drop_mapped", lambda addr, n: calls.append((addr, n)))
    own = np.arange(4096, dtype=np.uint8)
    with _files.PacedFile(str(tmp_path / "f")) as fh:
        fh._write(memoryview(own), mapped=False)
        assert calls == []
        fh._write(memoryview(own), mapped=True)
    assert calls == [(own.ctypes.data, 4096)]


def test_a_task_queued_on_a_segment_holds_it_weakly(tmp_path):
    class Seg:
        pass

    e = open_engine(str(tmp_path / "db"))
    try:
        gate, ran = threading.Event(), []
        e.submit(gate.wait)
        kept, dropped = Seg(), Seg()
        for seg in (kept, dropped):
            e.submit_on(lambda coll, tag, s: ran.append((coll, tag, s)), "coll", "tag", seg)
        gone = weakref.ref(dropped)
        del dropped, seg
        assert gone() is None  # the queue does not keep it
        gate.set()
        e.wait_background()
        assert ran == [("coll", "tag", kept)]
    finally:
        release_engine(e)


def test_segments_merged_away_during_a_bulk_load_let_go_of_their_index_files(tmp_path, monkeypatch):
    """While persists of a bulk load wait in the queue, each merge's older index (a mapped file) is freed at once."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    vecs = np.random.default_rng(3).standard_normal((24_000, DIM)).astype(np.float32)

    def deleted_index_maps() -> int:
        with open("/proc/self/maps") as f:
            return len({line.split()[-2] for line in f if line.rstrip().endswith("(deleted)") and ".index" in line})

    most, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            most[0] = max(most[0], deleted_index_maps())
            time.sleep(0.01)

    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        for lo in range(0, len(vecs), 2000):
            c.insert("m", {"id": np.arange(lo, lo + 2000), "vec": vecs[lo : lo + 2000],
                           "tag": ["t"] * 2000})
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            c.flush("m")  # every segment persisted and merged into one
        finally:
            stop.set()
            watcher.join()
        assert c.get_collection_stats("m")["row_count"] == len(vecs)
        assert _answers(c, vecs[:3])[0][0] == 0
    assert most[0] <= 2, f"{most[0]} deleted index files were mapped at once"


def test_the_rows_a_merge_joins_in_memory_go_when_it_ends_without_a_garbage_collection(tmp_path, monkeypatch):
    """A merge's scratch segment (its scalar columns joined in memory, then written) is freed by reference counting.

    Its cached view refers back to it; left to the garbage collector, the
    scratch segments of a 1M-row load held about 270 MB at once.
    """
    import gc

    from heron.engine import _merge_write
    from heron.engine._segment import Segment

    scratch: list[weakref.ref[Any]] = []

    class Recorded(Segment):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            scratch.append(weakref.ref(self))

    monkeypatch.setattr(_merge_write, "Segment", Recorded)
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(6)
    path = str(tmp_path / "db")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        with heron.Client(path) as c:
            e = open_engine(path)
            try:
                _create(c)
                _insert(c, 0, rng.standard_normal((1200, DIM)).astype(np.float32))
                _insert(c, 1200, rng.standard_normal((800, DIM)).astype(np.float32))
                e.wait_background()
                (merged,) = _sealed(e)
                assert merged.n == 2000 and len(scratch) == 1
                assert scratch[0]() is None, "the merge's scratch segment outlived it"
            finally:
                release_engine(e)
    finally:
        if was_enabled:
            gc.enable()


def test_the_heap_is_trimmed_after_a_long_background_task_once_it_let_go_of_its_arguments(monkeypatch):
    from heron._pool import Pool
    from heron.engine import _engine

    class Seg:
        pass

    seen: list[tuple[float, bool]] = []
    refs: list[weakref.ref[Any]] = []

    def after(seconds: float) -> None:
        seen.append((seconds, refs[-1]() is None))

    def task(gate: threading.Event, pause: float, seg: Seg) -> None:
        gate.wait()
        time.sleep(pause)

    pool = Pool(after_task=after)
    try:
        for pause in (0.0, 0.2):
            seg, gate = Seg(), threading.Event()
            refs.append(weakref.ref(seg))
            done = pool.submit(task, gate, pause, seg)
            del seg  # the pool's queue holds the only reference now
            gate.set()
            done.result()
            deadline = time.monotonic() + 5
            while len(seen) < len(refs) and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        pool.shutdown()
    assert [freed for _, freed in seen] == [True, True]  # called once the task's argument was let go
    assert seen[0][0] < 0.2 <= seen[1][0]

    trims: list[int] = []
    monkeypatch.setattr(_prefault, "trim_heap", lambda: trims.append(1))
    _engine._trim_after(_engine.TRIM_AFTER_SECONDS / 10)
    assert trims == []
    _engine._trim_after(_engine.TRIM_AFTER_SECONDS)
    assert trims == [1]


def test_a_load_faster_than_merging_persists_every_sealed_segment_before_the_merges(tmp_path, monkeypatch):
    """Merges queue behind the persists of segments sealed meanwhile: no segment waits in the heap for them."""
    from heron.engine._maintenance import Maintenance

    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_SEAL_ROWS", "1000")
    steps: list[tuple[str, int]] = []
    real_persist, real_merge = Maintenance._persist_once, Maintenance._merge_or_index
    monkeypatch.setattr(Maintenance, "_persist_once",
                        lambda self, coll, p, seg: (steps.append(("persist", seg.id)), real_persist(self, coll, p, seg)))
    monkeypatch.setattr(Maintenance, "_merge_or_index",
                        lambda self, coll, p, seg: (steps.append(("merge", seg.id)), real_merge(self, coll, p, seg)))
    vecs = np.random.default_rng(4).standard_normal((4000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        e = open_engine(path)
        try:
            _create(c)
            gate = threading.Event()
            e.submit(gate.wait)  # the background thread is busy while four segments are sealed
            for lo in range(0, 4000, 1000):
                c.insert("m", {"id": np.arange(lo, lo + 1000), "vec": vecs[lo : lo + 1000], "tag": ["t"] * 1000})
            gate.set()
            c.flush("m")
            persisted = [s for kind, s in steps if kind == "persist"]
            assert len(persisted) == 4
            assert steps == [("persist", s) for s in persisted] + [("merge", s) for s in persisted]
            (merged,) = _sealed(e)
            assert merged.n == 4000 and merged.persisted and "vec" in merged.vindex
        finally:
            release_engine(e)
        assert _answers(c, vecs[:2])[0][0] == 0


def _resident_kb(address: int) -> int:
    """The resident kilobytes of the mapping that holds `address` (``/proc/self/smaps``)."""
    rss = mapping_field(address, "Rss")
    assert rss is not None, "no mapping holds the address"
    return int(rss[0])


@contextlib.contextmanager
def _mapped_file(path: Path, nbytes: int) -> Iterator[np.ndarray]:
    """A read-only mapping of a new file of `nbytes` bytes (0, 1, ..., 255, 0, ...), as a uint8 array."""
    np.arange(nbytes, dtype=np.uint8).tofile(path)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    yield np.frombuffer(mm, dtype=np.uint8)  # unmapped once the test lets go of its views


def test_a_large_mapped_index_is_read_with_its_pages_let_go_of_behind_the_read(tmp_path):
    """faiss touches a mapped HNSW index's links as it reads them: a helper drops those pages while it reads."""
    with _mapped_file(tmp_path / "index", _mapped.TRAIL_BYTES + (1 << 20)) as view:
        address = view.ctypes.data
        seen: list[int] = []

        def read() -> str:  # a read that touches every page, then stays in the call
            assert int(view.sum(dtype=np.uint64)) > 0
            end = time.monotonic() + 10
            while _resident_kb(address) > 2048 and time.monotonic() < end:
                time.sleep(0.005)
            seen.append(_resident_kb(address))
            return "index"

        assert _mapped._trailed(view, read) == "index"
        assert seen[0] <= 2048  # let go of while the read was still under way
        small = view[: _mapped.TRAIL_BYTES - 4096]  # below the threshold: read as it is, the pages stay
        _prefault.drop_mapped(address, view.size)
        assert _mapped._trailed(small, lambda: int(small.sum(dtype=np.uint64))) > 0
        assert _resident_kb(address) >= (_mapped.TRAIL_BYTES >> 10) // 2


def test_sampled_rows_of_a_mapped_index_leave_no_pages_behind(tmp_path):
    with _mapped_file(tmp_path / "index", 64 << 20) as view:
        rows = view.reshape(-1, 512)
        at = np.unique(np.linspace(0, rows.shape[0] - 1, 272).astype(np.int64))
        _prefault.drop_mapped(view.ctypes.data, view.size)
        got = _grow._sampled(rows, at)
        np.testing.assert_array_equal(got, np.stack([np.arange(512 * r, 512 * (r + 1)).astype(np.uint8) for r in at]))
        assert _resident_kb(view.ctypes.data) <= 4096
        plain = rows[at]  # the control: reading the same rows at once maps far more
        assert plain.shape == got.shape and _resident_kb(view.ctypes.data) > 4096


def test_a_long_build_trims_the_heap_between_its_slices_at_most_every_trim_every_seconds(monkeypatch):
    """What faiss's growing arrays free stays resident until a trim: a build trims as it goes, not after each slice."""
    from heron.engine.index import _dense

    trims: list[int] = []
    monkeypatch.setattr(_prefault, "_trim", lambda _pad: trims.append(1))
    monkeypatch.setattr(_dense, "BUILD_SLICE", 500)
    x = np.random.default_rng(6).standard_normal((2000, 8)).astype(np.float32)
    monkeypatch.setattr(_prefault, "TRIM_EVERY", 0.0)
    _dense._add_in_slices(faiss.IndexHNSWFlat(8, 8), x, False, "a test build")
    assert len(trims) == 4  # one a slice
    trims.clear()
    monkeypatch.setattr(_prefault, "TRIM_EVERY", 3600.0)
    monkeypatch.setattr(_prefault, "_last_trim", time.monotonic())
    _dense._add_in_slices(faiss.IndexHNSWFlat(8, 8), x, False, "a test build")
    assert trims == []


def test_a_segment_let_go_of_keeps_none_of_its_mapped_columns_resident_and_answers_the_same(tmp_path, monkeypatch):
    """What a merge does to its two segments and the merged one once the merged file is written."""
    from heron.engine._segment_map import let_go_of_segment

    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    vecs = np.random.default_rng(8).standard_normal((40_000, DIM)).astype(np.float32)
    with _one_sealed_segment(str(tmp_path / "db"), vecs) as (c, seg):
        before = _answers(c, vecs[:3])
        address = seg.cols["vec"].freeze().ctypes.data
        mapped = [s for s in (seg.seq, *seg.cols.values()) if isinstance(s, _MappedBuffer)]
        assert seg.cols["vec"] in mapped
        assert all(int(s.data.view(np.uint8).sum()) >= 0 for s in mapped)  # every page read
        touched, mapped_kb = _resident_kb(address), sum(s.data.nbytes for s in mapped) // 1024
        assert touched >= mapped_kb
        let_go_of_segment(seg)
        assert _resident_kb(address) <= touched - mapped_kb + 16  # what stays: the file's other columns, its ends
        assert _answers(c, vecs[:3]) == before
        np.testing.assert_array_equal(seg.cols["vec"].data, vecs)  # read again from the page cache


def test_a_merge_starts_from_a_column_in_its_file_a_piece_at_a_time_leaving_no_pages_behind(tmp_path, monkeypatch):
    """The merged segment's copy of the larger segment's key and sequence columns lets go of their pages as it goes."""
    from heron.engine import _segment_map
    from heron.engine._segment import _Buffer

    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setattr(_segment_map, "COPY_STEP_BYTES", 64 << 10)
    vecs = np.random.default_rng(9).standard_normal((40_000, DIM)).astype(np.float32)
    real_drop = _prefault.drop_mapped
    dropped: list[int] = []

    def drop(address: int, n: int) -> None:
        dropped.append(n)
        real_drop(address, n)

    with _one_sealed_segment(str(tmp_path / "db"), vecs) as (_c, seg):
        for store in (seg.seq, seg.cols["id"]):
            assert isinstance(store, _MappedBuffer)
            rows = store.freeze()
            real_drop(rows.ctypes.data, rows.nbytes)
            before = _resident_kb(rows.ctypes.data)
            dropped.clear()
            monkeypatch.setattr(_prefault, "drop_mapped", drop)
            copy = _Buffer(rows.dtype)
            copy.share(store, seg.n, seg.n + 1000)
            monkeypatch.setattr(_prefault, "drop_mapped", real_drop)
            assert len(dropped) == -(-rows.nbytes // (64 << 10)) and max(dropped) <= 64 << 10
            assert _resident_kb(rows.ctypes.data) <= before + 32  # a page at each piece's ends at most
            np.testing.assert_array_equal(copy.data[: seg.n], rows)  # the control: reading the column maps its pages
            assert _resident_kb(rows.ctypes.data) >= before + rows.nbytes // 1024 - 16
