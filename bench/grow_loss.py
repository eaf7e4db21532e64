"""What growing an HNSW graph a segment at a time costs in recall, per efConstruction, against building it in one call.

Run: ``python -m bench.grow_loss [--rows N] [--ef-construction 64,96,128,200] [--slice S] [--threads T]
[--out FILE]``

A merge grows the older segment's graph with the newer segment's rows
(`engine/_rebuild.py`); this measures what that costs on raw faiss alone, on
`bench.growth`'s clustered 128-d rows (L2, M 16): for each efConstruction, one
graph built from all rows in one call and one grown by ``S`` rows a call
(65,536: a segment at a time), each searched with `bench.growth`'s queries at
ef 32, 64 and 128, recall@10 against the exact answers. The engine builds a
grown graph again only below the efConstruction from which the two stay close
(`_rebuild.REBUILD_EF_BELOW`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .growth import prepare, recall

EFS = (32, 64, 128)


def measure(x: np.ndarray, q: np.ndarray, truth: np.ndarray, ef_construction: int, step: int) -> dict[str, float]:
    """Build seconds and recall@10 at each of `EFS` of a graph added ``step`` rows a call (all rows: one call)."""
    import faiss

    index = faiss.IndexHNSWFlat(x.shape[1], 16)
    index.hnsw.efConstruction = ef_construction
    t0 = time.perf_counter()
    for lo in range(0, len(x), step):
        index.add(x[lo : lo + step])
    out = {"build_s": time.perf_counter() - t0}
    for ef in EFS:
        index.hnsw.efSearch = ef
        out[f"recall_ef{ef}"] = recall(index.search(q, truth.shape[1])[1].tolist(), truth)
    return out


def table(rows: list[dict[str, float]]) -> str:
    lines = ["| efConstruction | added | build (s) | " + " | ".join(f"recall@10 ef {ef}" for ef in EFS) + " |",
             "|---:|---|---:|" + "---:|" * len(EFS)]
    for r in rows:
        lines.append(f"| {r['ef_construction']:g} | {r['added']} | {r['build_s']:.0f} | "
                     + " | ".join(f"{r[f'recall_ef{ef}']:.3f}" for ef in EFS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ef-construction", default="64,96,128,200",
                    type=lambda s: [int(v) for v in s.split(",")], help="comma-separated")
    ap.add_argument("--slice", type=int, default=65_536, help="rows a call when grown")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--root", default="/tmp/heron-growth", help="where bench.growth keeps its data sets")
    ap.add_argument("--out", help="write the table (markdown) and a .json beside it")
    args = ap.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    data = prepare(args.rows, Path(args.root))
    x, q, truth = (np.load(data / f"{name}.npy") for name in ("x", "q", "gt"))
    rows = []
    for efc in args.ef_construction:
        for added, step in (("in one call", len(x)), (f"{args.slice:,} a call", args.slice)):
            r = {"ef_construction": efc, "added": added, **measure(x, q, truth, efc, step)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    text = (f"{args.rows:,} x {x.shape[1]} clustered rows (bench.growth), faiss HNSW M 16, L2, "
            f"{args.threads} threads, {len(q)} queries\n\n{table(rows)}\n")
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
