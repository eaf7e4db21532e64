"""Exact L2 stays exact for long vectors, where the matrix form loses digits to rounding."""

from __future__ import annotations

import numpy as np
import pytest

from heron._types import DataType
from heron.engine.index._vector_index import build_index, exact_search


@pytest.mark.parametrize("base", [40_000, 1_000_000])
def test_each_row_finds_itself_first(base):
    ids = np.arange(base, base + 2000)
    ver = np.random.default_rng(0).integers(0, 400, len(ids))
    x = np.stack([ids, ver, ids % 13, np.ones(len(ids))], 1).astype(np.float32)
    flat = build_index(DataType.FLOAT_VECTOR, 4, "FLAT", "L2", {}, x)
    for j in range(0, 2000, 7):
        scores, rows = exact_search(DataType.FLOAT_VECTOR, "L2", x, x[j : j + 1], 3)
        assert rows[0, 0] == j and scores[0, 0] == 0.0
        allow = np.ones(len(x), dtype=bool)
        allow[(j + 1) % len(x)] = False  # a mask sends the search down the masked scan
        scores, rows = flat.search(x[j : j + 1], 3, allow=allow)
        assert rows[0, 0] == j and scores[0, 0] == 0.0
