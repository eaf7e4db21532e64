"""Where does an exact scan of the kept rows beat faiss with an ID selector?

For each index (HNSW, IVF_FLAT) and filter selectivity, times single-query
search both ways and reports recall@10 of the faiss path against the exact
answer. The planner's `FILTER_CROSSOVER` (``heron.engine.index._dense``)
is set from these numbers: the selectivity below which the exact scan is
faster, or below which faiss's recall drops under 0.95, whichever is higher.

Run: ``.venv/bin/python bench/crossover.py [--n 100000] [--queries 100]``.

Last run (2-core VM, 1 thread per query, k=10, 100 queries; HNSW M=16
efConstruction=200 ef=64, IVF_FLAT nlist=128 nprobe=16, both raised under the
filter as the planner does). ms per query, faiss-with-selector / exact scan,
recall@10 of the selector path:

  100k x 128 HNSW      0.5%: 3.05/0.07 (0.94)  2%: 3.09/0.26 (1.0)
                        5%: 1.65/0.65 (1.0)   10%: 0.77/1.23   20%: 0.32/2.27
  100k x 128 IVF_FLAT  0.5%: 0.21/0.06 (1.0)   2%: 0.43/0.29
                        5%: 0.66/0.68         10%: 0.86/1.27   50%: 1.13/6.41
  MiniLM 10k HNSW      cat41 1.4%: 2.29/0.04 (0.994)  cat6 8.1%: 0.95/0.21 (0.992)
                        10%: 0.79/0.27  20%: 0.48/0.49  50%: 0.27/1.01
  MiniLM 10k IVF_FLAT  cat41 1.4%: 0.056/0.040 (1.0)  cat6 8.1%: 0.114/0.201 (1.0)
                        2%: 0.056/0.042  5%: 0.093/0.123

Cross-over: HNSW ~7.5% of 100k x 128 and ~20% of 10k x 384, i.e. ~1M kept
row-dims; IVF_FLAT ~5% of 100k and ~3% of 10k. Hence
FILTER_CROSSOVER = {"HNSW": 0.03, "IVF": 0.04} and
EXACT_SCAN_BUDGET = {"HNSW": 1_000_000, "IVF": 100_000}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from typing import Any

import numpy as np

from heron._types import DataType
from heron.engine.index._vector_index import build_index, exact_search

DATA = "/work/shared/data/minilm-dev-10k"
SELECTIVITIES = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def _synthetic(n: int, dim: int, nq: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((256, dim)).astype(np.float32) * 2
    x = centres[rng.integers(0, 256, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    q = centres[rng.integers(0, 256, nq)] + rng.standard_normal((nq, dim)).astype(np.float32)
    return x.astype(np.float32), q.astype(np.float32)


def _minilm(nq: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.load(os.path.join(DATA, "base_f16.npy")).astype(np.float32)
    q = np.load(os.path.join(DATA, "queries.npy"))[:nq]
    with gzip.open(os.path.join(DATA, "base.jsonl.gz"), "rt") as f:
        cats = np.array([json.loads(line)["category"] for line in f])
    return x, q, cats


def _timed(fn: Any, queries: np.ndarray) -> tuple[float, np.ndarray]:
    rows = []
    t0 = time.perf_counter()
    for i in range(len(queries)):
        rows.append(fn(queries[i : i + 1])[1][0])
    return (time.perf_counter() - t0) / len(queries) * 1e3, np.array(rows)


def _recall(got: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(g[g >= 0]) & set(t[t >= 0])) / max(1, (t >= 0).sum()) for g, t in zip(got, truth)])
    )


def measure(
    name: str, idx: Any, x: np.ndarray, q: np.ndarray, allow: np.ndarray, metric: str
) -> dict[str, Any]:
    """Time faiss-with-selector against the exact scan of the kept rows for one filter."""
    kept = int(allow.sum())
    truth = exact_search(DataType.FLOAT_VECTOR, metric, x, q, 10, allow=allow)[1]
    ids = np.flatnonzero(allow)
    inner = idx._index  # the planner's two paths, called directly
    qn = idx._prep(q)
    em = idx._exact_metric()

    def ann(one: np.ndarray) -> Any:
        return inner.search(one, 10, params=idx._faiss_params(10, allow, kept, {}))

    def exact(one: np.ndarray) -> Any:
        s, r = exact_search(DataType.FLOAT_VECTOR, em, inner.reconstruct_batch(ids), one, 10)
        return s, ids[r]

    t_ann, r_ann = _timed(ann, qn)
    t_exact, r_exact = _timed(exact, qn)
    row = {
        "data": name,
        "index": idx.index_type,
        "sel": round(kept / len(allow), 4),
        "ann_ms": round(t_ann, 3),
        "exact_ms": round(t_exact, 3),
        "ann_recall": round(_recall(r_ann, truth), 3),
        "exact_recall": round(_recall(r_exact, truth), 3),
    }
    print(json.dumps(row), flush=True)
    return row


def _indexes(x: np.ndarray, metric: str) -> list[Any]:
    out = []
    for index_type, params in (("HNSW", {"M": 16, "efConstruction": 200}), ("IVF_FLAT", {"nlist": 128})):
        t0 = time.perf_counter()
        out.append(build_index(DataType.FLOAT_VECTOR, x.shape[1], index_type, metric, params, x))
        print(f"# built {index_type} on {x.shape} in {time.perf_counter() - t0:.1f}s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=100)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    import faiss

    faiss.omp_set_num_threads(1)
    x, q = _synthetic(a.n, 128, a.queries)
    for idx in _indexes(x, "L2"):
        for sel in SELECTIVITIES:
            measure("synthetic-100k", idx, x, q, rng.random(len(x)) < sel, "L2")
    mx, mq, cats = _minilm(a.queries)
    for idx in _indexes(mx, "COSINE"):
        for label, allow in (("cat6", cats == 6), ("cat41", cats == 41)):
            measure(f"minilm-{label}", idx, mx, mq, allow, "COSINE")
        for sel in SELECTIVITIES:
            measure("minilm-random", idx, mx, mq, rng.random(len(mx)) < sel, "COSINE")


if __name__ == "__main__":
    main()
