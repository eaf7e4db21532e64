"""The mixed-load and filtered-search-bound benchmarks run end to end on a small size; no timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

from bench import filter_bound, mixed_load


def test_mixed_load_measures_both_phases_and_inserts_the_rows(tmp_path: Path) -> None:
    out = tmp_path / "mixed.md"
    mixed_load.main(["--modes", "embedded", "--rows", "3000", "--dim", "16", "--callers", "4", "--seconds", "1",
                     "--rate-seconds", "0.3", "--batch", "500", "--out", str(out)])
    (r,) = json.loads(out.with_suffix(".json").read_text())
    assert r["mode"] == "embedded" and "| embedded |" in out.read_text()
    assert r["inserted"]["rows"] == 3000  # capped at --rows by default: the collection doubles
    for phase in ("quiet", "mixed"):
        assert r[phase]["searches"] > 0 and r[phase]["p99_ms"] >= r[phase]["p50_ms"] > 0
        assert r[phase]["timeline"]
    assert r["p99_ratio"] == r["mixed"]["p99_ms"] / r["quiet"]["p99_ms"]


def test_filter_bound_reports_both_filters_with_full_recall(tmp_path: Path) -> None:
    out = tmp_path / "fb.md"
    filter_bound.main(["--rows", "4000", "--dim", "16", "--index", "IVF_FLAT", "--seconds", "0.2", "--rounds", "1",
                       "--out", str(out)])
    text = out.read_text()
    assert "| `bucket < 10` | 10% |" in text and "| `bucket == 42` | 1% |" in text
    assert text.count("| 1.000 |") == 2  # the kept rows are scanned exactly: Heron's answers are the bound's
    assert "least Python call (searches/s)" in text and text.count("x |") == 4  # both ratios, per filter
