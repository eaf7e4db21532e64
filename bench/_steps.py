"""The measurements, in the order a worker runs them against one adapter.

Each step reads the dataset and the adapter from a `Context` and writes its
figures into the result document. Every loop is bounded by a call count and a
time limit (`Budget`); recall is measured on the very results that were timed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench._datasets import Dataset, FilterSpec
from bench._exact import exact_topk, recall_at
from bench._measure import Budget, Timed, async_calls, poll_until, threaded_calls, timed_calls
from bench.adapters import Adapter, Unsupported

MAIN = "main"
FRESH = "fresh"


@dataclass
class WorkerConfig:
    """Everything one system's run needs; written by the parent as JSON."""

    system: str
    dataset_dir: str
    result_path: str
    workroot: str
    k: int = 10
    ef: int = 64
    ef_list: list[int] = field(default_factory=lambda: [16, 24, 32, 48, 64, 96, 128, 256])
    insert_batch: int = 1000
    search_batch: int = 100
    fresh_rows: int = 20_000
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32])
    budgets: dict[str, list[float]] = field(default_factory=dict)
    load_seconds: float = 600.0
    server_uri: str = ""
    hnsw_m: int = 16
    ef_construction: int = 200

    def budget(self, step: str) -> Budget:
        count, seconds = self.budgets.get(step, [200, 10.0])
        return Budget(int(count), float(seconds))


@dataclass
class Context:
    """What the steps share: config, data, the system under test and the result document."""

    cfg: WorkerConfig
    ds: Dataset
    adapter: Adapter
    doc: dict[str, Any]
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def figures(self) -> dict[str, Any]:
        fig: dict[str, Any] = self.doc["figures"]
        return fig

    def query(self, i: int) -> np.ndarray:
        nq = len(self.ds.queries)
        return self.ds.queries[i % nq : i % nq + 1]

    def truth(self, calls: int, gt: np.ndarray) -> np.ndarray:
        return gt[np.arange(calls) % len(gt)]


def _search_summary(ctx: Context, timed: Timed, gt: np.ndarray) -> dict[str, Any]:
    found = [r[0] for r in timed.results]
    return {
        "qps": timed.per_second(),
        "p50_ms": timed.percentile_ms(50),
        "p99_ms": timed.percentile_ms(99),
        "recall_at_10": recall_at(found, ctx.truth(len(found), gt), ctx.cfg.k),
        "queries": timed.calls,
    }


def _single_queries(
    ctx: Context, ef: int, budget: Budget, flt: FilterSpec | None = None, name: str = MAIN
) -> Timed:
    k = ctx.cfg.k
    return timed_calls(lambda i: ctx.adapter.search(name, ctx.query(i), k, ef, flt), budget)


def step_fresh(ctx: Context) -> None:
    """Columnar insert rate, then search on those rows at once (no flush, no reopen), then drop."""
    ad = ctx.adapter
    rows = min(ctx.ds.n, ctx.cfg.fresh_rows)
    budget = ctx.cfg.budget("fresh_insert")
    ad.create(FRESH)
    try:
        _fresh_insert_and_search(ctx, rows, budget)
    finally:
        ad.drop(FRESH)


def _fresh_insert_and_search(ctx: Context, rows: int, budget: Budget) -> None:
    ds, ad, cfg = ctx.ds, ctx.adapter, ctx.cfg
    columnar = True
    spent, done, start = 0.0, 0, time.perf_counter()
    while done < rows and time.perf_counter() - start < budget.seconds:
        stop = min(rows, done + cfg.insert_batch)
        batch = ds.columns_slice(done, stop)
        t0 = time.perf_counter()
        try:
            ad.insert_columns(FRESH, batch) if columnar else ad.insert_rows(FRESH, ds.rows(done, stop))
        except Unsupported as exc:
            ctx.doc["na"]["insert_columns"] = str(exc)
            columnar = False
            continue
        spent += time.perf_counter() - t0
        done = stop
    if columnar:
        ctx.figures["insert_columns_per_s"] = done / spent
    timed = _single_queries(ctx, cfg.ef, cfg.budget("fresh_search"), name=FRESH)
    gt = exact_topk(ds.vectors[:done], ds.queries[: min(timed.calls, len(ds.queries))], cfg.k, ds.metric)
    summary = _search_summary(ctx, timed, gt)
    ctx.figures.update({f"fresh_{key}": val for key, val in summary.items()})
    ctx.figures["fresh_rows"] = done


def step_load(ctx: Context) -> None:
    """Insert every row as row dicts; the collection all later steps use."""
    ds, ad, cfg = ctx.ds, ctx.adapter, ctx.cfg
    ad.create(MAIN)
    spent, start = 0.0, time.perf_counter()
    for s in range(0, ds.n, cfg.insert_batch):
        rows = ds.rows(s, min(ds.n, s + cfg.insert_batch))
        t0 = time.perf_counter()
        ad.insert_rows(MAIN, rows)
        spent += time.perf_counter() - t0
        if time.perf_counter() - start > cfg.load_seconds and s + cfg.insert_batch < ds.n:
            raise TimeoutError(
                f"load stopped after {cfg.load_seconds:.0f}s with {s + len(rows)} of {ds.n} rows"
            )
    ctx.marks["inserted"] = time.perf_counter()
    ctx.figures["insert_rows_per_s"] = ds.n / spent


def step_searchable(ctx: Context) -> None:
    """Seconds from the last insert returning until a search finds the last row."""
    last = ctx.ds.n - 1
    vec = ctx.ds.vectors[last : last + 1]
    budget = ctx.cfg.budget("searchable")

    def found() -> bool:
        return last in ctx.adapter.search(MAIN, vec, ctx.cfg.k, max(ctx.cfg.ef, 64))[0]

    waited = poll_until(found, budget.seconds)
    if waited is None:
        raise TimeoutError(f"last row not found by search within {budget.seconds:.0f}s")
    ctx.figures["time_to_searchable_s"] = time.perf_counter() - ctx.marks["inserted"]


def step_indexed(ctx: Context) -> None:
    """Seconds from the last insert returning until the vector index covers every row."""
    budget = ctx.cfg.budget("indexed")
    if not ctx.adapter.wait_indexed(MAIN, budget.seconds):
        raise TimeoutError(f"index not complete within {budget.seconds:.0f}s")
    ctx.figures["time_to_indexed_s"] = time.perf_counter() - ctx.marks["inserted"]


def step_single(ctx: Context) -> None:
    """One query per call at the default ef: QPS, p50/p99 latency, recall@10."""
    timed = _single_queries(ctx, ctx.cfg.ef, ctx.cfg.budget("single"))
    ctx.figures.update({f"single_{key}": val for key, val in _search_summary(ctx, timed, ctx.ds.gt).items()})


def step_batch(ctx: Context) -> None:
    """``search_batch`` queries per call: queries per second and recall@10."""
    ds, cfg = ctx.ds, ctx.cfg
    size = min(cfg.search_batch, len(ds.queries))
    n_batches = len(ds.queries) // size

    def call(i: int) -> list[list[int]]:
        j = (i % n_batches) * size
        return ctx.adapter.search(MAIN, ds.queries[j : j + size], cfg.k, cfg.ef)

    timed = timed_calls(call, cfg.budget("batch"))
    found = [hits for batch in timed.results for hits in batch]
    ctx.figures["batch_qps"] = timed.per_second(size)
    ctx.figures["batch_recall_at_10"] = recall_at(found, ctx.truth(len(found), ds.gt), cfg.k)
    ctx.figures["batch_size"] = size


def step_curve(ctx: Context) -> None:
    """QPS and recall@10 at each ef (one query per call); one point when search is exact."""
    efs = ctx.cfg.ef_list if ctx.adapter.knob else [ctx.cfg.ef]
    curve = []
    for ef in efs:
        timed = _single_queries(ctx, ef, ctx.cfg.budget("curve"))
        curve.append({"ef": ef, **_search_summary(ctx, timed, ctx.ds.gt)})
    ctx.doc["curve"] = curve


def step_filtered(ctx: Context) -> None:
    """Each filter at the default ef: QPS, latency and recall@10 against the filtered truth."""
    out: dict[str, Any] = ctx.doc.setdefault("filtered", {})
    for flt in ctx.ds.filters:
        try:
            timed = _single_queries(ctx, ctx.cfg.ef, ctx.cfg.budget("filtered"), flt)
        except Unsupported as exc:
            out[flt.name] = {"na": str(exc), "selectivity": flt.selectivity}
            continue
        except Exception as exc:
            out[flt.name] = {"error": f"{type(exc).__name__}: {exc}"[:500], "selectivity": flt.selectivity}
            continue
        out[flt.name] = {
            **_search_summary(ctx, timed, ctx.ds.gt_filtered[flt.name]),
            "selectivity": flt.selectivity,
        }


def step_get(ctx: Context) -> None:
    """Get-by-id, one id per call (calls per second) and 1,000 per call (ids per second); all must be found."""
    ids = np.random.default_rng(7).integers(0, ctx.ds.n, 10_000)
    timed = timed_calls(lambda i: ctx.adapter.get(MAIN, [int(ids[i % len(ids)])]), ctx.cfg.budget("get"))
    ctx.figures["get_by_id_per_s"] = timed.per_second()
    missing = timed.calls - int(sum(timed.results))
    batches = [np.unique(ids[j : j + GET_BATCH]).tolist() for j in range(0, len(ids), GET_BATCH)]
    timed = timed_calls(lambda i: ctx.adapter.get(MAIN, batches[i % len(batches)]), ctx.cfg.budget("get_batch"))
    sizes = [len(batches[i % len(batches)]) for i in range(timed.calls)]
    ctx.figures["get_batch_ids_per_s"] = sum(sizes) / timed.elapsed if timed.elapsed > 0 else float("nan")
    ctx.figures["get_missing"] = missing + sum(sizes) - int(sum(timed.results))


#: Ids per call of the batched get-by-id figure.
GET_BATCH = 1000


def step_count(ctx: Context) -> None:
    """Latency of ``count(*)`` with each filter (and none); counts are checked against numpy."""
    ds = ctx.ds
    out: dict[str, Any] = ctx.doc.setdefault("count", {})
    wrong: list[str] = []
    for flt in [None, *ds.filters]:
        name = flt.name if flt else "all"
        expected = ds.n if flt is None else int(flt.mask(ds.filter_column(flt)).sum())
        try:
            timed = timed_calls(lambda i, f=flt: ctx.adapter.count(MAIN, f), ctx.cfg.budget("count"))
        except Unsupported as exc:
            out[name] = {"na": str(exc)}
            continue
        out[name] = {"p50_ms": timed.percentile_ms(50), "calls": timed.calls, "value": timed.results[0]}
        if timed.results[0] != expected:
            wrong.append(f"{name}: got {timed.results[0]}, expected {expected}")
    if wrong:
        ctx.doc["count_mismatches"] = wrong


def step_concurrency(ctx: Context) -> None:
    """Search throughput with 1/8/32 concurrent callers: asyncio client if the system has one, else threads."""
    cfg = ctx.cfg
    budget = cfg.budget("concurrency")
    results = asyncio.run(_async_levels(ctx, budget))
    if results is None:
        results = []
        for callers in cfg.concurrency:
            tp = threaded_calls(
                lambda i: ctx.adapter.search(MAIN, ctx.query(i), cfg.k, cfg.ef), callers, budget
            )
            results.append(tp.as_dict(callers))
    ctx.doc["concurrency"] = results


async def _async_levels(ctx: Context, budget: Budget) -> list[dict[str, Any]] | None:
    searcher = await ctx.adapter.open_async()
    if searcher is None:
        return None
    cfg = ctx.cfg
    try:
        out = []
        for callers in cfg.concurrency:

            async def call(i: int) -> list[int]:
                return await searcher.search(MAIN, ctx.query(i)[0], cfg.k, cfg.ef)

            out.append((await async_calls(call, callers, budget)).as_dict(callers))
        return out
    finally:
        await searcher.close()


STEPS: list[tuple[str, Callable[[Context], None], bool]] = [
    ("fresh", step_fresh, False),
    ("load", step_load, True),
    ("searchable", step_searchable, False),
    ("indexed", step_indexed, False),
    ("single", step_single, False),
    ("batch", step_batch, False),
    ("curve", step_curve, False),
    ("filtered", step_filtered, False),
    ("get", step_get, False),
    ("count", step_count, False),
    ("concurrency", step_concurrency, False),
]
