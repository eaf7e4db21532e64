"""The struct array benchmark runs end to end on a small collection and reports every measure."""

from __future__ import annotations

from bench import struct_bench


def test_struct_bench_reports_insert_and_search_figures() -> None:
    res = struct_bench.run(600, 8, 6)
    assert list(res) == ["insert rows/s", "search median ms", "search p95 ms", "filtered search median ms",
                         "filtered search p95 ms"]
    assert all(v > 0 for v in res.values())
    assert res["search p95 ms"] >= res["search median ms"]
    assert struct_bench.table(res).count("\n") == len(res) + 1
