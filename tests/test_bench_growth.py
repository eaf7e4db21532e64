"""The growth benchmark runs end to end on a small size: serve rounds in turns, a serve-only rerun; no timing is asserted."""

from __future__ import annotations

import json

from bench import growth
from tests.conftest import ROOT


def test_medians_keep_each_rounds_qps():
    rounds = [{"qps": 3.0, "recall": 0.9, "p99_ms": 1.0}, {"qps": 1.0, "recall": 0.9, "p99_ms": 3.0},
              {"qps": 2.0, "recall": 0.8, "p99_ms": 2.0}]
    got = growth.medians(rounds)
    assert got["qps"] == 2.0 and got["p99_ms"] == 2.0 and got["recall"] == 0.9
    assert got["qps_rounds"] == [3.0, 1.0, 2.0] and got["serve_rounds"] == 3
    assert "recall_rounds" not in got
    assert "qps_rounds" not in growth.medians(rounds[:1])


def test_rounds_then_serve_only_keep_the_build_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the workers run ``python -m bench.growth``
    paths = ["--work", str(tmp_path / "work"), "--results", str(tmp_path / "r.json"),
             "--table", str(tmp_path / "r.md"), "--plot", str(tmp_path / "r.png")]
    growth.main(["--sizes", "2000", "--systems", "faiss,heron", "--seconds", "0.05", "--rounds", "2", *paths])
    first = {r["system"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert set(first) == {"faiss", "heron"}
    for r in first.values():
        assert "error" not in r, r
        assert r["serve_rounds"] == 2 and len(r["qps_rounds"]) == 2 and len(r["qps_ef128_rounds"]) == 2
        assert min(r["qps_rounds"]) <= r["qps"] <= max(r["qps_rounds"])
        assert r["recall_ef128"] >= r["recall"] - 0.05 and r["build_s"] > 0
    assert "| QPS ef 128 (recall) |" in (tmp_path / "r.md").read_text()

    growth.main(["--sizes", "2000", "--systems", "faiss,heron", "--seconds", "0.05", "--serve-only", *paths])
    again = {r["system"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    for system, r in again.items():
        assert "error" not in r, r
        assert r["build_s"] == first[system]["build_s"]  # kept, not rebuilt
        assert "serve_rounds" not in r and r["qps"] > 0


def test_serve_only_without_a_build_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    growth.main(["--sizes", "2000", "--systems", "heron", "--serve-only", "--work", str(tmp_path / "work"),
                 "--results", str(tmp_path / "r.json"), "--table", str(tmp_path / "r.md"),
                 "--plot", str(tmp_path / "r.png")])
    (r,) = json.loads((tmp_path / "r.json").read_text())
    assert r["error"].startswith("serve: nothing built in")
