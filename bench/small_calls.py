"""The cost of a small call: get by one id (calls/s) and numpy-column inserts (rows/s), embedded.

Run: ``python -m bench.small_calls [--rows N] [--dim D] [--batch B] [--seconds S] [--rounds R] [--quick]
[--against SRC] [--out FILE]``

Each round creates a collection (INT64 ``id``, FLOAT_VECTOR ``vector`` with an
HNSW index defined first, VARCHAR ``tag``, INT64 ``bucket``, DOUBLE ``score``),
inserts ``N`` rows from numpy columns in calls of ``B`` rows (only the insert
calls are timed), flushes, waits until the index is built, then calls
``get(ids=[k], output_fields=["id", "tag", "bucket", "score"])`` with random
keys for ``S`` seconds. It does so with the blocking `heron.Client` and with
`heron.AsyncClient` (which runs the engine off the event loop, on worker
threads). The table gives each figure's best and median round.

``--against SRC`` also runs the same rounds with the Heron whose ``src``
folder is ``SRC`` (another checkout), taking turns round by round in fresh
processes, so both see the same load: the table then has both columns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

OUTPUT = ["id", "tag", "bucket", "score"]


def _columns(n: int, dim: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    return {
        "id": np.arange(n, dtype=np.int64),
        "vector": rng.standard_normal((n, dim), dtype=np.float32),
        "tag": np.array([f"t{i % 100:03d}" for i in range(n)], dtype=object),
        "bucket": rng.integers(0, 100, n, dtype=np.int64),
        "score": rng.random(n),
    }


def _setup(client: Any, name: str, dim: int) -> tuple[Any, Any]:
    import heron

    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("tag", heron.DataType.VARCHAR, max_length=16)
    s.add_field("bucket", heron.DataType.INT64)
    s.add_field("score", heron.DataType.DOUBLE)
    idx = client.prepare_index_params()
    idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 64})
    return s, idx


def _indexed(describe: Any) -> bool:
    return int(describe.get("pending_index_rows", 0)) == 0


def one_round(kind: str, n: int, dim: int, batch: int, seconds: float) -> dict[str, float]:
    """Insert rows/s and get calls/s of one round with the ``kind`` ("sync" or "async") client."""
    import heron

    cols = _columns(n, dim)
    keys = np.random.default_rng(11).integers(0, n, 100_000).tolist()
    workdir = tempfile.mkdtemp(prefix="heron-small-calls-")
    try:
        if kind == "sync":
            return _sync(heron.Client(os.path.join(workdir, "db")), cols, keys, n, dim, batch, seconds)
        return asyncio.run(_async(heron.AsyncClient(os.path.join(workdir, "db")), cols, keys, n, dim, batch, seconds))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _sync(c: Any, cols: dict[str, Any], keys: list[int], n: int, dim: int, batch: int,
          seconds: float) -> dict[str, float]:
    s, idx = _setup(c, "c", dim)
    c.create_collection("c", schema=s, index_params=idx)
    spent = 0.0
    for lo in range(0, n, batch):
        part = {k: v[lo : lo + batch] for k, v in cols.items()}
        t = time.perf_counter()
        c.insert("c", part)
        spent += time.perf_counter() - t
    c.flush("c")
    while not _indexed(c.describe_index("c", c.list_indexes("c")[0])):
        time.sleep(0.05)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for k in keys[calls % len(keys) : calls % len(keys) + 500]:
            if len(c.get("c", ids=[k], output_fields=OUTPUT)) != 1:
                raise AssertionError(f"key {k} not found")
        calls += 500
    c.close()
    return {"insert_rows_per_s": n / spent, "get_calls_per_s": calls / elapsed}


async def _async(c: Any, cols: dict[str, Any], keys: list[int], n: int, dim: int, batch: int,
                 seconds: float) -> dict[str, float]:
    s, idx = _setup(c, "c", dim)
    await c.create_collection("c", schema=s, index_params=idx)
    spent = 0.0
    for lo in range(0, n, batch):
        part = {k: v[lo : lo + batch] for k, v in cols.items()}
        t = time.perf_counter()
        await c.insert("c", part)
        spent += time.perf_counter() - t
    await c.flush("c")
    while not _indexed(await c.describe_index("c", (await c.list_indexes("c"))[0])):
        await asyncio.sleep(0.05)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for k in keys[calls % len(keys) : calls % len(keys) + 200]:
            if len(await c.get("c", ids=[k], output_fields=OUTPUT)) != 1:
                raise AssertionError(f"key {k} not found")
        calls += 200
    await c.close()
    return {"insert_rows_per_s": n / spent, "get_calls_per_s": calls / elapsed}


def _in_process(src: str | None, kind: str, n: int, dim: int, batch: int, seconds: float) -> dict[str, float]:
    """One round in a fresh process importing Heron from ``src`` (None: this checkout's)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src or os.path.join(here, "src"), here]))
    code = (f"import json, bench.small_calls as b; "
            f"print(json.dumps(b.one_round({kind!r}, {n}, {dim}, {batch}, {seconds})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(n: int, dim: int, batch: int, seconds: float, rounds: int, against: str | None = None,
        log: Any = print) -> dict[str, Any]:
    """Every round's figures, and the best and median, per client kind (and per tree, with ``against``).

    Also the load average before and after.
    """
    trees = {"this": None} if against is None else {"this": None, "against": against}
    every: dict[str, dict[str, dict[str, list[float]]]] = {t: {} for t in trees}
    load = [os.getloadavg()[0]]
    for r in range(rounds):
        order = list(trees.items()) if r % 2 == 0 else list(reversed(trees.items()))  # each goes first in turn
        for tree, src in order:
            for kind in ("sync", "async"):
                got = _in_process(src, kind, n, dim, batch, seconds)
                log(f"round {r + 1}/{rounds} {tree} {kind}: insert {got['insert_rows_per_s']:,.0f} rows/s, "
                    f"get {got['get_calls_per_s']:,.0f} calls/s")
                mine = every[tree].setdefault(kind, {})
                for k, v in got.items():
                    mine.setdefault(k, []).append(v)
    load.append(os.getloadavg()[0])
    pick = lambda f: {t: {k: {m: f(v) for m, v in d.items()} for k, d in kinds.items()}  # noqa: E731
                      for t, kinds in every.items()}
    return {"rows": n, "dim": dim, "batch": batch, "seconds": seconds, "rounds": rounds, "against": against,
            "every": every, "best": pick(max), "median": pick(statistics.median), "load": load}


def table(res: dict[str, Any]) -> str:
    trees = list(res["best"])
    lines = [
        f"{res['rows']:,} rows x {res['dim']} dims in calls of {res['batch']:,} rows (HNSW defined first); "
        f"get: one id per call, {len(OUTPUT)} scalar output fields, {res['seconds']:g} s per round; "
        f"{res['rounds']} rounds; {os.cpu_count()} cores, load average {res['load'][0]:.2f} -> {res['load'][1]:.2f}.",
        "",
        "| figure | " + " | ".join(f"{t}: best | {t}: median" for t in trees) + " |",
        "|---|" + "---:|---:|" * len(trees),
    ]
    for kind in ("sync", "async"):
        name = "Client" if kind == "sync" else "AsyncClient"
        for key, label in (("insert_rows_per_s", "insert, numpy columns (rows/s)"),
                           ("get_calls_per_s", "get by one id (calls/s)")):
            vals = [f"{res[m][t][kind][key]:,.0f}" for t in trees for m in ("best", "median")]
            lines.append(f"| {name} {label} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=None, help="rows (default 100,000; --quick 10,000)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per insert call")
    ap.add_argument("--seconds", type=float, default=None, help="seconds of gets per round (default 3; --quick 0.5)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; --quick 1)")
    ap.add_argument("--quick", action="store_true", help="a smoke run")
    ap.add_argument("--against", default=None, help="the src folder of another Heron to measure alongside")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    res = run(args.rows or (10_000 if args.quick else 100_000), args.dim, args.batch,
              args.seconds or (0.5 if args.quick else 3.0), args.rounds or (1 if args.quick else 3), args.against)
    text = table(res)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
