"""Run by tests/test_fork.py in a process of its own: a parent that opens a client, then forks.

``python tests/_fork_scenarios.py SCENARIO DATA_DIR SCRATCH_DIR`` prints one
JSON line: what each child saw and what the parent acknowledged. Children
exit the ordinary way (exit handlers run), as a web server's workers do.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import traceback
from typing import Any

import numpy as np

import heron

DIM = 8
BATCH = 500
COLLECTION = "c"


def _rows(lo: int, hi: int) -> dict[str, Any]:
    ids = np.arange(lo, hi, dtype=np.int64)
    vec = np.random.default_rng(lo).random((hi - lo, DIM), dtype=np.float32)
    return {"id": ids, "vec": vec}


def insert_range(client: heron.Client, lo: int, hi: int) -> None:
    for start in range(lo, hi, BATCH):
        client.insert(COLLECTION, _rows(start, min(hi, start + BATCH)))


def _outcome(fn: Any) -> dict[str, str]:
    try:
        fn()
    except heron.HeronError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    except Exception as exc:  # reported, and the test fails on it
        return {"error": type(exc).__name__, "message": str(exc), "trace": traceback.format_exc()}
    return {"ok": "no error"}


def _watch_writes(data: str) -> list[str]:
    """Record every write, sync or truncation this process makes through Python to a file under ``data``."""
    seen: list[str] = []
    for name in ("write", "pwrite", "writev", "pwritev", "fsync", "fdatasync", "ftruncate"):
        real = getattr(os, name)

        def spy(fd: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
            try:
                target = os.readlink(f"/proc/self/fd/{fd}") if isinstance(fd, int) else str(fd)
            except OSError:
                target = ""
            if target.startswith(data):
                seen.append(f"{_name} {target}")
            return _real(fd, *args)

        setattr(os, name, spy)
    return seen


def child_work(client: heron.Client, data: str, own_dir: str) -> dict[str, Any]:
    """What a forked child tries: the inherited client, a new client on the same directory, one of its own."""
    seen = _watch_writes(os.path.realpath(data))
    out: dict[str, Any] = {
        "pid": os.getpid(),
        "insert": _outcome(lambda: client.insert(COLLECTION, _rows(10**6, 10**6 + 10))),
        "query": _outcome(lambda: client.query(COLLECTION, ids=[1])),
        "reopen": _outcome(lambda: heron.Client(data)),
        "close": _outcome(client.close),
    }

    def own() -> None:
        with heron.Client(own_dir) as mine:
            mine.create_collection("mine", dimension=DIM)
            mine.insert("mine", [{"id": i, "vector": [float(i)] * DIM} for i in range(100)])
            hits = mine.search("mine", [[1.0] * DIM], limit=3, filter="id < 50")
            assert len(hits[0]) == 3, hits

    out["own"] = _outcome(own)
    out["writes_to_parent_dir"] = seen
    return out


def _forked_child(client: heron.Client, data: str, own_dir: str, w: int) -> None:
    """Body of an ``os.fork()`` child: report on the pipe, then exit normally (exit handlers run)."""
    report = child_work(client, data, own_dir)
    with os.fdopen(w, "w") as pipe:
        pipe.write(json.dumps(report))
    sys.exit(0)


def fork_children(client: heron.Client, data: str, scratch: str, n: int) -> list[tuple[int, int]]:
    kids = []
    for i in range(n):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                _forked_child(client, data, os.path.join(scratch, f"child{i}"), w)
            except SystemExit:
                raise  # the ordinary way out: the interpreter's exit handlers run
            except BaseException:
                traceback.print_exc()
                os._exit(3)  # never run the parent's code in the child
        os.close(w)
        kids.append((pid, r))
    return kids


def collect(kids: list[tuple[int, int]]) -> list[dict[str, Any]]:
    out = []
    for pid, r in kids:
        with os.fdopen(r) as pipe:
            text = pipe.read()
        _, status = os.waitpid(pid, 0)
        report = json.loads(text) if text else {"pid": pid, "no_report": True}
        report["exit"] = os.waitstatus_to_exitcode(status)
        out.append(report)
    return out


def _mp_target(client: Any, data: str, own_dir: str, q: Any) -> None:
    if client is None:  # spawn: nothing is inherited; the child imports Heron afresh
        report: dict[str, Any] = {
            "pid": os.getpid(),
            "reopen": _outcome(lambda: heron.Client(data)),
        }
        report["own"] = _outcome(lambda: heron.Client(own_dir).close())
    else:
        report = child_work(client, data, own_dir)
    q.put(report)


def mp_children(method: str, client: heron.Client, data: str, scratch: str, n: int) -> list[dict[str, Any]]:
    ctx = mp.get_context(method)
    q = ctx.Queue()
    procs = [
        ctx.Process(
            target=_mp_target,
            args=(client if method == "fork" else None, data, os.path.join(scratch, f"mp{i}"), q),
        )
        for i in range(n)
    ]
    for p in procs:
        p.start()
    reports = [q.get(timeout=120) for _ in procs]
    for p, rep in zip(procs, reports):
        p.join(60)
        rep["exit"] = p.exitcode
    return reports


def lock_seen_by_another_process(data: str) -> str:
    """What a fresh, unrelated process gets when it opens ``data`` now."""
    code = (
        "import sys, heron\n"
        "try:\n    heron.Client(sys.argv[1]).close()\nexcept heron.DataDirLockedError:\n    print('locked')\n"
        "else:\n    print('opened')\n"
    )
    res = subprocess.run([sys.executable, "-c", code, data], capture_output=True, text=True, timeout=120)
    return res.stdout.strip() or res.stderr[-500:]


def main() -> None:
    scenario, data, scratch = sys.argv[1], sys.argv[2], sys.argv[3]
    client = heron.Client(data)
    client.create_collection(COLLECTION, dimension=DIM, primary_field_name="id", vector_field_name="vec")
    insert_range(client, 0, 2500)
    children: list[dict[str, Any]] = []
    if scenario == "fork":
        kids = fork_children(client, data, scratch, 2)
        insert_range(client, 2500, 5000)  # while the children try the inherited engine
        children = collect(kids)
    elif scenario == "preload":
        # as a pre-forking web server: the master opens the client at import, the workers fork from it
        kids = fork_children(client, data, scratch, 3)
        insert_range(client, 2500, 5000)
        children = collect(kids)
    elif scenario in ("mp-fork", "mp-spawn"):
        method = scenario.split("-")[1]
        children = mp_children(method, client, data, scratch, 2)
        insert_range(client, 2500, 5000)
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
    lock_after_children = lock_seen_by_another_process(data)
    insert_range(client, 5000, 7500)
    client.create_collection("after", dimension=DIM)  # a catalog write after the children exited
    client.insert("after", [{"id": 1, "vector": [0.5] * DIM}])
    acknowledged = client.query(COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"]
    client.close()
    print(
        json.dumps(
            {
                "children": children,
                "lock_after_children": lock_after_children,
                "acknowledged": acknowledged,
                "parent": os.getpid(),
            }
        )
    )


if __name__ == "__main__":
    main()
