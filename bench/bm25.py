"""BM25 full-text search: Heron against bm25s, tantivy and Milvus Lite, on the same texts and queries, in one run.

Run: ``python -m bench.bm25 [--systems heron,bm25s,tantivy,milvus-lite] [--seconds S] [--rounds R] [--maxscore]
[--no-stages] [--out FILE]``
(a system whose package is not installed is reported as unavailable).

Corpus: the 10,000 WordNet glosses of ``shared/data/minilm-dev-10k/base.jsonl.gz``
and its 200 queries (``queries.jsonl.gz``). BM25 with k1=1.2, b=0.75 everywhere.

Figures per system:

- **build (docs/s)**: from texts to an index that answers: for Heron,
  text-only rows inserted into a collection with a BM25 function (its
  analyzer and term counts run at insert), sealed (flush) and indexed; bm25s ``index`` over the same analyzer's tokens
  (the analysis timed too); tantivy's writer (its own tokenizer) through
  commit and reload; Milvus Lite: insert of text-only rows (its BM25
  function) through flush and the index.
- **text insert (docs/s)**: the insert calls alone, text-only rows in
  calls of 1,000, through each database's BM25 function (Heron, Milvus Lite).
- **query QPS**, top-10, one query per call, query text in (``data=["text"]``
  for Heron and Milvus Lite: the analysis included), cycling through the 200 queries for ``--seconds``, with the
  process's CPU time per query (all its threads: the figure a loaded,
  shared machine disturbs least); and
  **batch QPS**, all 200 queries in one call where the system takes batches
  (the best of 5 calls; of 1 for Milvus Lite, which takes seconds).

With ``--maxscore``, one segment's top-10 alone (no engine around it) is
timed with MaxScore pruning and with every posting summed at once, on the
corpus and on ten copies of it (100,000 rows).

The top-10 agreement of each system with Heron's is reported too, as a check
that they answer the same question (tantivy tokenizes on its own and scores
BM25 with its own IDF, so it agrees less), and with a numpy `Reference`
written from the formula (ties at the tenth place count as found). Unless
``--no-stages``, Heron's agreement with the reference is checked again as its
collection changes (`heron_stages`: deletes, upserts, a merge, a reopen).
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

import numpy as np

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "minilm-dev-10k"
SYSTEMS = ("heron", "bm25s", "tantivy", "milvus-lite")
K = 10
BATCH = 1000


def read_texts(name: str) -> list[str]:
    with gzip.open(DATA / name, "rt") as fh:
        return [json.loads(line)["text"] for line in fh]


def qps_loop(search_one: Callable[[str], list[int]], queries: list[str], seconds: float) -> dict[str, float]:
    """Queries per second, one query per call, cycling through ``queries`` for about ``seconds``.

    Also the CPU time of the process per query (every thread), in microseconds: on a shared
    machine the wall clock measures the share of the cores a process got as much as its work.
    """
    for q in queries[:5]:
        search_one(q)
    done, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        search_one(queries[done % len(queries)])
        done += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and done >= len(queries):
            return {"qps": done / elapsed, "cpu_us": (time.process_time() - c0) / done * 1e6}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_of(fn: Callable[[], Any], times: int = 5) -> float:
    """The shortest of ``times`` calls of ``fn`` (seconds): one call is at the mercy of a loaded machine."""
    return min(timed(fn)[0] for _ in range(times))


class Reference:
    """BM25 from the formula alone, in numpy, over the analyzer's token strings (no hashing).

    IDF ``log(1 + (N - df + 0.5) / (df + 0.5))``, the term factor normalised
    by the average row length, N, df and avgdl over ``docs`` (id -> tokens).
    `agreement` is the share of its top-k found in a system's top-k, a row
    tied with its k-th score counting as found.
    """

    def __init__(self, docs: dict[int, list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        import scipy.sparse as sps

        self.ids = np.array(sorted(docs), dtype=np.int64)
        self.vocab: dict[str, int] = {}
        vocab_id = lambda t: self.vocab.setdefault(t, len(self.vocab))  # noqa: E731
        toks = [docs[int(i)] for i in self.ids]
        cols = np.fromiter((vocab_id(t) for ts in toks for t in ts), dtype=np.int64)
        rows = np.repeat(np.arange(len(toks)), [len(ts) for ts in toks])
        n = len(toks)
        x = sps.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(n, max(len(self.vocab), 1)))
        x.sum_duplicates()
        dl = np.asarray(x.sum(axis=1)).ravel()
        df = np.bincount(x.indices, minlength=x.shape[1])
        self.idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        x.data = x.data * (k1 + 1) / (x.data + k1 * (1 - b + b * dl[np.repeat(np.arange(n), np.diff(x.indptr))]
                                                         / (dl.mean() if n else 1.0)))
        self.factors = x.tocsc()

    def scores(self, tokens: list[str]) -> np.ndarray:
        q = np.zeros(self.factors.shape[1])
        for t in tokens:
            if (j := self.vocab.get(t)) is not None:
                q[j] += self.idf[j]
        return np.asarray(self.factors @ q).ravel()

    def agreement(self, tops: list[list[int]], queries: list[list[str]]) -> float:
        where = {int(i): r for r, i in enumerate(self.ids)}
        found = total = 0
        for top, q in zip(tops, queries):
            s = self.scores(q)
            best = np.lexsort((self.ids, -s))[:K]
            best = best[s[best] > 0]
            if not len(best):
                continue
            cut = s[best[-1]]
            got = {where[i] for i in top if i in where}
            total += len(best)
            found += min(len(best), sum(1 for r in got if s[r] >= cut - 1e-9 * max(1.0, cut)))
        return found / max(total, 1)


# -- the systems -------------------------------------------------------------------------------


def run_heron(texts: list[str], queries: list[str], seconds: float, tmp: str) -> dict[str, Any]:
    import heron

    client = heron.Client(os.path.join(tmp, "heron"))
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("text", heron.DataType.VARCHAR, max_length=8000, enable_analyzer=True)
    s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(heron.Function("bm25", heron.FunctionType.BM25, input_field_names=["text"],
                                  output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection("docs", schema=s, index_params=ip)

    def insert() -> None:
        for lo in range(0, len(texts), BATCH):
            chunk = texts[lo:lo + BATCH]
            client.insert("docs", {"id": np.arange(lo, lo + len(chunk), dtype=np.int64), "text": chunk})

    def wait_indexed() -> None:
        client.flush("docs")
        while int(client.describe_index("docs", "sparse").get("pending_index_rows", 0)):
            time.sleep(0.01)

    t_insert, _ = timed(insert)
    t_index, _ = timed(wait_indexed)
    sp_ = {"metric_type": "BM25"}

    def one(q: str) -> list[int]:
        hits = client.search("docs", data=[q], anns_field="sparse", limit=K, search_params=sp_)
        return [h["id"] for h in hits[0]]

    top = [one(q) for q in queries]
    t_batch = best_of(lambda: client.search("docs", data=queries, anns_field="sparse", limit=K, search_params=sp_))
    out = {"build_docs_s": len(texts) / (t_insert + t_index), "insert_docs_s": len(texts) / t_insert,
           **qps_loop(one, queries, seconds), "batch_qps": len(queries) / t_batch, "top": top}
    client.close()
    return out


def run_bm25s(texts: list[str], queries: list[str], seconds: float, tmp: str) -> dict[str, Any]:
    import bm25s

    from heron.engine.functions._analyzer import build_analyzer

    an = build_analyzer(None)

    def build_index() -> Any:
        r = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        r.index(an.tokenize_many(texts), show_progress=False)
        return r

    t_build, r = timed(build_index)

    def search(qs: list[str]) -> Any:
        toks = an.tokenize_many(qs)
        return r.retrieve(toks, k=K, show_progress=False, n_threads=1)

    def one(q: str) -> list[int]:
        docs, scores = search([q])
        return [int(d) for d, s in zip(docs[0], scores[0]) if s > 0]

    top = [one(q) for q in queries]
    t_batch = best_of(lambda: search(queries))
    return {"build_docs_s": len(texts) / t_build, **qps_loop(one, queries, seconds),
            "batch_qps": len(queries) / t_batch, "top": top}


def run_tantivy(texts: list[str], queries: list[str], seconds: float, tmp: str) -> dict[str, Any]:
    import tantivy

    from heron.engine.functions._analyzer import build_analyzer

    an = build_analyzer(None)
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("id", stored=True, indexed=True)
    sb.add_text_field("text", stored=False)
    schema = sb.build()
    path = os.path.join(tmp, "tantivy")
    os.makedirs(path)
    index = tantivy.Index(schema, path=path)

    def build_index() -> None:
        writer = index.writer(heap_size=128_000_000, num_threads=1)
        for i, t in enumerate(texts):
            writer.add_document(tantivy.Document(id=i, text=t))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()

    t_build, _ = timed(build_index)
    searcher = index.searcher()

    def one(q: str) -> list[int]:
        terms = " ".join(an.tokenize(q))  # plain words: no query-language operators
        if not terms:
            return []
        res = searcher.search(index.parse_query(terms, ["text"]), K)
        return [searcher.doc(addr)["id"][0] for _, addr in res.hits]

    top = [one(q) for q in queries]
    return {"build_docs_s": len(texts) / t_build, **qps_loop(one, queries, seconds), "top": top}


def run_milvus_lite(texts: list[str], queries: list[str], seconds: float, tmp: str) -> dict[str, Any]:
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    client = MilvusClient(os.path.join(tmp, "milvus.db"))
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=8000, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                 params={"bm25_k1": 1.2, "bm25_b": 0.75})
    client.create_collection("docs", schema=s, index_params=ip)

    def insert() -> None:
        for lo in range(0, len(texts), BATCH):
            client.insert("docs", [{"id": lo + j, "text": t} for j, t in enumerate(texts[lo:lo + BATCH])])

    def wait_indexed() -> None:
        client.flush("docs")
        while int(client.describe_index("docs", "sparse").get("pending_index_rows", 0)):
            time.sleep(0.01)

    t_insert, _ = timed(insert)
    t_index, _ = timed(wait_indexed)
    sp_ = {"metric_type": "BM25"}

    def one(q: str) -> list[int]:
        hits = client.search("docs", data=[q], anns_field="sparse", limit=K, search_params=sp_)
        return [h["id"] for h in hits[0]]

    top = [one(q) for q in queries]
    t_batch, _ = timed(lambda: client.search("docs", data=queries, anns_field="sparse", limit=K,
                                             search_params=sp_))
    out = {"build_docs_s": len(texts) / (t_insert + t_index), "insert_docs_s": len(texts) / t_insert,
           **qps_loop(one, queries, seconds), "batch_qps": len(queries) / t_batch, "top": top}
    client.close()
    return out


def heron_stages(texts: list[str], queries: list[str], tmp: str) -> list[tuple[str, float]]:
    """Heron's top-10 (one query text per call) against the `Reference` as the collection changes.

    Four sealed segments in two partitions; then 10% of the rows deleted, 5%
    upserted with other texts, the segments merged (compact), the collection
    reopened. The reference is recomputed from the live texts at each stage.
    """
    import heron
    from heron.engine.functions._analyzer import build_analyzer

    an = build_analyzer(None)
    docs = dict(enumerate(an.tokenize_many(texts)))
    qtok = an.tokenize_many(queries)
    path = os.path.join(tmp, "stages")
    out: list[tuple[str, float]] = []

    def check(c: Any, label: str) -> None:
        sp_ = {"metric_type": "BM25"}
        tops = [[h["id"] for h in c.search("docs", data=[q], anns_field="sparse", limit=K, search_params=sp_)[0]]
                for q in queries]
        out.append((label, Reference(docs).agreement(tops, qtok)))

    c = heron.Client(path)
    try:
        s = c.create_schema()
        s.add_field("id", heron.DataType.INT64, is_primary=True)
        s.add_field("text", heron.DataType.VARCHAR, max_length=8000, enable_analyzer=True)
        s.add_field("sparse", heron.DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(heron.Function("bm25", heron.FunctionType.BM25, input_field_names=["text"],
                                      output_field_names=["sparse"]))
        ip = c.prepare_index_params()
        ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection("docs", schema=s, index_params=ip)
        c.create_partition("docs", "other")
        quarter = -(-len(texts) // 4)
        for j, lo in enumerate(range(0, len(texts), quarter)):
            c.insert("docs", [{"id": i, "text": texts[i]} for i in range(lo, min(lo + quarter, len(texts)))],
                     partition_name="other" if j % 2 else "_default")
            c.flush("docs")
        check(c, "fresh (4 sealed segments, 2 partitions)")
        gone = list(range(0, len(texts), 10))
        c.delete("docs", ids=gone)
        for i in gone:
            del docs[i]
        check(c, "after deleting 10%")
        changed = [i for i in range(3, len(texts), 20) if i in docs]
        new = {i: texts[(i * 31) % len(texts)] for i in changed}
        c.upsert("docs", [{"id": i, "text": t} for i, t in new.items()])
        docs.update((i, an.tokenize(t)) for i, t in new.items())
        check(c, "after upserting 5%")
        c.flush("docs")
        c.compact("docs")
        check(c, "after merging (compact)")
    finally:
        c.close()
    with heron.Client(path) as c:
        c.load_collection("docs")
        check(c, "after reopening")
    return out


def maxscore_figures(texts: list[str], queries: list[str], copies: tuple[int, ...] = (1, 10)) -> str:
    """One segment's top-10 (no engine around it), with and without MaxScore pruning, on the corpus repeated.

    CPU time of the process per query, best of 3 passes over the 200 queries.
    """
    from heron.engine.functions._base import FunctionDef, build
    from heron.engine.index import _bm25 as bm

    fn = build(FunctionDef("bm25", "BM25", ("text",), ("sparse",)), None)
    q = fn.query(queries)
    lines = ["| rows | postings summed at once (µs/query) | MaxScore pruning (µs/query) | as configured: pruning only "
             f"past {bm.PRUNE_MIN_POSTINGS:,} postings and {bm.PRUNE_MIN_PER_ROW:g} per row (µs/query) |", "|---:|---:|---:|---:|"]
    saved, saved_per_row = bm.PRUNE_MIN_POSTINGS, bm.PRUNE_MIN_PER_ROW
    try:
        for c in copies:
            terms = bm.Bm25Terms.from_rows(fn.compute({"text": texts * c})["sparse"])
            qterms = np.unique(q.indices).astype(np.int64)
            w = q.copy()
            w.data = (w.data * bm.idf(terms.n, terms.doc_freq(qterms, None))[np.searchsorted(qterms, q.indices)]
                      ).astype(np.float32)
            avgdl = terms.total_dl / terms.n
            cells = []
            for prune_min, per_row in ((1 << 62, saved_per_row), (0, 0.0), (saved, saved_per_row)):
                bm.PRUNE_MIN_POSTINGS, bm.PRUNE_MIN_PER_ROW = prune_min, per_row
                best = float("inf")
                for _ in range(3):
                    c0 = time.process_time()
                    terms.topk(w, K, None, avgdl, 1.2, 0.75)
                    best = min(best, (time.process_time() - c0) / len(queries) * 1e6)
                cells.append(f"{best:,.0f}")
            lines.append(f"| {terms.n:,} | {' | '.join(cells)} |")
    finally:
        bm.PRUNE_MIN_POSTINGS, bm.PRUNE_MIN_PER_ROW = saved, saved_per_row
    return "\n".join(lines)


RUNNERS: dict[str, Callable[[list[str], list[str], float, str], dict[str, Any]]] = {
    "heron": run_heron, "bm25s": run_bm25s, "tantivy": run_tantivy, "milvus-lite": run_milvus_lite,
}


def overlap(a: list[list[int]], b: list[list[int]]) -> float:
    pairs = [(set(x), set(y)) for x, y in zip(a, b) if y]
    return float(np.mean([len(x & y) / len(y) for x, y in pairs])) if pairs else float("nan")


def report(results: dict[str, dict[str, Any]], n: int, nq: int, seconds: float, rounds: int,
           reference: tuple[Reference, list[list[str]]] | None = None) -> str:
    lines = [f"Corpus: {n:,} texts, {nq} queries, top-{K}, BM25 k1=1.2 b=0.75; query loops of {seconds:g} s; "
             f"best of {rounds} round(s); "
             f"machine: {os.cpu_count()} cores, Python {platform.python_version()}.", "",
             "| system | build (docs/s) | text insert (docs/s) | query QPS (1 per call) | CPU per query (µs) "
             "| batch QPS (200 per call) | top-10 agreement with Heron | with the numpy reference |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    ref = results.get("heron", {}).get("top")

    def fmt(v: Any) -> str:
        return f"{v:,.0f}" if isinstance(v, float) else "n/a"

    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | {r['error']} | | | | | | |")
            continue
        agree = f"{overlap(r['top'], ref):.3f}" if ref is not None else "n/a"
        exact = f"{reference[0].agreement(r['top'], reference[1]):.3f}" if reference is not None else "n/a"
        lines.append(f"| {name} | {fmt(r.get('build_docs_s'))} | {fmt(r.get('insert_docs_s'))} | "
                     f"{fmt(r.get('qps'))} | {fmt(r.get('cpu_us'))} | "
                     f"{fmt(r.get('batch_qps'))} | {agree} | {exact} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each query loop")
    ap.add_argument("--rounds", type=int, default=1, help="rounds (each system keeps its best figures)")
    ap.add_argument("--maxscore", action="store_true", help="also time one segment's top-k with and without MaxScore")
    ap.add_argument("--no-stages", dest="stages", action="store_false",
                    help="skip the agreement check through deletes, upserts, a merge and a reopen")
    ap.add_argument("--out", default="", help="also write the table to this file")
    args = ap.parse_args(argv)
    texts, queries = read_texts("base.jsonl.gz"), read_texts("queries.jsonl.gz")
    names = [n for n in args.systems.split(",") if n]
    for name in names:
        if name not in RUNNERS:
            raise SystemExit(f"unknown system {name!r}; expected some of {list(RUNNERS)}")
    results: dict[str, dict[str, Any]] = {}
    for rnd in range(args.rounds):  # systems take turns, round after round; each keeps its best figures
        for name in names:
            if "error" in results.get(name, {}):
                continue
            tmp = tempfile.mkdtemp(prefix=f"bm25-{name}-")
            try:
                got = RUNNERS[name](texts, queries, args.seconds, tmp)
                prev = results.setdefault(name, got)
                for key, v in got.items():  # rates: the highest; times (``_us``): the lowest
                    if isinstance(v, float):
                        prev[key] = min(prev[key], v) if key.endswith("_us") else max(prev[key], v)
            except ImportError as exc:
                results[name] = {"error": f"unavailable ({exc.name})"}
            except Exception as exc:  # a failing peer costs its own figures only
                results[name] = {"error": f"failed: {type(exc).__name__}: {str(exc)[:80]}"}
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"round {rnd + 1}: {name} done", flush=True)
    from heron.engine.functions._analyzer import build_analyzer

    an = build_analyzer(None)
    reference = (Reference(dict(enumerate(an.tokenize_many(texts)))), an.tokenize_many(queries))
    table = report(results, len(texts), len(queries), args.seconds, args.rounds, reference)
    if args.stages:
        tmp = tempfile.mkdtemp(prefix="bm25-stages-")
        try:
            stages = heron_stages(texts, queries, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        table += ("\n\nHeron's top-10 (one query text per call) against the numpy reference as the collection "
                  "changes:\n\n| stage | agreement |\n|---|---:|\n"
                  + "\n".join(f"| {label} | {a:.3f} |" for label, a in stages))
    if args.maxscore:
        table += "\n\n" + maxscore_figures(texts, queries)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
