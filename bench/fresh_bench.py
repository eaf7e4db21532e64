"""Search on fresh data: QPS right after a load, a few seconds and a minute later, never flushed, then after a flush.

Run: ``python -m bench.fresh_bench [--rows N] [--batch B] [--at 0,5,60] [--window S] [--modes off,on] [--no-flush]
[--out FILE]``

The workload is the way Milvus users load data: a collection with an
AUTOINDEX (COSINE) index defined first, rows inserted as numpy columns in
calls of ``B`` rows, and searched at once, one query per call, without a
``flush``. The vectors are the 384-d MiniLM embeddings of
``/work/shared/data/minilm-dev-10k`` (``HERON_BENCH_MINILM`` names another
copy) repeated to ``N`` rows, each copy moved by a little noise and
normalised again, so no two rows are equal; without the data set, random
unit vectors. Queries are the data set's 200 queries (or random ones);
recall@10 is against an exact search of the same rows.

Each mode opens a fresh embedded database: ``off`` with idle sealing and
interim indexes turned off (``HERON_SEAL_IDLE_SECONDS=0``,
``HERON_INTERIM_ROWS=0``: unindexed rows are scanned at every query, growing
ones until a flush), ``on`` with the defaults (idle growing segments sealed
and indexed, fresh rows searched through interim IVF indexes meanwhile). At each point of ``--at`` (seconds after the last
insert returned) single-query searches run for ``--window`` seconds; then the
collection is flushed and measured once more. With each figure the report
gives the rows in growing segments, in sealed segments not yet indexed and in
indexed ones, and what ``describe_index`` said.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import heron

DATA = Path(os.environ.get("HERON_BENCH_MINILM", "/work/shared/data/minilm-dev-10k"))
DIM = 384
K = 10


def load_vectors(rows: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, str]:
    """``(base [rows, 384], queries [nq, 384], source)``: unit vectors, float32."""
    rng = np.random.default_rng(seed)
    if (DATA / "base_f16.npy").exists() and (DATA / "queries.npy").exists():
        base = np.load(DATA / "base_f16.npy").astype(np.float32)
        queries = np.load(DATA / "queries.npy").astype(np.float32)
        reps = -(-rows // len(base))
        parts = [base] + [base + rng.normal(0, 0.02, base.shape).astype(np.float32) for _ in range(reps - 1)]
        x = np.concatenate(parts)[:rows]
        source = f"{DATA.name} x{reps} (copies moved by N(0, 0.02) noise)"
    else:
        x = rng.standard_normal((rows, DIM), dtype=np.float32)
        queries = rng.standard_normal((200, DIM), dtype=np.float32)
        source = "random unit vectors"
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return np.ascontiguousarray(x), np.ascontiguousarray(queries), source


def exact_top(x: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ x.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def layout(c: heron.Client) -> dict[str, int]:
    """Rows in growing segments, in sealed segments without their index, and in indexed segments."""
    out = {"growing": 0, "sealed_unindexed": 0, "indexed": 0}
    for s in c.list_loaded_segments("fresh"):
        key = "growing" if s.state == "Growing" else ("indexed" if s.index_name else "sealed_unindexed")
        out[key] += s.num_rows
    return out


def thread_cpu() -> dict[str, float]:
    """CPU seconds each live thread of this process has used, by thread name (Linux; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[str, float] = {}
    for t in threading.enumerate():
        try:
            stat = Path(f"/proc/self/task/{t.native_id}/stat").read_text()
        except (OSError, TypeError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        base, _, tail = t.name.rpartition("_")
        name = base if base and tail.isdigit() else t.name  # a pool's workers as one
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def measure(c: heron.Client, queries: np.ndarray, truth: np.ndarray, window: float) -> dict[str, Any]:
    """Single-query searches for `window` seconds (at least one pass over the queries' first 20)."""
    hits = 0
    done = 0
    t0 = time.perf_counter()
    while True:
        i = done % len(queries)
        got = c.search("fresh", data=queries[i : i + 1], limit=K, output_fields=[])[0]
        hits += len({h["id"] for h in got} & set(truth[i].tolist()))
        done += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= window and done >= 20:
            break
    d = c.describe_index("fresh", "vec")
    return {
        "qps": done / elapsed, "recall": hits / (done * K), "queries": done, **layout(c),
        "describe": f"{d['state']} {d['indexed_rows']}/{d['total_rows']} pending {d['pending_index_rows']}",
    }


def run_mode(mode: str, x: np.ndarray, queries: np.ndarray, truth: np.ndarray, args: argparse.Namespace,
             root: str) -> dict[str, Any]:
    for var in ("HERON_SEAL_IDLE_SECONDS", "HERON_INTERIM_ROWS"):
        if mode == "off":
            os.environ[var] = "0"
        else:
            os.environ.pop(var, None)
    out: dict[str, Any] = {"mode": mode, "points": []}
    with heron.Client(os.path.join(root, mode)) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=x.shape[1])
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="AUTOINDEX", metric_type="COSINE")
        c.create_collection("fresh", schema=schema, index_params=idx)
        ids = np.arange(len(x), dtype=np.int64)
        cpu0 = thread_cpu()
        t0 = time.perf_counter()
        for lo in range(0, len(x), args.batch):
            c.insert("fresh", {"id": ids[lo : lo + args.batch], "vec": x[lo : lo + args.batch]})
        loaded = time.perf_counter()
        out["cpu_at_load_s"] = {k: round(v - cpu0.get(k, 0.0), 2) for k, v in thread_cpu().items()}
        out["insert_rows_per_s"] = len(x) / (loaded - t0)
        print(f"  {mode:>3} insert: {out['insert_rows_per_s']:,.0f} rows/s", flush=True)
        for at in args.at:
            wait = loaded + at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            point = measure(c, queries, truth, args.window)
            point["at"] = f"{at:g} s"
            point["cpu_s"] = {k: round(v - cpu0.get(k, 0.0), 2) for k, v in thread_cpu().items()}
            out["points"].append(point)
            print(f"  {mode:>3} @ {at:>4g} s: {point['qps']:8.0f} QPS  recall {point['recall']:.3f}  {point}", flush=True)
        if args.no_flush:
            return out
        t1 = time.perf_counter()
        c.flush("fresh")
        out["flush_s"] = time.perf_counter() - t1
        point = measure(c, queries, truth, args.window)
        point["at"] = "after flush"
        out["points"].append(point)
        print(f"  {mode:>3} after flush ({out['flush_s']:.1f} s): {point['qps']:8.0f} QPS  "
              f"recall {point['recall']:.3f}", flush=True)
    return out


def report(results: list[dict[str, Any]], args: argparse.Namespace, source: str) -> str:
    lines = [
        f"Rows: {args.rows:,} x {args.dim} ({source}), AUTOINDEX (HNSW M16 efConstruction 200) COSINE defined first, "
        f"inserted as numpy columns in calls of {args.batch:,}, never flushed until the last line; single-query "
        f"search, limit {K}, default search parameters; machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| idle sealing, interim indexes | when | QPS | recall@10 | growing rows | sealed, not indexed | indexed | describe_index |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        for p in r["points"]:
            lines.append(f"| {r['mode']} | {p['at']} | {p['qps']:,.0f} | {p['recall']:.3f} | {p['growing']:,} | "
                         f"{p['sealed_unindexed']:,} | {p['indexed']:,} | {p['describe']} |")
    lines.append("")
    for r in results:
        flushed = f"; flush took {r['flush_s']:.1f} s" if "flush_s" in r else ""
        lines.append(f"- {r['mode']}: insert {r['insert_rows_per_s']:,.0f} rows/s{flushed}")
        timed = [p for p in r["points"] if "cpu_s" in p]
        if timed:
            def cpu(d: dict[str, float]) -> str:
                return ", ".join(f"{k} {v:.2f}" for k, v in sorted(d.items(), key=lambda kv: -kv[1]) if v >= 0.01)
            lines.append(f"- {r['mode']}: CPU seconds by thread since the load began: when the last insert returned "
                         f"{cpu(r['cpu_at_load_s'])}; at the end of the {timed[-1]['at']} point "
                         f"{cpu(timed[-1]['cpu_s'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--at", type=lambda s: [float(v) for v in s.split(",")], default=[0.0, 5.0, 60.0],
                    help="seconds after the load at which to measure (comma-separated)")
    ap.add_argument("--window", type=float, default=2.0, help="seconds of searches per measurement")
    ap.add_argument("--modes", default="off,on", help="idle sealing off, on, or both (comma-separated)")
    ap.add_argument("--data", choices=("minilm", "clustered"), default="minilm",
                    help="MiniLM text embeddings (384-d) or clustered synthetic vectors (bench.mixed_load's)")
    ap.add_argument("--dim", type=int, default=DIM, help="dimensions of --data clustered")
    ap.add_argument("--no-flush", action="store_true", help="end each mode after the last point, without the flush")
    ap.add_argument("--out", help="write the report (markdown) and a .json beside it")
    args = ap.parse_args(argv)
    if args.data == "clustered":
        from bench.mixed_load import clustered

        x, queries = clustered(args.rows, args.dim, 1), clustered(200, args.dim, 2)
        source = "clustered: unit vectors around 256 centres"
    else:
        args.dim = DIM
        x, queries, source = load_vectors(args.rows)
    truth = exact_top(x, queries, K)
    root = tempfile.mkdtemp(prefix="heron-fresh-")
    results = []
    try:
        for mode in args.modes.split(","):
            results.append(run_mode(mode.strip(), x, queries, truth, args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    text = report(results, args, source)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
        Path(args.out).with_suffix(".json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
