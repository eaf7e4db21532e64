"""Quantised indexes with and without refine against HNSW float32: memory, build time, recall, QPS.

    python -m bench.quant_bench --workload clustered --rows 1000000 [--only HNSW,IVF_PQ+SQ8]
    python -m bench.quant_bench --workload minilm --rows 100000

Workloads: ``clustered`` is 128-d vectors around 1,000 Gaussian centres (the
generator of `bench.growth`), L2; ``minilm`` is the MiniLM 384-d set repeated
with noise (`bench.fresh_bench.load_vectors`), COSINE. 200 held-out queries,
exact top 10 by a flat scan.

Per index definition, two subprocesses: *build* builds Heron's engine index
(`heron.engine.index.build_index`) over every row and saves its file (build
seconds; file bytes); *serve*, a fresh process, reads the file into memory the
index owns (not memory-mapped, so the figure is what holding the index in
RAM costs), records the growth of the process's resident set (RSS), then
runs single queries at each search setting (recall@10 over the 200 queries,
QPS over ``--seconds``). The memory ratio is HNSW float32's file bytes over
the index's. Results are merged into ``bench/results/quant.json`` and
written as a table to ``bench/results/quant.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.growth import rss

K = 10
NQ = 200
RESULTS = Path(__file__).parent / "results"
HNSW = {"M": 16, "efConstruction": 100}
#: name -> (index type, build params, search settings). Every ``+X`` refines with refine_type X;
#: PQ's ``m`` is set to a quarter of the dimension (8 bits per 4 dimensions: 1/16 of float32).
CONFIGS: dict[str, tuple[str, dict[str, Any], list[dict[str, Any]]]] = {
    "HNSW": ("HNSW", HNSW, [{"ef": 64}, {"ef": 128}]),
    "IVF_PQ+SQ8": ("IVF_PQ", {"nlist": 1024, "m": 0, "refine": True, "refine_type": "SQ8"},
                   [{"nprobe": 16, "refine_k": 4}, {"nprobe": 32, "refine_k": 16}, {"nprobe": 32, "refine_k": 32},
                    {"nprobe": 64, "refine_k": 64}]),
    "IVF_RABITQ+SQ8": ("IVF_RABITQ", {"nlist": 1024, "refine": True, "refine_type": "SQ8"},
                       [{"nprobe": 16, "refine_k": 8, "rbq_query_bits": 8},
                        {"nprobe": 32, "refine_k": 32, "rbq_query_bits": 8},
                        {"nprobe": 64, "refine_k": 64, "rbq_query_bits": 8}]),
    "IVF_RABITQ": ("IVF_RABITQ", {"nlist": 1024}, [{"nprobe": 32, "rbq_query_bits": 8}]),
    "IVF_PQ": ("IVF_PQ", {"nlist": 1024, "m": 0}, [{"nprobe": 32}]),
    "HNSW_SQ8": ("HNSW_SQ", {**HNSW, "sq_type": "SQ8"}, [{"ef": 64}, {"ef": 128}]),
    "HNSW_SQ8+FP16": ("HNSW_SQ", {**HNSW, "sq_type": "SQ8", "refine": True, "refine_type": "FP16"},
                      [{"ef": 64, "refine_k": 2}]),
    "HNSW_PQ+SQ8": ("HNSW_PQ", {**HNSW, "m": 0, "refine": True, "refine_type": "SQ8"},
                    [{"ef": 128, "refine_k": 4}, {"ef": 256, "refine_k": 8}]),
    "HNSW_PQ": ("HNSW_PQ", {**HNSW, "m": 0}, [{"ef": 128}]),
}


def prepare(workload: str, rows: int, root: Path) -> tuple[Path, str]:
    """The vectors, queries and exact answers under ``root`` (made once); ``(folder, metric)``."""
    out = root / f"{workload}-{rows}"
    metric = "L2" if workload == "clustered" else "COSINE"
    if (out / "done").exists():
        return out, metric
    import faiss

    out.mkdir(parents=True, exist_ok=True)
    if workload == "clustered":
        from bench.growth import prepare as growth_prepare

        src = growth_prepare(rows, root)
        x, q = np.load(src / "x.npy", mmap_mode="r"), np.load(src / "q.npy")[:NQ]
        np.save(out / "x.npy", x)
    else:
        from bench.fresh_bench import load_vectors

        x, q, _source = load_vectors(rows)
        q = q[:NQ]
        np.save(out / "x.npy", x)
    x = np.load(out / "x.npy", mmap_mode="r")
    flat = faiss.IndexFlatL2(x.shape[1]) if metric == "L2" else faiss.IndexFlatIP(x.shape[1])
    flat.add(np.ascontiguousarray(x))
    np.save(out / "q.npy", q)
    np.save(out / "gt.npy", flat.search(np.ascontiguousarray(q), K)[1])
    (out / "done").write_text("1")
    return out, metric


def build(name: str, data: Path, metric: str, work: Path) -> dict[str, Any]:
    from heron._types import DataType
    from heron.engine.index._vector_index import build_index

    index_type, params, _ = CONFIGS[name]
    x = np.load(data / "x.npy")
    if "m" in params:  # 4 dimensions per PQ sub-quantiser, whatever the width
        params = {**params, "m": x.shape[1] // 4}
    t0 = time.perf_counter()
    idx = build_index(DataType.FLOAT_VECTOR, x.shape[1], index_type, metric, params, x)
    seconds = time.perf_counter() - t0
    path = work / f"{name}.npz"
    idx.save(str(path))
    return {"build_s": seconds, "file_bytes": path.stat().st_size, "rows": int(x.shape[0])}


def serve(name: str, data: Path, work: Path, seconds: float) -> dict[str, Any]:
    from heron.engine.index._base import read_index_file
    from heron.engine.index._dense import DenseIndex

    q, gt = np.load(data / "q.npy"), np.load(data / "gt.npy")
    before = rss()
    header, arrays = read_index_file(str(work / f"{name}.npz"))
    idx = DenseIndex.from_arrays(header, arrays)
    grown = rss() - before
    points = []
    for setting in CONFIGS[name][2]:
        hits, lat, i = 0, [], 0
        start = time.perf_counter()
        while i < len(q) or (time.perf_counter() - start < seconds and i < 50 * len(q)):
            t = time.perf_counter()
            _, rows = idx.search(q[i % len(q)][None], K, params=setting)
            lat.append(time.perf_counter() - t)
            if i < len(q):
                hits += len(set(rows[0].tolist()) & set(gt[i].tolist()))
            i += 1
        points.append({"search": setting, "recall": hits / (len(q) * K), "qps": len(lat) / sum(lat),
                       "p99_ms": float(np.percentile(lat, 99) * 1000)})
    return {"rss_bytes": grown, "points": points}


def run(name: str, data: Path, metric: str, work: Path, seconds: float, cap: float) -> dict[str, Any]:
    out: dict[str, Any] = {"index": name}
    for phase in ("build", "serve"):
        cmd = [sys.executable, "-m", "bench.quant_bench", "--worker", phase, "--name", name,
               "--data", str(data), "--metric", metric, "--work", str(work), "--seconds", str(seconds)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=cap, check=False)
        except subprocess.TimeoutExpired:
            return {**out, "error": f"{phase} ran past {cap:.0f} s"}
        if proc.returncode != 0:
            return {**out, "error": f"{phase}: {proc.stderr.strip().splitlines()[-1:]}"}
        out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def table(results: list[dict[str, Any]]) -> str:
    base = next((r["file_bytes"] for r in results if r["index"] == "HNSW" and "file_bytes" in r), None)
    lines = ["| index | build (s) | file (B/vector) | RSS growth (B/vector) | HNSW f32 / this | search | "
             "recall@10 | QPS (1 query) |", "|---|---:|---:|---:|---:|---|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['index']} | {r['error']} | | | | | | |")
            continue
        n = r["rows"]
        ratio = f"{base / r['file_bytes']:.2f}x" if base else "-"
        for j, p in enumerate(r["points"]):
            head = (f"| {r['index']} | {r['build_s']:.0f} | {r['file_bytes'] / n:.0f} | {r['rss_bytes'] / n:.0f} "
                    f"| {ratio} |" if j == 0 else "| | | | | |")
            setting = ", ".join(f"{k} {v}" for k, v in p["search"].items())
            lines.append(f"{head} {setting} | {p['recall']:.3f} | {p['qps']:.0f} |")
    return "\n".join(lines)


def write_markdown() -> None:
    """``bench/results/quant.md``: one table per workload in ``quant.json``."""
    saved = json.loads((RESULTS / "quant.json").read_text())
    parts = ["# Quantised indexes with refine against HNSW float32", "",
             "Written by `python -m bench.quant_bench --table` from `quant.json`. Conditions (a shared 2-core VM",
             "under other load: QPS and build seconds are rough) and how to read the figures: bench/README.md,",
             "section \"Quantised indexes with refine\".", ""]
    for key, results in saved.items():
        parts += [f"## {key}", "", table(results), ""]
    (RESULTS / "quant.md").write_text("\n".join(parts))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", choices=("clustered", "minilm"), default="clustered")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--only", default=",".join(CONFIGS))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--cap", type=float, default=3600.0)
    ap.add_argument("--root", default=os.environ.get("HERON_BENCH_CACHE", "/tmp/heron-quant-bench"))
    ap.add_argument("--table", action="store_true", help="only rewrite quant.md from quant.json")
    ap.add_argument("--worker", choices=("build", "serve"))
    ap.add_argument("--name")
    ap.add_argument("--data")
    ap.add_argument("--metric")
    ap.add_argument("--work")
    args = ap.parse_args(argv)
    if args.table:
        write_markdown()
        return
    if args.worker:
        data, work = Path(args.data), Path(args.work)
        res = (build(args.name, data, args.metric, work) if args.worker == "build"
               else serve(args.name, data, work, args.seconds))
        print(json.dumps(res))
        return
    root = Path(args.root)
    data, metric = prepare(args.workload, args.rows, root)
    work = root / f"work-{args.workload}-{args.rows}"
    work.mkdir(parents=True, exist_ok=True)
    store = RESULTS / "quant.json"
    key = f"{args.workload}-{args.rows}"
    results: list[dict[str, Any]] = []
    for name in args.only.split(","):
        res = run(name, data, metric, work, args.seconds, args.cap)
        saved: dict[str, Any] = json.loads(store.read_text()) if store.exists() else {}  # another run may have written
        results = [r for r in saved.get(key, []) if r["index"] != name] + [res]
        results.sort(key=lambda r: list(CONFIGS).index(r["index"]))
        saved[key] = results
        store.write_text(json.dumps(saved, indent=1))
        print(json.dumps(res), flush=True)
        (work / f"{name}.npz").unlink(missing_ok=True)
    print(table(results))
    write_markdown()


if __name__ == "__main__":
    main()
