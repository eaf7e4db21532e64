"""Durability of an embedded data directory: restarts, crashes, torn logs, and a second process.

The crash tests run the writer as a real child process (``tests/_crash_child.py``)
and kill it with SIGKILL, so nothing in the writer gets a chance to clean up.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import heron

CHILD = str(Path(__file__).with_name("_crash_child.py"))
DIM = 8


@pytest.fixture(autouse=True)
def _remove_data_dirs(tmp_path):
    """Data directories are large; remove them when the test ends instead of keeping them around."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


# -- restart survival -------------------------------------------------------------------


def _schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema(enable_dynamic_field=True)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("title", heron.DataType.VARCHAR, max_length=64)
    s.add_field("n", heron.DataType.INT32)
    s.add_field("info", heron.DataType.JSON)
    return s


def _row(i: int, version: int = 0) -> dict[str, Any]:
    # Values exactly representable as float32, so vectors compare with ==.
    return {
        "id": i,
        "vec": [float(i % 97), float(version), 0.5, 0.25, float(i // 97), 1.0, 2.0, -1.0],
        "title": f"doc {i} v{version}",
        "n": i % 7,
        "info": {"version": version, "even": i % 2 == 0},
        "extra": f"dyn{i}",
    }


def _rows(
    client: heron.Client, collection: str, partitions: list[str] | None = None
) -> dict[int, dict[str, Any]]:
    got = client.query(collection, filter="id >= 0", output_fields=["*"], partition_names=partitions)
    out = {r["id"]: dict(r) for r in got}
    assert len(out) == len(got), "a primary key came back more than once"
    return out


def _observe(client: heron.Client) -> dict[str, Any]:
    """Everything a user can see about the catalog, minus what background work may still change."""
    seen: dict[str, Any] = {"databases": client.list_databases()}
    for db in seen["databases"]:
        seen[f"collections[{db}]"] = client.list_collections(db_name=db)
    for name in client.list_collections():
        desc = client.describe_collection(name)
        seen[f"describe[{name}]"] = desc
        seen[f"partitions[{name}]"] = client.list_partitions(name)
        seen[f"aliases[{name}]"] = client.list_aliases(name)
        seen[f"load[{name}]"] = client.get_load_state(name)
        for p in client.list_partitions(name):
            seen[f"load[{name}/{p}]"] = client.get_load_state(name, partition_name=p)
        # Sorted: the order of list_indexes is not part of what a restart must keep.
        seen[f"indexes[{name}]"] = sorted(client.list_indexes(name))
        for idx in client.list_indexes(name):
            d = client.describe_index(name, idx)
            for key in ("total_rows", "indexed_rows", "pending_index_rows", "state"):  # compaction, builds
                d.pop(key, None)
            seen[f"index[{name}/{idx}]"] = d
    seen["aliases"] = client.list_aliases()
    for alias in seen["aliases"]["aliases"]:
        seen[f"alias[{alias}]"] = client.describe_alias(alias)
    return seen


def _build_state(client: heron.Client, n: int, flush: bool) -> dict[int, dict[str, Any]]:
    """Create a collection with partitions, indexes and aliases, write to it; return the expected rows."""
    idx = client.prepare_index_params()
    idx.add_index(
        "vec",
        index_type="HNSW",
        index_name="vec_idx",
        metric_type="L2",
        params={"M": 16, "efConstruction": 64},
    )
    idx.add_index("n", index_type="INVERTED", index_name="n_idx")
    client.create_collection("docs", schema=_schema(), index_params=idx, properties={"owner": "durability"})
    client.create_partition("docs", "p1")
    client.create_partition("docs", "p2")
    client.load_collection("docs")
    expected: dict[int, dict[str, Any]] = {}
    for part, base in (("_default", 0), ("p1", n), ("p2", 2 * n)):
        rows = [_row(i) for i in range(base, base + n)]
        for lo in range(0, n, 250):
            client.insert("docs", rows[lo : lo + 250], partition_name=part)
        expected.update({r["id"]: r for r in rows})
    if flush:
        client.flush("docs")
    # Deletes over the whole collection and inside one partition.
    gone = list(range(0, 40)) + list(range(n, n + 30))
    assert client.delete("docs", ids=gone)["delete_count"] == len(gone)
    assert (
        client.delete("docs", ids=list(range(2 * n, 2 * n + 10)), partition_name="p2")["delete_count"] == 10
    )
    for i in gone + list(range(2 * n, 2 * n + 10)):
        del expected[i]
    # Upserts: in place, and into another partition than the row lived in.
    same = [_row(i, 1) for i in range(50, 90)]
    moved = [_row(i, 2) for i in range(100, 140)]
    client.upsert("docs", same)
    client.upsert("docs", moved, partition_name="p1")
    expected.update({r["id"]: r for r in same + moved})
    if flush:
        client.flush("docs")
    client.insert("docs", [_row(i) for i in range(3 * n, 3 * n + 25)])
    expected.update({i: _row(i) for i in range(3 * n, 3 * n + 25)})

    client.create_alias("docs", "library")
    client.create_alias("docs", "archive")
    client.create_collection("other", dimension=4)
    client.insert("other", [{"id": i, "vector": [1.0, 0.0, float(i), 0.0]} for i in range(5)])
    client.alter_alias("other", "archive")
    client.release_collection("other")
    client.create_database("analytics")
    client.create_collection("events", dimension=4, db_name="analytics")
    client.release_partitions("docs", ["p2"])
    return expected


def _check_rows(client: heron.Client, expected: dict[int, dict[str, Any]], n: int) -> None:
    got = _rows(client, "docs")
    assert got.keys() == {i for i in expected if not 2 * n <= i < 3 * n}, "p2 is released; the rest is there"
    assert got == {i: r for i, r in expected.items() if i in got}
    assert client.query("docs", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == len(got)
    assert client.query("library", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == len(got)
    # Search finds each probe at distance 0 (vectors are unique).
    for i in (45, 60, 120, n + 200, 3 * n + 3):
        hits = client.search("docs", data=[expected[i]["vec"]], limit=1, anns_field="vec")[0]
        assert hits[0]["id"] == i and hits[0]["distance"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("flush", [False, True], ids=["log-only", "sealed-segments"])
def test_state_survives_close_and_reopen(tmp_path, monkeypatch, flush):
    """Rows, schema, indexes, aliases, partitions and load state are as they were left, twice over."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "500")
    path = str(tmp_path / "db")
    n = 700
    with heron.Client(path) as client:
        expected = _build_state(client, n, flush)
        before = _observe(client)
        _check_rows(client, expected, n)

    with heron.Client(path) as client:
        assert _observe(client) == before
        _check_rows(client, expected, n)
        assert client.get_load_state("docs", partition_name="p2")["state"] == heron.LoadState.NotLoad
        assert client.get_load_state("other")["state"] == heron.LoadState.NotLoad
        client.load_partitions("docs", ["p2"])
        p2 = _rows(client, "docs", ["p2"])
        assert p2 == {i: r for i, r in expected.items() if 2 * n <= i < 3 * n}
        client.load_collection("other")
        assert sorted(r["id"] for r in client.query("archive", filter="id >= 0")) == list(range(5))
        # Writes after a restart continue the sequence: they replace and delete what came before.
        client.upsert("docs", [_row(i, 3) for i in (1000, 45, n + 100)])
        client.delete("docs", ids=[60, 3 * n + 1])
        client.insert("docs", [_row(i) for i in range(4 * n, 4 * n + 5)], partition_name="p2")
        expected.update({i: _row(i, 3) for i in (1000, 45, n + 100)})
        expected.update({i: _row(i) for i in range(4 * n, 4 * n + 5)})
        del expected[60], expected[3 * n + 1]
        if flush:
            client.flush("docs")
        after_writes = _observe(client)
        want = _rows(client, "docs")
        assert want == expected

    with heron.Client(path) as client:
        assert _observe(client) == after_writes
        assert _rows(client, "docs") == expected
        assert client.describe_collection("docs")["properties"] == {"owner": "durability"}


# -- crashes ------------------------------------------------------------------------------


def _load_child() -> ModuleType:
    """The writer script as a module, for its schema and row helpers (it is not a package module)."""
    spec = importlib.util.spec_from_file_location("heron_crash_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _load_child()


class Writer:
    """One run of the child writer, with its stdout and stderr in files (nothing blocks on a pipe)."""

    def __init__(self, path: str, workdir: Path, *args: str) -> None:
        self.out = workdir / "child.out"
        self.err = workdir / "child.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, CHILD, path, *args], stdout=out, stderr=err)

    def lines(self) -> list[str]:
        text = self.out.read_text()
        # A line without its newline was cut by the kill; it was never followed by an operation.
        return text.split("\n")[:-1]

    def wait_for(self, word: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while word not in self.lines():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the writer exited with {self.proc.returncode} before {word!r}:\n{self.err.read_text()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the writer did not print {word!r} within {timeout}s")
            time.sleep(0.005)

    def wait_for_acks(self, count: int, timeout: float = 60.0) -> None:
        """Wait until the writer has acknowledged ``count`` operations (so a loaded machine still tests something)."""
        deadline = time.monotonic() + timeout
        while sum(line.startswith("A ") for line in self.lines()) < count:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the writer acknowledged under {count} within {timeout}s:\n{self.err.read_text()}")
            time.sleep(0.005)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        if self.proc.returncode != -signal.SIGKILL:
            pytest.fail(f"the writer exited with {self.proc.returncode} on its own:\n{self.err.read_text()}")

    def operations(self) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The acknowledged operations in order, and the one in flight when it was killed (if any)."""
        begun: list[dict[str, Any]] = []
        acked: set[int] = set()
        for line in self.lines():
            if line.startswith("B "):
                begun.append(json.loads(line[2:]))
            elif line.startswith("A "):
                acked.add(int(line[2:]))
        done = [op for op in begun if op["op"] in acked]
        pending = [op for op in begun if op["op"] not in acked]
        assert len(pending) <= 1 and (not pending or pending[0] is begun[-1]), (
            "the writer runs one call at a time"
        )
        return done, (pending[0] if pending else None)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _apply(state: dict[int, int], op: dict[str, Any]) -> dict[int, int]:
    out = dict(state)
    for i in op["ids"]:
        if op["kind"] == "delete":
            out.pop(i, None)
        else:
            out[i] = op["op"]
    return out


def _stored(client: heron.Client) -> dict[int, int]:
    """``{id: ver}`` of every row, failing on a key stored twice."""
    rows = client.query(child.COLLECTION, filter="id >= 0", output_fields=["ver"])
    state = {r["id"]: r["ver"] for r in rows}
    assert len(state) == len(rows), "a primary key is stored more than once"
    count = client.query(child.COLLECTION, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"]
    assert count == len(state)
    return state


def _diff(got: dict[int, int], want: dict[int, int]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(i for i in set(got) & set(want) if got[i] != want[i])
    return (
        f"missing={missing[:10]} ({len(missing)}), extra={extra[:10]} ({len(extra)}), changed={changed[:10]}"
    )


def _check_vectors(client: heron.Client, state: dict[int, int], rng: random.Random) -> None:
    """Vectors match the version that wrote them, and a search finds a row by its own vector."""
    if not state:
        return
    sample = rng.sample(sorted(state), min(50, len(state)))
    got = client.get(child.COLLECTION, ids=sample, output_fields=["ver", "vec"])
    assert sorted(r["id"] for r in got) == sorted(sample)
    for r in got:
        assert r["vec"] == child.vector_of(r["id"], r["ver"])
    probe = sample[0]
    hits = client.search(child.COLLECTION, data=[child.vector_of(probe, state[probe])], limit=3)[0]
    assert hits[0]["id"] == probe, f"probe {probe} (ver {state[probe]}) not found first: {hits}"


def test_acknowledged_writes_survive_repeated_sigkill(tmp_path, monkeypatch):
    """A writer killed at random moments, 20 times over: acknowledged writes stay, none is torn."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "1000")
    seed = int(os.environ.get("HERON_CRASH_SEED", random.randrange(1 << 30)))
    print(f"HERON_CRASH_SEED={seed}")  # shown with a failure, to replay it
    rng = random.Random(seed)
    path = str(tmp_path / "db")
    with heron.Client(path) as client:
        child.create_collection(client)

    state: dict[int, int] = {}
    next_id, next_op = 0, 1
    totals = {"acked": 0, "in_flight_applied": 0, "in_flight_absent": 0}
    for round_no in range(20):
        writer = Writer(
            path,
            tmp_path,
            "--start-id",
            str(next_id),
            "--seed",
            str(rng.randrange(1 << 30)),
            "--op-base",
            str(next_op),
        )
        try:
            if round_no % 5 == 4:
                time.sleep(rng.uniform(0.0, 0.5))  # may land while the writer opens and recovers
            else:
                writer.wait_for("ready")
                if round_no % 2:
                    writer.wait_for_acks(3)  # 8 such rounds: the total below holds on any machine
                time.sleep(rng.uniform(0.0, 0.15))
            writer.kill()
        finally:
            writer.close()
        done, pending = writer.operations()
        for op in done:
            state = _apply(state, op)
        with heron.Client(path) as client:
            stored = _stored(client)
            context = (
                f"seed={seed} round={round_no} acked={len(done)} in_flight={pending and pending['kind']}"
            )
            if stored != state:
                assert pending is not None, f"acknowledged writes differ: {_diff(stored, state)} ({context})"
                with_pending = _apply(state, pending)
                assert stored == with_pending, (
                    f"torn or lost write: vs acked {_diff(stored, state)}; "
                    f"vs acked+in-flight {_diff(stored, with_pending)} ({context})"
                )
                state = with_pending
                totals["in_flight_applied"] += 1
            elif pending is not None:
                totals["in_flight_absent"] += 1
            _check_vectors(client, state, rng)
        totals["acked"] += len(done)
        for op in done + ([pending] if pending else []):
            next_id = max(next_id, max(op["ids"], default=-1) + 1)
            next_op = max(next_op, op["op"] + 1)
    assert totals["acked"] > 20, f"the writer hardly wrote anything: {totals}"
    print(f"crash rounds: seed={seed} {totals} rows={len(state)}")


def _insert_log_data_end(log: Path) -> int:
    """Where the last record's bytes end (its zero padding follows)."""
    from heron.engine.storage._insert_log import HEADER, _aligned

    data = log.read_bytes()
    pos = end = 0
    while pos + HEADER.size <= len(data) and data[pos : pos + 4] != bytes(4):  # zeros: the file's tail
        length = HEADER.unpack_from(data, pos)[2]
        end = pos + HEADER.size + length
        pos = _aligned(end)
    return end


@pytest.mark.parametrize("cut", [1, 300, 900])
def test_torn_insert_log_tail_loses_only_whole_batches_at_the_end(tmp_path, monkeypatch, cut):
    """An insert log cut short opens and holds a prefix of the batches, each whole."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "100000")
    path = str(tmp_path / "db")
    with heron.Client(path) as client:
        child.create_collection(client)
    batches = 12
    writer = Writer(
        path,
        tmp_path,
        "--start-id",
        "0",
        "--seed",
        "1",
        "--op-base",
        "1",
        "--max-ops",
        str(batches),
        "--insert-only",
    )
    try:
        writer.wait_for("idle")
        writer.kill()
    finally:
        writer.close()
    done, pending = writer.operations()
    assert len(done) == batches and pending is None

    # Inserts are appended to the insert log, one record per batch, each with a
    # CRC; the last record of the last file is the only one a crash can tear.
    # Opening zeroes that torn record, so the torn batch is lost as a whole and
    # every batch before it is intact.
    logs = sorted((Path(path) / "log").glob("*.log"))
    assert len(logs) == 1
    end = _insert_log_data_end(logs[0])
    assert end > 12 * (cut + 64), "every batch should still be in the insert log"
    with open(logs[0], "r+b") as fh:  # a torn write: the last bytes never reached the disk (the size did)
        old = os.pread(fh.fileno(), cut, end - cut)  # what was there before: here, anything but the record's bytes
        os.pwrite(fh.fileno(), bytes(b ^ 0xFF for b in old), end - cut)

    with heron.Client(path) as client:
        stored = _stored(client)
    present = [op["op"] for op in done if any(i in stored for i in op["ids"])]
    for op in done:
        if op["op"] in present:
            assert all(stored.get(i) == op["op"] for i in op["ids"]), f"batch {op['op']} is torn"
    assert present == [op["op"] for op in done[: len(present)]], f"not a prefix of the batches: {present}"
    assert len(stored) == len(present) * child.BATCH
    # The cut lies inside the last transaction, so exactly that batch is gone.
    assert len(present) == batches - 1


# -- a second process -----------------------------------------------------------------------

_OPEN_SCRIPT = """
import sys, heron
try:
    client = heron.Client(sys.argv[1])
except heron.DataDirLockedError as exc:
    print("locked:", exc)
    sys.exit(3)
client.create_collection("second", dimension=2)
print("opened")
client.close()
"""

_HOLD_SCRIPT = """
import sys, heron
client = heron.Client(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
client.close()
"""


def _open_in_subprocess(path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _OPEN_SCRIPT, path], capture_output=True, text=True, timeout=60
    )


def test_second_process_gets_a_clear_error_while_the_directory_is_open(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as client:
        client.create_collection("first", dimension=2)
        done = _open_in_subprocess(path)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "open for writing in another process" in done.stdout
        assert os.path.realpath(path) in done.stdout
        # The holder is unharmed.
        client.insert("first", [{"id": 1, "vector": [1.0, 0.0]}])
        assert client.query("first", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 1
    done = _open_in_subprocess(path)
    assert done.returncode == 0 and "opened" in done.stdout, done.stdout + done.stderr


def test_directory_held_by_another_process_cannot_be_opened_here(tmp_path):
    path = str(tmp_path / "db")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_SCRIPT, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready", holder.stderr
        with pytest.raises(heron.DataDirLockedError, match="another process"):
            heron.Client(path)
        with pytest.raises(heron.DataDirLockedError, match="another process"):
            asyncio.run(_async_open(path))
        holder.communicate("\n", timeout=60)
        assert holder.returncode == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    with heron.Client(path) as client:
        assert client.list_collections() == []


async def _async_open(path: str) -> None:
    client = heron.AsyncClient(path)
    try:
        await client.list_collections()
    finally:
        await client.close()
