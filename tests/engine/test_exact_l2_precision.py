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


@pytest.mark.parametrize("n", [5, 10, 26, 27, 300, 5000])
def test_l2_top_one_is_the_exact_scan(n):
    """The quick lane's L2 scan of gathered rows gives `exact_search`'s hits and distances, or leaves it to it."""
    from heron.engine.index._top_one import l2_top_one

    rng = np.random.default_rng(n)
    x = (rng.standard_normal((n, 16)) * 3 + 100).astype(np.float32)  # long vectors: the matrix form rounds
    ids = np.sort(rng.choice(10 * n, n, replace=False))
    norms = np.einsum("ij,ij->i", x, x)
    answered = asked = 0
    for q in np.concatenate([x[:3] + 0.01, rng.standard_normal((5, 16)).astype(np.float32) * 3 + 100]):
        for k in sorted({1, min(10, n), n}):
            want_s, want_r = exact_search(DataType.FLOAT_VECTOR, "L2", x, q[None], k)
            got = l2_top_one(x, ids, q, k, norms)
            asked += 1
            if got is not None:
                answered += 1
                assert got[0].tolist() == want_s.tolist() and got[1].tolist() == ids[want_r].tolist()
    assert answered >= 0.9 * asked  # it answers nearly always: a lane that never engages fails here


def test_l2_top_one_leaves_ties_at_the_cut_and_bad_rows_to_the_full_scan():
    from heron.engine.index._top_one import l2_top_one

    x = np.random.default_rng(3).standard_normal((500, 8)).astype(np.float32)
    x[100:160] = 0.5  # 60 rows at the same distance: more than the candidates
    ids = np.arange(500) * 2
    norms = np.einsum("ij,ij->i", x, x)
    q = np.full(8, 0.5, dtype=np.float32)
    assert l2_top_one(x, ids, q, 10, norms) is None  # the general scan decides which tied rows come first
    got = l2_top_one(x[:20], ids[:20], q, 10, norms[:20])  # all rows candidates: exact at once
    want_s, want_r = exact_search(DataType.FLOAT_VECTOR, "L2", x[:20], q[None], 10)
    assert got is not None and got[1].tolist() == (want_r * 2).tolist() and got[0].tolist() == want_s.tolist()
    bad = x.copy()
    bad[3] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):  # rows are checked finite at insert: this is the last guard
        assert l2_top_one(bad, ids, bad[3], 10, np.einsum("ij,ij->i", bad, bad)) is None


def test_faiss_scan_of_long_close_rows_is_the_exact_scan():
    """faiss's one-query L2 scan sums squared differences: rows a million long and a hundredth apart keep their order."""
    from heron.engine.index._top_one import _faiss_top_one_l2

    rng = np.random.default_rng(11)
    base = (rng.standard_normal(128) * 1000).astype(np.float32)
    x = (base + rng.standard_normal((3000, 128)) * 1e-2).astype(np.float32)
    ids = np.sort(rng.choice(30_000, 3000, replace=False))
    for _ in range(5):
        q = (base + rng.standard_normal(128) * 1e-2).astype(np.float32)
        for k in (1, 10, 100):
            want_s, want_r = exact_search(DataType.FLOAT_VECTOR, "L2", x, q[None], k)
            got = _faiss_top_one_l2(x, ids, q, k)
            assert got is not None  # well apart at the cut: faiss's candidates settle it
            assert got[0].tolist() == want_s.tolist() and got[1].tolist() == ids[want_r].tolist()


def test_faiss_l2_scan_keeps_ties_to_the_lower_row():
    from heron.engine.index._top_one import _faiss_top_one_l2

    rng = np.random.default_rng(12)
    x = rng.standard_normal((2000, 32)).astype(np.float32)
    ids = np.arange(2000) * 3
    for k in (1, 10):
        q = rng.standard_normal(32).astype(np.float32)
        twin = x.copy()
        order = np.lexsort((np.arange(2000), ((twin - q) ** 2).sum(1)))
        kth, other = int(order[k - 1]), int(order[-1])
        twin[other] = twin[kth]  # two equal rows at the k-th place
        want_s, want_r = exact_search(DataType.FLOAT_VECTOR, "L2", twin, q[None], k)
        assert min(kth, other) in want_r[0].tolist() and max(kth, other) not in want_r[0].tolist()
        got = _faiss_top_one_l2(twin, ids, q, k)
        assert got is not None and got[1].tolist() == ids[want_r].tolist() and got[0].tolist() == want_s.tolist()
    bad = x.copy()
    bad[5] = np.nan
    got = _faiss_top_one_l2(bad, ids, x[6], 10)  # faiss leaves the NaN row out: NaN last, as `exact_search` orders
    d = np.nan_to_num(np.einsum("ij,ij->i", bad - x[6], bad - x[6]), nan=np.inf)
    assert got is not None and got[1].tolist() == [ids[np.lexsort((np.arange(2000), d))[:10]].tolist()]
    assert _faiss_top_one_l2(x[:, ::2], ids, x[0, ::2], 10) is None  # not contiguous
    assert _faiss_top_one_l2(x, ids, x[0], 2000) is None  # every row asked for
