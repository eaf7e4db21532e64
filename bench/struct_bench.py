"""What struct array fields cost: inserting rows with element lists, and embedding-list search.

Run: ``python -m bench.struct_bench [--rows N] [--dim D] [--queries Q] [--quick]``

One embedded collection (INT64 ``id``, FLOAT_VECTOR ``v`` of dim 4 with a
FLAT index, INT64 ``t``, and ``chunks``: ARRAY of STRUCT with a FLOAT_VECTOR
``emb`` of dim ``D`` and an INT32 ``n``, 1 to 8 elements a row, 4.5 on
average), inserted as row dicts in batches of 5,000, then sealed. Each
search sends one EmbeddingList of three vectors with MAX_SIM_IP, unfiltered
and with a filter keeping 30% of the rows, after five warm-up calls; the
report gives insert rows/s and the median and p95 latency per search.
Searches are exact (a brute-force MaxSim over every element of every row).
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


def _rows(rng: np.random.Generator, start: int, n: int, dim: int) -> list[dict[str, Any]]:
    return [{"id": i, "v": [0.0] * 4, "t": i % 10,
             "chunks": [{"emb": e, "n": j} for j, e in enumerate(rng.random((1 + i % 8, dim), dtype=np.float32).tolist())]}
            for i in range(start, start + n)]


def run(rows: int, dim: int, queries: int) -> dict[str, float]:
    """Insert rows/s, and median and p95 ms per search, unfiltered and filtered."""
    rng = np.random.default_rng(7)
    tmp = tempfile.mkdtemp()
    try:
        with heron.Client(f"{tmp}/db") as c:
            st = c.create_struct_field_schema()
            st.add_field("emb", heron.DataType.FLOAT_VECTOR, dim=dim)
            st.add_field("n", heron.DataType.INT32)
            s = c.create_schema()
            s.add_field("id", heron.DataType.INT64, is_primary=True)
            s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
            s.add_field("t", heron.DataType.INT64)
            s.add_field("chunks", heron.DataType.ARRAY, element_type=heron.DataType.STRUCT, struct_schema=st,
                        max_capacity=8)
            idx = c.prepare_index_params()
            idx.add_index("v", index_type="FLAT", metric_type="L2")
            idx.add_index("chunks[emb]", index_type="EMB_LIST_HNSW", metric_type="MAX_SIM_IP")
            c.create_collection("b", schema=s, index_params=idx)
            batches = [_rows(rng, start, min(5_000, rows - start), dim) for start in range(0, rows, 5_000)]
            t0 = time.perf_counter()
            for b in batches:
                c.insert("b", b)
            out = {"insert rows/s": rows / (time.perf_counter() - t0)}
            c.flush("b")
            qs = [rng.random((3, dim), dtype=np.float32) for _ in range(queries)]
            for name, flt in (("search", ""), ("filtered search", "t < 3")):
                for q in qs[:5]:
                    c.search("b", [q], anns_field="chunks[emb]", limit=10, filter=flt)
                times = []
                for q in qs:
                    t0 = time.perf_counter()
                    c.search("b", [q], anns_field="chunks[emb]", limit=10, filter=flt)
                    times.append((time.perf_counter() - t0) * 1e3)
                out[f"{name} median ms"] = statistics.median(times)
                out[f"{name} p95 ms"] = float(np.percentile(times, 95))
            return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def table(res: dict[str, float]) -> str:
    return "\n".join(["| measure | value |", "|---|---:|", *(f"| {k} | {v:,.2f} |" for k, v in res.items())])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="20,000 rows, 30 queries")
    a = ap.parse_args()
    rows, queries = (20_000, 30) if a.quick else (a.rows, a.queries)
    res = run(rows, a.dim, queries)
    print(f"Rows: {rows:,}, 4.5 elements of {a.dim} dims each on average, MAX_SIM_IP, limit 10, "
          f"{queries} queries of 3 vectors one at a time; Python {platform.python_version()}, numpy {np.__version__}.\n")
    print(table(res))


if __name__ == "__main__":
    main()
