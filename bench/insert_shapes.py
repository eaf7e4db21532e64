"""Insert speed by input shape: the same rows from numpy columns, a chunked pyarrow Table and a polars DataFrame.

Run: ``python -m bench.insert_shapes [--rows N] [--dim D] [--batch B] [--rounds R] [--quick] [--out FILE]``
(polars is optional: without it that shape is reported as unavailable).

The rows (INT64 ``id``, FLOAT_VECTOR ``vector``, VARCHAR ``tag``, INT64
``bucket``, DOUBLE ``score``) are built once. The Arrow table holds them as a
Parquet file is read: vectors as ``list<float>``, strings as ``string``, in
record batches of 65,536 rows; a second table holds the vectors as
``fixed_size_list<float>[dim]``. The polars frame is made from that second
table (vectors as ``Array(Float32, dim)``, strings as ``String``). Each shape
inserts every row in calls of ``B`` rows (numpy slices, ``Table.slice``,
``DataFrame.slice``: none copies) into a fresh embedded collection; shapes
take turns, round after round, and each reports its best round. Only the
insert calls are timed. Separately, the time one call spends turning 1,000
rows into a batch (``build_batch``, no write) is reported per shape, median
of 25 calls. Ratios are rows/s against the numpy columns' (> 1: faster).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

import heron
from heron.data._batch import build_batch

ROW_GROUP = 65_536


def make_columns(n: int, dim: int, seed: int = 7) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "id": np.arange(n, dtype=np.int64),
        "vector": rng.standard_normal((n, dim), dtype=np.float32),
        "tag": np.array([f"t{i % 100:03d}" for i in range(n)], dtype=object),
        "bucket": rng.integers(0, 100, n, dtype=np.int64),
        "score": rng.random(n),
    }


def make_table(cols: dict[str, Any], fixed: bool) -> pa.Table:
    """The columns as a table of record batches of `ROW_GROUP` rows, vectors as (fixed-size) lists."""
    n, dim = cols["vector"].shape
    batches = []
    for lo in range(0, n, ROW_GROUP):
        hi = min(n, lo + ROW_GROUP)
        flat = pa.array(cols["vector"][lo:hi].reshape(-1))
        if fixed:
            vec: pa.Array = pa.FixedSizeListArray.from_arrays(flat, dim)
        else:
            vec = pa.ListArray.from_arrays(pa.array(np.arange(0, (hi - lo) * dim + 1, dim, dtype=np.int32)), flat)
        batches.append(pa.record_batch({
            "id": pa.array(cols["id"][lo:hi]), "vector": vec, "tag": pa.array(cols["tag"][lo:hi].tolist()),
            "bucket": pa.array(cols["bucket"][lo:hi]), "score": pa.array(cols["score"][lo:hi]),
        }))
    return pa.Table.from_batches(batches)


def make_shapes(cols: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Each shape's data, and why a shape is unavailable."""
    fixed = make_table(cols, fixed=True)
    shapes: dict[str, Any] = {
        "numpy columns": cols,
        "pyarrow Table, list<float>": make_table(cols, fixed=False),
        "pyarrow Table, fixed_size_list": fixed,
    }
    missing = {}
    try:
        import polars as pl
    except ImportError as exc:
        missing["polars DataFrame"] = f"polars not installed ({exc})"
    else:
        shapes["polars DataFrame"] = pl.from_arrow(fixed, rechunk=False)
    return shapes, missing


def part(data: Any, lo: int, size: int) -> Any:
    """Rows ``lo:lo+size`` of a shape, without copying them."""
    if isinstance(data, dict):
        return {k: v[lo : lo + size] for k, v in data.items()}
    return data.slice(lo, size)


def schema(dim: int) -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=dim)
    s.add_field("tag", heron.DataType.VARCHAR, max_length=16)
    s.add_field("bucket", heron.DataType.INT64)
    s.add_field("score", heron.DataType.DOUBLE)
    return s


def insert_rate(client: heron.Client, name: str, data: Any, n: int, dim: int, batch: int) -> float:
    """Rows/s inserting all ``n`` rows of ``data`` in calls of ``batch`` rows into a new collection."""
    idx = client.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="L2")  # no index build competing with the next shape
    client.create_collection(name, schema=schema(dim), index_params=idx)
    spent = 0.0
    for lo in range(0, n, batch):
        chunk = part(data, lo, batch)
        t = time.perf_counter()
        client.insert(name, chunk)
        spent += time.perf_counter() - t
    count = client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]
    if count != n:
        raise AssertionError(f"{name}: {count} rows stored, {n} inserted")
    client.flush(name)  # background segment writes finish before the drop, not during the next shape
    client.drop_collection(name)
    return n / spent


def convert_ms(data: Any, dim: int, calls: int = 25) -> float:
    """Median milliseconds for `build_batch` of the first 1,000 rows (conversion and checks only)."""
    s = schema(dim)
    first = part(data, 0, 1000)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        build_batch(s, first)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def run(n: int, dim: int, batch: int, rounds: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    cols = make_columns(n, dim)
    shapes, missing = make_shapes(cols)
    rates: dict[str, list[float]] = {k: [] for k in shapes}
    workdir = tempfile.mkdtemp(prefix="heron-insert-shapes-")
    try:
        with heron.Client(os.path.join(workdir, "db")) as client:
            names = list(shapes)
            for r in range(rounds):
                order = names[r % len(names):] + names[: r % len(names)]  # each shape goes first in some round
                for i, shape in enumerate(order):
                    rate = insert_rate(client, f"s{r}_{i}", shapes[shape], n, dim, batch)
                    rates[shape].append(rate)
                    log(f"round {r + 1}/{rounds} {shape}: {rate:,.0f} rows/s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = {k: max(v) for k, v in rates.items()}
    return {
        "rows": n, "dim": dim, "batch": batch, "rounds": rounds, "rates": rates, "best": best,
        "ratio": {k: v / best["numpy columns"] for k, v in best.items()},
        "convert_ms": {k: convert_ms(v, dim) for k, v in shapes.items()},
        "missing": missing,
    }


def table(res: dict[str, Any]) -> str:
    lines = [
        f"Rows: {res['rows']:,} x {res['dim']} dims, inserted in calls of {res['batch']:,} rows, best of "
        f"{res['rounds']} rounds; machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pyarrow {pa.__version__}, numpy {np.__version__}.",
        "",
        "| shape | insert (rows/s) | vs numpy columns | build_batch, 1,000 rows (ms) |",
        "|---|---:|---:|---:|",
    ]
    for k, rate in res["best"].items():
        lines.append(f"| {k} | {rate:,.0f} | {res['ratio'][k]:.2f}x | {res['convert_ms'][k]:.2f} |")
    for k, why in res["missing"].items():
        lines.append(f"| {k} | unavailable: {why} | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=None, help="rows (default 200,000; --quick 20,000)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=10_000, help="rows per insert call")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; --quick 2)")
    ap.add_argument("--quick", action="store_true", help="20,000 rows, 2 rounds: a smoke run")
    ap.add_argument("--out", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    n = args.rows or (20_000 if args.quick else 200_000)
    rounds = args.rounds or (2 if args.quick else 3)
    res = run(n, args.dim, args.batch, rounds)
    text = table(res)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
