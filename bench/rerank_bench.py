"""What a function ranker costs a search: the same queries plain, with a decay, a boost and both.

Run: ``python -m bench.rerank_bench [--rows N] [--dim D] [--queries Q] [--limit K] [--quick]``

One embedded collection (INT64 ``id``, FLOAT_VECTOR ``v`` with a FLAT index
and metric IP, INT64 ``ts``, VARCHAR ``kind``), sealed in segments of the
default size. Each ranker runs the same ``Q`` single-vector searches, one
call at a time, the rankers taking turns on each query, after five warm-up
calls each; the report gives the median and p95
latency per call and the ratio of the medians to the plain search. A ranker
scores ``10 x limit`` candidates, so its extra cost grows with ``limit``, not
with the collection.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
from typing import Any

import numpy as np

import heron


def _rankers() -> dict[str, Any]:
    def fn(name: str, inputs: list[str], **params: Any) -> dict[str, Any]:
        return {"name": name, "type": 3, "input_field_names": inputs, "output_field_names": [], "params": params}

    decay = fn("recent", ["ts"], reranker="decay", function="gauss", origin=1_000_000, scale=100_000)
    boost = fn("kind_a", [], reranker="boost", filter="kind == 'a'", weight=1.5)
    return {
        "plain": None,
        "decay (gauss)": {"functions": [decay], "params": {}},
        "boost (filter)": {"functions": [boost], "params": {}},
        "boost + decay": {"functions": [boost, decay], "params": {}},
    }


class _Score:
    """A ranker given as the client takes pymilvus's FunctionScore: by shape (``functions``, ``params``)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.functions = [_Fn(f) for f in spec["functions"]]
        self.params = spec["params"]


class _Fn:
    def __init__(self, d: dict[str, Any]) -> None:
        self._d = d

    def to_dict(self) -> dict[str, Any]:
        return dict(self._d)


def run(rows: int, dim: int, queries: int, limit: int) -> list[tuple[str, float, float]]:
    """(ranker, median ms, p95 ms) per ranker."""
    rng = np.random.default_rng(5)
    tmp = tempfile.mkdtemp()
    try:
        with heron.Client(f"{tmp}/db") as c:
            s = c.create_schema()
            s.add_field("id", heron.DataType.INT64, is_primary=True)
            s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=dim)
            s.add_field("ts", heron.DataType.INT64)
            s.add_field("kind", heron.DataType.VARCHAR, max_length=4)
            idx = c.prepare_index_params()
            idx.add_index("v", index_type="FLAT", metric_type="IP")
            c.create_collection("b", schema=s, index_params=idx)
            for start in range(0, rows, 50_000):
                n = min(50_000, rows - start)
                c.insert("b", {"id": np.arange(start, start + n), "v": rng.standard_normal((n, dim), dtype=np.float32),
                               "ts": rng.integers(0, 2_000_000, n), "kind": np.array(["abc"[i % 3] for i in range(n)])})
            c.flush("b")
            qs = rng.standard_normal((queries, dim), dtype=np.float32)
            rankers = {name: None if spec is None else _Score(spec) for name, spec in _rankers().items()}
            times: dict[str, list[float]] = {name: [] for name in rankers}
            for ranker in rankers.values():  # warm-up: indexes built, caches filled
                for q in qs[:5]:
                    c.search("b", q[None, :], limit=limit, ranker=ranker)
            for q in qs:  # rankers take turns on each query, so load on the machine falls on all alike
                for name, ranker in rankers.items():
                    t0 = time.perf_counter()
                    c.search("b", q[None, :], limit=limit, ranker=ranker)
                    times[name].append((time.perf_counter() - t0) * 1e3)
            return [(n, statistics.median(t), float(np.percentile(t, 95))) for n, t in times.items()]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(res: list[tuple[str, float, float]]) -> str:
    base = res[0][1]
    lines = ["| ranker | median (ms) | p95 (ms) | vs plain |", "|---|---:|---:|---:|"]
    lines += [f"| {n} | {m:.2f} | {p:.2f} | {m / base:.2f}x |" for n, m, p in res]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="20,000 rows, 50 queries")
    a = ap.parse_args()
    rows, queries = (20_000, 50) if a.quick else (a.rows, a.queries)
    res = run(rows, a.dim, queries, a.limit)
    print(f"Rows: {rows:,} x {a.dim} dims, FLAT/IP, limit {a.limit}, {queries} queries one at a time; "
          f"Python {platform.python_version()}, numpy {np.__version__}.\n")
    print(table(res))


if __name__ == "__main__":
    main()
