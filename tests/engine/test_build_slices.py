"""Index builds and a merge's index growth go a slice at a time, and stop between two when no longer wanted.

Between slices they ask whether callers are busy (the next slice then leaves
them a core) and whether to stop: closing the engine stops a merge's growth
or its file there rather than wait for it (at 1M rows, minutes), both
segments stay, and the next open serves all their rows and merges them.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import heron
from heron._types import DataType
from heron.engine import _maintenance
from heron.engine.index import _dense, _faiss
from heron.engine.index._base import BuildCancelled
from heron.engine.index._vector_index import build_index
from heron.engine.storage._files import write_segment_file

DIM = 8
HNSW = {"M": 8, "efConstruction": 32}


def _one_segment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 ) -> tuple[heron.Client, Path, np.ndarray, np.ndarray]:
    """A client on a database whose collection "m" holds rows `a` in one indexed segment; `b` to insert next."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((2000, DIM), dtype=np.float32), rng.standard_normal((1000, DIM), dtype=np.float32)
    path = tmp_path / "db"
    c = heron.Client(str(path))
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2", params=HNSW)
    c.create_collection("m", dimension=DIM, vector_field_name="vec", index_params=idx)
    c.insert("m", {"id": np.arange(2000), "vec": a})
    c.flush("m")
    c._transport._engine.wait_background()
    return c, path, a, b


def _second_segment(c: heron.Client, b: np.ndarray) -> None:
    """Insert `b` and seal it as a flush does, without waiting: the background thread writes the segment,
    then merges it into the first (its file, then the first one's index grown by its rows)."""
    c.insert("m", {"id": np.arange(2000, 2000 + len(b)), "vec": b})
    engine = c._transport._engine
    coll = engine.collections[("default", "m")]
    with coll.write_lock:
        for p in coll.partitions.values():
            engine.maintenance.seal(coll, p)


def _reopened(path: Path, a: np.ndarray, b: np.ndarray) -> None:
    """Open again: the two segments are merged in the background, indexed, and serve every row."""
    with heron.Client(str(path)) as c:
        c._transport._engine.wait_background()
        assert _sealed(c) == [(len(a) + len(b), True)]
        assert c.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"] == len(a) + len(b)
        hits = c.search("m", np.concatenate([a[:3], b[:3]]), limit=1, search_params={"params": {"ef": 64}})
        assert [h[0]["id"] for h in hits] == [0, 1, 2, 2000, 2001, 2002]


def _sealed(c: heron.Client) -> list[tuple[int, bool]]:
    """(rows, has its vector index) of each sealed segment of collection "m", in order."""
    coll = c._transport._engine.collections[("default", "m")]
    return [(s.n, "vec" in s.vindex) for p in coll.partitions.values() for s in p.sealed]


def _slices(rows: int) -> int:
    return -(-rows // _dense.BUILD_SLICE)


@pytest.mark.parametrize(("index_type", "params"), [("HNSW", HNSW), ("IVF_FLAT", {"nlist": 4})])
def test_builds_and_growths_ask_between_slices_whether_callers_are_busy(
        monkeypatch: pytest.MonkeyPatch, index_type: str, params: dict[str, Any]) -> None:
    monkeypatch.setattr(_dense, "BUILD_SLICE", 100)
    asked: list[bool] = []
    real = _faiss.build_threads
    monkeypatch.setattr(_dense, "build_threads", lambda full, busy: (asked.append(busy), real(full, busy))[1])
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((450, DIM), dtype=np.float32), rng.standard_normal((230, DIM), dtype=np.float32)
    before = _faiss.faiss.omp_get_max_threads()
    idx = build_index(DataType.FLOAT_VECTOR, DIM, index_type, "L2", params, a, busy=lambda: True)
    assert idx.ntotal == 450 and asked == [True] * _slices(450)
    asked.clear()
    grown = idx.extended(b, busy=lambda: True)
    assert grown is idx and idx.ntotal == 680 and asked == [True] * _slices(230)
    assert _faiss.faiss.omp_get_max_threads() == before  # restored after the last slice
    hits = idx.search(b[:5], 1, params={"ef": 64, "nprobe": 4}, rows=680)[1]
    assert hits[:, 0].tolist() == list(range(450, 455))  # the grown rows are found


def test_a_growth_stops_between_slices_once_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dense, "BUILD_SLICE", 100)
    rng = np.random.default_rng(6)
    idx = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", HNSW, rng.standard_normal((300, DIM), dtype=np.float32))
    asked = iter([False, True])  # the first slice goes in, then the caller no longer wants the index
    with pytest.raises(BuildCancelled, match="growing HNSW by 400 rows was cancelled"):
        idx.extended(rng.standard_normal((400, DIM), dtype=np.float32), cancelled=lambda: next(asked))
    assert idx.ntotal == -1  # half grown in place: never searched again


def test_close_stops_a_merge_growing_an_index_and_both_segments_stay(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dense, "BUILD_SLICE", 250)
    c, path, a, b = _one_segment(tmp_path, monkeypatch)
    engine = c._transport._engine
    growing = threading.Event()
    steps: list[bool] = []
    real = _faiss.build_threads

    def hold(full: int, busy: bool) -> int:  # asked before each slice: the second waits until close has begun
        steps.append(busy)
        if len(steps) == 2:
            growing.set()
            end = time.monotonic() + 60
            while not engine.closing and time.monotonic() < end:
                time.sleep(0.005)
        return real(full, busy)

    monkeypatch.setattr(_dense, "build_threads", hold)
    _second_segment(c, b)
    assert growing.wait(60), "the merge did not start growing the index"
    c.close()
    assert len(steps) == 2, "close waited for the growth to finish"  # 4 slices: it stopped before the third
    monkeypatch.undo()
    _reopened(path, a, b)


def test_write_segment_file_gives_the_file_up_when_its_check_raises(tmp_path: Path) -> None:
    table = pa.RecordBatch.from_pydict({"x": np.arange(400_000, dtype=np.int64)})  # 3 MiB: a few steps
    calls: list[int] = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise BuildCancelled("no longer wanted")

    path = tmp_path / "s1.arrow"
    with pytest.raises(BuildCancelled, match="no longer wanted"):
        write_segment_file(str(path), table, check=check)
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []  # given up after its second step
    write_segment_file(str(path), table, check=lambda: None)
    assert pa.ipc.open_file(str(path)).read_all().num_rows == 400_000


def test_close_stops_a_merge_writing_its_file_and_leaves_no_trace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c, path, a, b = _one_segment(tmp_path, monkeypatch)
    engine = c._transport._engine
    files = sorted(p.name for p in path.rglob("*") if p.is_file())
    writing = threading.Event()
    checks: list[int] = []
    real = _maintenance.write_merged

    def write_merged(*args: Any) -> Any:
        *rest, check = args

        def held() -> None:  # the file's first step waits until close has begun, then asks as the merge asks
            checks.append(1)
            writing.set()
            end = time.monotonic() + 60
            while not engine.closing and time.monotonic() < end:
                time.sleep(0.005)
            try:
                check()
            except BuildCancelled:
                checks.append(2)
                raise

        return real(*rest, held)

    grown: list[Any] = []
    monkeypatch.setattr(_maintenance, "write_merged", write_merged)
    monkeypatch.setattr(_maintenance.Maintenance, "_extend_indexes", lambda *a: grown.append(a))
    _second_segment(c, b)
    assert writing.wait(60), "the merge did not start writing its file"
    c.close()
    assert checks == [1, 2] and grown == []  # the file was given up: the merge never reached its index
    after = sorted(p.name for p in path.rglob("*") if p.is_file())
    assert not [n for n in after if n.endswith(".tmp")], after
    assert {n for n in files if n.endswith(".arrow")} <= set(after), after  # the first segment's file stays
    assert len([n for n in after if n not in files and n.endswith(".arrow")]) == 1, after  # and the second's, alone
    monkeypatch.undo()
    _reopened(path, a, b)


def test_segments_a_kill_left_apart_are_merged_after_the_next_open(tmp_path: Path) -> None:
    """The writer dies before the merge of its second segment is recorded; the next open merges the two."""
    from tests.engine.test_auto_seal import _check_rows, _run_writer

    path = tmp_path / "db"
    died, acked = _run_writer(path, {"HERON_FAULT": "merge.before_install@1"}, 1000, 300, None)
    assert (died, acked) == (signal.SIGKILL, 1300)
    with heron.Client(str(path)) as c:
        c._transport._engine.wait_background()
        coll = c._transport._engine.collections[("default", "c")]
        assert [(s.n, "vec" in s.vindex) for p in coll.partitions.values() for s in p.sealed] == [(1300, True)]
    _check_rows(path, acked)
