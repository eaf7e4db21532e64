"""The ranker benchmark runs end to end on a small collection and reports every ranker."""

from __future__ import annotations

from bench import rerank_bench


def test_rerank_bench_reports_each_ranker() -> None:
    res = rerank_bench.run(3_000, 8, 4, 5)
    assert [r[0] for r in res] == ["plain", "decay (gauss)", "boost (filter)", "boost + decay"]
    assert all(m > 0 and p >= m for _, m, p in res)
    assert rerank_bench.table(res).count("\n") == len(res) + 1
