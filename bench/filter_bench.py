"""Filter evaluation speed on 1,000,000 rows: Heron against DuckDB and pandas, in one run.

Run: ``.venv/bin/python bench/filter_bench.py [--rows N] [--repeat R] [--out bench/FILTERS.md]``
(needs ``duckdb`` and ``pandas``). Each Heron filter is compiled once, then
``FilterPlan.evaluate`` runs ``R`` times over an in-memory `DictColumnSource`
and the median is reported. DuckDB runs ``SELECT count(*) ... WHERE`` on a
table already loaded in memory (threads = CPU count); pandas computes the
boolean mask with its vectorised operations. The JSON filter is reported
cold (first evaluation of a new column: the path is extracted) and warm
(path cache hit); DuckDB reads the same JSON as text with
``json_extract_string``, pandas with ``Series.str.get`` over dicts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from heron._schema import CollectionSchema, FieldSchema
from heron._types import DataType
from heron.data._column import Column, DictColumnSource
from heron.engine.filter import compile_filter
from heron.engine.filter._extract import CACHE

IN_VALUES = list(range(0, 1000, 10))


def make_data(n: int, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1000, n, dtype=np.int64)
    y = rng.random(n)
    letters = np.array(list("abcdefgh"))
    s = ["".join(w) for w in letters[rng.integers(0, 8, (n, 4))]]
    kinds = [f"v{i}" for i in range(100)]
    k = rng.integers(0, 100, n)
    meta = np.empty(n, dtype=object)
    for i in range(n):
        meta[i] = {"k": kinds[k[i]], "n": int(x[i])}
    return {"x": x, "y": y, "s": s, "meta": meta}


def schema() -> CollectionSchema:
    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("v", DataType.FLOAT_VECTOR, dim=2),
            FieldSchema("x", DataType.INT64),
            FieldSchema("y", DataType.DOUBLE),
            FieldSchema("s", DataType.VARCHAR, max_length=16),
            FieldSchema("meta", DataType.JSON),
        ]
    )


FILTERS: list[tuple[str, str, str, Callable[[pd.DataFrame], Any]]] = [
    ("x == 3", "x == 3", "x = 3", lambda d: d.x == 3),
    (
        "x in [100 values]",
        f"x in {IN_VALUES}",
        f"x IN ({', '.join(map(str, IN_VALUES))})",
        lambda d: d.x.isin(IN_VALUES),
    ),
    ("10 < x <= 20", "10 < x <= 20", "x > 10 AND x <= 20", lambda d: (d.x > 10) & (d.x <= 20)),
    ('s like "ab%"', 's like "ab%"', "s LIKE 'ab%'", lambda d: d.s.str.startswith("ab")),
    (
        'meta["k"] == "v7"',
        'meta["k"] == "v7"',
        "json_extract_string(meta, '$.k') = 'v7'",
        lambda d: d.meta.str.get("k") == "v7",
    ),
    (
        'x > 500 and y < 0.25 and s like "ab%"',
        'x > 500 and y < 0.25 and s like "ab%"',
        "x > 500 AND y < 0.25 AND s LIKE 'ab%'",
        lambda d: (d.x > 500) & (d.y < 0.25) & d.s.str.startswith("ab"),
    ),
]


def median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def run(n: int, repeat: int) -> str:
    data = make_data(n)
    sch = schema()
    cols = {
        "x": Column(DataType.INT64, data["x"]),
        "y": Column(DataType.DOUBLE, data["y"]),
        "s": Column(DataType.VARCHAR, pa.array(data["s"], type=pa.string())),
        "meta": Column(DataType.JSON, data["meta"]),
    }
    source = DictColumnSource(cols, n)
    df = pd.DataFrame({"x": data["x"], "y": data["y"], "s": pd.array(data["s"], dtype="string[pyarrow]")})
    df["meta"] = pd.Series(data["meta"], dtype=object)
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count() or 1}")
    table = pa.table(
        {"x": data["x"], "y": data["y"], "s": data["s"], "meta": [json.dumps(m) for m in data["meta"]]}
    )
    con.register("t_arrow", table)
    con.execute("CREATE TABLE t AS SELECT x, y, s, meta::JSON AS meta FROM t_arrow")
    rows = []
    for label, heron_expr, sql, pandas_fn in FILTERS:
        plan = compile_filter(heron_expr, sch)
        CACHE.clear()
        t = time.perf_counter()
        mask = plan.evaluate(source)
        cold = (time.perf_counter() - t) * 1000
        warm = median_ms(lambda plan=plan: plan.evaluate(source), repeat)
        duck = median_ms(
            lambda sql=sql: con.execute(f"SELECT count(*) FROM t WHERE {sql}").fetchone(), repeat
        )
        pmask = pandas_fn(df)
        pand = median_ms(lambda fn=pandas_fn: fn(df), max(3, repeat // 2))
        count = int(con.execute(f"SELECT count(*) FROM t WHERE {sql}").fetchone()[0])
        assert int(mask.sum()) == count == int(np.asarray(pmask, dtype=bool).sum()), label
        rows.append((label, cold, warm, duck, pand, count))
    return report(rows, n, repeat)


def report(rows: list[tuple[str, float, float, float, float, int]], n: int, repeat: int) -> str:
    lines = [
        "| filter | rows selected | Heron first call (ms) | Heron median (ms) | DuckDB (ms) | pandas (ms) "
        "| Heron / DuckDB | Heron / pandas |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, cold, warm, duck, pand, count in rows:
        lines.append(
            f"| `{label}` | {count:,} | {cold:.1f} | {warm:.1f} | {duck:.1f} | {pand:.1f} "
            f"| {warm / duck:.2f}x | {warm / pand:.2f}x |"
        )
    head = (
        f"Rows: {n:,}; median of {repeat} evaluations after one first call; machine: {machine()}; "
        f"duckdb {duckdb.__version__}, pandas {pd.__version__}, numpy {np.__version__}, pyarrow {pa.__version__}."
    )
    return head + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    table = run(args.rows, args.repeat)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
