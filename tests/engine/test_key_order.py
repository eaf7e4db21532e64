"""Pages in primary-key order (iterators): every row once, in order, reading only the page's rows."""

from __future__ import annotations

import numpy as np
import pytest

import heron
from heron.engine import _reads


def _create(c, str_keys: bool) -> None:
    s = heron.Client.create_schema()
    if str_keys:
        s.add_field("id", heron.DataType.VARCHAR, is_primary=True, max_length=32)
    else:
        s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("n", heron.DataType.INT64)
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="L2")
    c.create_collection("k", schema=s, index_params=idx)


def _keys(str_keys: bool, n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    ints = rng.choice(10 * n, size=n, replace=False) - 5 * n  # negative keys too
    if not str_keys:
        return [int(k) for k in ints]
    # code points past ASCII, shared prefixes and different lengths: Python's order, not a locale's
    return [f"{'é' if k % 3 == 0 else ''}{'ß' if k % 5 == 0 else 'a'}{int(k) + 5 * n}" for k in ints]


@pytest.mark.parametrize("str_keys", [False, True])
def test_iterator_pages_walk_every_key_once_in_order(tmp_path, monkeypatch, str_keys):
    monkeypatch.setenv("HERON_SEAL_ROWS", "150")  # several sealed segments plus a growing one
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    keys = _keys(str_keys, 700, seed=1)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c, str_keys)
        for s in range(0, len(keys), 130):
            c.insert("k", [{"id": k, "vector": [1.0, 0.0], "n": i} for i, k in enumerate(keys[s:s + 130], s)])
        c.upsert("k", [{"id": keys[3], "vector": [0.0, 1.0], "n": -1}])  # a key written again, in the growing part
        c.delete("k", ids=[keys[10], keys[11]])
        want = sorted(set(keys) - {keys[10], keys[11]})
        for batch in (1, 7, 64, 1000):
            it = c.query_iterator("k", batch_size=batch, output_fields=["n"])
            got = []
            while page := it.next():
                got.extend(page)
            it.close()
            assert [r["id"] for r in got] == want
            assert {r["id"]: r["n"] for r in got}[keys[3]] == -1
        it = c.query_iterator("k", batch_size=9, filter="n % 2 == 0", limit=50, output_fields=["n"])
        got = []
        while page := it.next():
            got.extend(page)
        assert [r["id"] for r in got] == sorted(k for i, k in enumerate(keys) if i % 2 == 0 and i not in (3, 10))[:50]


@pytest.mark.parametrize("str_keys", [False, True])
def test_a_page_reads_the_values_of_its_own_rows_only(tmp_path, monkeypatch, str_keys):
    """Ordering a page must not turn every selected key into a Python object (that made a pass quadratic)."""
    keys = _keys(str_keys, 2000, seed=2)
    with heron.Client(str(tmp_path / "db")) as c:
        _create(c, str_keys)
        c.insert("k", [{"id": k, "vector": [1.0, 0.0], "n": i} for i, k in enumerate(keys)])
        read: list[int] = []
        real = _reads.values_at

        def counting(schema, view, name, rows):
            read.append(len(rows))
            return real(schema, view, name, rows)

        monkeypatch.setattr(_reads, "values_at", counting)
        it = c.query_iterator("k", batch_size=10, output_fields=["n"])
        assert [r["id"] for r in it.next()] == sorted(keys)[:10]
        assert sum(read) == 2 * 10  # the page's keys and its "n" values, nothing more
