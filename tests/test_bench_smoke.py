"""The benchmark harness runs end to end: ``python -m bench --quick --systems heron,faiss``.

No timing is asserted; the test checks that the run completes, writes its
outputs, and that every figure it reports has the expected shape (recalls in
[0, 1], rates positive).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEMS = ["heron", "faiss"]


def _run_quick(out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--systems", ",".join(SYSTEMS), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "latest.json").read_text())


def _recalls(doc: dict) -> list[float]:
    figs = doc["figures"]
    values = [figs[k] for k in figs if "recall" in k]
    values += [p["recall_at_10"] for p in doc["curve"]]
    values += [f["recall_at_10"] for f in doc["filtered"].values() if "recall_at_10" in f]
    return values


def test_quick_bench_writes_complete_results(tmp_path: Path) -> None:
    run = _run_quick(tmp_path)
    assert (tmp_path / "latest.md").read_text().startswith("Run ")
    assert len(list(tmp_path.glob("run-*.json"))) == 1
    assert set(run["meta"]) >= {"machine", "dataset", "hnsw", "ef", "budgets", "started", "finished"}
    assert set(run["systems"]) == set(SYSTEMS)
    filters = set(run["meta"]["dataset"]["filters"])
    assert {"int_10pct", "int_1pct"} <= filters
    for name, doc in run["systems"].items():
        assert doc["status"] == "ok", (name, doc.get("errors"), doc.get("error"))
        figs = doc["figures"]
        for key in ("insert_rows_per_s", "single_qps", "single_p50_ms", "batch_qps", "get_by_id_per_s"):
            assert figs[key] > 0, (name, key)
        for key in ("single_recall_at_10", "fresh_recall_at_10", "batch_recall_at_10"):
            assert key in figs, (name, key)
        recalls = _recalls(doc)
        assert len(recalls) >= 3 + len(doc["curve"])
        assert all(0.0 <= r <= 1.0 and not math.isnan(r) for r in recalls), (name, recalls)
        assert set(doc["filtered"]) == filters
        assert [lv["callers"] for lv in doc["concurrency"]] == [1, 8, 32]
        assert "count_mismatches" not in doc, doc.get("count_mismatches")
        assert doc["figures"]["get_missing"] == 0
        assert doc["peak_rss_mb"] > 0
