"""The fresh-data benchmark runs end to end on a small size; no timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import fresh_bench


def test_both_modes_are_measured_and_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_IDLE_ROWS", "500")
    for var in ("HERON_SEAL_IDLE_SECONDS", "HERON_INTERIM_ROWS"):  # the bench sets them: restored afterwards
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "fresh.md"
    fresh_bench.main(["--rows", "3000", "--batch", "1000", "--at", "0,0.5", "--window", "0.05", "--out", str(out)])
    text = out.read_text()
    assert "| off | 0 s |" in text and "| on | 0.5 s |" in text and "| on | after flush |" in text
    results = json.loads(out.with_suffix(".json").read_text())
    assert [r["mode"] for r in results] == ["off", "on"]
    for r in results:
        assert [p["at"] for p in r["points"]] == ["0 s", "0.5 s", "after flush"]
        for p in r["points"]:
            assert p["growing"] + p["sealed_unindexed"] + p["indexed"] == 3000
            assert 0.0 <= p["recall"] <= 1.0 and p["qps"] > 0
        assert r["points"][-1]["indexed"] == 3000  # after the flush every row is in an indexed segment
    assert results[0]["points"][1]["growing"] == 3000  # off: nothing sealed without a flush
    on = results[1]
    assert on["cpu_at_load_s"]["MainThread"] >= 0  # read from the thread's own counters (in ticks: may be 0 here)
    assert on["points"][1]["cpu_s"]["MainThread"] >= on["cpu_at_load_s"]["MainThread"]  # grows with the searches
    assert "- on: CPU seconds by thread since the load began" in text


def test_clustered_data_takes_its_dimensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_IDLE_ROWS", "500")
    for var in ("HERON_SEAL_IDLE_SECONDS", "HERON_INTERIM_ROWS"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "fresh.md"
    fresh_bench.main(["--data", "clustered", "--dim", "16", "--rows", "2000", "--batch", "1000", "--at", "0",
                      "--window", "0.05", "--modes", "on", "--out", str(out)])
    text = out.read_text()
    assert text.startswith("Rows: 2,000 x 16 (clustered") and "| on | 0 s |" in text
    (r,) = json.loads(out.with_suffix(".json").read_text())
    assert r["points"][-1]["indexed"] == 2000
