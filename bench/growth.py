"""How cost grows with rows: the same workload at several sizes, raw faiss, Heron and the peers installed.

    python -m bench.growth --sizes 10000,100000 [--systems faiss,heron,milvus-lite] [--seconds 10]

Per size: clustered 128-d vectors (1,000 Gaussian clusters), an integer ``tag``
column (0..99, so ``tag < 10`` keeps 10% of the rows and ``tag == 0`` 1%),
500 held-out queries and their exact top 10 (unfiltered and per filter).
Per system and size, two subprocesses, each under a wall-clock cap (``--cap``):

- *build*: insert every row (Heron and Milvus Lite in calls of 10,000 rows,
  the index (HNSW, M 16, efConstruction 64, L2) defined first), then wait
  until the index covers every row; raw faiss adds the rows to an
  ``IndexHNSWFlat`` and writes it to a file (its insert is its build).
- *serve*, a fresh process (a restart; the page cache stays warm): open and
  answer one query (open-to-first-query), then single queries at ef 64 (IVF_FLAT: nprobe 16) for
  ``--seconds`` (QPS, p99, recall@10), the same at ef 128 (HNSW), the same filtered at 10%
  and 1%, and the resident memory the process gained from open to the end, per vector.
  ``--rounds N`` runs N serve phases per system, the systems in turns, and keeps each
  figure's median; ``--serve-only`` serves what an earlier run left in ``--work``.

The build also reports its peak resident memory (``VmHWM``; the dataset, read
whole into memory, is part of it for every system), and with
``HERON_GROWTH_TRACE=1`` samples RSS and the running background task every
0.5 s into ``rss-trace.txt`` in its work folder. ``--build-only`` skips the
serve phase. Disk bytes per vector are the size of what the build left. Results go to
``bench/results/growth.json`` (merged by size and system) and a markdown
table (``--table``); with matplotlib installed, a log-log plot (``--plot``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DIM = 128
K = 10
EF = 64
#: Further ``ef`` the serve phase measures unfiltered single queries at (``qps_ef128``, ...): at 1M rows
#: faiss first reaches recall@10 0.93 at ef 128, the operating point the goal names.
MORE_EF = tuple(int(e) for e in os.environ.get("HERON_GROWTH_MORE_EF", "128").split(",") if e)
M = 16
EF_CONSTRUCTION = 64
NQ = 500
BATCH = 10_000
FILTERS = {"10%": ("tag < 10", lambda t: t < 10), "1%": ("tag == 0", lambda t: t == 0)}
SYSTEMS = ("faiss", "heron", "milvus-lite")
RESULTS = Path(__file__).parent / "results"
#: ``--index IVF_FLAT`` or ``IVF_SQ8`` (nlist 1024, nprobe 16) builds in seconds where HNSW takes many minutes
#: on 2 cores.
INDEX = os.environ.get("HERON_GROWTH_INDEX", "HNSW")
NLIST = 1024
NPROBE = 16


# -- data ---------------------------------------------------------------------------------------

def prepare(n: int, root: Path) -> Path:
    """The dataset of ``n`` rows under ``root`` (made once): vectors, tags, queries, exact answers."""
    out = root / f"data-{n}"
    if (out / "done").exists():
        return out
    import faiss

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    centers = rng.normal(size=(1000, DIM)).astype(np.float32)

    def draw(k: int) -> np.ndarray:
        x = centers[rng.integers(0, len(centers), k)]
        return (x + 0.35 * rng.normal(size=(k, DIM))).astype(np.float32)

    x = np.concatenate([draw(min(BATCH * 10, n - i)) for i in range(0, n, BATCH * 10)])
    tags = rng.integers(0, 100, n).astype(np.int64)
    q = draw(NQ)
    np.save(out / "x.npy", x)
    np.save(out / "tag.npy", tags)
    np.save(out / "q.npy", q)
    flat = faiss.IndexFlatL2(DIM)
    flat.add(x)
    np.save(out / "gt.npy", flat.search(q, K)[1])
    for label, (_expr, keep) in FILTERS.items():
        rows = np.flatnonzero(keep(tags))
        sub = faiss.IndexFlatL2(DIM)
        sub.add(x[rows])
        np.save(out / f"gt-{label.rstrip('%')}.npy", rows[sub.search(q, K)[1]])
    (out / "done").write_text("1")
    return out


# -- measuring ----------------------------------------------------------------------------------

def rss(field: str = "VmRSS") -> int:
    """This process's resident memory now (``VmHWM``: its peak so far), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def trace_rss(path: Path, every: float = 0.5) -> None:
    """Append the RSS and the engine's background task to ``path`` every ``every`` s, on a daemon thread.

    A sample reads ``time_s rss_mb anon_mb file_mb busy``: the RSS, its anonymous
    part (the heap, faiss's and numpy's allocations) and its file-backed part
    (mapped segment and index files whose pages are resident), and ``busy``, the innermost
    Heron maintenance or index functions on any thread's stack at that moment
    (tracemalloc misses faiss's and numpy's C allocations; sampling RSS does not).
    """
    import threading

    t0 = time.perf_counter()

    def task() -> str:
        names: list[str] = []
        for frame in sys._current_frames().values():
            f: Any = frame
            while f is not None:
                fn = f.f_code.co_filename
                if "/heron/engine/" in fn and ("_maintenance" in fn or "/index/" in fn or "_interim" in fn):
                    names.append(f.f_code.co_name)
                    break
                f = f.f_back
        return ",".join(names) or "-"

    def loop() -> None:
        with open(path, "a") as out:
            while True:
                parts = " ".join(f"{rss(k) / 2**20:8.0f}" for k in ("VmRSS", "RssAnon", "RssFile"))
                out.write(f"{time.perf_counter() - t0:8.1f} {parts} {task()}\n")
                out.flush()
                time.sleep(every)

    threading.Thread(target=loop, daemon=True).start()


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    hits = sum(len(set(f[:K]) & set(int(t) for t in truth[i][:K] if t >= 0)) for i, f in enumerate(found))
    return hits / (len(found) * K)


def single_queries(search: Any, q: np.ndarray, truth: np.ndarray, seconds: float) -> dict[str, float]:
    lat: list[float] = []
    found: list[list[int]] = []
    start = time.perf_counter()
    i = 0
    while (time.perf_counter() - start < seconds or i < 20) and i < 50 * len(q):
        t0 = time.perf_counter()
        ids = search(q[i % len(q)])
        lat.append(time.perf_counter() - t0)
        if i < len(q):
            found.append(ids)
        i += 1
    total = sum(lat)
    return {"qps": len(lat) / total, "p99_ms": float(np.percentile(lat, 99) * 1000),
            "recall": recall(found, truth)}


# -- the systems --------------------------------------------------------------------------------

class Faiss:
    def __init__(self, work: Path) -> None:
        self.path = work / "faiss.index"

    def build(self, data: Path) -> dict[str, float]:
        import faiss

        x = np.load(data / "x.npy")
        t0 = time.perf_counter()
        if INDEX == "HNSW":
            index = faiss.IndexHNSWFlat(DIM, M)
            index.hnsw.efConstruction = EF_CONSTRUCTION
        else:
            lists = min(NLIST, len(x) // 39)
            index = (faiss.IndexIVFFlat(faiss.IndexFlatL2(DIM), DIM, lists) if INDEX == "IVF_FLAT" else
                     faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(DIM), DIM, lists, faiss.ScalarQuantizer.QT_8bit))
            index.train(x[np.random.default_rng(0).choice(len(x), min(len(x), 256 * NLIST), replace=False)])
        index.add(x)
        built = time.perf_counter() - t0
        faiss.write_index(index, str(self.path))
        return {"insert_per_s": len(x) / built, "build_s": built}

    def open(self) -> None:
        import faiss

        self.index = faiss.read_index(str(self.path))

    def searcher(self, keep: np.ndarray | None, ef: int = EF) -> Any:
        import faiss

        params = (faiss.SearchParametersHNSW(efSearch=ef) if INDEX == "HNSW"
                  else faiss.SearchParametersIVF(nprobe=NPROBE))
        if keep is not None:
            self._bits = np.packbits(keep, bitorder="little")
            self._sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(self._bits))
            params.sel = self._sel
        index = self.index

        def search(v: np.ndarray) -> list[int]:
            return index.search(v[None, :], K, params=params)[1][0].tolist()

        return search


class MilvusAPI:
    """Heron (``heron.Client``) or Milvus Lite (``pymilvus.MilvusClient``): the same calls."""

    def __init__(self, work: Path, system: str) -> None:
        self.system = system
        self.work = work
        self.uri = str(work / "heron") if system == "heron" else str(work / "milvus.db")

    def _client(self) -> Any:
        if self.system == "heron":
            import heron

            return heron.Client(self.uri)
        import pymilvus

        return pymilvus.MilvusClient(self.uri)

    def build(self, data: Path) -> dict[str, float]:
        x = np.load(data / "x.npy")
        tags = np.load(data / "tag.npy")
        c = self._client()
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        types = _data_types(self.system)
        schema.add_field("id", types.INT64, is_primary=True)
        schema.add_field("vector", types.FLOAT_VECTOR, dim=DIM)
        schema.add_field("tag", types.INT64)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type=INDEX, metric_type="L2",
                      params={"M": M, "efConstruction": EF_CONSTRUCTION} if INDEX == "HNSW" else {"nlist": NLIST})
        c.create_collection("g", schema=schema, index_params=idx)
        t0 = time.perf_counter()
        for lo in range(0, len(x), BATCH):
            hi = min(len(x), lo + BATCH)
            if self.system == "heron":
                c.insert("g", {"id": np.arange(lo, hi), "vector": x[lo:hi], "tag": tags[lo:hi]})
            else:
                c.insert("g", [{"id": i, "vector": x[i], "tag": int(tags[i])} for i in range(lo, hi)])
        inserted = time.perf_counter() - t0
        c.flush("g")
        name = c.list_indexes("g")[0]
        while int(c.describe_index("g", name).get("pending_index_rows", 0)) > 0:
            time.sleep(0.05)
        built = time.perf_counter() - t0 - inserted
        c.close()
        return {"insert_per_s": len(x) / inserted, "build_s": built}

    def open(self) -> None:
        self.client = self._client()
        if self.system != "heron":
            self.client.load_collection("g")

    def searcher(self, keep: np.ndarray | None, expr: str = "", ef: int = EF) -> Any:
        c = self.client
        sp = {"params": {"ef": ef} if INDEX == "HNSW" else {"nprobe": NPROBE}}

        def search(v: np.ndarray) -> list[int]:
            hits = c.search("g", [v.tolist()], limit=K, filter=expr, search_params=sp)
            return [int(h["id"]) for h in hits[0]]

        return search


def set_index(name: str) -> None:
    """Use index ``name`` here and in the worker processes started from now on."""
    global INDEX
    INDEX = os.environ["HERON_GROWTH_INDEX"] = name


def _data_types(system: str) -> Any:
    if system == "heron":
        import heron

        return heron.DataType
    import pymilvus

    return pymilvus.DataType


def _system(name: str, work: Path) -> Any:
    return Faiss(work) if name == "faiss" else MilvusAPI(work, name)


def worker(system: str, phase: str, n: int, data: Path, work: Path, seconds: float) -> dict[str, Any]:
    s = _system(system, work)
    if phase == "build":
        if os.environ.get("HERON_GROWTH_TRACE"):
            trace_rss(work / "rss-trace.txt")
        out = s.build(data)
        out["build_peak_rss_mb"] = rss("VmHWM") / 2**20  # the dataset, read whole, is part of it for every system
        out["disk_bytes_per_vector"] = du(s.path if system == "faiss" else Path(s.uri)) / n
        return out
    q = np.load(data / "q.npy")
    tags = np.load(data / "tag.npy", mmap_mode="r")
    __import__({"faiss": "faiss", "heron": "heron"}.get(system, "pymilvus"))  # imports are not the open
    before = rss()
    t0 = time.perf_counter()
    s.open()
    s.searcher(None)(q[0])
    out: dict[str, Any] = {"open_to_first_query_s": time.perf_counter() - t0}
    out.update(single_queries(s.searcher(None), q, np.load(data / "gt.npy"), seconds))
    for ef in MORE_EF if INDEX == "HNSW" else ():
        r = single_queries(s.searcher(None, ef=ef), q, np.load(data / "gt.npy"), seconds)
        out.update({f"{k}_ef{ef}": v for k, v in r.items()})
    for label, (expr, keep) in FILTERS.items():
        mask = np.asarray(keep(np.asarray(tags)))
        search = s.searcher(mask) if system == "faiss" else s.searcher(mask, expr)
        r = single_queries(search, q, np.load(data / f"gt-{label.rstrip('%')}.npy"), seconds / 2)
        out[f"filtered_{label}_qps"] = r["qps"]
        out[f"filtered_{label}_recall"] = r["recall"]
    out["rss_bytes_per_vector"] = (rss() - before) / n
    return out


# -- running and reporting ----------------------------------------------------------------------

def run_phase(system: str, n: int, data: Path, work: Path, name: str, seconds: float, cap: float) -> dict[str, Any]:
    """The figures of phase ``name`` ("build" or "serve") of `system`, run in a subprocess, or ``{"error": ...}``."""
    cmd = [sys.executable, "-m", "bench.growth", "--worker", system, name, str(n), str(data), str(work), str(seconds)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return {"error": f"{name} ran past the {cap:.0f} s cap"}
    if p.returncode != 0:
        return {"error": f"{name} failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}"}
    print(f"  {system} {n:,} {name}: done", file=sys.stderr, flush=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def work_dir(root: Path, system: str, n: int) -> Path:
    return root / f"{system}-{n}-{INDEX}"


def build(system: str, n: int, data: Path, root: Path, seconds: float, cap: float) -> dict[str, Any]:
    """A fresh build of `system` at `n` rows in its work folder: its build figures."""
    work = work_dir(root, system, n)
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    return {"system": system, "rows": n, "index": INDEX, **run_phase(system, n, data, work, "build", seconds, cap)}


#: Figures of the build phase (kept from an earlier run by ``--serve-only``).
BUILD_KEYS = ("insert_per_s", "build_s", "build_peak_rss_mb", "disk_bytes_per_vector")


def medians(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the median over serve rounds; with several rounds, each round's QPS figures as well."""
    out: dict[str, Any] = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = float(np.median(values))
            if len(rounds) > 1 and "qps" in key:
                out[f"{key}_rounds"] = values
    if len(rounds) > 1:
        out["serve_rounds"] = len(rounds)
    return out


COLUMNS = [
    ("insert_per_s", "insert (rows/s)", "{:,.0f}"),
    ("build_s", "index build (s)", "{:.1f}"),
    ("open_to_first_query_s", "open to 1st query (s)", "{:.2f}"),
    ("qps", "QPS", "{:,.0f}"),
    ("p99_ms", "p99 (ms)", "{:.2f}"),
    ("recall", "recall@10", "{:.3f}"),
    ("qps_ef128", "QPS ef 128 (recall)", "{:,.0f}"),
    ("filtered_10%_qps", "10% filter QPS (recall)", "{:,.0f}"),
    ("filtered_1%_qps", "1% filter QPS (recall)", "{:,.0f}"),
    ("rss_bytes_per_vector", "RSS B/vector", "{:,.0f}"),
    ("build_peak_rss_mb", "build peak RSS (MB)", "{:,.0f}"),
    ("disk_bytes_per_vector", "disk B/vector", "{:,.0f}"),
]


def table(results: list[dict[str, Any]]) -> str:
    head = "| rows | system | index | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [head, "|---:|---|---|" + "---:|" * len(COLUMNS)]
    order = {s: i for i, s in enumerate(SYSTEMS)}
    for r in sorted(results, key=lambda r: (r.get("index", "HNSW"), r["rows"], order.get(r["system"], 9))):
        cells = []
        for key, _title, fmt in COLUMNS:
            v = r.get(key)
            cell = "—" if v is None else fmt.format(v)
            rk = key.replace("_qps", "_recall").replace("qps_", "recall_")
            if rk != key and r.get(rk) is not None:
                cell += f" ({r[rk]:.2f})"
            cells.append(cell)
        if "error" in r:
            cells[-1] += f" ({r['error']})"
        lines.append(f"| {r['rows']:,} | {r['system']} | {r.get('index', 'HNSW')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return
    fig, axes = plt.subplots(2, 6, figsize=(26, 8))
    series = [(system, index) for system in SYSTEMS for index in ("HNSW", "IVF_FLAT", "IVF_SQ8")]
    colour = {s: f"C{i}" for i, s in enumerate(series)}  # the same colour for a series in every panel
    for ax, (key, title, _fmt) in zip(axes.flat, COLUMNS):
        for system, index in series:
            pts = sorted((r["rows"], r[key]) for r in results
                         if r["system"] == system and r.get("index", "HNSW") == index and r.get(key))
            if pts:
                ax.plot(*zip(*pts), marker="o", linestyle={"HNSW": "-", "IVF_FLAT": "--"}.get(index, ":"),
                        color=colour[system, index], label=f"{system} {index}")
        ax.set_xscale("log")
        ax.set_yscale("linear" if key == "recall" else "log")
        ax.set_title(title)
        ax.set_xlabel("rows")
        ax.grid(True, which="both", alpha=0.3)
    if axes.flat[0].get_legend_handles_labels()[1]:
        axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print(f"plot: {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker":
        system, phase, n, data, work, seconds = argv[1:7]
        print(json.dumps(worker(system, phase, int(n), Path(data), Path(work), float(seconds))))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--seconds", type=float, default=10.0, help="per measured loop")
    ap.add_argument("--cap", type=float, default=900.0, help="seconds per subprocess")
    ap.add_argument("--index", choices=["HNSW", "IVF_FLAT", "IVF_SQ8"], default=INDEX)
    ap.add_argument("--build-only", action="store_true", help="skip the serve phase (build figures only)")
    ap.add_argument("--serve-only", action="store_true",
                    help="serve what an earlier run built in --work (its build figures are kept from --results)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="serve phases per system, the systems in turns; each figure is the median over rounds")
    ap.add_argument("--report-only", action="store_true", help="write the table and plot from --results")
    ap.add_argument("--work", default=os.environ.get("HERON_BENCH_WORK", "/tmp/heron-growth"))
    ap.add_argument("--results", default=str(RESULTS / "growth.json"))
    ap.add_argument("--table", default=str(RESULTS / "growth.md"))
    ap.add_argument("--plot", default=str(RESULTS / "growth.png"))
    args = ap.parse_args(argv)
    set_index(args.index)
    root = Path(args.work)
    res_path = Path(args.results)
    results: list[dict[str, Any]] = json.loads(res_path.read_text()) if res_path.exists() else []
    systems = args.systems.split(",")

    def save(figures: dict[str, Any]) -> None:
        nonlocal results
        key = (figures["rows"], figures["system"], INDEX)
        results = [x for x in results if (x["rows"], x["system"], x.get("index", "HNSW")) != key] + [figures]
        res_path.parent.mkdir(parents=True, exist_ok=True)
        res_path.write_text(json.dumps(results, indent=1))

    for n in (int(s) for s in args.sizes.split(",") if not args.report_only):
        data = prepare(n, root)
        built: dict[str, dict[str, Any]] = {}
        for system in systems:
            if args.serve_only:  # the build figures of the run that left the work folder
                old = next((x for x in results if (x["rows"], x["system"], x.get("index", "HNSW")) == (n, system, INDEX)),
                           {})
                built[system] = {"system": system, "rows": n, "index": INDEX,
                                 **{k: old[k] for k in BUILD_KEYS if k in old}}
                if not work_dir(root, system, n).exists():
                    built[system]["error"] = f"serve: nothing built in {work_dir(root, system, n)}"
            else:
                built[system] = build(system, n, data, root, args.seconds, args.cap)
                save(built[system])
        if args.build_only:
            continue
        served: dict[str, list[dict[str, Any]]] = {system: [] for system in systems}
        for _ in range(args.rounds):  # the systems in turns, so that a change of the machine's load hits each
            for system in systems:
                if "error" not in built[system]:
                    r = run_phase(system, n, data, work_dir(root, system, n), "serve", args.seconds, args.cap)
                    if "error" in r:
                        built[system]["error"] = r["error"]
                    else:
                        served[system].append(r)
        for system in systems:
            save({**built[system], **(medians(served[system]) if served[system] else {})})
    md = table(results)
    Path(args.table).write_text(md + "\n")
    print(md)
    plot(results, Path(args.plot))


if __name__ == "__main__":
    main()
