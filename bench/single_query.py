"""Single-query search against raw faiss on the same index: what Heron adds to each call.

Run: ``python -m bench.single_query [--rows N] [--dim D] [--ef EF] [--seconds S] [--rounds R] [--db DIR] [--lanes] [--out FILE]``

One embedded collection of ``N`` clustered unit vectors (COSINE, HNSW M 16 efConstruction
200), flushed and indexed (or an existing data directory ``--db`` that this bench built
before, to compare code versions on one index). Then, in turns for ``R`` rounds of ``S``
seconds each, one query per call (k 10, ``ef`` ``EF``, one caller):
``heron.Client.search`` against faiss's own ``search`` on the very faiss index Heron built
(its sealed segment's), with the query normalised beforehand and faiss on one thread. The
ratio is Heron's searches/s over faiss's; the overhead is the difference of their times per
call. Recall@10 of Heron's hits is against the same faiss searches (1.0 when Heron asks the
index what faiss is asked). ``--lanes`` times a third system in the same turns: Heron with its
quick lane for plain searches off (`heron.engine._quick_search.ENABLED`), every search taking
the general path.

From 65,536 rows Heron renumbers an HNSW index's rows by place once it is built
(`heron.engine.index._layout`: the same graph, the same hits, less memory read per search).
faiss on "the same index" then searches that layout too; one more system, timed in the same
turns, is faiss on a copy of the same graph with the rows back in the order they came, as
faiss lays out an index it builds: the comparison with faiss as users run it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

import heron
import heron.engine._quick_search as lane
from bench.filter_bound import timed
from bench.mixed_load import clustered

K = 10
NAME = "sq"


def build(path: str, rows: int, dim: int) -> None:
    """A collection of ``rows`` clustered vectors with an HNSW index, flushed and indexed."""
    x = clustered(rows, dim, 1)
    with heron.Client(path) as c:
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 200})
        c.create_collection(NAME, dimension=dim, index_params=idx)
        for lo in range(0, rows, 10_000):
            c.insert(NAME, {"id": np.arange(lo, min(lo + 10_000, rows)), "vector": x[lo : lo + 10_000]})
        c.flush(NAME)
        while c.describe_index(NAME, "vector")["pending_index_rows"]:
            time.sleep(0.2)


def faiss_index_of(c: heron.Client) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """The faiss index of the collection's one sealed segment, the primary key at each of its numbers, and its order.

    The order (`heron.engine.index._layout`) is the segment's row at each of the
    index's numbers where Heron renumbered the rows by place, else None.
    """
    engine = c._transport._engine
    coll = engine.collection("default", NAME)
    views = [v for _, v in coll.snapshot(list(coll.partitions.values())).views if v.n]
    if len(views) != 1 or not views[0].segment.sealed:
        raise SystemExit(f"expected one sealed segment, found {[(v.n, v.segment.sealed) for v in views]}")
    view = views[0]
    index = view.segment.vindex["vector"][1]
    keys = np.asarray(view.column("id").values)
    order = None if index.layout is None else np.asarray(index.layout.order)
    return index._index, keys if order is None else keys[order], order


def as_built(index: Any, order: np.ndarray) -> Any:
    """A copy of a renumbered faiss HNSW index with its rows back in the order they came: the graph as faiss built it."""
    place = np.empty_like(order)
    place[order] = np.arange(order.shape[0], dtype=order.dtype)
    copy = faiss.clone_index(index)
    copy.permute_entries(place)
    return copy


def run(args: argparse.Namespace) -> str:
    root = None
    path = args.db
    if path is None:
        root = tempfile.mkdtemp(prefix="heron-single-query-")
        path = os.path.join(root, "db")
    faiss.omp_set_num_threads(1)
    try:
        if not os.path.exists(path):
            build(path, args.rows, args.dim)
        with heron.Client(path) as c:
            index, keys, order = faiss_index_of(c)
            built = None if order is None else as_built(index, order)
            by_row = keys.copy()
            if order is not None:
                by_row[order] = keys
            dim = index.d
            queries = clustered(200, dim, 2)
            normed = queries / np.linalg.norm(queries, axis=1, keepdims=True)
            params = faiss.SearchParametersHNSW(efSearch=args.ef)

            def raw(i: int) -> list[int]:
                _d, found = index.search(normed[i : i + 1], K, params=params)
                return keys[found[0]].tolist()

            def raw_built(i: int) -> list[int]:
                _d, found = built.search(normed[i : i + 1], K, params=params)
                return by_row[found[0]].tolist()

            def ours(i: int) -> list[int]:
                hits = c.search(NAME, data=queries[i : i + 1], limit=K, search_params={"params": {"ef": args.ef}})[0]
                return [h["id"] for h in hits]

            def general(i: int) -> list[int]:
                lane.ENABLED = False
                try:
                    return ours(i)
                finally:
                    lane.ENABLED = True

            systems = [("faiss", raw), ("heron", ours)] + ([("built", raw_built)] if built is not None else []) + \
                ([("general", general)] if args.lanes else [])
            for _, fn in systems:  # warm each
                timed(fn, len(queries), 0.5)
            best = {name: 0.0 for name, _ in systems}
            results: dict[str, list[Any]] = {}
            for _ in range(args.rounds):  # in turns, best of rounds: the machine's load moves both
                for name, fn in systems:
                    qps, results[name] = timed(fn, len(queries), args.seconds)
                    best[name] = max(best[name], qps)
            def recall(name: str) -> float:
                return float(np.mean([len(set(a) & set(b)) / K for a, b in
                                      zip(results[name][: len(queries)], results["faiss"][: len(queries)])]))
            rows = index.ntotal
    finally:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    over = 1e6 / best["heron"] - 1e6 / best["faiss"]
    extra = []
    if "built" in best:
        b_over = 1e6 / best["heron"] - 1e6 / best["built"]
        extra.append(f"| Heron against faiss on the same graph with its rows in the order they came: {best['heron']:,.0f} "
                     f"| {best['built']:,.0f} | {best['heron'] / best['built']:.2f}x | {b_over:,.0f} | {recall('built'):.3f} |")
    if "general" in best:
        g_over = 1e6 / best["general"] - 1e6 / best["faiss"]
        extra.append(f"| Heron, quick lane off: {best['general']:,.0f} | {best['faiss']:,.0f} "
                     f"| {best['general'] / best['faiss']:.2f}x | {g_over:,.0f} | |")
    return "\n".join([
        f"Rows: {rows:,} x {dim} (clustered, COSINE), HNSW M 16 efConstruction 200, ef {args.ef}, k {K}; one query "
        f"per call, one caller, faiss on one thread, best of {args.rounds} rounds of {args.seconds:g} s taken in "
        f"turns; machine: {os.cpu_count()} cores, Python {platform.python_version()}, faiss {faiss.__version__}, "
        f"load average {os.getloadavg()[0]:.1f}.",
        "",
        "| Heron (searches/s) | faiss, same index (searches/s) | ratio | Heron's time per call over faiss's (µs) "
        "| recall@10 vs faiss |",
        "|---:|---:|---:|---:|---:|",
        f"| {best['heron']:,.0f} | {best['faiss']:,.0f} | {best['heron'] / best['faiss']:.2f}x | {over:,.0f} "
        f"| {recall('heron'):.3f} |",
        *extra,
    ])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--ef", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per system and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", help="a data directory this bench built before (built there if missing)")
    ap.add_argument("--lanes", action="store_true", help="also time Heron with its quick lane off (the general path)")
    ap.add_argument("--out", help="write the report (markdown) here")
    args = ap.parse_args(argv)
    text = run(args)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
