"""The small-calls benchmark runs end to end on a small size, against a second tree too; no timing is asserted."""

from __future__ import annotations

from bench import small_calls
from tests.conftest import ROOT


def test_both_clients_insert_and_get_and_are_reported():
    res = small_calls.run(2_000, 8, 500, 0.05, 1, against=str(ROOT / "src"), log=lambda line: None)
    assert set(res["best"]) == {"this", "against"}
    for tree in res["best"].values():
        assert set(tree) == {"sync", "async"}
        assert all(v > 0 for kind in tree.values() for v in kind.values())
    text = small_calls.table(res)
    assert "| Client get by one id (calls/s) |" in text and "| AsyncClient insert, numpy columns (rows/s) |" in text
