"""Text-only insert speed: rows of id and text into collections whose functions fill the vector fields.

Run: ``python -m bench.text_insert [--rows N] [--embed-rows N] [--batch B] [--rounds R]
[--modes heron-bm25,heron-embed,heron-both,milvus-lite-bm25] [--out FILE]``

The texts are the WordNet glosses of ``shared/data/minilm-dev-10k`` (``--rows``,
all 10,000 by default), sent as row dicts ``{"id": i, "text": t}`` in insert
calls of ``--batch`` rows, which is what a user of either database writes.
Modes, each on a fresh collection, taking turns round after round (each
keeps its best round):

- ``heron-bm25``: a BM25 function (standard analyzer) from the text to a
  sparse field with a ``SPARSE_INVERTED_INDEX``/BM25 index;
- ``heron-embed``: a ``TEXTEMBEDDING`` function with the ``local`` provider
  (all-MiniLM-L6-v2, numpy) to a 384-d field with a FLAT/COSINE index, on the
  first ``--embed-rows`` texts (the model runs some hundreds of texts/s on a
  CPU); unavailable when the model package is not installed;
- ``heron-both``: both functions on the same rows (``--embed-rows``);
- ``milvus-lite-bm25``: Milvus Lite with the same BM25 schema (Lite has no
  local embedding provider).

Figures per mode: **insert (docs/s)**, the insert calls alone; **to
searchable (docs/s)**, through ``flush`` and the index built (the time until
every row is sealed and indexed); **function alone (docs/s)**: the function's
own work on the same texts outside any database (Heron only: analyzer and term
counts, or the model), which shows what the insert path adds around it; and the
CPU time of the process per document (every thread, Milvus Lite's server
process not included: its figure reads n/a).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "minilm-dev-10k" / "base.jsonl.gz"
MODES = ("heron-bm25", "heron-embed", "heron-both", "milvus-lite-bm25")
MODEL = "all-MiniLM-L6-v2"
DIM = 384


def read_texts(n: int) -> list[str]:
    with gzip.open(DATA, "rt") as fh:
        return [json.loads(line)["text"] for _, line in zip(range(n), fh)]


def _insert_all(insert: Callable[[list[dict[str, Any]]], Any], texts: list[str], batch: int) -> tuple[float, float]:
    """Wall and process CPU seconds for inserting ``texts`` as row dicts in calls of ``batch``."""
    t0, c0 = time.perf_counter(), time.process_time()
    for lo in range(0, len(texts), batch):
        insert([{"id": lo + j, "text": t} for j, t in enumerate(texts[lo:lo + batch])])
    return time.perf_counter() - t0, time.process_time() - c0


def _wait_indexed(client: Any, field: str) -> float:
    t0 = time.perf_counter()
    client.flush("docs")
    while int(client.describe_index("docs", field).get("pending_index_rows", 0) or 0):
        time.sleep(0.01)
    return time.perf_counter() - t0


def run_heron(texts: list[str], mode: str, batch: int, tmp: str) -> dict[str, Any]:
    import heron
    from heron.engine.functions._base import FunctionDef, build

    bm25, embed = mode in ("heron-bm25", "heron-both"), mode in ("heron-embed", "heron-both")
    if embed:
        from heron.engine.functions import _embedding_local

        _embedding_local.model_dir(MODEL)  # HeronError (reported as unavailable) without the model package
    client = heron.Client(os.path.join(tmp, "heron"))
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("text", heron.DataType.VARCHAR, max_length=8000, enable_analyzer=True)
    ip = client.prepare_index_params()
    fns = []
    if bm25:
        s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(heron.Function("bm25", heron.FunctionType.BM25, input_field_names=["text"],
                                      output_field_names=["sparse"]))
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        fns.append(FunctionDef("bm25", "BM25", ("text",), ("sparse",)))
    if embed:
        params = {"provider": "local", "model_name": MODEL}
        s.add_field("dense", heron.DataType.FLOAT_VECTOR, dim=DIM)
        s.add_function(heron.Function("emb", heron.FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                                      output_field_names=["dense"], params=params))
        ip.add_index("dense", index_type="FLAT", metric_type="COSINE")
        fns.append(FunctionDef("emb", "TEXTEMBEDDING", ("text",), ("dense",), params))
    client.create_collection("docs", schema=s, index_params=ip)
    built = [build(fd, s) for fd in fns]
    for f in built:  # warm up: the model loads on first use (and is kept for the collection's function)
        f.compute({"text": texts[:8]})
    try:
        wall, cpu = _insert_all(lambda rows: client.insert("docs", rows), texts, batch)
        index_s = _wait_indexed(client, "sparse" if bm25 else "dense")
        assert client.query("docs", output_fields=["count(*)"])[0]["count(*)"] == len(texts)
    finally:
        client.close()
    t0 = time.perf_counter()
    for lo in range(0, len(texts), batch):
        for f in built:
            f.compute({"text": texts[lo:lo + batch]})
    alone = time.perf_counter() - t0
    return {"insert_docs_s": len(texts) / wall, "searchable_docs_s": len(texts) / (wall + index_s),
            "function_docs_s": len(texts) / alone, "cpu_us_doc": cpu / len(texts) * 1e6, "rows": len(texts)}


def run_milvus_lite(texts: list[str], mode: str, batch: int, tmp: str) -> dict[str, Any]:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(os.path.join(tmp, "milvus.db"))
    try:
        s = client.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=8000, enable_analyzer=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
        ip = client.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        client.create_collection("docs", schema=s, index_params=ip)
        wall, _ = _insert_all(lambda rows: client.insert("docs", rows), texts, batch)
        index_s = _wait_indexed(client, "sparse")
        got = client.query("docs", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"]
        assert got == len(texts), f"Milvus Lite holds {got} rows, expected {len(texts)}"
    finally:
        client.close()
    return {"insert_docs_s": len(texts) / wall, "searchable_docs_s": len(texts) / (wall + index_s),
            "rows": len(texts)}


def _keep_best(prev: dict[str, Any], got: dict[str, Any]) -> None:
    for key, v in got.items():
        if isinstance(v, float) and key in prev:
            prev[key] = min(prev[key], v) if key.startswith("cpu_") else max(prev[key], v)


def report(results: dict[str, dict[str, Any]], batch: int, rounds: int) -> str:
    def fmt(r: dict[str, Any], key: str) -> str:
        v = r.get(key)
        return f"{v:,.0f}" if isinstance(v, float) else "n/a"

    lines = [f"Text-only rows (id, text) in insert calls of {batch:,}; best of {rounds} round(s); machine: "
             f"{os.cpu_count()} cores, Python {platform.python_version()}.", "",
             "| mode | rows | insert (docs/s) | to searchable (docs/s) | function alone (docs/s) | CPU per doc (µs) |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | |")
            continue
        cpu = f"{r['cpu_us_doc']:,.1f}" if isinstance(r.get("cpu_us_doc"), float) else "n/a"
        lines.append(f"| {name} | {r['rows']:,} | {fmt(r, 'insert_docs_s')} | {fmt(r, 'searchable_docs_s')} | "
                     f"{fmt(r, 'function_docs_s')} | {cpu} |")
    return "\n".join(lines)


def measure(texts: list[str], modes: list[str], rows: int, embed_rows: int, batch: int, rounds: int,
            log: Callable[[str], Any] = print) -> dict[str, dict[str, Any]]:
    """Each mode's best figures over ``rounds`` (see the module docstring); a failing mode reports its error."""
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; expected some of {list(MODES)}")
    results: dict[str, dict[str, Any]] = {}
    for rnd in range(rounds):
        for mode in modes:
            if "error" in results.get(mode, {}):
                continue
            some = texts[:embed_rows] if mode in ("heron-embed", "heron-both") else texts[:rows]
            tmp = tempfile.mkdtemp(prefix=f"text-insert-{mode}-")
            try:
                run = run_milvus_lite if mode.startswith("milvus-lite") else run_heron
                got = run(some, mode, batch, tmp)
                if mode in results:
                    _keep_best(results[mode], got)
                else:
                    results[mode] = got
            except ImportError as exc:
                results[mode] = {"error": f"unavailable ({exc.name})"}
            except Exception as exc:  # a failing mode costs its own figures only
                results[mode] = {"error": f"failed: {type(exc).__name__}: {str(exc)[:100]}"}
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log(f"round {rnd + 1}: {mode} done")
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000, help="texts for the BM25 modes")
    ap.add_argument("--embed-rows", type=int, default=2_000, help="texts for the modes with the embedding model")
    ap.add_argument("--batch", type=int, default=1_000, help="rows per insert call")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--out", default="", help="also write the table to this file")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if unknown := [m for m in modes if m not in MODES]:
        raise SystemExit(f"unknown mode(s) {unknown}; expected some of {list(MODES)}")
    texts = read_texts(max(args.rows, args.embed_rows))
    results = measure(texts, modes, args.rows, args.embed_rows, args.batch, args.rounds,
                      lambda line: print(line, flush=True))
    table = report(results, args.batch, args.rounds)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
