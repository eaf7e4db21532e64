"""``upsert(..., partial_update=True)``: Heron's clients (sync and async, embedded and served) and pymilvus's.

Milvus's merge mode: a stored key keeps the fields not given and its
dynamic keys not given; a new key takes defaults or nulls for the fields
not given, and a field with neither refuses the whole batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import heron
from heron import DataType
from tests.conftest import Server, require_module


@pytest.fixture
def server(wiped_server: Server) -> Server:
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


ROWS = [
    {"id": 1, "v": [1.0, 2.0], "title": "a", "issue": 5, "author": "John", "year": 2020},
    {"id": 2, "v": [3.0, 4.0], "title": "b", "issue": 6, "tags": [1]},
]


def _make(c: Any, name: str = "p") -> None:
    s = c.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("title", DataType.VARCHAR, max_length=20)
    s.add_field("issue", DataType.INT64, nullable=True)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5, nullable=True)
    s.add_field("rank", DataType.INT32, default_value=3)
    ip = c.prepare_index_params()
    ip.add_index("v", metric_type="L2", index_type="FLAT")
    c.create_collection(name, schema=s, index_params=ip)
    c.insert(name, ROWS)


def _rows(c: Any, name: str = "p") -> dict[int, dict[str, Any]]:
    return {r["id"]: dict(r) for r in c.query(name, "id > 0", output_fields=["*"])}


def _check_merge(c: Any, name: str = "p") -> None:
    res = c.upsert(name, [{"id": 1, "title": "A2", "author": "Jane", "genre": "f"}], partial_update=True)
    assert res["upsert_count"] == 1
    rows = _rows(c, name)
    assert rows[1] == {"id": 1, "v": [1.0, 2.0], "title": "A2", "issue": 5, "tags": None, "rank": 3,
                       "author": "Jane", "year": 2020, "genre": "f"}
    assert rows[2] == {"id": 2, "v": [3.0, 4.0], "title": "b", "issue": 6, "tags": [1], "rank": 3}
    # a field given as None becomes null; a vector can be the one field given
    c.upsert(name, [{"id": 2, "issue": None}], partial_update=True)
    c.upsert(name, [{"id": 2, "v": [9.0, 9.0]}], partial_update=True)
    assert _rows(c, name)[2] == {"id": 2, "v": [9.0, 9.0], "title": "b", "issue": None, "tags": [1], "rank": 3}
    # a new key with every field that has no default or null: inserted
    c.upsert(name, [{"id": 4, "v": [0.0, 0.0], "title": "d"}], partial_update=True)
    assert _rows(c, name)[4] == {"id": 4, "v": [0.0, 0.0], "title": "d", "issue": None, "tags": None, "rank": 3}
    # searches see the merged row once
    hits = c.search(name, [[1.0, 2.0]], limit=5, output_fields=["title", "author"])
    assert [h["id"] for h in hits[0]].count(1) == 1
    assert hits[0][0]["entity"] == {"title": "A2", "author": "Jane"}


def _check_refusals(c: Any, name: str = "p") -> None:
    before = _rows(c, name)
    for rows, words in [
        ([{"id": 2, "issue": 1}, {"id": 9, "issue": 2}], ["'v'", "9"]),  # new key without its vector
        ([{"id": 9, "v": [1.0, 1.0]}], ["'title'"]),  # new key without a field that has no default
        ([{"id": 2, "issue": 1}, {"id": 2, "issue": 2}], ["'id'", "more than once"]),
        ([{"title": "x"}], ["'id'", "primary key"]),
    ]:
        with pytest.raises(heron.HeronError) as err:
            c.upsert(name, rows, partial_update=True)
        for w in words:
            assert w in str(err.value), (rows, str(err.value))
    assert _rows(c, name) == before  # nothing of a refused batch written


def test_partial_update_merges_with_the_stored_row(client: Any) -> None:
    _make(client)
    _check_merge(client)
    _check_refusals(client)


def test_partial_update_rows_must_give_the_same_fields(client: Any) -> None:
    _make(client)
    with pytest.raises(heron.DataError, match="row 1"):
        client.upsert("p", [{"id": 1, "title": "x"}, {"id": 2, "issue": 3}], partial_update=True)


def test_partial_update_survives_a_reopen(tmp_path: Any) -> None:
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _make(c)
        c.upsert("p", [{"id": 1, "title": "A2", "genre": "f"}], partial_update=True)
        c.flush("p")
        c.upsert("p", [{"id": 2, "issue": 60}], partial_update=True)  # in the log, not yet sealed
        expected = _rows(c)
    with heron.Client(path) as c:
        assert _rows(c) == expected
    assert expected[1]["genre"] == "f" and expected[1]["author"] == "John" and expected[2]["issue"] == 60


def test_partial_update_through_pymilvus(server: Server) -> None:
    pymilvus = require_module("pymilvus")
    c = pymilvus.MilvusClient(server.uri)
    _make(c)
    _check_merge(c)
    before = _rows(c)
    with pytest.raises(pymilvus.MilvusException, match="'v'"):
        c.upsert("p", [{"id": 2, "issue": 1}, {"id": 9, "issue": 2}], partial_update=True)
    assert _rows(c) == before


def test_partial_update_through_async_pymilvus(server: Server) -> None:
    pymilvus = require_module("pymilvus")

    async def program() -> dict[int, dict[str, Any]]:
        c = pymilvus.AsyncMilvusClient(server.uri)
        try:
            await c.create_collection("ap", dimension=2)
            await c.insert("ap", [{"id": 1, "vector": [1.0, 1.0], "a": 1, "b": 2}])
            await c.upsert("ap", [{"id": 1, "b": 3, "c": 4}], partial_update=True)
            return {r["id"]: dict(r) for r in await c.query("ap", "id > 0", output_fields=["*"])}
        finally:
            await c.close()

    assert asyncio.run(program()) == {1: {"id": 1, "vector": [1.0, 1.0], "a": 1, "b": 3, "c": 4}}


def test_array_operators_in_upserts_are_refused_naming_the_field() -> None:
    """pymilvus 3's ``field_ops`` (ARRAY_APPEND, ARRAY_REMOVE) are refused, not ignored; older protocols lack them."""
    from pymilvus.grpc_gen import milvus_pb2

    from heron.wire._query import _refuse_field_ops

    msg = milvus_pb2.UpsertRequest(collection_name="p")
    _refuse_field_ops(msg)  # no operators (or a protocol without them): nothing to refuse
    if "field_ops" in msg.DESCRIPTOR.fields_by_name:
        msg.field_ops.add(field_name="tags", op=0)  # REPLACE: what an upsert does anyway
        _refuse_field_ops(msg)
        msg.field_ops.add(field_name="tags", op=1)
        with pytest.raises(heron.ParamError, match="ARRAY_APPEND for field 'tags'"):
            _refuse_field_ops(msg)
