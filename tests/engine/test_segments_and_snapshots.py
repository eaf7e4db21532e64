"""Segments, sealing, compaction and snapshots, observed through the public client."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import heron


@pytest.fixture
def small_segments(monkeypatch):
    """Many small sealed segments: seal every 100 rows and never merge them."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")


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
            while True:  # at least one count, however late this thread gets to run
                mine.append(_count(c))
                if stop.is_set():
                    return

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


# -- merging sealed segments ------------------------------------------------------------------


def _segments(c, name="x"):
    """(rows, deleted) of each sealed segment of the default partition, in order."""
    coll = c._transport._engine.collection("default", name)
    return [(s.n, s.deleted) for s in coll.partitions["_default"].sealed]


def _clustered(n, dim, seed):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((20, dim)).astype(np.float32) * 4
    return (centers[rng.integers(0, 20, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def _exact_top(data, q, k):
    """Brute-force COSINE top-k ids (ids are row numbers)."""
    x = data / np.linalg.norm(data, axis=1, keepdims=True)
    qq = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(qq @ x.T), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT", "FLAT"])
def test_sealed_segments_merge_into_one_indexed_segment(tmp_path, monkeypatch, index_type):
    monkeypatch.setenv("HERON_SEAL_ROWS", "500")
    dim = 16
    data = _clustered(2000, dim, 3)
    queries = _clustered(50, dim, 4)
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=dim)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type=index_type, metric_type="COSINE",
                      params={"M": 16, "efConstruction": 100} if index_type == "HNSW" else {"nlist": 16})
        c.create_collection("x", schema=schema, index_params=idx)
        for start in range(0, 2000, 250):
            c.insert("x", {"id": np.arange(start, start + 250), "vector": data[start:start + 250]})
        c.flush("x")
        assert _segments(c) == [(2000, 0)]
        seg_dir = os.path.join(path, "segments", "c1")
        assert sum(f.endswith(".arrow") for f in os.listdir(seg_dir)) == 1
        assert sum(f.endswith(".index") for f in os.listdir(seg_dir)) == 1
        params = {"params": {"ef": 64, "nprobe": 16}}
        res = c.search("x", data=queries, limit=10, search_params=params)
        truth = _exact_top(data, queries, 10)
        recall = np.mean([len({h["id"] for h in r} & set(t.tolist())) / 10 for r, t in zip(res, truth)])
        assert recall >= 0.95
        # distances are those of brute force for the rows returned
        x = data / np.linalg.norm(data, axis=1, keepdims=True)
        q0 = queries[0] / np.linalg.norm(queries[0])
        assert [h["distance"] for h in res[0]] == pytest.approx([float(x[h["id"]] @ q0) for h in res[0]], abs=1e-5)
    with heron.Client(path) as c:
        assert _segments(c) == [(2000, 0)]
        again = c.search("x", data=queries, limit=10, search_params=params)
        assert [[h["id"] for h in r] for r in again] == [[h["id"] for h in r] for r in res]
        assert c.get("x", ids=[0, 777, 1999], output_fields=["id"]) == [{"id": 0}, {"id": 777}, {"id": 1999}]


def test_merging_stops_at_the_row_limit(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    monkeypatch.setenv("HERON_MERGE_ROWS", "250")
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=4)
        for start in range(0, 700, 50):
            c.insert("x", _rows(start, 50))
        c.flush("x")
        sizes = [n for n, _ in _segments(c)]
        assert sum(sizes) == 700
        assert max(sizes) <= 250 and len(sizes) >= 3
        assert _count(c) == 700


def test_deletes_survive_merging_and_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        for start in range(0, 400, 50):
            c.insert("x", _rows(start, 50))
            c.delete("x", ids=[start + 1, start + 2])  # some deletes land while merges run
        c.upsert("x", [{"id": 5, "vector": [9.0, 9.0, 9.0, 9.0]}])
        c.flush("x")
        assert _segments(c) == [(401, 17)]  # 400 rows and the upsert, 16 deletes and the replaced row
        expect = 400 - 16
        assert _count(c) == expect
        assert c.get("x", ids=[1, 2, 51, 52]) == []
        assert c.get("x", ids=[5], output_fields=["vector"])[0]["vector"] == [9.0, 9.0, 9.0, 9.0]
    with heron.Client(path) as c:
        assert _count(c) == expect
        assert c.get("x", ids=[1, 2, 351, 352]) == []
        assert c.get("x", ids=[5], output_fields=["vector"])[0]["vector"] == [9.0, 9.0, 9.0, 9.0]
        assert len(c.query("x", filter="id in [3, 4, 5, 6]")) == 4


def test_searches_stay_correct_while_segments_merge(tmp_path, monkeypatch):
    """Searchers run while sealed segments keep merging (indexes growing in place)."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "300")
    dim = 8
    data = _clustered(3000, dim, 5)
    errors: list[BaseException] = []
    stop = threading.Event()
    with heron.Client(str(tmp_path / "d")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=dim)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 40})
        c.create_collection("x", schema=schema, index_params=idx)
        c.insert("x", {"id": np.arange(300), "vector": data[:300]})

        def searcher(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                while not stop.is_set():
                    q = data[rng.integers(0, 300)]
                    hits = c.search("x", data=[q], limit=5, search_params={"params": {"ef": 64}})[0]
                    assert len(hits) == 5
                    ids = [h["id"] for h in hits]
                    assert len(set(ids)) == 5 and all(0 <= i < 3000 for i in ids)
                    # the distance reported is the row's own distance
                    for h in hits[:2]:
                        assert h["distance"] == pytest.approx(float(np.sum((data[h["id"]] - q) ** 2)), rel=1e-4, abs=1e-4)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=searcher, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        try:
            for start in range(300, 3000, 100):
                c.insert("x", {"id": np.arange(start, start + 100), "vector": data[start:start + 100]})
            c.flush("x")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[0]
        assert _segments(c) == [(3000, 0)]
        assert _count(c) == 3000


def test_files_cut_off_mid_write_are_removed_on_open(tmp_path, small_segments):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        c.insert("x", _rows(0, 300))
        c.flush("x")
    seg_dir = os.path.join(path, "segments", "c1")
    kept = sorted(os.listdir(seg_dir))
    seg = next(f for f in kept if f.endswith(".arrow")).split(".")[0]
    for leftover in (f"{seg}.vector.index.tmp-123-456", f"{seg}.arrow.tmp", "999.arrow"):
        with open(os.path.join(seg_dir, leftover), "wb") as fh:
            fh.write(b"partial")
    with heron.Client(path) as c:
        assert _count(c) == 300
        assert sorted(os.listdir(seg_dir)) == kept


def test_a_merge_that_fails_to_write_leaves_both_segments_indexed(tmp_path, monkeypatch):
    from heron.engine import _maintenance, _merge_write

    monkeypatch.setenv("HERON_SEAL_ROWS", "200")
    real = _maintenance.write_segment_file
    calls = []

    def flaky(path, table, *splices):
        calls.append(path)
        if len(calls) == 3:  # both segments persist; the merged one hits a full disk
            raise OSError(28, "No space left on device")
        return real(path, table, *splices)

    monkeypatch.setattr(_maintenance, "write_segment_file", flaky)
    monkeypatch.setattr(_merge_write, "write_segment_file", flaky)  # a merged segment's file
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        c.insert("x", _rows(0, 200))
        c.flush("x")
        c.insert("x", _rows(200, 200))
        c.flush("x")
        assert len(calls) == 3 and [n for n, _ in _segments(c)] == [200, 200]
        coll = c._transport._engine.collection("default", "x")
        assert all("vector" in s.vindex for s in coll.partitions["_default"].sealed)
        assert _count(c) == 400
        hits = c.search("x", data=[[1.0, 1.0, 1.0, 0.5]], limit=3)
        assert len(hits[0]) == 3
    with heron.Client(path) as c:
        assert _count(c) == 400


def test_deletes_replayed_on_open_reach_segments_merged_meanwhile(tmp_path, monkeypatch):
    """Opening replays the log; segments it seals merge in the background, never before the deletes land."""
    from heron.engine import _recovery

    path = str(tmp_path / "d")
    monkeypatch.setenv("HERON_SEAL_ROWS", "1000000")  # everything stays in the log
    with heron.Client(path) as c:
        c.create_collection("x", dimension=4)
        for start in range(0, 1000, 100):
            c.insert("x", _rows(start, 100))
        c.delete("x", ids=list(range(0, 1000, 10)))
        c.upsert("x", [{"id": 5, "vector": [9.0, 9.0, 9.0, 9.0]}])
    monkeypatch.setenv("HERON_SEAL_ROWS", "200")  # the replay now seals, persists and merges
    real = _recovery.Recovery._replay_deletes

    def slow_replay(self, coll, deletes):
        time.sleep(1.0)  # room for background merges to finish first, were they allowed to
        real(self, coll, deletes)

    monkeypatch.setattr(_recovery.Recovery, "_replay_deletes", slow_replay)
    with heron.Client(path) as c:
        c.flush("x")
        assert _count(c) == 900
        assert c.get("x", ids=[0, 10, 990]) == []
        assert c.get("x", ids=[5], output_fields=["vector"])[0]["vector"] == [9.0, 9.0, 9.0, 9.0]
        assert len(c.query("x", filter="id >= 0", output_fields=["id"])) == 900


def test_readers_see_each_row_once_while_segments_seal_and_merge(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "150")
    errors: list[BaseException] = []
    stop = threading.Event()
    acked = [0]
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=4)

        def reader() -> None:
            last = 0
            try:
                while not stop.is_set():
                    floor = acked[0]
                    ids = [r["id"] for r in c.query("x", filter="id >= 0", output_fields=["id"])]
                    assert len(ids) == len(set(ids)), "a row seen twice"
                    n = _count(c)
                    assert floor <= len(ids) and last <= n, (floor, len(ids), last, n)
                    last = n
                    time.sleep(0.002)  # leave the writer room to run
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for start in range(0, 2000, 50):
                c.insert("x", _rows(start, 50))
                acked[0] = start + 50
                if start % 400 == 0:
                    c.flush("x")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors[0]
        assert _count(c) == 2000
