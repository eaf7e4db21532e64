"""``python -m bench``: run one workload against Heron and its peers, each in its own subprocess.

Writes ``run-<timestamp>.json``, ``latest.json``, ``latest.md`` and the
``latest-*.png`` plots to ``--out``. Every system gets a wall-clock limit; a
system that crashes, hangs or is not installed is reported as such and the
run goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import _report
from bench._datasets import DatasetSpec, describe, prepare
from bench._progress import Progress
from bench._steps import STEPS, WorkerConfig
from bench.adapters import SYSTEMS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SYSTEMS = "heron,faiss,milvus-lite,qdrant,chroma,lancedb"

# step -> [max calls, max seconds]
FULL_BUDGETS: dict[str, list[float]] = {
    "fresh_insert": [0, 60],
    "fresh_search": [500, 6],
    "searchable": [1, 60],
    "indexed": [1, 300],
    "single": [1000, 10],
    "batch": [50, 6],
    "curve": [500, 4],
    "filtered": [500, 4],
    "get": [2000, 3],
    "get_batch": [50, 3],
    "count": [30, 2],
    "concurrency": [5000, 5],
}
_STEP_INDEX = {**{name: i for i, (name, _, _) in enumerate(STEPS)}, "done": len(STEPS)}
QUICK_BUDGETS: dict[str, list[float]] = {
    "fresh_insert": [0, 15],
    "fresh_search": [100, 2],
    "searchable": [1, 30],
    "indexed": [1, 60],
    "single": [200, 3],
    "batch": [20, 2],
    "curve": [100, 1.5],
    "filtered": [100, 1.5],
    "get": [300, 1],
    "get_batch": [10, 1],
    "count": [10, 1],
    "concurrency": [400, 1.5],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--systems", default=DEFAULT_SYSTEMS, help=f"comma-separated, from: {', '.join(SYSTEMS)}")
    p.add_argument("--dataset", choices=["synthetic", "minilm"], default="synthetic")
    p.add_argument("--n", type=int, help="rows (synthetic; default 100000, --quick 20000)")
    p.add_argument("--dim", type=int, help="dimension (synthetic; default 128, --quick 64)")
    p.add_argument("--queries", type=int, help="queries (synthetic; default 1000, --quick 100)")
    p.add_argument("--metric", choices=["COSINE", "L2"], default="COSINE", type=str.upper)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="small data and short budgets: a smoke run")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "cache")
    p.add_argument("--ef", type=int, default=64, help="search ef for every figure but the curve")
    p.add_argument("--ef-list", default="16,24,32,48,64,96,128,256", help="ef values of the QPS-recall curve")
    p.add_argument("--server-uri", default="", help="heron-server / heron-pymilvus: use this server")
    p.add_argument("--system-timeout", type=float, help="seconds per system (default 900, --quick 150)")
    p.add_argument("--load-timeout", type=float, help="seconds allowed for the main load (default 420)")
    p.add_argument("--workdir", type=Path, default=None, help="where systems keep their data during the run")
    p.add_argument(
        "--merge-into",
        type=Path,
        metavar="RUN_JSON",
        help="add this run's systems to an earlier run on the same dataset (to rerun one system)",
    )
    p.add_argument(
        "--report-only",
        type=Path,
        metavar="RUN_JSON",
        help="rewrite latest.md and the plots from a run's JSON",
    )
    return p.parse_args(argv)


def dataset_spec(args: argparse.Namespace) -> DatasetSpec:
    if args.dataset == "minilm":
        return DatasetSpec("minilm", 10_000, 384, 200, "COSINE")
    n = args.n or (20_000 if args.quick else 100_000)
    dim = args.dim or (64 if args.quick else 128)
    nq = args.queries or (100 if args.quick else 1000)
    return DatasetSpec("synthetic", n, dim, nq, args.metric, args.seed)


def worker_config(
    args: argparse.Namespace, system: str, ds_dir: Path, result: Path, workroot: Path
) -> WorkerConfig:
    quick = args.quick
    return WorkerConfig(
        system=system,
        dataset_dir=str(ds_dir),
        result_path=str(result),
        workroot=str(workroot),
        ef=args.ef,
        ef_list=[int(x) for x in args.ef_list.split(",")] if not quick else [16, 64, 256],
        fresh_rows=5_000 if quick else 100_000,
        budgets=QUICK_BUDGETS if quick else FULL_BUDGETS,
        load_seconds=args.load_timeout or (60.0 if quick else 420.0),
        server_uri=args.server_uri,
    )


class SystemRun:
    """One system's worker subprocess, with its progress lines and a wall-clock limit."""

    def __init__(self, cfg: WorkerConfig, cfg_path: Path, log_path: Path) -> None:
        cfg_path.write_text(json.dumps(asdict(cfg)))
        self.cfg = cfg
        self.log_path = log_path
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._worker", str(cfg_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                if line.startswith("PROGRESS "):
                    self.events.put(json.loads(line[len("PROGRESS ") :]))
                else:
                    log.write(line)
        self.events.put(None)

    def follow(self, progress: Progress, timeout: float) -> str:
        """Relay progress until the worker exits; kill it after ``timeout`` s. Returns how it ended."""
        deadline = time.monotonic() + timeout
        steps_seen = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                progress.update(self.cfg.system, "time limit reached", len(STEPS) - steps_seen)
                return "timeout"
            try:
                event = self.events.get(timeout=min(left, 1.0))
            except queue.Empty:
                continue
            if event is None:
                self.proc.wait()
                progress.update(self.cfg.system, "exited", len(STEPS) - steps_seen)
                return "exited"
            index = _STEP_INDEX.get(event["step"])
            if index is not None:
                progress.update(self.cfg.system, event["step"], index - steps_seen)
                steps_seen = index

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def run_system(
    args: argparse.Namespace, system: str, ds_dir: Path, tmp: Path, progress: Progress
) -> dict[str, Any]:
    """Run one system's worker and return its result document (whatever it left, if it failed)."""
    result = tmp / f"{system}.json"
    log_dir = args.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    cfg = worker_config(args, system, ds_dir, result, args.workdir or tmp)
    timeout = args.system_timeout or (150.0 if args.quick else 900.0)
    started = time.monotonic()
    how = SystemRun(cfg, tmp / f"{system}-config.json", log_dir / f"{system}.log").follow(progress, timeout)
    doc: dict[str, Any] = (
        json.loads(result.read_text()) if result.exists() else {"system": system, "figures": {}}
    )
    doc["wall_s"] = round(time.monotonic() - started, 1)
    if how == "timeout":
        doc["status"] = "timeout"
        doc["error"] = f"stopped after the {timeout:.0f}s limit for one system"
    elif doc.get("status") in (None, "running"):
        tail = (log_dir / f"{system}.log").read_text()[-1500:]
        doc["status"] = "crashed"
        doc["error"] = f"worker exited without a result: {tail}"
    progress.note(f"{system}: {doc['status']} in {doc['wall_s']}s")
    return doc


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
    }


def write_outputs(run: dict[str, Any], out: Path) -> list[Path]:
    """The timestamped JSON, latest.json, latest.md and the plots."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = run["meta"]["started"].replace(":", "").replace("-", "")
    text = json.dumps(run, indent=1, allow_nan=True)
    paths = [out / f"run-{stamp}.json", out / "latest.json", out / "latest.md"]
    paths[0].write_text(text)
    paths[1].write_text(text)
    paths[2].write_text(_report.markdown(run))
    return paths + _report.plots(run, out, "latest")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        run = json.loads(args.report_only.read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latest.md").write_text(_report.markdown(run))
        _report.plots(run, args.out, "latest")
        print(_report.markdown(run))
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        print(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    args.out = args.out.resolve()
    spec = dataset_spec(args)
    print(f"preparing dataset {spec.key()} (ground truth cached under {args.cache})", file=sys.stderr)
    ds_dir = prepare(spec, args.cache)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    run: dict[str, Any] = {"meta": _meta(args, started, ds_dir), "systems": {}}
    progress = Progress(len(systems) * len(STEPS))
    with tempfile.TemporaryDirectory(prefix="heron-bench-") as tmp:
        for system in systems:
            run["systems"][system] = run_system(args, system, ds_dir, Path(tmp), progress)
    progress.close()
    run["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    if args.merge_into:
        run = merge(json.loads(args.merge_into.read_text()), run)
    for path in write_outputs(run, args.out):
        print(f"wrote {path}", file=sys.stderr)
    print(_report.markdown(run))
    return 0


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s systems replacing or added to its own; the datasets must match."""
    if base["meta"]["dataset"] != extra["meta"]["dataset"]:
        raise SystemExit("--merge-into: the runs used different datasets")
    base["systems"].update(extra["systems"])
    reruns = base["meta"].setdefault("reruns", [])
    reruns.append(
        {"systems": list(extra["systems"]), **{k: extra["meta"][k] for k in ("started", "command")}}
    )
    return base


def _meta(args: argparse.Namespace, started: str, ds_dir: Path) -> dict[str, Any]:
    return {
        "started": started,
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "quick": args.quick,
        "machine": machine(),
        "dataset": describe(ds_dir),
        "hnsw": {"M": 16, "efConstruction": 200},
        "ef": args.ef,
        "k": 10,
        "budgets": QUICK_BUDGETS if args.quick else FULL_BUDGETS,
    }


if __name__ == "__main__":
    sys.exit(main())
