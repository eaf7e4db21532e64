"""Dropping a collection while its background work runs: no false disk alarm, no files left behind."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

import heron
from heron.engine import _maintenance


def _rows(start: int, n: int) -> list[dict]:
    return [{"id": i, "vector": [float(i % 5), 1.0]} for i in range(start, start + n)]


def test_dropping_a_collection_while_its_segment_is_written_logs_no_disk_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HERON_SEAL_ROWS", "200")
    real = _maintenance.write_segment_file
    started: list[float] = []

    def slow_disk(path, rb, *splices):
        started.append(time.monotonic())
        time.sleep(0.5)  # the drop comes while the file is being written
        return real(path, rb, *splices)

    monkeypatch.setattr(_maintenance, "write_segment_file", slow_disk)
    with caplog.at_level(logging.DEBUG, logger="heron"), heron.Client(str(tmp_path / "db")) as c:
        for _ in range(3):
            before = len(started)
            c.create_collection("c", dimension=2)
            c.insert("c", _rows(0, 450))  # big enough to seal: the segment file is written in the background
            deadline = time.monotonic() + 10
            while len(started) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(started) > before, "no segment write began"
            c.drop_collection("c")
            assert not c.has_collection("c")
        c.create_collection("d", dimension=2)
        c.insert("d", _rows(0, 450))
        c.flush("d")  # later writes still go to disk
        assert c.query("d", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 450
        assert c.search("d", [np.ones(2).tolist()], limit=3)[0]
    alarms = [r.getMessage() for r in caplog.records if "I/O error" in r.getMessage() or "Check the disk" in r.getMessage()]
    assert alarms == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    left = sorted(os.listdir(tmp_path / "db" / "segments"))
    assert len(left) == 1, left  # the dropped collections' directories are gone
