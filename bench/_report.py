"""Turns a run's JSON into the markdown table and the plots.

Ratios are written so that a number above 1 always means Heron did better:
Heron ÷ other for rates and recall, other ÷ Heron for latencies, times and
memory. "Best peer" is the best value among the systems that are neither
Heron nor faiss.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE = "faiss"


@dataclass(frozen=True)
class Row:
    """One line of the table: a label, how to read the value, and whether higher is better."""

    label: str
    get: Callable[[dict[str, Any]], Any]
    higher_better: bool
    fmt: str = "rate"


def _fig(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda doc: doc.get("figures", {}).get(key, _na(doc, key))


def _na(doc: dict[str, Any], key: str) -> Any:
    for step, reason in doc.get("na", {}).items():
        if key.startswith(step) or step in key:
            return f"n/a ({reason})"
    return None


def _sub(section: str, name: str, key: str) -> Callable[[dict[str, Any]], Any]:
    def get(doc: dict[str, Any]) -> Any:
        entry = doc.get(section, {}).get(name, {})
        if "na" in entry:
            return f"n/a ({entry['na']})"
        if "error" in entry:
            return "error"
        return entry.get(key)

    return get


def _concurrency(callers: int) -> Callable[[dict[str, Any]], Any]:
    def get(doc: dict[str, Any]) -> Any:
        for level in doc.get("concurrency", []):
            if level["callers"] == callers:
                return level["qps"]
        return None

    return get


def _qps_at_recall(target: float) -> Callable[[dict[str, Any]], Any]:
    def get(doc: dict[str, Any]) -> Any:
        ok = [p["qps"] for p in doc.get("curve", []) if p["recall_at_10"] >= target]
        return max(ok) if ok else ("below" if doc.get("curve") else None)

    return get


def table_rows(filters: list[str]) -> list[Row]:
    """The table's lines, filters taken from the dataset."""
    rows = [
        Row("insert, row dicts (rows/s)", _fig("insert_rows_per_s"), True),
        Row("insert, columns (rows/s)", _fig("insert_columns_per_s"), True),
        Row("time until searchable (s)", _fig("time_to_searchable_s"), False, "time"),
        Row("time until indexed (s)", _fig("time_to_indexed_s"), False, "time"),
        Row("fresh data: QPS, 1 query/call", _fig("fresh_qps"), True),
        Row("fresh data: recall@10", _fig("fresh_recall_at_10"), True, "recall"),
        Row("search QPS, 1 query/call", _fig("single_qps"), True),
        Row("search p50 (ms)", _fig("single_p50_ms"), False, "time"),
        Row("search p99 (ms)", _fig("single_p99_ms"), False, "time"),
        Row("search recall@10", _fig("single_recall_at_10"), True, "recall"),
        Row("batched search (queries/s)", _fig("batch_qps"), True),
        Row("best QPS at recall@10 ≥ 0.95", _qps_at_recall(0.95), True),
    ]
    for name in filters:
        rows.append(Row(f"filtered {name}: QPS", _sub("filtered", name, "qps"), True))
        rows.append(
            Row(f"filtered {name}: recall@10", _sub("filtered", name, "recall_at_10"), True, "recall")
        )
    rows.append(Row("get by id (calls/s)", _fig("get_by_id_per_s"), True))
    rows.append(Row("get by id, 1,000 ids per call (ids/s)", _fig("get_batch_ids_per_s"), True))
    for name in ["all", *filters]:
        rows.append(Row(f"count(*) {name} p50 (ms)", _sub("count", name, "p50_ms"), False, "time"))
    for callers in (1, 8, 32):
        rows.append(Row(f"search QPS, {callers} concurrent callers", _concurrency(callers), True))
    rows.append(Row("peak RSS (MiB)", lambda d: d.get("peak_rss_mb"), False, "mem"))
    rows.append(Row("server peak RSS (MiB)", lambda d: d.get("server_peak_rss_mb"), False, "mem"))
    return rows


def _number(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _format(v: Any, fmt: str) -> str:
    num = _number(v)
    if num is None:
        if v is None:
            return "–"
        return "n/a" if str(v).startswith("n/a") else str(v)
    if fmt == "recall":
        return f"{num:.3f}"
    if fmt == "time":
        return f"{num:.3g}" if num < 100 else f"{num:,.0f}"
    if num >= 100:
        return f"{num:,.0f}"
    return f"{num:.3g}"


def _ratio(subject: Any, other: Any, higher_better: bool) -> str:
    a, b = _number(subject), _number(other)
    if a is None or b is None or a == 0 or b == 0:
        return "–"
    r = a / b if higher_better else b / a
    return f"{r:.3g}×"


def _best(values: list[tuple[str, Any]], higher_better: bool) -> tuple[str, float] | None:
    nums = [(name, _number(v)) for name, v in values]
    ok = [(name, v) for name, v in nums if v is not None]
    if not ok:
        return None
    pick = max if higher_better else min
    return pick(ok, key=lambda item: item[1])


def subject_of(systems: list[str]) -> str | None:
    """The Heron variant the ratio columns are about: ``heron`` if present, else the first ``heron-*``."""
    if "heron" in systems:
        return "heron"
    return next((s for s in systems if s.startswith("heron")), None)


def markdown(run: dict[str, Any]) -> str:
    """The results table (and run facts) as markdown."""
    systems = list(run["systems"])
    docs = run["systems"]
    subject = subject_of(systems)
    peers = [s for s in systems if not s.startswith("heron") and not s.startswith("faiss")]
    header = ["figure", *systems]
    if subject:
        header += [f"{subject} vs faiss", f"{subject} vs best peer"]
    lines = [_run_facts(run), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table_rows(list(run["meta"]["dataset"]["filters"])):
        values = {s: row.get(docs[s]) for s in systems}
        if all(v is None for v in values.values()):
            continue
        cells = [row.label, *(_format(values[s], row.fmt) for s in systems)]
        if subject:
            ref = values.get(REFERENCE)
            best = _best([(p, values[p]) for p in peers], row.higher_better)
            cells.append(_ratio(values[subject], ref, row.higher_better) if REFERENCE in values else "–")
            cells.append(
                f"{_ratio(values[subject], best[1], row.higher_better)} ({best[0]})" if best else "–"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_notes(run)]
    return "\n".join(lines) + "\n"


def _run_facts(run: dict[str, Any]) -> str:
    meta = run["meta"]
    ds = meta["dataset"]
    m = meta["machine"]
    filt = ", ".join(f"{name} `{f['expr']}` ({f['selectivity']:.1%})" for name, f in ds["filters"].items())
    return (
        f"Run {meta['started']} on {m['cpus']} CPUs, {m['memory_gb']} GB RAM ({m['platform']}, Python {m['python']}). "
        f"Dataset {ds['name']}: {ds['n']:,} rows × {ds['dim']} dims, {ds['queries']} queries, {ds['metric']}; "
        f"HNSW M={meta['hnsw']['M']}, efConstruction={meta['hnsw']['efConstruction']}, search ef={meta['ef']}, "
        f"k=10. Filters: {filt}. Ratios > 1 mean Heron did better."
    )


def _notes(run: dict[str, Any]) -> list[str]:
    out = [
        f"- **{', '.join(r['systems'])}**: measured by a separate invocation on the same dataset "
        f"({r['started']}: `{r['command']}`)"
        for r in run["meta"].get("reruns", [])
    ]
    for name, doc in run["systems"].items():
        bits = [f"version {doc.get('version', '?')}", f"status {doc.get('status')}"]
        if doc.get("concurrency"):
            bits.append(f"concurrency via {doc['concurrency'][0]['mode']}")
        if doc.get("na"):
            bits.append("n/a: " + "; ".join(f"{k}: {v}" for k, v in doc["na"].items()))
        if doc.get("errors"):
            bits.append("errors in: " + ", ".join(doc["errors"]))
        if doc.get("error"):
            bits.append(doc["error"][:200])
        if doc.get("count_mismatches"):
            bits.append("wrong counts: " + "; ".join(doc["count_mismatches"]))
        out.append(f"- **{name}**: " + "; ".join(bits))
    return out


def plots(run: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """QPS–recall and throughput–concurrency PNGs; an empty list (with a note) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: plots skipped (pip install matplotlib)")
        return []
    paths = [out_dir / f"{stem}-qps-recall.png", out_dir / f"{stem}-concurrency.png"]
    _curve_plot(plt, run, paths[0])
    _concurrency_plot(plt, run, paths[1])
    return paths


def _curve_plot(plt: Any, run: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, doc in run["systems"].items():
        pts = doc.get("curve") or []
        if pts:
            ax.plot([p["recall_at_10"] for p in pts], [p["qps"] for p in pts], marker="o", label=name)
    ds = run["meta"]["dataset"]
    ax.set(xlabel="recall@10", ylabel="queries/s (1 query per call)", yscale="log")
    ax.set_title(f"{ds['name']}: QPS vs recall over ef", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _concurrency_plot(plt: Any, run: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, doc in run["systems"].items():
        levels = doc.get("concurrency") or []
        if levels:
            label = f"{name} ({levels[0]['mode']})"
            ax.plot([lv["callers"] for lv in levels], [lv["qps"] for lv in levels], marker="o", label=label)
    ax.set(xlabel="concurrent callers", ylabel="queries/s", xscale="log", yscale="log")
    ax.set_xticks([1, 8, 32], labels=["1", "8", "32"])
    ax.set_title("search throughput vs concurrent callers", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
