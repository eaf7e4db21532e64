"""What counting calls for ``/metrics`` costs a search: `heron serve` with the HTTP port against without it.

Two servers run side by side in one run, one with ``--http-port`` (every call
counted: calls by method and status, a latency histogram) and one without,
with the same data (synthetic gaussian vectors, FLAT/IP so the search itself
is cheap and the per-call overhead shows). A scraper reads ``/metrics`` once
a second from the first, as a busy Prometheus would. The servers take turns
round by round (single caller with `pymilvus.MilvusClient`, then 16
concurrent callers with `pymilvus.AsyncMilvusClient`), and the median QPS of
the rounds is reported with the ratio on/off (goal: at least 0.95), with the server's CPU time
per search (steadier than QPS on a loaded machine).

On a shared machine whose load moves from second to second, taking turns
measures the load more than the metrics. ``--together`` runs the servers at
the same time instead, each driven by a caller process of its own (16
concurrent searches each), so whatever else runs on the machine slows all of
them alike, and reports each round's QPS ratio. A third server, also without
metrics, runs beside them as a control: its ratio to the first server without
metrics is the noise floor of the measurement (1.00 would be none).

    python -m bench.metrics_overhead --together --rounds 10 --seconds 5

    python -m bench.metrics_overhead                       # writes bench/results/metrics_overhead.md
    python -m bench.metrics_overhead --n 5000 --rounds 3 --seconds 2   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _start(data: str, http: bool) -> tuple[subprocess.Popen[bytes], int, str, Path]:
    log = Path(data + ".log")
    cmd = [sys.executable, "-m", "heron", "serve", "--data", data, "--port", "0"]
    if http:
        cmd += ["--http-port", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    end = time.monotonic() + 120
    while time.monotonic() < end:
        text = log.read_text(errors="replace")
        m = re.search(r"on 127\.0\.0\.1:(\d+)", text)
        if m:
            h = re.search(r"http at (http://127\.0\.0\.1:\d+)", text)
            return proc, int(m.group(1)), h.group(1) if h else "", log
        if proc.poll() is not None:
            raise SystemExit(f"heron serve exited: {text[-2000:]}")
        time.sleep(0.05)
    raise SystemExit("heron serve did not start")


def _load(uri: str, vectors: np.ndarray) -> None:
    from pymilvus import MilvusClient

    c = MilvusClient(uri)
    c.create_collection("bench", dimension=vectors.shape[1], metric_type="IP", auto_id=False)
    c.release_collection("bench")
    c.drop_index("bench", "vector")
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="IP")
    c.create_index("bench", idx)
    c.load_collection("bench")
    for s in range(0, len(vectors), 5000):
        c.insert("bench", [{"id": s + i, "vector": v} for i, v in enumerate(vectors[s:s + 5000].tolist())])
    c.flush("bench")
    c.close()


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) the process has used (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _single(uri: str, queries: np.ndarray, seconds: float) -> tuple[float, int]:
    from pymilvus import MilvusClient

    c = MilvusClient(uri)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        c.search("bench", [queries[n % len(queries)].tolist()], limit=10)
        n += 1
    qps = n / (time.perf_counter() - start)
    c.close()
    return qps, n


def _concurrent(uri: str, queries: np.ndarray, seconds: float, tasks: int) -> tuple[float, int]:
    from pymilvus import AsyncMilvusClient

    async def run() -> tuple[float, int]:
        c = AsyncMilvusClient(uri)
        done = 0
        end = time.perf_counter() + seconds

        async def caller(i: int) -> None:
            nonlocal done
            while time.perf_counter() < end:
                await c.search("bench", [queries[(i + done) % len(queries)].tolist()], limit=10)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller(i) for i in range(tasks)))
        qps = done / (time.perf_counter() - start)
        await c.close()
        return qps, done

    return asyncio.run(run())


def _drive(uri: str, dim: int, seconds: float, tasks: int, start_at: float) -> int:
    """In a process of its own: `tasks` concurrent searches from `start_at` (time.time) for `seconds`; how many."""
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    queries = np.random.default_rng(1).standard_normal((256, dim)).astype(np.float32)
    return _concurrent(uri, queries, seconds, tasks)[1]


def _together(servers: dict[str, Any], dim: int, args: argparse.Namespace) -> list[str]:
    """Every server at once, each with a caller process of its own; per round QPS ratios to "metrics off"."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    names = list(servers)
    qps: dict[str, list[float]] = {k: [] for k in names}
    cpu = {k: 0.0 for k in names}
    calls = {k: 0 for k in names}
    for r in range(args.rounds):
        # Fresh caller processes each round (pymilvus keeps connections per process between clients),
        # started together once they have imported pymilvus.
        with ProcessPoolExecutor(len(names), mp_context=get_context("spawn")) as pool:
            before = {k: _cpu(servers[k][0].pid) for k in names}
            start_at = time.time() + 8.0
            futs = {k: pool.submit(_drive, servers[k][1], dim, args.seconds, args.tasks, start_at) for k in names}
            done = {k: f.result() for k, f in futs.items()}
            for k in names:
                cpu[k] += _cpu(servers[k][0].pid) - before[k]
                calls[k] += done[k]
                qps[k].append(done[k] / args.seconds)
            print(f"round {r + 1}: " + ", ".join(f"{k}: {qps[k][-1]:.0f} QPS" for k in names), flush=True)
    ratio = {k: [a / b for a, b in zip(qps[k], qps["metrics off"])] for k in names}
    lines = [
        "| server | QPS, median of rounds | QPS / metrics off, median of rounds (min-max) | "
        "server CPU per search (µs) |",
        "|---|---:|---:|---:|",
    ]
    for k in names:
        r_ = ratio[k]
        lines.append(f"| {k} | {statistics.median(qps[k]):,.0f} | {statistics.median(r_):.3f} "
                     f"({min(r_):.2f}-{max(r_):.2f}) | {cpu[k] / max(calls[k], 1) * 1e6:,.0f} |")
    return lines


def _scrape(url: str, stop: threading.Event, times: list[float], every: float) -> None:
    while not stop.wait(every):
        start = time.perf_counter()
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            r.read()
        times.append(time.perf_counter() - start)


def _observe_cost(calls: int = 200_000) -> float:
    """Microseconds one counted call adds in the server (`Metrics.observe`), measured in this process."""
    from heron.server._metrics import Metrics

    m = Metrics(lambda: None, lambda: 0)
    start = time.perf_counter()
    for _ in range(calls):
        m.observe("Search", True, 0.001)
    return (time.perf_counter() - start) / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--tasks", type=int, default=16)
    ap.add_argument("--scrape-every", type=float, default=1.0, help="seconds between scrapes of /metrics")
    ap.add_argument("--together", action="store_true",
                    help="run the servers at the same time (with a control server) instead of taking turns")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "metrics_overhead.md"))
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    queries = rng.standard_normal((256, args.dim)).astype(np.float32)
    tmp = tempfile.mkdtemp(prefix="heron-metrics-bench-")
    servers: dict[str, Any] = {}
    try:
        modes = [("metrics on", True), ("metrics off", False)]
        if args.together:
            modes.append(("metrics off (control)", False))
        for name, http in modes:
            proc, port, url, _ = _start(os.path.join(tmp, name.replace(" ", "_")), http)
            servers[name] = (proc, f"http://127.0.0.1:{port}", url)
            _load(servers[name][1], vectors)
        stop, scrapes = threading.Event(), list[float]()
        scraper = threading.Thread(target=_scrape, args=(servers["metrics on"][2], stop, scrapes, args.scrape_every),
                                   daemon=True)
        scraper.start()
        if args.together:
            table = _together(servers, args.dim, args)
            stop.set()
            scraper.join()
            return _write_together(args, table, scrapes)
        single: dict[str, list[float]] = {k: [] for k in servers}
        conc: dict[str, list[float]] = {k: [] for k in servers}
        cpu = {k: 0.0 for k in servers}
        calls = {k: 0 for k in servers}
        for r in range(args.rounds):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in order:
                pid = servers[name][0].pid
                before = _cpu(pid)
                qps, n1 = _single(servers[name][1], queries, args.seconds)
                single[name].append(qps)
                qps, n2 = _concurrent(servers[name][1], queries, args.seconds, args.tasks)
                conc[name].append(qps)
                cpu[name] += _cpu(pid) - before
                calls[name] += n1 + n2
            print(f"round {r + 1}: " + ", ".join(
                f"{k}: {single[k][-1]:.0f} / {conc[k][-1]:.0f} QPS" for k in servers), flush=True)
        stop.set()
        scraper.join()
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            proc.wait(60)
    med = {k: (statistics.median(single[k]), statistics.median(conc[k]), cpu[k] / calls[k] * 1e6) for k in servers}
    on, off = med["metrics on"], med["metrics off"]
    setup = (f"{args.n:,} x {args.dim} dims, FLAT/IP, k=10; {args.rounds} rounds of {args.seconds:g} s per mode, "
             f"servers taking turns; median of the rounds; /metrics scraped every {args.scrape_every:g} s "
             f"({len(scrapes)} scrapes, median {statistics.median(scrapes or [0.0]) * 1e3:.1f} ms each).")
    return _write(args, "", setup, [
        f"| server | single caller (QPS) | {args.tasks} concurrent callers (QPS) | server CPU per search (µs) |",
        "|---|---:|---:|---:|",
        f"| metrics on (--http-port) | {on[0]:,.0f} | {on[1]:,.0f} | {on[2]:,.0f} |",
        f"| metrics off | {off[0]:,.0f} | {off[1]:,.0f} | {off[2]:,.0f} |",
        f"| on / off | {on[0] / off[0]:.3f} | {on[1] / off[1]:.3f} | {on[2] / off[2]:.3f} |",
    ])


def _write_together(args: argparse.Namespace, table: list[str], scrapes: list[float]) -> int:
    setup = (f"{args.n:,} x {args.dim} dims, FLAT/IP, k=10; {args.rounds} rounds of {args.seconds:g} s; in each "
             f"round every server is searched at the same time by a caller process of its own ({args.tasks} "
             f"concurrent searches, pymilvus.AsyncMilvusClient); /metrics scraped every {args.scrape_every:g} s "
             f"from the server with metrics ({len(scrapes)} scrapes, median "
             f"{statistics.median(scrapes or [0.0]) * 1e3:.1f} ms each). The control is a second server without "
             "metrics: its ratio is the noise of the measurement.")
    return _write(args, ", servers side by side", setup, table)


def _write(args: argparse.Namespace, title: str, setup: str, table: list[str]) -> int:
    """Print the report and write it to ``--out``."""
    lines = [
        f"# Search QPS through `heron serve` with metrics on and off{title}",
        "",
        f"{setup} Machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        *table,
        "",
        f"Counting one call (`Metrics.observe`: a counter and a histogram) costs {_observe_cost():.1f} µs.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
