"""Progress of long work (index builds, flush, close) reaches the engine's callback, and closing stops an
index build, which the next open finishes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

import heron
from heron.engine._progress import Progress

ROWS = 10_000  # more than one build slice (`BUILD_SLICE`), so a build can stop between two


def _schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema(auto_id=False)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=8)
    return s


def _fill(c: heron.Client) -> None:
    c.create_collection("books", schema=_schema())
    x = np.random.default_rng(1).random((ROWS, 8), dtype=np.float32)
    c.insert("books", [{"id": i, "vector": x[i]} for i in range(ROWS)])


def _hnsw(c: heron.Client) -> None:
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    c.create_index("books", idx)


def test_index_builds_flushes_and_close_report_their_steps(tmp_path: Path) -> None:
    steps: list[Progress] = []
    c = heron.Client(str(tmp_path / "db"))
    engine = c._transport._engine
    engine.progress.callback = steps.append
    _fill(c)
    c.flush("books")
    _hnsw(c)
    engine.wait_background()
    c.close()
    flush = [s for s in steps if s.kind == "flush"]
    assert [(s.done, s.total) for s in flush] == [(0, ROWS), (ROWS, ROWS)] and flush[0].collection == "books"
    index = [s for s in steps if s.kind == "index"]
    assert len(index) >= 2 and index[-1].finished and index[-1].total == ROWS
    assert [s.done for s in index] == sorted(s.done for s in index) and "field vector" in index[0].detail
    close = [s for s in steps if s.kind == "close"]
    assert len(close) == 2 and close[-1].finished and not close[0].finished


def test_a_failing_callback_does_not_stop_the_work(tmp_path: Path) -> None:
    def boom(step: Progress) -> None:
        raise RuntimeError("callback failed")

    with heron.Client(str(tmp_path / "db")) as c:
        c._transport._engine.progress.callback = boom
        _fill(c)
        c.flush("books")
        assert c.get_collection_stats("books")["row_count"] == ROWS


def test_close_stops_an_index_build_and_the_next_open_builds_it(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        _fill(c)
        c.flush("books")
    c = heron.Client(str(path))
    engine = c._transport._engine
    started = threading.Event()

    def hold(step: Progress) -> None:  # keep the build between two slices until close has begun
        if step.kind == "index" and not step.finished:
            started.set()
            end = time.monotonic() + 60
            while not engine.closing and time.monotonic() < end:
                time.sleep(0.005)

    engine.progress.callback = hold
    _hnsw(c)
    assert started.wait(60), "the index build did not start"
    c.close()
    assert not list(path.glob("segments/*/*.index")), "close waited for the build to finish"
    with heron.Client(str(path)) as c:
        c._transport._engine.wait_background()
        assert len(list(path.glob("segments/*/*.index"))) == 1
        d = c.describe_index("books", "vector")
        assert d is not None and d["indexed_rows"] == d["total_rows"] == ROWS
        hits = c.search("books", [[0.5] * 8], limit=3, search_params={"params": {"ef": 64}})
        assert len(hits[0]) == 3
