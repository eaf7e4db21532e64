"""How long `close()` and `drop_collection()` take while the background work of a large load is under way.

Run: ``python -m bench.close_after_load [--rows N] [--wait S] [--out FILE]``

A collection with an AUTOINDEX (COSINE) index defined first takes ``N``
clustered 128-d rows as numpy columns in calls of 10,000, never flushed;
``S`` seconds later, while segments are still being written, merged and
indexed in the background, the client is closed and the time taken is
reported; then the database is opened again (time to open, rows counted,
single-query searches for two 3-second windows) and closed once more. A
second database gets the same load and, ``S`` seconds later,
``drop_collection``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import heron
from bench.mixed_load import clustered


def _load(path: str, x: np.ndarray) -> heron.Client:
    c = heron.Client(path)
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="AUTOINDEX", metric_type="COSINE")
    c.create_collection("f", dimension=x.shape[1], index_params=idx)
    for lo in range(0, len(x), 10_000):
        c.insert("f", {"id": np.arange(lo, lo + min(10_000, len(x) - lo)), "vector": x[lo : lo + 10_000]})
    return c


def _qps(c: heron.Client, queries: np.ndarray, seconds: float) -> float:
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c.search("f", data=queries[done % len(queries) : done % len(queries) + 1], limit=10)
        done += 1
    return done / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--wait", type=float, default=20.0, help="seconds between the last insert and the close/drop")
    ap.add_argument("--out", help="append the report (markdown) to this file")
    args = ap.parse_args(argv)
    x, queries = clustered(args.rows, 128, 1), clustered(200, 128, 2)
    root = tempfile.mkdtemp(prefix="heron-close-")
    try:
        path = os.path.join(root, "a")
        c = _load(path, x)
        time.sleep(args.wait)
        t0 = time.perf_counter()
        c.close()
        closed = time.perf_counter() - t0
        t0 = time.perf_counter()
        c = heron.Client(path)
        opened = time.perf_counter() - t0
        count = c.query("f", filter="", output_fields=["count(*)"])[0]["count(*)"]
        qps = [_qps(c, queries, 3.0) for _ in range(2)]
        t0 = time.perf_counter()
        c.close()
        closed_again = time.perf_counter() - t0
        c = _load(os.path.join(root, "b"), x)
        time.sleep(args.wait)
        t0 = time.perf_counter()
        c.drop_collection("f")
        dropped = time.perf_counter() - t0
        c.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    line = (f"| {args.rows:,} | {args.wait:g} s | {closed:.1f} s | {opened:.1f} s | {count:,} | "
            f"{qps[0]:,.0f} / {qps[1]:,.0f} | {closed_again:.1f} s | {dropped:.1f} s | "
            f"{os.getloadavg()[0]:.1f} |")
    head = ("| rows | close after | close | open again | rows counted | QPS after the open (0-3 s / 3-6 s) | "
            "close again | drop (2nd load) | load average |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(head + "\n" + line)
    if args.out:
        with Path(args.out).open("a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
