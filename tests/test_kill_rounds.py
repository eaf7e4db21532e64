"""Kill rounds: a writer killed with SIGKILL at fault points and at random moments, round after round.

Each round forks a writer (``_crash_child`` through the fork server
``_kill_child``) on the same data directory. It runs a seeded mix of
inserts, upserts and deletes on two collections, with segments small enough
that sealing, merging, compaction and index builds happen all the time, and
notes every operation in a ledger (synced after each acknowledgement). It is
killed either by a fault point (`heron.engine._faults`: persist, merge,
compaction, index save, recovery) or by the test at a random moment. The
test then opens the directory and checks each collection against the
ledger: nothing acknowledged lost, duplicated, resurrected or changed, and
the operation in flight applied wholly or not at all.

``HERON_KILL_ROUNDS`` sets the number of rounds (default 100) and
``HERON_KILL_SEED`` replays a run (the seed is printed).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import heron
from heron.engine._faults import POINTS

HERE = Path(__file__).parent
ROUNDS = int(os.environ.get("HERON_KILL_ROUNDS", "100"))
COLLECTIONS = 2
BATCH = 40
ENV = {"HERON_SEAL_ROWS": "240", "HERON_MERGE_ROWS": "960", "HERON_MIN_FREE_BYTES": "0"}


def _load_child() -> ModuleType:
    spec = importlib.util.spec_from_file_location("heron_crash_child", HERE / "_crash_child.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


child = _load_child()


class ForkServer:
    """The ``_kill_child`` process: forks one writer at a time and reports how it ended."""

    def __init__(self, workdir: Path) -> None:
        self.err_path = workdir / "writers.err"
        self._err = open(self.err_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_kill_child.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._err, bufsize=0, env={**os.environ, **ENV},
        )
        self._buf = b""

    def start(self, argv: list[str]) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(argv) + "\n").encode())
        line = self.read_line(60.0)
        assert line is not None and line.startswith("pid "), f"fork server: {line!r}\n{self.errors()}"
        return int(line.split()[1])

    def read_line(self, timeout: float) -> str | None:
        """The next line the server prints, or None if none comes within ``timeout`` seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                pytest.fail(f"the fork server exited:\n{self.errors()}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def errors(self) -> str:
        self._err.flush()
        return self.err_path.read_text()[-4000:]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


def _ledger_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    return path.read_text().split("\n")[:-1]  # a line cut by the kill was never followed by a call


def _stored(client: heron.Client, name: str) -> dict[int, int]:
    rows = client.query(name, filter="id >= 0", output_fields=["ver"])
    state = {r["id"]: r["ver"] for r in rows}
    assert len(state) == len(rows), f"{name}: a primary key is stored more than once"
    count = client.query(name, filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"]
    assert count == len(state), f"{name}: count(*) {count} != {len(state)} rows"
    return state


def _check_vectors(client: heron.Client, name: str, state: dict[int, int], rng: random.Random) -> None:
    if not state:
        return
    sample = rng.sample(sorted(state), min(20, len(state)))
    got = client.get(name, ids=sample, output_fields=["ver", "vec"])
    assert sorted(r["id"] for r in got) == sorted(sample)
    for r in got:
        assert r["vec"] == child.vector_of(r["id"], r["ver"]), f"{name}: row {r['id']} has a torn vector"
    probe = sample[0]
    vector = child.vector_of(probe, state[probe])
    # An HNSW graph is approximate: on these rows (nearly on a line) faiss alone misses a few percent of
    # self-matches at ef 64, so the index's collection is asked exactly, through a filter on the key.
    exact = client.describe_index(name, "vec")["index_type"] == "FLAT"
    hits = client.search(name, data=[vector], limit=1, filter="" if exact else f"id == {probe}")[0]
    assert [(h["id"], h["distance"]) for h in hits] == [(probe, 0.0)], (
        f"{name}: probe {probe} not found by its own vector: {hits}")


def _check_round(path: str, states: dict[str, dict[int, int]], done: list[dict[str, Any]],
                 pending: dict[str, Any] | None, rng: random.Random, context: str) -> str:
    """Check the directory against the ledger; updates ``states``; says what became of the call in flight."""
    for op in done:
        states[op["coll"]] = child.apply_op(states[op["coll"]], op)
    outcome = "none"
    with heron.Client(path) as client:
        for name, want in states.items():
            got = _stored(client, name)
            if got != want:
                assert pending is not None and pending["coll"] == name, (
                    f"{name}: acknowledged writes differ: {child.diff(got, want)} ({context})")
                with_pending = child.apply_op(want, pending)
                assert got == with_pending, (
                    f"{name}: torn or lost write: vs acked {child.diff(got, want)}; "
                    f"vs acked+in-flight {child.diff(got, with_pending)} ({context})")
                states[name] = with_pending
                outcome = "applied"
            elif pending is not None and pending["coll"] == name:
                outcome = "absent"
            _check_vectors(client, name, states[name], rng)
    return outcome


def test_acknowledged_writes_survive_kills_at_every_background_step(tmp_path):
    seed = int(os.environ.get("HERON_KILL_SEED", random.randrange(1 << 30)))
    print(f"HERON_KILL_SEED={seed} HERON_KILL_ROUNDS={ROUNDS}")
    rng = random.Random(seed)
    path = str(tmp_path / "db")
    with heron.Client(path) as client:
        names = child.collection_names(COLLECTIONS)
        child.create_collection(client, names[0], "FLAT")
        child.create_collection(client, names[1], "HNSW")
    states: dict[str, dict[int, int]] = {name: {} for name in names}
    next_id, next_op = 0, 1
    tally: Counter[str] = Counter()
    started = time.monotonic()
    server = ForkServer(tmp_path)
    try:
        for round_no in range(ROUNDS):
            ledger = tmp_path / f"ledger-{round_no}"
            fault = f"{rng.choice(POINTS)}@{rng.randint(1, 3)}" if round_no % 3 else ""
            argv = [path, "--start-id", str(next_id), "--seed", str(rng.randrange(1 << 30)),
                    "--op-base", str(next_op), "--collections", str(COLLECTIONS), "--batch", str(BATCH),
                    "--delete-window", str(6 * BATCH), "--ledger", str(ledger)]
            pid = server.start(argv + (["--fault", fault] if fault else []))
            # A fault point kills the writer itself; one not reached in time, and every
            # third round, end with a kill from here at a random moment.
            line = server.read_line(rng.uniform(0.8, 1.6) if fault else rng.uniform(0.02, 0.8))
            if line is None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                line = server.read_line(60.0)
            assert line == f"exit {pid} -9", f"round {round_no}: the writer ended with {line!r}:\n{server.errors()}"
            done, pending, fired = child.operations(_ledger_lines(ledger))
            context = f"seed={seed} round={round_no} fault={fault or '-'} fired={fired or '-'} acked={len(done)}"
            outcome = _check_round(path, states, done, pending, rng, context)
            tally[f"fault {fired}" if fired else "random kill"] += 1
            tally[f"in flight {outcome}"] += 1
            tally["acknowledged"] += len(done)
            for op in done + ([pending] if pending else []):
                next_id = max(next_id, max(op["ids"], default=-1) + 1)
                next_op = max(next_op, op["op"] + 1)
            ledger.unlink()
    finally:
        server.close()
    elapsed = time.monotonic() - started
    rows = sum(len(s) for s in states.values())
    print(f"kill rounds: {ROUNDS} in {elapsed:.0f}s, seed={seed}, rows={rows}")
    for key, n in sorted(tally.items()):
        print(f"  {key}: {n}")
    fired = sum(n for key, n in tally.items() if key.startswith("fault "))
    assert tally["acknowledged"] > ROUNDS, f"the writers hardly wrote anything: {dict(tally)}"
    assert fired >= ROUNDS // 4, f"few fault points fired: {dict(tally)}"


def test_every_fault_point_is_placed_in_the_engine():
    src = Path(heron.__file__).parent / "engine"
    text = "\n".join(p.read_text() for p in src.rglob("*.py"))
    for name in POINTS:
        assert f'fault_point("{name}")' in text, f"fault point {name} is listed but placed nowhere"


def test_an_unknown_fault_point_is_refused():
    from heron.engine import _faults

    with pytest.raises(ValueError, match="unknown fault point 'nope'"):
        _faults.arm("nope")
    _faults.arm("")
