"""Spatial filters with and without an RTREE index, and TIMESTAMPTZ conversion rates.

``python -m bench.geo_bench [--rows N] [--rounds R]`` prints a markdown table: the time one
filter takes over one segment-sized column of random points (a whole-column scan below
``_geo_eval.TREE_ROWS`` rows, else an STRtree built for the call, against the RTREE index's
tree built once), and how many ISO-8601 values per second are read and written.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import shapely

from heron._schema import CollectionSchema, FieldSchema
from heron._types import DataType
from heron.data._column import DictColumnSource
from heron.data._scalars import convert_scalars
from heron.data._timestamptz import format_micros, to_micros
from heron.engine.filter import compile_filter
from heron.engine.filter._geo_eval import RTreeIndex

FILTERS = [
    "ST_WITHIN(g, 'POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))')",
    "ST_INTERSECTS(g, 'LINESTRING (-50 -40, 50 40)')",
    "ST_DWITHIN(g, 'POINT (13.4 52.5)', 500000)",
]


def _best(fn, rounds: int, *args) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    n = a.rows
    rng = np.random.default_rng(0)
    xy = np.column_stack([rng.uniform(-180, 180, n), rng.uniform(-90, 90, n)])
    wkt = list(shapely.to_wkt(shapely.points(xy), rounding_precision=6))
    field = FieldSchema("g", DataType.GEOMETRY, nullable=True)
    schema = CollectionSchema([FieldSchema("id", DataType.INT64, is_primary=True),
                               FieldSchema("v", DataType.FLOAT_VECTOR, dim=2), field])
    t = time.perf_counter()
    col = convert_scalars(field, wkt, n)
    parse_s = time.perf_counter() - t
    t = time.perf_counter()
    index = RTreeIndex(col)
    build_s = time.perf_counter() - t
    print(f"Rows: {n:,} random points (lon/lat), best of {a.rounds}; machine: {platform.machine()}, "
          f"Python {platform.python_version()}, shapely {shapely.__version__}.\n")
    print(f"WKT → WKB at insert: {n / parse_s:,.0f} values/s; RTREE build: {build_s * 1000:.0f} ms.\n")
    print("| filter | rows kept | no index (ms) | RTREE (ms) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for expr in FILTERS:
        plan = compile_filter(expr, schema)
        plain = DictColumnSource({"g": col}, n)
        indexed = DictColumnSource({"g": col}, n, {"g": index})
        kept = int(plan.evaluate(indexed).sum())
        assert kept == int(plan.evaluate(plain).sum())
        s0 = _best(plan.evaluate, a.rounds, plain)
        s1 = _best(plan.evaluate, a.rounds, indexed)
        print(f"| `{expr}` | {kept:,} | {s0 * 1000:.1f} | {s1 * 1000:.1f} | {s0 / s1:.0f}x |")
    texts = [f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+08:00" for i in range(n)]
    p = _best(lambda: to_micros(texts, None, "UTC", "ts"), a.rounds)
    micros = to_micros(texts, None, "UTC", "ts")
    f_utc = _best(lambda: format_micros(micros, "UTC"), a.rounds)
    f_zone = _best(lambda: format_micros(micros, "America/New_York"), a.rounds)
    print(f"\nTIMESTAMPTZ: ISO-8601 read {n / p:,.0f} values/s; written {n / f_utc:,.0f}/s in UTC, "
          f"{n / f_zone:,.0f}/s in America/New_York.")


if __name__ == "__main__":
    main()
