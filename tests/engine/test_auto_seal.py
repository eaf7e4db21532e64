"""Growing rows left idle are sealed and indexed without a flush, losing nothing if the process dies meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heron
from heron.engine import _interim, _maintenance, _quick_search, _reads
from heron.engine._auto_seal import IDLE_SEAL_ROWS, IDLE_SEAL_SECONDS, IdleSealer
from heron.engine.storage import _insert_log
from tests.conftest import require_module

DIM = 16
HERON_SRC = str(Path(heron.__file__).resolve().parents[1])


def _engine(c: heron.Client) -> Any:
    return c._transport._engine


def _part(c: heron.Client, name: str = "c") -> Any:
    return _engine(c).collection("default", name).partitions["_default"]


def _vectors(n: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _create(c: heron.Client, name: str = "c") -> None:
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 100})
    c.create_collection(name, schema=schema, index_params=idx)


def _insert(c: heron.Client, x: np.ndarray, start: int, name: str = "c") -> None:
    c.insert(name, {"id": np.arange(start, start + len(x), dtype=np.int64), "vec": x})


def _until(check: Any, timeout: float = 60.0) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > end:
            return got
        time.sleep(0.02)


def _all_indexed(c: heron.Client) -> bool:
    p = _part(c)
    return p.growing is None and bool(p.sealed) and all(s.persisted and "vec" in s.vindex for s in p.sealed)


def _exact_top(x: np.ndarray, q: np.ndarray, k: int) -> list[list[int]]:
    d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return [list(map(int, row)) for row in np.argsort(d, axis=1, kind="stable")[:, :k]]


@pytest.fixture
def idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle sealing after 0.1 s for segments of 500 rows or more."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0.1")
    monkeypatch.setenv("HERON_SEAL_IDLE_ROWS", "500")


def test_idle_growing_rows_are_sealed_and_indexed_without_flush(tmp_path: Path, idle: None) -> None:
    x = _vectors(3000)
    q = x[:20] + 0.05
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, x, 0)
        assert _until(lambda: _all_indexed(c)), [(s.id, s.n, s.persisted, list(s.vindex)) for s in _part(c).sealed]
        p = _part(c)
        assert sum(s.n for s in p.sealed) == 3000
        d = c.describe_index("c", "vec")
        assert (d["total_rows"], d["indexed_rows"], d["pending_index_rows"], d["state"]) == (3000, 3000, 0, "Finished")
        hits = c.search("c", data=q, limit=10, search_params={"params": {"ef": 200}})
        truth = _exact_top(x, q, 10)
        recall = np.mean([len({h["id"] for h in got} & set(want)) / 10 for got, want in zip(hits, truth)])
        assert recall >= 0.95, recall
        segs = c.list_persistent_segments("c")
        assert {s.state for s in segs} == {"Flushed"} and sum(s.num_rows for s in segs) == 3000


def test_growing_rows_are_searched_exactly_until_the_sealed_index_is_in(tmp_path: Path, idle: None,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    build = _maintenance.build_index

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(60)
        return build(*args, **kwargs)

    monkeypatch.setattr(_maintenance, "build_index", held)
    x = _vectors(2000, seed=7)
    q = x[100:110] + 0.01
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, x, 0)
        # Large enough to be sealed once idle: pending, whether still growing or sealed and waiting for its index.
        d = c.describe_index("c", "vec")
        assert (d["indexed_rows"], d["pending_index_rows"], d["state"]) == (0, 2000, "InProgress")
        try:
            assert _until(lambda: _part(c).growing is None and _part(c).sealed[0].persisted)
            assert "vec" not in _part(c).sealed[0].vindex
            got = c.search("c", data=q, limit=5)
            assert [[h["id"] for h in r] for r in got] == _exact_top(x, q, 5)  # exact while the build waits
            _insert(c, _vectors(10, seed=8), 2000)  # writes go on meanwhile, into a new growing segment
            assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 2010
        finally:
            release.set()
        assert _until(lambda: "vec" in _part(c).sealed[0].vindex)
        d = _until(lambda: (r := c.describe_index("c", "vec"))["state"] == "Finished" and r)
        assert d and (d["total_rows"], d["indexed_rows"], d["pending_index_rows"]) == (2010, 2010, 0)


def test_idle_segment_is_merged_into_the_sealed_one_before_it(tmp_path: Path, idle: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    x = _vectors(2600, seed=9)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, x, 0)  # 2000 rows sealed for their size, 600 growing
        assert _until(lambda: _all_indexed(c) and len(_part(c).sealed) == 1)
        assert _part(c).sealed[0].n == 2600
        assert sorted(r["id"] for r in c.query("c", filter="id >= 0", output_fields=["id"], limit=3000)) == \
            list(range(2600))
    with heron.Client(str(tmp_path / "db")) as c:  # reopened: the merged segment is the file, the log is empty
        p = _part(c)
        assert p.growing is None and [s.n for s in p.sealed] == [2600]


def test_the_policy_seals_only_idle_segments_large_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "3600")  # `look` is driven here, with made-up times
    monkeypatch.setenv("HERON_SEAL_IDLE_ROWS", "500")
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _create(c, "small")
        sealer: IdleSealer = _engine(c).idle_sealer
        sealer.stop()  # its thread's own looks (at the real time) would restart the idle clocks under the test's
        _insert(c, _vectors(600), 0)
        _insert(c, _vectors(499), 0, "small")
        t0 = float(int(time.monotonic()))  # whole seconds: t0 + 3601 + 3600 - (t0 + 3601) is exactly 3600
        assert sealer.look(t0) == 0
        assert sealer.look(t0 + 3599) == 0
        _insert(c, _vectors(10, seed=1), 600)  # a write makes the segment busy again
        assert sealer.look(t0 + 3601) == 0
        assert _part(c).growing is not None
        assert sealer.look(t0 + 3601 + 3600) == 1
        assert _part(c).growing is None and [s.n for s in _part(c).sealed] == [610]
        assert _part(c, "small").growing.n == 499  # too few rows: scanned as cheaply as an index would be
        d = c.describe_index("small", "vec")
        assert (d["indexed_rows"], d["pending_index_rows"], d["state"]) == (499, 0, "Finished")


def test_a_look_gives_back_the_insert_logs_record_buffer_once_inserts_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_insert_log, "IDLE_BUFFER_SECONDS", 3600.0)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        sealer: IdleSealer = _engine(c).idle_sealer
        sealer.stop()
        _insert(c, _vectors(600), 0)
        log = _engine(c).inserts
        assert log._buf is not None
        sealer.look()
        assert log._buf is not None  # inserts may come on: kept
        monkeypatch.setattr(_insert_log, "IDLE_BUFFER_SECONDS", 0.0)
        sealer.look()
        assert log._buf is None
        _insert(c, _vectors(10, seed=1), 600)
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 610


def test_idle_sealing_is_off_at_zero_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_SEAL_IDLE_ROWS", "10")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "0")
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, _vectors(100), 0)
        sealer = _engine(c).idle_sealer
        assert not sealer.enabled and sealer._thread is None  # nothing to do: no thread
        assert sealer.look(time.monotonic() + 3600) == 0 and _part(c).growing.n == 100
        d = c.describe_index("c", "vec")
        assert (d["indexed_rows"], d["pending_index_rows"], d["state"]) == (100, 0, "Finished")


def test_the_defaults_seal_after_seconds_not_minutes() -> None:
    assert 0 < IDLE_SEAL_SECONDS <= 2 and 1000 <= IDLE_SEAL_ROWS <= 10_000


@pytest.mark.parametrize(("name", "value"), [("HERON_SEAL_IDLE_SECONDS", "soon"), ("HERON_SEAL_IDLE_ROWS", "-3")])
def test_a_malformed_setting_fails_the_open_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=f"{name}={value!r}"):
        heron.Client(str(tmp_path / "db"))
    monkeypatch.delenv(name)
    with heron.Client(str(tmp_path / "db")) as c:  # nothing was left locked or half made
        assert c.list_collections() == []


def test_pymilvus_against_heron_serve_sees_idle_rows_sealed_and_indexed(start_server: Any) -> None:
    """The server seals idle rows too: pymilvus's describe_index ends Finished with every row indexed, no flush."""
    pymilvus = require_module("pymilvus")
    server = start_server(env={"HERON_SEAL_IDLE_SECONDS": "0.1", "HERON_SEAL_IDLE_ROWS": "500"})
    c = pymilvus.MilvusClient(server.uri)
    schema = c.create_schema()
    schema.add_field("id", pymilvus.DataType.INT64, is_primary=True)
    schema.add_field("vec", pymilvus.DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 64})
    c.create_collection("c", schema=schema, index_params=idx)
    x = _vectors(1500, seed=21)
    c.insert("c", [{"id": i, "vec": x[i].tolist()} for i in range(1500)])
    d = _until(lambda: (r := c.describe_index("c", "vec"))["state"] == "Finished" and r["indexed_rows"] == 1500
               and r)
    assert d and (d["total_rows"], d["pending_index_rows"]) == (1500, 0), c.describe_index("c", "vec")
    with heron.Client(server.uri) as h:
        segs = h.list_persistent_segments("c")
        assert {s.state for s in segs} == {"Flushed"} and sum(s.num_rows for s in segs) == 1500
    hits = c.search("c", data=[x[7].tolist()], limit=1, anns_field="vec")
    assert hits[0][0]["id"] == 7


# -- interim indexes on fresh rows -------------------------------------------------------------------------------

@pytest.fixture
def interim(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Interim lists trained from 1,000 rows on, idle sealing off; returns a list counting the searches that used them."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1000")
    used: list[int] = []
    real, together = _reads.interim_search, _interim.search_fresh

    def counted(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if out is not None:
            used.append(1)
        return out

    def counted_together(*args: Any, **kwargs: Any) -> Any:
        out = together(*args, **kwargs)
        if out is not None:
            used.append(1)
        return out

    monkeypatch.setattr(_reads, "interim_search", counted)
    monkeypatch.setattr(_interim, "search_fresh", counted_together)  # the general path
    monkeypatch.setattr(_quick_search, "search_fresh", counted_together)  # the quick lane
    return used


def _covered(c: heron.Client, name: str = "c") -> int:
    p = _part(c, name)
    return sum((e[1].ntotal if (e := s.interim.get("vec")) else 0) for s in p.segments())


def _scores_rows(hits: list[list[dict[str, Any]]]) -> list[list[int]]:
    return [[h["id"] for h in q] for q in hits]


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_fresh_rows_are_searched_through_interim_indexes(tmp_path: Path, interim: list[int], metric: str) -> None:
    x = _vectors(2500, seed=12)
    q = x[::250][:10] + 0.05
    with heron.Client(str(tmp_path / "db")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("tag", heron.DataType.INT64)
        schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="HNSW", metric_type=metric, params={"M": 16, "efConstruction": 64})
        c.create_collection("c", schema=schema, index_params=idx)
        ids = np.arange(2500, dtype=np.int64)
        c.insert("c", {"id": ids, "tag": ids % 3, "vec": x})
        assert _until(lambda: _covered(c) == 2500)  # trained on the first 1,000 rows, then every row added
        assert _part(c).growing is not None and not _part(c).sealed
        exact = c.search("c", data=q, limit=10, search_params={"interim": False})
        assert not interim
        fast = c.search("c", data=q, limit=10)
        assert interim
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(_scores_rows(fast), _scores_rows(exact))])
        assert recall >= 0.9, recall
        for got in fast:  # best first, with the scores the exact scan gives those rows
            scores = [h["distance"] for h in got]
            assert scores == sorted(scores, reverse=metric != "L2")
        every = c.search("c", data=q[:1], limit=2500, search_params={"interim": False})[0]
        by_id = {h["id"]: h["distance"] for h in every}
        assert all(abs(h["distance"] - by_id[h["id"]]) < 1e-3 * max(1.0, abs(h["distance"])) for h in fast[0])
        c.delete("c", ids=_scores_rows(exact)[0][:3])
        filtered = c.search("c", data=q, limit=10, filter="tag == 1")
        assert all(h["id"] % 3 == 1 for r in filtered for h in r)
        assert not set(_scores_rows(exact)[0][:3]) & {h["id"] for r in c.search("c", data=q, limit=10) for h in r}
        want = c.search("c", data=q, limit=10, filter="tag == 1", search_params={"interim": False})
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(_scores_rows(filtered), _scores_rows(want))])
        assert recall >= 0.9, recall


def test_interim_indexes_go_once_the_segment_has_its_own(tmp_path: Path, interim: list[int]) -> None:
    x = _vectors(2600, seed=13)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, x, 0)
        assert _until(lambda: _covered(c) == 2600)
        c.flush("c")  # sealed: the segment keeps its interim index until the HNSW build ends
        seg = _part(c).sealed[0]
        assert "vec" in seg.vindex
        assert _until(lambda: not seg.interim)  # dropped by the next look
        got = c.search("c", data=x[:5], limit=1)
        assert [r[0]["id"] for r in got] == [0, 1, 2, 3, 4]


def test_a_sealed_segment_waiting_for_its_index_is_searched_through_interim_indexes(
        tmp_path: Path, interim: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    build = _maintenance.build_index
    monkeypatch.setattr(_maintenance, "build_index", lambda *a, **k: (release.wait(60), build(*a, **k))[1])
    x = _vectors(1700, seed=14)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, x, 0)
        try:
            threading.Thread(target=c.flush, args=("c",), daemon=True).start()
            assert _until(lambda: _part(c).growing is None and _covered(c) == 1700)  # every row, sealed ones too
            got = c.search("c", data=x[100:105], limit=1)
            assert interim and [r[0]["id"] for r in got] == [100, 101, 102, 103, 104]
        finally:
            release.set()


def test_an_indexed_segment_drops_its_interim_index_once_fresh_rows_beside_it_are_fewer(
        tmp_path: Path, interim: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "2600")
    release = threading.Event()
    build = _maintenance.build_index
    monkeypatch.setattr(_maintenance, "build_index", lambda *a, **k: (release.wait(60), build(*a, **k))[1])
    x = _vectors(2700, seed=16)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        try:
            _insert(c, x[:2600], 0)  # sealed for its size; its HNSW build waits
            seg = _part(c).sealed[0]
            assert _until(lambda: _covered(c) == 2600)
            _insert(c, x[2600:], 2600)  # growing rows that a later seal merges into `seg`
        finally:
            release.set()
        assert _until(lambda: "vec" in seg.vindex)
        for _ in range(3):
            _engine(c).idle_sealer.look()
        # 100 fresh rows beside its 2,600: searches read its own index, so its lists only held memory
        assert _until(lambda: not seg.interim)
        c.flush("c")
        merged = _part(c).sealed
        assert [s.n for s in merged] == [2700] and merged[0] is not seg and "vec" in merged[0].vindex
        assert _until(lambda: not merged[0].interim)
        assert [r[0]["id"] for r in c.search("c", data=x[2650:2653], limit=1)] == [2650, 2651, 2652]


def test_flat_indexes_get_no_interim_index(tmp_path: Path, interim: list[int]) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="FLAT", metric_type="L2")
        c.create_collection("c", schema=schema, index_params=idx)
        _insert(c, _vectors(2500), 0)
        _engine(c).idle_sealer.look()
        time.sleep(0.3)
        assert _covered(c) == 0
        c.search("c", data=_vectors(2), limit=3)
        assert not interim


def test_a_failing_interim_build_leaves_rows_searched_exactly_and_is_not_retried(
        tmp_path: Path, interim: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise MemoryError("no room for the lists")

    monkeypatch.setattr(_interim, "train_lists", broken)
    x = _vectors(1500, seed=15)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c)
        _insert(c, x, 0)
        assert _until(lambda: calls)
        for _ in range(3):
            _engine(c).idle_sealer.look()
        time.sleep(0.3)
        assert len(calls) == 1 and _covered(c) == 0
        got = c.search("c", data=x[:3], limit=1)
        assert [r[0]["id"] for r in got] == [0, 1, 2] and not interim


def test_a_malformed_interim_setting_fails_the_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_INTERIM_ROWS", "many")
    with pytest.raises(ValueError, match="HERON_INTERIM_ROWS='many'"):
        heron.Client(str(tmp_path / "db"))


# -- a process killed while an idle segment is sealed ------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import heron
    path, first, second = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(11)
    with heron.Client(path) as c:
        if not c.has_collection("c"):
            s = c.create_schema()
            s.add_field("id", heron.DataType.INT64, is_primary=True)
            s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=8)
            idx = c.prepare_index_params()
            idx.add_index("vec", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 40})
            c.create_collection("c", schema=s, index_params=idx)
        start = 0
        for size in (first, second):
            for lo in range(start, start + size, 100):
                c.insert("c", {"id": np.arange(lo, lo + 100), "vec": rng.random((100, 8), dtype=np.float32)})
                print("acked", lo + 100, flush=True)
            start += size
            time.sleep(0.5)  # idle: sealed in the background
        print("idle", flush=True)
        time.sleep(120)
""")


def _run_writer(path: Path, env: dict[str, str], first: int, second: int, kill_after: float | None) -> tuple[int, int]:
    """Run the writer until it dies (or `kill_after` seconds after its first ack); return (signal, rows acked)."""
    full_env = {**os.environ, "PYTHONPATH": HERON_SRC, "HERON_SEAL_IDLE_SECONDS": "0.05", "HERON_SEAL_IDLE_ROWS": "100",
                "HERON_SEAL_ROWS": "1000", **env}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(first), str(second)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    acked = 0
    assert proc.stdout is not None
    killer = None
    try:
        for line in proc.stdout:
            if line.startswith("acked"):
                acked = int(line.split()[1])
                if kill_after is not None and killer is None:
                    killer = threading.Timer(kill_after, proc.send_signal, (signal.SIGKILL,))
                    killer.start()
            elif line.startswith("idle"):
                if kill_after is None:
                    break  # the fault point was never reached: reported below
        proc.wait(60)
    finally:
        if killer is not None:
            killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(60)
    return -proc.returncode, acked


def _check_rows(path: Path, acked: int) -> None:
    with heron.Client(str(path)) as c:
        ids = sorted(r["id"] for r in c.query("c", filter="id >= 0", output_fields=["id"], limit=16384))
        assert ids[:acked] == list(range(acked)), f"acknowledged rows lost: {sorted(set(range(acked)) - set(ids))[:5]}"
        assert len(ids) == len(set(ids)) and len(ids) % 100 == 0 and ids == list(range(len(ids)))
        assert len(c.search("c", data=[[0.5] * 8], limit=5)[0]) == 5


@pytest.mark.parametrize("fault", ["persist.before_commit@2", "persist.after_commit@2", "merge.before_install@1",
                                   "merge.after_install@1", "index.before_save@2"])
def test_kill_during_an_idle_seal_loses_no_acknowledged_row(tmp_path: Path, fault: str) -> None:
    """1,000 rows sealed for their size, then 300 sealed for being idle; the process dies at a step of that seal."""
    path = tmp_path / "db"
    died, acked = _run_writer(path, {"HERON_FAULT": fault}, 1000, 300, None)
    assert died == signal.SIGKILL, f"the writer was not killed at {fault} (exit {-died})"
    assert acked == 1300
    _check_rows(path, acked)


def test_kill_at_random_moments_of_idle_sealing_loses_no_acknowledged_row(tmp_path: Path) -> None:
    path = tmp_path / "db"
    rng = np.random.default_rng(int(os.environ.get("HERON_KILL_SEED", "22")))
    for _ in range(3):
        died, acked = _run_writer(path, {}, 700, 200, float(rng.uniform(0.0, 1.5)))
        _check_rows(path, acked)
