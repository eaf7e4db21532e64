"""`query_iterator` pages by a primary-key cursor in the filter, as pymilvus does, on every server.

A Milvus server ignores query parameters it does not know, so paging with
Heron-only ones returned the first page again and again; the cursor in the
expression (``id > 41 and (filter)``) is understood everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from heron._requests import Query
from heron.client._base import cursor_filter
from heron.wire._query import query_to_pb
from heron.wire._schema import kv_dict
from tests.portability._fake_milvus import FakeMilvus


def _collection(client: Any, pk_type: str, n: int) -> list[Any]:
    schema = client.create_schema(enable_dynamic_field=False)
    if pk_type == "int":
        schema.add_field("pk", heron.DataType.INT64, is_primary=True)
        keys: list[Any] = [int(k) for k in np.random.default_rng(1).permutation(n * 3)[:n]]
    else:
        schema.add_field("pk", heron.DataType.VARCHAR, is_primary=True, max_length=32)
        keys = [f'k"{i}\\' if i % 5 == 0 else f"k{i:04d}" for i in range(n)]
    schema.add_field("n", heron.DataType.INT64)
    schema.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("it", schema=schema, consistency_level="Strong")
    client.insert("it", [{"pk": k, "n": i, "v": [float(i), 1.0]} for i, k in enumerate(keys)])
    client.load_collection("it")
    return keys


def _drain(it: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        batch = it.next()
        if not batch:
            return rows
        rows.extend(batch)


@pytest.mark.parametrize("pk_type", ["int", "str"])
def test_every_matching_row_once_in_key_order(client: Any, pk_type: str) -> None:
    keys = _collection(client, pk_type, 230)
    rows = _drain(client.query_iterator("it", batch_size=50, filter="n >= 10", output_fields=["n"]))
    want = sorted(k for i, k in enumerate(keys) if i >= 10)
    assert [r["pk"] for r in rows] == want
    assert all(keys[r["n"]] == r["pk"] for r in rows)


def test_limit_and_no_filter(client: Any) -> None:
    keys = _collection(client, "int", 120)
    rows = _drain(client.query_iterator("it", batch_size=40, limit=95))
    assert [r["pk"] for r in rows] == sorted(keys)[:95]


def test_a_page_carries_its_cursor_in_the_expression() -> None:
    """What goes over the wire: the cursor in ``expr``, and the keys Milvus reads to answer in key order."""
    assert cursor_filter("id", None, "n > 1") == "n > 1"
    assert cursor_filter("id", 41, "n > 1") == "id > 41 and (n > 1)"
    assert cursor_filter("id", 41, "") == "id > 41"
    assert cursor_filter("k", 'a"b\\', "") == 'k > "a\\"b\\\\"'
    msg = query_to_pb(Query("default", "c", cursor_filter("id", 41, "n > 1"), order_by_pk=True, limit=10), "id")
    params = kv_dict(msg.query_params)
    assert msg.expr == "id > 41 and (n > 1)"
    assert params["iterator"] == "True" and params["reduce_stop_for_best"] == "True" and params["limit"] == "10"
    assert not [k for k in params if k.startswith("heron.")]


def test_short_pages_do_not_end_the_iteration() -> None:
    """A Milvus page may stop short of its limit before the last row; only an empty page ends it."""
    fake = FakeMilvus().start()
    try:
        with heron.Client(fake.uri) as c:
            c.create_collection("c", dimension=2)
            it = c.query_iterator("c", batch_size=30, limit=95)
            sizes, keys = [], []
            while batch := it.next():
                sizes.append(len(batch))
                keys.extend(r["id"] for r in batch)
    finally:
        fake.stop()
    assert sizes == [30, 30, 30, 5] and keys == list(range(95))
    exprs = [m.expr for m in fake.requests("Query")]
    assert exprs[:2] == ["", "id > 6"] and all(e.startswith("id > ") for e in exprs[1:])
