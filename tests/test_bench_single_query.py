"""The single-query bench runs end to end on a small collection and compares against the same index; no timing is asserted."""

from __future__ import annotations

from pathlib import Path

from bench import single_query
from heron.engine.index import _layout


def test_single_query_bench_reports_the_ratio_against_the_same_index(tmp_path: Path) -> None:
    out = tmp_path / "sq.md"
    db = tmp_path / "db"
    args = ["--rows", "3000", "--dim", "16", "--seconds", "0.2", "--rounds", "1", "--db", str(db), "--out", str(out)]
    single_query.main(args)
    text = out.read_text()
    assert text.startswith("Rows: 3,000 x 16") and "| 1.000 |" in text  # Heron asks faiss what the bench asks it
    single_query.main(args)  # a second run reuses the directory the first one built
    assert out.read_text().startswith("Rows: 3,000 x 16")


def test_lanes_adds_heron_with_its_quick_lane_off(tmp_path: Path) -> None:
    out = tmp_path / "sq.md"
    args = ["--rows", "3000", "--dim", "16", "--seconds", "0.2", "--rounds", "1", "--db", str(tmp_path / "db"),
            "--lanes", "--out", str(out)]
    single_query.main(args)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and rows[2].startswith("| Heron, quick lane off: ")


def test_a_renumbered_index_is_also_timed_against_the_graph_as_built(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(_layout, "LAYOUT_MIN_ROWS", 1000)  # 3,000 rows renumbered by place, as 65,536 and more are
    out = tmp_path / "sq.md"
    args = ["--rows", "3000", "--dim", "16", "--seconds", "0.2", "--rounds", "1", "--db", str(tmp_path / "db"),
            "--out", str(out)]
    single_query.main(args)
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and "| 1.000 |" in rows[1]  # faiss on the renumbered index: the hits' keys are Heron's
    assert rows[2].startswith("| Heron against faiss on the same graph with its rows in the order they came: ")
