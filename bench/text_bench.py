"""Analyzer and text_match speed on the 10,000 glosses of ``minilm-dev-10k``: Heron against Milvus Lite.

Run: ``.venv/bin/python bench/text_bench.py [--rows N] [--queries Q] [--out bench/TEXT.md]``
(needs ``../shared/data/minilm-dev-10k`` and, for the comparison, ``milvus-lite``).

- Analyzers: texts per second through ``tokenize_many``, cold (a new analyzer:
  every distinct token goes through the filters once) and warm (again).
- Token index: texts per second to build the index a sealed segment keeps.
- Queries: ``text_match`` (two words) and ``phrase_match`` (two words, slop 0
  and 2) through ``client.query`` on a flushed collection, each filter once
  (parse, bind and evaluate; a repeated filter is answered from the sealed
  segment's memo), median latency; Milvus Lite answers the same
  ``text_match`` filters (it has no phrase_match).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import heron
from heron import DataType
from heron.engine.functions._analyzer import build_analyzer
from heron.engine.index._text_index import TextIndex

try:
    from bench._sections import write_section
except ImportError:  # run as a script: bench/ itself is on the path
    from _sections import write_section  # type: ignore[no-redef]

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "minilm-dev-10k" / "base.jsonl.gz"
ANALYZERS: dict[str, Any] = {
    "standard": {"type": "standard"},
    "english": {"type": "english"},
    "whitespace": {"type": "whitespace"},
    "custom (lowercase, asciifolding, length, stemmer)": {
        "tokenizer": "standard",
        "filter": ["lowercase", "asciifolding", {"type": "length", "max": 20},
                   {"type": "stemmer", "language": "english"}]},
}


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _rate(fn: Callable[[], Any], n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def bench_analyzers(texts: list[str]) -> list[tuple[str, float, float, float]]:
    out = []
    for name, params in ANALYZERS.items():
        a = build_analyzer(params)
        cold = _rate(lambda a=a: a.tokenize_many(texts), len(texts))
        warm = _rate(lambda a=a: a.tokenize_many(texts), len(texts))
        index = _rate(lambda a=a: TextIndex.build(a, texts), len(texts))
        out.append((name, cold, warm, index))
    return out


def _queries(texts: list[str], k: int) -> list[str]:
    rng = random.Random(1)
    words = [w for t in texts for w in build_analyzer(None).tokenize(t) if len(w) > 3]
    out = []
    while len(out) < k:
        t = build_analyzer(None).tokenize(rng.choice(texts))
        if len(t) >= 2:
            i = rng.randrange(len(t) - 1)
            out.append(f"{t[i]} {t[i + 1]}" if rng.random() < 0.5 else f"{rng.choice(words)} {rng.choice(words)}")
    return out


def bench_queries(texts: list[str], phrases: list[str]) -> dict[str, dict[str, float]]:
    rows = [{"id": i, "v": [0.0, 1.0], "t": t} for i, t in enumerate(texts)]
    forms = {
        "text_match": "text_match(t, '{}')",
        "phrase_match, slop 0": "phrase_match(t, '{}')",
        "phrase_match, slop 2": "phrase_match(t, '{}', 2)",
    }
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        with heron.Client(os.path.join(d, "heron")) as c:
            s = heron.CollectionSchema()
            s.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
            s.add_field("t", DataType.VARCHAR, max_length=4096, enable_analyzer=True, enable_match=True)
            ip = c.prepare_index_params()
            ip.add_index("v", index_type="FLAT", metric_type="L2")
            c.create_collection("c", schema=s, index_params=ip)
            c.insert("c", rows)
            c.flush("c")
            c.query("c", filter="text_match(t, 'warm up')", output_fields=["id"], limit=16384)
            for label, form in forms.items():
                # Each filter once: a repeated one would be answered from the sealed segment's filter memo.
                exprs = [form.format(p) for p in phrases]
                results.setdefault(label, {})["heron"] = statistics.median(
                    _median_ms(lambda e=e: c.query("c", filter=e, output_fields=["id"], limit=16384), 1)
                    for e in exprs)
        try:
            from pymilvus import MilvusClient
        except ImportError:
            return results
        mc = MilvusClient(os.path.join(d, "lite.db"))
        schema = mc.create_schema()
        schema.add_field("id", DataType.INT64.value, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR.value, dim=2)
        schema.add_field("t", DataType.VARCHAR.value, max_length=4096, enable_analyzer=True, enable_match=True)
        ip = mc.prepare_index_params()
        ip.add_index("v", index_type="FLAT", metric_type="L2")
        mc.create_collection("c", schema=schema, index_params=ip)
        mc.insert("c", rows)
        exprs = [forms["text_match"].format(p) for p in phrases]
        results["text_match"]["milvus-lite"] = statistics.median(
            _median_ms(lambda e=e: mc.query("c", filter=e, output_fields=["id"], limit=16384), 1) for e in exprs)
        mc.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--out", default=str(Path(__file__).with_name("TEXT.md")))
    args = ap.parse_args()
    with gzip.open(DATA, "rt") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(args.rows), f)]
    analyzers = bench_analyzers(texts)
    queries = bench_queries(texts, _queries(texts, args.queries))
    lines = [
        "# Analyzers and text_match",
        "",
        f"{len(texts):,} glosses of `minilm-dev-10k`; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}. Written by `bench/text_bench.py`.",
        "",
        "| analyzer | tokenize, cold (texts/s) | tokenize, warm (texts/s) | token index build (texts/s) |",
        "|---|---:|---:|---:|",
        *[f"| {n} | {c:,.0f} | {w:,.0f} | {i:,.0f} |" for n, c, w, i in analyzers],
        "",
        f"Query latency, median over {args.queries} two-word queries (ms), standard analyzer, one sealed segment:",
        "",
        "| filter | Heron | Milvus Lite |",
        "|---|---:|---:|",
        *[f"| {k} | {v['heron']:.2f} | {v['milvus-lite']:.2f} |" if "milvus-lite" in v
          else f"| {k} | {v['heron']:.2f} | (none) |" for k, v in queries.items()],
        "",
    ]
    write_section(args.out, "text_bench", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
