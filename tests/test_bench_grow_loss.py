"""The grow-loss benchmark runs end to end on a small size: one graph per way of adding per efConstruction."""

from __future__ import annotations

import json

from bench import grow_loss


def test_each_ef_construction_is_measured_built_at_once_and_grown(tmp_path, capsys):
    out = tmp_path / "loss.md"
    grow_loss.main(["--rows", "3000", "--ef-construction", "16,40", "--slice", "500", "--threads", "1",
                    "--root", str(tmp_path / "data"), "--out", str(out)])
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [(r["ef_construction"], r["added"]) for r in rows] == [
        (16, "in one call"), (16, "500 a call"), (40, "in one call"), (40, "500 a call")]
    for r in rows:
        assert r["build_s"] > 0
        assert all(0.5 <= r[f"recall_ef{ef}"] <= 1.0 for ef in grow_loss.EFS), r  # 3,000 rows: a graph finds most
    text = out.read_text()
    assert "| 40 | 500 a call |" in text and text in capsys.readouterr().out
