"""Segments, sealing, compaction and snapshots, observed through the public client."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import heron


@pytest.fixture
def small_segments(monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")


def _count(c, name="x"):
    return c.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


def _rows(start, n, dim=4):
    return [{"id": i, "vector": [float(i % 7), 1.0, float(i % 3), 0.5][:dim]} for i in range(start, start + n)]


def test_sealed_segments_are_files_and_reload(tmp_path, small_segments):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        for start in range(0, 500, 50):
            c.insert("x", _rows(start, 50))
        c.flush("x")
        files = os.listdir(os.path.join(path, "segments", "c1"))
        assert sum(f.endswith(".arrow") for f in files) >= 4
        assert any(f.endswith(".index") for f in files)
        before = c.search("x", data=[[1.0, 1.0, 1.0, 0.5]], limit=5)
    with heron.Client(path) as c:
        assert _count(c) == 500
        after = c.search("x", data=[[1.0, 1.0, 1.0, 0.5]], limit=5)
        assert [h["distance"] for h in after[0]] == pytest.approx([h["distance"] for h in before[0]])


def test_damaged_index_file_is_rebuilt(tmp_path, small_segments):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        c.insert("x", _rows(0, 300))
        c.flush("x")
    seg_dir = os.path.join(path, "segments", "c1")
    for f in os.listdir(seg_dir):
        if f.endswith(".index"):
            with open(os.path.join(seg_dir, f), "r+b") as fh:
                fh.truncate(10)
    with heron.Client(path) as c:
        hits = c.search("x", data=[[0.0, 1.0, 0.0, 0.5]], limit=3)
        assert len(hits[0]) == 3
        c.flush("x")  # waits for background work, including the rebuild
        sizes = [os.path.getsize(os.path.join(seg_dir, f)) for f in os.listdir(seg_dir) if f.endswith(".index")]
        assert sizes and min(sizes) > 10


def test_compaction_drops_deleted_rows_and_keeps_the_rest(tmp_path, small_segments):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        for start in range(0, 400, 100):
            c.insert("x", _rows(start, 100))
        c.flush("x")
        c.delete("x", ids=list(range(0, 150)))
        c.compact("x")
        assert _count(c) == 250
        assert c.get("x", ids=[149, 150]) and [r["id"] for r in c.get("x", ids=[149, 150])] == [150]
        c.upsert("x", _rows(150, 1))
        assert _count(c) == 250
    with heron.Client(path) as c:
        assert _count(c) == 250
        assert sorted(r["id"] for r in c.query("x", filter="", limit=1000))[:2] == [150, 151]


def test_upsert_across_sealed_segments_survives_restart(tmp_path, small_segments):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        c.insert("x", _rows(0, 150))
        c.flush("x")
        c.upsert("x", [{"id": 3, "vector": [9.0, 9.0, 9.0, 9.0], "tag": "new"}])
        c.flush("x")
    with heron.Client(path) as c:
        got = c.query("x", ids=[3], output_fields=["*"])
        assert len(got) == 1 and got[0]["tag"] == "new" and got[0]["vector"] == [9.0] * 4
        assert _count(c) == 150


def test_readers_never_see_a_torn_batch(tmp_path):
    """Concurrent counts only ever see whole batches while a writer inserts batches of 1,000."""
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=4)
        stop = threading.Event()
        seen: list[list[int]] = [[], []]

        def reader(mine: list[int]):
            while not stop.is_set():
                mine.append(_count(c))

        threads = [threading.Thread(target=reader, args=(seen[k],)) for k in range(2)]
        for t in threads:
            t.start()
        vecs = np.ones((1000, 4), dtype=np.float32)
        for b in range(20):
            c.insert("x", {"id": np.arange(b * 1000, (b + 1) * 1000), "vector": vecs})
        stop.set()
        for t in threads:
            t.join()
        for mine in seen:
            assert mine and all(n % 1000 == 0 for n in mine)
            assert mine == sorted(mine)  # each reader's snapshots only move forward


def test_concurrent_writers_lose_nothing(tmp_path):
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=4)

        def writer(k):
            for b in range(10):
                base = k * 100_000 + b * 100
                c.insert("x", _rows(base, 100))

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert _count(c) == 4000
