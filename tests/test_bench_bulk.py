"""The export/import benchmark runs end to end on a small size; no timing is asserted."""

from __future__ import annotations

from bench import bulk_bench


def test_every_format_exports_and_imports_every_row_and_is_reported():
    res = bulk_bench.run(2_000, 8, log=lambda line: None)  # run() checks each import's row count
    assert set(res["export"]) == set(res["import"]) == set(bulk_bench.FORMATS)
    assert all(rate > 0 for rate in [*res["export"].values(), *res["import"].values(), res["insert"],
                                  res["bulk_insert_parquet"]])
    text = bulk_bench.table(res)
    assert all(f"| {fmt} |" in text for fmt in bulk_bench.FORMATS)
