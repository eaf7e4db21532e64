"""Search throughput through the Milvus protocol: `heron serve` against a Milvus Lite server.

Both servers run as subprocesses on free loopback ports on this machine, in the
same run, and get the same data (synthetic gaussian clusters, by default
100,000 x 128, cosine) through the same `pymilvus.MilvusClient` code, with an
HNSW index (M=16, efConstruction=200). Then, for each server:

- single caller: `pymilvus.MilvusClient.search`, one query at a time;
- 32 concurrent callers: `pymilvus.AsyncMilvusClient`, 32 asyncio tasks;
- 32 concurrent callers: `heron.AsyncClient(uri="http://...")`, 32 asyncio tasks.

Every search asks for k=10 with ef=64. Every measurement stops at a query count
or a time limit, whichever comes first, so a slow server costs its own
figures and nothing else. Recall@10 against exact ground truth is reported with
each figure.

    python -m bench.server_bench                    # full run, writes bench/results/server.{md,json}
    python -m bench.server_bench --n 20000 --dim 64 --seconds 5   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench._datasets import Dataset, DatasetSpec, load, prepare
from bench._measure import Budget, Throughput, async_calls, poll_until, timed_calls

ROOT = Path(__file__).resolve().parent.parent
NAME = "server_bench"
K = 10


@dataclass
class ServerProc:
    """A server subprocess on a loopback port, its data directory and its log."""

    system: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float | None:
        """Resident memory of the server process (Linux), in MiB."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_server(system: str, workdir: Path) -> ServerProc:
    """Start ``heron serve`` or ``milvus-lite server`` and wait until its port answers."""
    port = _free_port()
    data = workdir / f"{system}-data"
    if system == "heron":
        cmd = [sys.executable, "-m", "heron", "serve", "--data", str(data), "--host", "127.0.0.1"]
    else:
        cmd = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data), "--host", "127.0.0.1"]
    log = workdir / f"{system}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = ServerProc(system, proc, port, log)
    if (
        poll_until(lambda: _port_open(port) or proc.poll() is not None, 60, 0.1) is None
        or proc.poll() is not None
    ):
        server.stop()
        raise RuntimeError(f"{system} server did not start: {log.read_text()[-2000:]}")
    return server


def load_data(uri: str, ds: Dataset, m: int, ef_construction: int, batch: int = 5000) -> dict[str, float]:
    """Create the collection with pymilvus, insert every row, wait for the index, load it."""
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri=uri)
    try:
        if client.has_collection(NAME):
            client.drop_collection(NAME)
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=ds.dim)
        params = client.prepare_index_params()
        params.add_index(
            field_name="vector",
            index_type="HNSW",
            metric_type=ds.metric,
            params={"M": m, "efConstruction": ef_construction},
        )
        client.create_collection(NAME, schema=schema, index_params=params)
        t0 = time.perf_counter()
        for start in range(0, ds.n, batch):
            stop = min(ds.n, start + batch)
            client.insert(NAME, [{"id": i, "vector": ds.vectors[i]} for i in range(start, stop)])
        t1 = time.perf_counter()
        client.flush(NAME)
        index_name = client.list_indexes(NAME)[0]

        def indexed() -> bool:
            return int(client.describe_index(NAME, index_name).get("pending_index_rows", 0)) == 0

        poll_until(indexed, 600, 0.2)
        client.load_collection(NAME)
        t2 = time.perf_counter()
        return {"insert_s": t1 - t0, "index_s": t2 - t1}
    finally:
        client.close()


def _recall(found: list[list[int]], gt: np.ndarray, qidx: list[int]) -> float:
    hits = [len(set(ids) & set(gt[q, :K].tolist())) / K for ids, q in zip(found, qidx)]
    return float(np.mean(hits)) if hits else float("nan")


def _figure(
    kind: str, callers: int, calls: int, elapsed: float, latencies: list[float], recall: float
) -> dict:
    lat = np.asarray(latencies) * 1000 if latencies else np.asarray([np.nan])
    return {
        "client": kind,
        "callers": callers,
        "queries": calls,
        "seconds": round(elapsed, 3),
        "qps": calls / elapsed if elapsed > 0 else float("nan"),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "recall": recall,
    }


def measure_single(uri: str, ds: Dataset, ef: int, budget: Budget) -> dict:
    """One caller, ``pymilvus.MilvusClient.search`` with one query per call."""
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri)
    nq = len(ds.queries)
    sp = {"params": {"ef": ef}}
    try:

        def one(i: int) -> list[int]:
            res = client.search(NAME, data=[ds.queries[i % nq]], limit=K, search_params=sp)
            return [int(h["id"]) for h in res[0]]

        for i in range(3):
            one(i)
        t = timed_calls(one, budget)
    finally:
        client.close()
    return _figure(
        "pymilvus MilvusClient",
        1,
        t.calls,
        t.elapsed,
        t.latencies,
        _recall(t.results, ds.gt, [i % nq for i in range(t.calls)]),
    )


async def _measure_async(
    make: Callable[[], Any], ds: Dataset, ef: int, callers: int, budget: Budget, kind: str
) -> dict:
    client = make()
    nq = len(ds.queries)
    sp = {"params": {"ef": ef}}
    found: dict[int, list[int]] = {}

    async def one(i: int) -> None:
        res = await client.search(NAME, data=[ds.queries[i % nq]], limit=K, search_params=sp)
        found[i] = [int(h["id"]) for h in res[0]]

    try:
        warm: list[Awaitable[None]] = [one(i) for i in range(callers)]
        await asyncio.gather(*warm)
        found.clear()
        t: Throughput = await async_calls(one, callers, budget)
    finally:
        await client.close()
    order = sorted(found)
    recall = _recall([found[i] for i in order], ds.gt, [i % nq for i in order])
    return _figure(kind, callers, t.calls, t.elapsed, t.latencies, recall)


def measure_pymilvus_async(uri: str, ds: Dataset, ef: int, callers: int, budget: Budget) -> dict:
    """``callers`` asyncio tasks sharing one ``pymilvus.AsyncMilvusClient``."""
    from pymilvus import AsyncMilvusClient

    return asyncio.run(
        _measure_async(
            lambda: AsyncMilvusClient(uri=uri), ds, ef, callers, budget, "pymilvus AsyncMilvusClient"
        )
    )


def measure_heron_async(uri: str, ds: Dataset, ef: int, callers: int, budget: Budget) -> dict:
    """``callers`` asyncio tasks sharing one remote ``heron.AsyncClient``."""
    import heron

    return asyncio.run(
        _measure_async(lambda: heron.AsyncClient(uri=uri), ds, ef, callers, budget, "heron.AsyncClient")
    )


def _run_guarded(fn: Callable[[], dict], label: str) -> dict:
    try:
        return fn()
    except Exception as exc:  # a failing peer costs its own figure only
        print(f"  {label}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{v:,.{digits}f}"


def render(result: dict) -> str:
    """The markdown report: one row per (client, callers), Heron against Milvus Lite with the ratio."""
    cfg = result["config"]
    lines = [
        "# Server search throughput: `heron serve` vs Milvus Lite server",
        "",
        f"{cfg['n']:,} x {cfg['dim']} vectors ({cfg['metric']}), HNSW M={cfg['m']} "
        f"efConstruction={cfg['ef_construction']}, search ef={cfg['ef']}, k={K}; one query per call. "
        f"Both servers on this machine in the same run ({result['machine']}), loopback gRPC. "
        f"Each figure stops at {cfg['count']:,} queries or {cfg['seconds']:g} s, whichever comes first.",
        "",
        "| client | callers | heron serve q/s | Milvus Lite q/s | ratio | heron p50 / p99 ms "
        "| Milvus Lite p50 / p99 ms | recall@10 heron / Lite | queries heron / Lite |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, h in result["heron"]["figures"].items():
        lite = result.get("milvus-lite", {}).get("figures", {}).get(key, {})
        hq, lq = h.get("qps"), lite.get("qps")
        ratio = f"{hq / lq:,.0f}x" if hq and lq else "n/a"
        lines.append(
            f"| {h.get('client', key)} | {h.get('callers', '')} | {_fmt(hq)} | {_fmt(lq)} | {ratio} "
            f"| {_fmt(h.get('p50_ms'), 2)} / {_fmt(h.get('p99_ms'), 2)} "
            f"| {_fmt(lite.get('p50_ms'), 1)} / {_fmt(lite.get('p99_ms'), 1)} "
            f"| {_fmt(h.get('recall'), 3)} / {_fmt(lite.get('recall'), 3)} "
            f"| {h.get('queries', 'n/a')} / {lite.get('queries', 'n/a')} |"
        )
    lines += ["", "| | heron serve | Milvus Lite |", "| --- | ---: | ---: |"]
    for label, key in (
        ("insert (s)", "insert_s"),
        ("index + load (s)", "index_s"),
        ("server RSS (MiB)", "rss_mb"),
    ):
        vals = [result.get(s, {}).get("load", {}).get(key) for s in ("heron", "milvus-lite")]
        lines.append(f"| {label} | {_fmt(vals[0])} | {_fmt(vals[1])} |")
    lines += ["", f"Versions: {result['versions']}.", ""]
    errors = {
        f"{s} {k}": f["error"]
        for s in ("heron", "milvus-lite")
        for k, f in result.get(s, {}).get("figures", {}).items()
        if "error" in f
    }
    for where, err in errors.items():
        lines.append(f"- {where}: {err}")
    return "\n".join(lines).rstrip() + "\n"


def _versions() -> str:
    out = []
    for pkg in ("heron", "pymilvus", "milvus-lite", "grpcio"):
        try:
            out.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{pkg} n/a")
    return ", ".join(out)


def bench_system(system: str, ds: Dataset, args: argparse.Namespace, workdir: Path) -> dict:
    """Start one server, load it, take every figure, stop it."""
    print(f"{system}: starting", file=sys.stderr)
    server = start_server(system, workdir)
    budget = Budget(args.count, args.seconds)
    out: dict[str, Any] = {"figures": {}}
    try:
        t0 = time.perf_counter()
        out["load"] = load_data(server.uri, ds, args.m, args.ef_construction)
        print(f"{system}: loaded in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        plan: list[tuple[str, Callable[[], dict]]] = [
            ("pymilvus-1", lambda: measure_single(server.uri, ds, args.ef, budget)),
            ("pymilvus-async", lambda: measure_pymilvus_async(server.uri, ds, args.ef, args.callers, budget)),
            ("heron-async", lambda: measure_heron_async(server.uri, ds, args.ef, args.callers, budget)),
        ]
        for key, fn in plan:
            fig = _run_guarded(fn, f"{system} {key}")
            out["figures"][key] = fig
            print(
                f"{system} {key}: {_fmt(fig.get('qps'))} q/s ({fig.get('queries')} queries)", file=sys.stderr
            )
        out["load"]["rss_mb"] = server.rss_mb()
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--metric", choices=["COSINE", "L2"], default="COSINE", type=str.upper)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--ef", type=int, default=64)
    p.add_argument("--callers", type=int, default=32)
    p.add_argument("--count", type=int, default=20_000, help="most queries per measurement")
    p.add_argument("--seconds", type=float, default=20.0, help="most seconds per measurement")
    p.add_argument("--systems", default="heron,milvus-lite")
    p.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "cache")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)

    spec = DatasetSpec("synthetic", args.n, args.dim, args.queries, args.metric, args.seed)
    ds = load(prepare(spec, args.cache))
    result: dict[str, Any] = {
        "config": {
            "n": ds.n,
            "dim": ds.dim,
            "metric": ds.metric,
            "m": args.m,
            "ef_construction": args.ef_construction,
            "ef": args.ef,
            "callers": args.callers,
            "count": args.count,
            "seconds": args.seconds,
            "dataset": spec.key(),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "versions": _versions(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    workdir = Path(tempfile.mkdtemp(prefix="heron-server-bench-"))
    try:
        for system in args.systems.split(","):
            try:
                result[system] = bench_system(system, ds, args, workdir)
            except Exception as exc:
                print(f"{system}: failed: {exc}", file=sys.stderr)
                result[system] = {"figures": {}, "error": str(exc)[:500]}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.setdefault("heron", {"figures": {}})
    report = render(result)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "server.md").write_text(report)
    (args.out / "server.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
