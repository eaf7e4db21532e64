"""The insert-by-shape benchmark runs end to end on a small size; no timing is asserted."""

from __future__ import annotations

import importlib.util

from bench import insert_shapes


def test_every_shape_inserts_every_row_and_is_reported():
    res = insert_shapes.run(3_000, 8, 1_000, 1, log=lambda line: None)  # run() checks each collection's count
    shapes = {"numpy columns", "pyarrow Table, list<float>", "pyarrow Table, fixed_size_list", "polars DataFrame"}
    assert set(res["best"]) | set(res["missing"]) == shapes
    assert ("polars DataFrame" in res["best"]) == (importlib.util.find_spec("polars") is not None)
    assert all(rate > 0 for rate in res["best"].values())
    assert res["ratio"]["numpy columns"] == 1.0
    text = insert_shapes.table(res)
    assert all(f"| {k} |" in text for k in shapes)
