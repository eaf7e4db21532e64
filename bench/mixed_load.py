"""Search latency under a mixed load: p50/p99 while inserts run at half the maximum rate, against a quiet collection.

Run: ``python -m bench.mixed_load [--modes embedded,server] [--rows N] [--dim D] [--callers C]
[--seconds T] [--batch B] [--out bench/results/mixed.md]``

Per mode, on a fresh database:

1. a collection with an HNSW index (M 16, efConstruction 200, COSINE) defined first gets ``N``
   clustered vectors, is flushed, and is waited on until the index covers every row;
2. **max insert rate**: the inserter's client inserts calls of ``B`` rows as fast as it can into a
   scratch collection with the same schema and index, alone, for a few seconds (then the scratch
   collection is dropped and its background work settles);
3. **quiet**: ``C`` asyncio callers search one query per call (k 10, ef 64) for ``T`` seconds;
4. **mixed**: the same callers for ``T`` seconds while the inserter inserts calls of ``B`` rows
   paced at half the maximum rate into the searched collection, until ``--mixed-rows`` rows (by
   default ``N``: the collection doubles; 0 for no limit) or the end of the phase, so its rows are
   sealed, merged and indexed in the background while the searches run.

The report gives each phase's searches/s, p50 and p99 and the mixed/quiet p99 ratio (target: at most
5x). ``embedded``: the callers share one ``heron.AsyncClient`` on the database directory and the
inserter is a ``heron.Client`` on the same directory (numpy columns) in a thread of the same
process. ``server``: ``heron serve`` runs on a free loopback port, the callers share one
``pymilvus.AsyncMilvusClient`` and the inserter is a ``pymilvus.MilvusClient`` (row dicts) in a
process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
NAME = "mixed"
SCRATCH = "mixed_rate"
K = 10
EF = 64
WINDOW = 5.0  # seconds per point of a phase's timeline (searches/s and p99 per window)


def clustered(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` unit vectors around 256 centres (the centres are the same for every seed)."""
    centres = np.random.default_rng(12345).standard_normal((256, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.35 * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype=np.float32)


class Inserter:
    """Inserts calls of ``batch`` rows with ids from ``start``: as fast as it can, or paced at ``rate`` rows/s."""

    def __init__(self, client: Any, dim: int, batch: int, *, rows_as_dicts: bool, start: int = 10**9) -> None:
        self.client, self.dim, self.batch, self.dicts = client, dim, batch, rows_as_dicts
        self.next_id = start
        self.seed = 100

    def _one(self, collection: str) -> None:
        ids = np.arange(self.next_id, self.next_id + self.batch, dtype=np.int64)
        x = clustered(self.batch, self.dim, self.seed)
        self.seed += 1
        self.next_id += self.batch
        if self.dicts:
            self.client.insert(collection, [{"id": int(i), "vec": v} for i, v in zip(ids.tolist(), x)])
        else:
            self.client.insert(collection, {"id": ids, "vec": x})

    def run(self, collection: str, seconds: float, rate: float | None = None,
            stop: threading.Event | None = None, most: int = 0) -> dict[str, float]:
        """Insert for ``seconds``, until ``stop`` or until ``most`` rows (0: no limit); rows, seconds, rows/s."""
        rows = 0
        t0 = time.perf_counter()
        due = t0
        while True:
            now = time.perf_counter()
            if now - t0 >= seconds or (stop is not None and stop.is_set()) or (most and rows >= most):
                break
            if rate is not None and due > now:
                time.sleep(min(due - now, t0 + seconds - now))
                continue
            self._one(collection)
            rows += self.batch
            if rate is not None:
                due = max(due + self.batch / rate, time.perf_counter() - 1.0)  # at most 1 s of catching up
        elapsed = time.perf_counter() - t0
        return {"rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed}


def define(client: Any, name: str, dim: int, pymilvus_api: bool) -> None:
    """Create ``name`` with an HNSW index defined first (heron.Client and pymilvus share the calls)."""
    if pymilvus_api:
        from pymilvus import DataType
    else:
        from heron import DataType
    if client.has_collection(name):
        client.drop_collection(name)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index("vec", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
    client.create_collection(name, schema=schema, index_params=params)


def wait_indexed(client: Any, name: str, limit: float = 900.0) -> float:
    t0 = time.perf_counter()
    client.flush(name)
    index = client.list_indexes(name)[0]
    while time.perf_counter() - t0 < limit:
        if int(client.describe_index(name, index).get("pending_index_rows", 0)) == 0:
            break
        time.sleep(0.2)
    return time.perf_counter() - t0


async def searches(client: Any, queries: np.ndarray, callers: int, seconds: float) -> dict[str, Any]:
    """``callers`` tasks searching one query per call for ``seconds``: searches/s, p50, p99 (ms)."""
    lat: list[float] = []
    ends: list[float] = []
    sp = {"params": {"ef": EF}}
    nq = len(queries)
    counter = iter(range(10**12))

    async def caller() -> None:
        while time.perf_counter() < end:
            i = next(counter) % nq
            t = time.perf_counter()
            res = await client.search(NAME, data=[queries[i]], limit=K, search_params=sp)
            lat.append(time.perf_counter() - t)
            ends.append(time.perf_counter() - t0)
            assert len(res[0]) == K

    end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - t0
    ms = np.asarray(lat) * 1000
    window = np.minimum((np.asarray(ends) // WINDOW).astype(int), max(0, int(elapsed // WINDOW) - 1))
    timeline = [(float(np.sum(window == w) / WINDOW), float(np.percentile(ms[window == w], 99)))
                for w in range(int(window.max()) + 1) if np.any(window == w)]
    return {"searches": len(lat), "qps": len(lat) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "timeline": [{"qps": round(q, 1), "p99_ms": round(p, 1)} for q, p in timeline]}


def insert_worker(argv: list[str]) -> None:
    """``--insert-worker URI COLLECTION SECONDS RATE BATCH DIM START MOST``: a paced pymilvus inserter (server mode)."""
    from pymilvus import MilvusClient

    uri, coll, seconds, rate, batch, dim, start, most = argv
    client = MilvusClient(uri=uri)
    ins = Inserter(client, int(dim), int(batch), rows_as_dicts=True, start=int(start))
    out = ins.run(coll, float(seconds), float(rate) if float(rate) > 0 else None, most=int(most))
    client.close()
    print(json.dumps(out), flush=True)


def _worker(uri: str, coll: str, seconds: float, rate: float, batch: int, dim: int, start: int, most: int = 0
            ) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.mixed_load", "--insert-worker", uri, coll, str(seconds), str(rate),
         str(batch), str(dim), str(start), str(most)], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the insert worker failed with exit status {proc.returncode}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import heron

    base = clustered(args.rows, args.dim, 1)
    queries = clustered(1000, args.dim, 2)
    out: dict[str, Any] = {"mode": mode}
    server = None
    if mode == "server":
        from pymilvus import AsyncMilvusClient, MilvusClient

        from bench.server_bench import start_server

        server = start_server("heron", workdir)
        uri = server.uri
        sync: Any = MilvusClient(uri=uri)
    else:
        uri = str(workdir / "embedded")
        sync = heron.Client(uri)
    try:
        pym = mode == "server"
        define(sync, NAME, args.dim, pym)
        loader = Inserter(sync, args.dim, 10_000, rows_as_dicts=False, start=0)
        for lo in range(0, args.rows, 10_000):
            n = min(10_000, args.rows - lo)
            ids = np.arange(lo, lo + n, dtype=np.int64)
            if pym:
                sync.insert(NAME, [{"id": int(i), "vec": v} for i, v in zip(ids.tolist(), base[lo:lo + n])])
            else:
                sync.insert(NAME, {"id": ids, "vec": base[lo:lo + n]})
        del loader
        out["index_s"] = wait_indexed(sync, NAME)
        print(f"{mode}: {args.rows:,} rows indexed ({out['index_s']:.1f} s after the last insert)", flush=True)

        define(sync, SCRATCH, args.dim, pym)
        if pym:
            out["max_insert"] = _result(_worker(uri, SCRATCH, args.rate_seconds, 0, args.batch, args.dim, 0))
        else:
            out["max_insert"] = Inserter(sync, args.dim, args.batch, rows_as_dicts=False, start=0).run(
                SCRATCH, args.rate_seconds)
        sync.drop_collection(SCRATCH)
        rate = out["max_insert"]["rows_per_s"] / 2
        out["target_rate"] = rate
        print(f"{mode}: max insert {out['max_insert']['rows_per_s']:,.0f} rows/s; mixed phase at {rate:,.0f}",
              flush=True)
        time.sleep(2.0)

        async def phases() -> None:
            client: Any = AsyncMilvusClient(uri=uri) if pym else heron.AsyncClient(uri)
            try:
                await searches(client, queries, args.callers, 2.0)  # warm-up
                out["quiet"] = await searches(client, queries, args.callers, args.quiet_seconds or args.seconds)
                print(f"{mode}: quiet {out['quiet']}", flush=True)
                stop = threading.Event()
                if pym:
                    proc = _worker(uri, NAME, args.seconds, rate, args.batch, args.dim, 10**9, args.mixed_rows)
                    out["mixed"] = await searches(client, queries, args.callers, args.seconds)
                    out["inserted"] = await asyncio.to_thread(_result, proc)
                else:
                    ins = Inserter(heron.Client(uri), args.dim, args.batch, rows_as_dicts=False)
                    task = asyncio.ensure_future(
                        asyncio.to_thread(ins.run, NAME, args.seconds, rate, stop, args.mixed_rows))
                    out["mixed"] = await searches(client, queries, args.callers, args.seconds)
                    stop.set()
                    out["inserted"] = await task
                print(f"{mode}: mixed {out['mixed']}; inserted {out['inserted']}", flush=True)
            finally:
                await client.close()

        asyncio.run(phases())
        out["p99_ratio"] = out["mixed"]["p99_ms"] / out["quiet"]["p99_ms"]
        out["p50_ratio"] = out["mixed"]["p50_ms"] / out["quiet"]["p50_ms"]
        out["settle_s"] = wait_indexed(sync, NAME, 120.0)
    finally:
        sync.close()
        if server is not None:
            server.stop()
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = [
        f"Rows: {args.rows:,} x {args.dim} (clustered, COSINE), HNSW M 16 efConstruction 200 defined first; "
        f"{args.callers} asyncio callers, one query per call, k {K}, ef {EF}, {args.seconds:g} s per phase; "
        f"inserts in calls of {args.batch:,} rows at half the maximum rate; machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| mode | max insert (rows/s) | mixed insert (rows/s) | rows inserted | quiet: searches/s | p50 (ms) "
        "| p99 (ms) | mixed: searches/s | p50 (ms) | p99 (ms) | p99 mixed / quiet |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        q, m = r["quiet"], r["mixed"]
        lines.append(
            f"| {r['mode']} | {r['max_insert']['rows_per_s']:,.0f} | {r['inserted']['rows_per_s']:,.0f} "
            f"| {r['inserted']['rows']:,} | {q['qps']:,.0f} | {q['p50_ms']:.1f} | {q['p99_ms']:.1f} "
            f"| {m['qps']:,.0f} | {m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {r['p99_ratio']:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--insert-worker"]:
        insert_worker(argv[1:])
        return
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--modes", default="embedded,server")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--callers", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of searches per phase")
    ap.add_argument("--quiet-seconds", type=float, default=None, help="seconds of the quiet phase (default: --seconds)")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--mixed-rows", type=int, default=None,
                    help="most rows the mixed phase inserts (default: --rows, doubling the collection; 0: no limit)")
    ap.add_argument("--rate-seconds", type=float, default=3.0, help="seconds of inserts measuring the max rate")
    ap.add_argument("--out", help="write the report (markdown) and a .json beside it")
    args = ap.parse_args(argv)
    if args.mixed_rows is None:
        args.mixed_rows = args.rows
    workdir = Path(tempfile.mkdtemp(prefix="heron-mixed-"))
    results = []
    try:
        for mode in args.modes.split(","):
            results.append(run_mode(mode.strip(), args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, args)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
