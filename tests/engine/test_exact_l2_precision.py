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


def test_filtered_scan_of_many_tied_rows_with_kept_norms():
    """A filter keeping under half the rows gathers them; the norms handed in are narrowed with them.

    Over 26 kept rows at the k-th distance (duplicates) make the scan re-check its candidates
    against the norms: those of the gathered rows, not of all rows (a broadcast error before).
    """
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1000, 8)).astype(np.float32)
    x[:200] = 1.0  # 200 identical rows, 50 of them kept
    norms = np.einsum("ij,ij->i", x, x)
    allow = np.arange(1000) % 4 == 0
    q = np.ones((1, 8), dtype=np.float32)
    scores, rows = exact_search(DataType.FLOAT_VECTOR, "L2", x, q, 10, allow=allow, sq_norms=norms)
    assert rows[0].tolist() == list(range(0, 40, 4)) and scores[0].tolist() == [0.0] * 10  # ties: lower row first
    far = x.copy()
    far[:200] = 1.0 + np.float32(1e-3) * np.arange(200, dtype=np.float32)[:, None]  # near ties, distinct
    norms = np.einsum("ij,ij->i", far, far)
    scores, rows = exact_search(DataType.FLOAT_VECTOR, "L2", far, q, 10, allow=allow, sq_norms=norms)
    want = np.flatnonzero(allow)[np.argsort(((far[allow] - q) ** 2).sum(1), kind="stable")[:10]]
    assert rows[0].tolist() == want.tolist()


@pytest.mark.parametrize("interim", ["0", "500"])
def test_filtered_search_over_fresh_duplicates(tmp_path, monkeypatch, interim):
    """The same through a client: fresh rows (scanned exactly, or past an interim index), many duplicates."""
    import heron

    monkeypatch.setenv("HERON_INTERIM_ROWS", interim)
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    x = np.random.default_rng(0).standard_normal((1000, 8)).astype(np.float32)
    x[:200] = 1.0
    with heron.Client(str(tmp_path / "db")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("v", heron.DataType.FLOAT_VECTOR, dim=8)
        schema.add_field("t", heron.DataType.INT64)
        idx = c.prepare_index_params()
        idx.add_index("v", index_type="HNSW", metric_type="L2")
        c.create_collection("c", schema=schema, index_params=idx)
        c.insert("c", {"id": np.arange(1000), "v": x, "t": np.arange(1000) % 4})
        hits = c.search("c", [[1.0] * 8], limit=10, filter="t == 0", output_fields=["t"])[0]
        assert len(hits) == 10
        assert all(h["distance"] == 0.0 and h["entity"]["t"] == 0 and h["id"] < 200 for h in hits)
