"""The fork rule: a forked child cannot use the engine it inherited, and the parent loses nothing.

Each scenario runs `tests/_fork_scenarios.py` in a process of its own: the
parent opens a client and acknowledges 2,500 rows, starts children (by
``os.fork``, as a pre-forking web server does, or by multiprocessing with
"fork" or "spawn"), acknowledges 5,000 more while and after they run, and
closes. The children try the inherited client, a new client on the same
directory and a client on a directory of their own, then exit normally.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import heron
from tests.conftest import Server

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(ROOT, "tests", "_fork_scenarios.py")
FORK_MESSAGE = "before a fork; a forked child cannot use its engine"


def _run(args: list[str], timeout: float = 240) -> str:
    """Run a helper in its own process group; a hang (the bug this guards against) kills the group and fails."""
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{args} hung for {timeout}s (children included):\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    return out


def _check_parent_data(data: str) -> None:
    with heron.Client(data) as c:
        rows = c.query("c", filter="", output_fields=["id", "vec"], limit=10_000)
        assert sorted(r["id"] for r in rows) == list(range(7500))
        by_id = {r["id"]: r["vec"] for r in rows}
        for lo in (0, 2500, 5000):  # the values written, not only the keys
            want = np.random.default_rng(lo).random((500, 8), dtype=np.float32)
            got = np.array([by_id[i] for i in range(lo, lo + 500)], dtype=np.float32)
            assert np.array_equal(got, want)
        assert c.query("after", ids=[1], output_fields=["id"]) == [{"id": 1}]


@pytest.mark.parametrize("scenario", ["fork", "preload", "mp-fork"])
def test_forked_children_cannot_use_the_inherited_engine_and_the_parent_keeps_every_row(tmp_path, scenario):
    data = str(tmp_path / "data")
    report = json.loads(_run([SCENARIOS, scenario, data, str(tmp_path / "scratch")]))
    parent = report["parent"]
    assert report["acknowledged"] == 7500
    # the children exited without releasing the parent's lock: a third process still finds it held
    assert report["lock_after_children"] == "locked"
    assert len(report["children"]) >= 2
    for child in report["children"]:
        assert child["exit"] == 0, child
        for call in ("insert", "query"):
            assert child[call]["error"] == "HeronError", child
            assert FORK_MESSAGE in child[call]["message"] and f"process {parent}" in child[call]["message"]
        assert child["reopen"]["error"] == "DataDirLockedError", child
        assert f"held by process {parent}, which forked this one" in child["reopen"]["message"]
        assert child["close"] == {"ok": "no error"}, child
        assert child["own"] == {"ok": "no error"}, child  # a client opened after the fork works
        assert child["writes_to_parent_dir"] == [], child
    _check_parent_data(data)


def test_spawned_children_find_the_directory_locked(tmp_path):
    data = str(tmp_path / "data")
    report = json.loads(_run([SCENARIOS, "mp-spawn", data, str(tmp_path / "scratch")]))
    assert report["lock_after_children"] == "locked"
    for child in report["children"]:
        assert child["exit"] == 0, child
        assert child["reopen"]["error"] == "DataDirLockedError", child
        assert child["own"] == {"ok": "no error"}, child
    _check_parent_data(data)


REMOTE_CHILD = textwrap.dedent(
    """
    import json, os, sys, heron
    uri = sys.argv[1]
    client = heron.Client(uri)
    client.create_collection("r", dimension=4)
    kids = []
    for k in range(3):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                got = [len(client.query("r", ids=[0, 1], timeout=20)) for _ in range(20)]
                out = {"ok": got[-1]}
            except Exception as exc:
                out = {"error": type(exc).__name__, "message": str(exc)}
            client.close()
            with os.fdopen(w, "w") as f:
                f.write(json.dumps(out))
            sys.exit(0)
        os.close(w)
        kids.append((pid, r))
    for i in range(300):  # the parent writes on its own connection meanwhile
        client.insert("r", [{"id": i, "vector": [float(i)] * 4}])
    children = []
    for pid, r in kids:
        with os.fdopen(r) as f:
            children.append(json.loads(f.read() or "{}"))
        children[-1]["exit"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    count = client.query("r", filter="", output_fields=["count(*)"])[0]["count(*)"]
    client.close()
    print(json.dumps({"children": children, "count": count}))
    """
)


def test_a_remote_client_works_in_a_forked_child_on_a_connection_of_its_own(start_server):
    server: Server = start_server()
    report = json.loads(_run(["-c", REMOTE_CHILD, server.uri], timeout=120))
    assert report["count"] == 300
    for child in report["children"]:
        assert child["exit"] == 0 and "error" not in child, child
