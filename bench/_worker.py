"""Runs every measurement for one system; started by `bench.__main__` as its own subprocess.

``python -m bench._worker CONFIG.json`` loads the prepared dataset, drives
one adapter through the steps below and rewrites the result JSON after each
step, so a run killed for time still leaves what it measured. Progress goes
to stdout as ``PROGRESS {...}`` lines. A step that fails is recorded and the
next one runs; only a failed load stops the run.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench import _steps
from bench._datasets import load
from bench._steps import WorkerConfig
from bench.adapters import AdapterConfig, Unsupported, adapter_class


class Recorder:
    """The result document of one system, rewritten to disk after every change."""

    def __init__(self, path: Path, system: str) -> None:
        self.path = path
        self.doc: dict[str, Any] = {
            "system": system,
            "status": "running",
            "figures": {},
            "na": {},
            "errors": {},
            "steps_done": [],
        }

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=_json_default))
        tmp.replace(self.path)


def progress(step: str, done: int, total: int) -> None:
    """One machine-readable progress line for the parent's display."""
    print("PROGRESS " + json.dumps({"step": step, "done": done, "total": total}), flush=True)


def run(cfg: WorkerConfig) -> int:
    """Run all steps for ``cfg.system``; 0 when the load succeeded, 1 otherwise."""
    rec = Recorder(Path(cfg.result_path), cfg.system)
    rec.doc["baseline_rss_mb"] = _rss_mb()
    try:
        cls = adapter_class(cfg.system)
        rec.doc["version"] = cls.version()
        rec.doc["knob"] = cls.knob
    except ImportError as exc:
        rec.doc.update(status="unavailable", error=f"{type(exc).__name__}: {exc}")
        rec.save()
        return 1
    ds = load(Path(cfg.dataset_dir))
    rec.doc["baseline_rss_mb"] = _rss_mb()
    with tempfile.TemporaryDirectory(prefix=f"bench-{cfg.system}-", dir=cfg.workroot) as tmp:
        acfg = AdapterConfig(
            workdir=Path(tmp),
            dim=ds.dim,
            metric=ds.metric,
            fields=ds.fields,
            hnsw_m=cfg.hnsw_m,
            ef_construction=cfg.ef_construction,
            server_uri=cfg.server_uri,
        )
        adapter = None
        try:
            adapter = cls(acfg)
            ctx = _steps.Context(cfg, ds, adapter, rec.doc)
            ok = _run_steps(ctx, rec)
        except Exception as exc:
            rec.doc["errors"]["setup"] = _error_text(exc)
            ok = False
        finally:
            _finish(rec, adapter, ok)
    return 0 if ok else 1


def _run_steps(ctx: _steps.Context, rec: Recorder) -> bool:
    steps: list[tuple[str, Callable[[_steps.Context], None], bool]] = _steps.STEPS
    for i, (name, fn, essential) in enumerate(steps):
        progress(name, i, len(steps))
        try:
            fn(ctx)
            rec.doc["steps_done"].append(name)
        except Unsupported as exc:
            rec.doc["na"][name] = str(exc)
        except Exception as exc:
            rec.doc["errors"][name] = _error_text(exc)
            if essential:
                rec.save()
                return False
        rec.doc["peak_rss_mb"] = _rss_mb()
        rec.save()
    progress("done", len(steps), len(steps))
    return True


def _finish(rec: Recorder, adapter: Any, ok: bool) -> None:
    from bench.adapters.milvus_api import server_rss_kb

    if adapter is not None:
        server_kb = server_rss_kb(adapter)
        if server_kb is not None:
            rec.doc["server_peak_rss_mb"] = round(server_kb / 1024, 1)
        try:
            adapter.close()
        except Exception as exc:
            rec.doc["errors"]["close"] = _error_text(exc)
    rec.doc["peak_rss_mb"] = _rss_mb()
    rec.doc["status"] = "ok" if ok and not rec.doc["errors"] else ("partial" if ok else "error")
    rec.save()


def _rss_mb() -> float:
    """Peak resident set size of this process (and of children it waited for), in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024, 1)


def _error_text(exc: BaseException) -> str:
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return "".join(tb)[-3000:]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    cfg = WorkerConfig(**json.loads(Path(args[0]).read_text()))
    start = time.perf_counter()
    rc = run(cfg)
    progress(f"finished in {time.perf_counter() - start:.1f}s", 1, 1)
    return rc


if __name__ == "__main__":
    sys.exit(main())
