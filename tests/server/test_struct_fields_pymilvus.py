"""pymilvus 3's struct array fields against ``heron serve``, beside Heron's own clients.

pymilvus builds the schema (``create_struct_field_schema``, ``ARRAY`` of
``STRUCT``), sends it as ``CollectionSchema.struct_array_fields``, packs rows
as ``FieldData.struct_arrays`` and rebuilds query results from them; what it
writes Heron's clients read, and the other way round. Milvus Lite 3.2 has
no struct fields, so there is no differential case here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import heron
from tests.conftest import Server, require, require_module

pm = require_module("pymilvus")
require(hasattr(pm.MilvusClient, "create_struct_field_schema"), "pymilvus without struct fields (pymilvus<3)")
DataType = pm.DataType
DIM = 3


@pytest.fixture
def both(server: Server) -> Iterator[tuple[Any, heron.Client]]:
    c = pm.MilvusClient(server.uri)
    h = heron.Client(server.uri)
    st = c.create_struct_field_schema()
    st.add_field("title", DataType.VARCHAR, max_length=20)
    st.add_field("emb", DataType.FLOAT_VECTOR, dim=DIM)
    st.add_field("score", DataType.DOUBLE)
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("chunks", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=st, max_capacity=4,
                nullable=True)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_collection("docs", schema=s, index_params=idx)
    yield c, h
    h.close()
    c.close()


def _rows(lo: int, hi: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(lo)
    return [{"id": i, "vec": [float(i)] * DIM,
             "chunks": None if i % 5 == 4 else [
                 {"title": f"d{i}.{j}", "emb": rng.random(DIM, dtype=np.float32).tolist(), "score": i + j / 4}
                 for j in range(i % 4)]}
            for i in range(lo, hi)]


def _by_id(rows: Any) -> dict[int, Any]:
    return {r["id"]: r["chunks"] for r in rows}


def _close(a: dict[int, Any], b: dict[int, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k] is None or b[k] is None:
            assert a[k] is b[k] is None, k
            continue
        assert [(e["title"], e["score"]) for e in a[k]] == [(e["title"], e["score"]) for e in b[k]]
        for x, y in zip(a[k], b[k]):
            np.testing.assert_array_equal(np.float32(x["emb"]), np.float32(y["emb"]))


def test_pymilvus_describes_the_struct_field_as_heron_does(both: tuple[Any, heron.Client]) -> None:
    c, h = both
    theirs, ours = c.describe_collection("docs"), h.describe_collection("docs")
    st = next(f for f in theirs["fields"] if f["name"] == "chunks")
    assert st["element_type"] == DataType.STRUCT and st["params"] == {"max_capacity": 4} and st["nullable"]
    assert [(f["name"], int(f["type"])) for f in st["struct_fields"]] == [
        ("title", int(DataType.VARCHAR)), ("emb", int(DataType.FLOAT_VECTOR)), ("score", int(DataType.DOUBLE))]
    assert st["struct_fields"][1]["params"] == {"dim": DIM}
    mine = next(f for f in ours["fields"] if f["name"] == "chunks")
    assert {k: v for k, v in st.items() if k != "struct_fields"} == \
        {k: v for k, v in mine.items() if k != "struct_fields"}
    assert [{k: v for k, v in f.items()} for f in st["struct_fields"]] == mine["struct_fields"]


def test_rows_written_by_pymilvus_read_the_same_from_every_client(both: tuple[Any, heron.Client]) -> None:
    c, h = both
    rows = _rows(0, 15)
    assert c.insert("docs", rows)["insert_count"] == 15
    want = _by_id(rows)
    _close(_by_id(c.query("docs", "id >= 0", output_fields=["chunks"])), want)
    _close(_by_id(h.query("docs", "id >= 0", output_fields=["chunks"])), want)
    _close(_by_id(c.get("docs", [3, 4], output_fields=["chunks"])), {3: want[3], 4: None})


def test_rows_written_by_heron_read_the_same_from_pymilvus(both: tuple[Any, heron.Client]) -> None:
    c, h = both
    rows = _rows(20, 31)
    h.insert("docs", rows)
    h.upsert("docs", [{"id": 21, "vec": [0.0] * DIM, "chunks": []}])
    want = {**_by_id(rows), 21: []}
    _close(_by_id(c.query("docs", "id >= 0", output_fields=["chunks"])), want)


def test_a_bad_struct_value_from_pymilvus_is_refused_and_nothing_is_written(both: tuple[Any, heron.Client]) -> None:
    c, h = both
    bad = [*_rows(0, 3), {"id": 9, "vec": [0.0] * DIM,
                          "chunks": [{"title": "x" * 21, "emb": [0.0] * DIM, "score": 1.0}]}]
    with pytest.raises(pm.exceptions.MilvusException, match="max_length=20") as err:
        c.insert("docs", bad)
    assert err.value.code == 1100
    too_many = [{"id": 9, "vec": [0.0] * DIM, "chunks": [{"title": "x", "emb": [0.0] * DIM, "score": 1.0}] * 5}]
    with pytest.raises(pm.exceptions.MilvusException, match="max_capacity=4"):
        c.insert("docs", too_many)
    assert h.query("docs", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_pymilvus_adds_a_struct_field_to_a_live_collection(both: tuple[Any, heron.Client], server: Server) -> None:
    c, h = both
    c.insert("docs", _rows(0, 3))
    st = c.create_struct_field_schema()
    st.add_field("tag", DataType.VARCHAR, max_length=8)
    st.add_field("w", DataType.INT64)
    c.add_collection_struct_field("docs", "tags", st, max_capacity=2)
    theirs = next(f for f in c.describe_collection("docs")["fields"] if f["name"] == "tags")
    ours = next(f for f in h.describe_collection("docs")["fields"] if f["name"] == "tags")
    assert theirs == ours and theirs["nullable"] and theirs["params"] == {"max_capacity": 2}
    fresh = pm.MilvusClient(server.uri)
    fresh.insert("docs", [{"id": 7, "vec": [0.0] * DIM, "chunks": None, "tags": [{"tag": "a", "w": 1}]}])
    got = {r["id"]: r["tags"] for r in fresh.query("docs", "id >= 0", output_fields=["tags"])}
    assert got == {0: None, 1: None, 2: None, 7: [{"tag": "a", "w": 1}]}
    fresh.close()


def test_pymilvus_searches_a_sub_field_with_embedding_lists_as_heron_does(both: tuple[Any, heron.Client]) -> None:
    c, h = both
    from pymilvus.client.embedding_list import EmbeddingList

    c.insert("docs", _rows(0, 40))
    idx = c.prepare_index_params()
    idx.add_index("chunks[emb]", index_type="EMB_LIST_HNSW", metric_type="MAX_SIM_COSINE", params={"M": 16})
    c.create_index("docs", idx)
    rng = np.random.default_rng(11)
    queries = [rng.random((k, DIM), dtype=np.float32) for k in (1, 3)]
    theirs = c.search("docs", [EmbeddingList(q) for q in queries], anns_field="chunks[emb]", limit=5,
                      output_fields=["chunks"])
    ours = h.search("docs", [q.tolist() for q in queries], anns_field="chunks[emb]", limit=5,
                    output_fields=["chunks"])
    for a, b in zip(theirs, ours):
        assert [x["id"] for x in a] == [x["id"] for x in b] and len(a) == 5
        np.testing.assert_allclose([x["distance"] for x in a], [x["distance"] for x in b], rtol=1e-6)
        _close({x["id"]: x["entity"]["chunks"] for x in a}, {x["id"]: x["entity"]["chunks"] for x in b})


_hyp = require_module("hypothesis")
_st = require_module("hypothesis.strategies")


@_hyp.settings(max_examples=60, deadline=None)
@_hyp.given(_st.lists(_st.one_of(_st.none(), _st.lists(_st.tuples(
    _st.text(max_size=5), _st.lists(_st.floats(-1e6, 1e6, width=32), min_size=DIM, max_size=DIM),
    _st.floats(-1e9, 1e9)), max_size=4)), min_size=1, max_size=6))
def test_struct_columns_round_trip_through_the_wire(rows: list[Any]) -> None:
    from heron._schema import StructFieldSchema
    from heron.wire._struct_data import struct_field_data, struct_values_from_pb

    f = StructFieldSchema(nullable=True)
    f.name, f.max_capacity = "chunks", 4
    f.add_field("title", heron.DataType.VARCHAR, max_length=20)
    f.add_field("emb", heron.DataType.FLOAT_VECTOR, dim=DIM)
    f.add_field("score", heron.DataType.DOUBLE)
    values = [None if r is None else [{"title": t, "emb": e, "score": s} for t, e, s in r] for r in rows]
    fd = struct_field_data(f, values)
    back = struct_values_from_pb(type(fd).FromString(fd.SerializeToString()), len(values))
    assert back == values
