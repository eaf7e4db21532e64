"""Struct array fields (ARRAY of STRUCT): schema, rows in and out, through both clients and both transports.

A struct field holds, per row, a list of up to ``max_capacity`` dicts with
the struct's sub-fields; ``describe_collection`` shows it as pymilvus 3
does; values are checked per sub-field and a bad batch writes nothing;
rows survive the log replay and sealing; nullable struct fields read None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heron
from heron import CollectionSchema, DataType, StructFieldSchema
from tests.conftest import require_module

DIM = 4


def _struct(client: Any = None) -> StructFieldSchema:
    st = client.create_struct_field_schema() if client is not None else StructFieldSchema()
    st.add_field("text", DataType.VARCHAR, max_length=16)
    st.add_field("emb", DataType.FLOAT_VECTOR, dim=DIM)
    st.add_field("n", DataType.INT16)
    return st


def _schema(client: Any = None, *, nullable: bool = False, capacity: int = 3) -> CollectionSchema:
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("chunks", DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=_struct(client),
                max_capacity=capacity, nullable=nullable)
    return s


def _chunks(i: int, k: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(i)
    return [{"text": f"t{i}-{j}", "emb": rng.random(DIM, dtype=np.float32).tolist(), "n": i * 10 + j}
            for j in range(k)]


def _rows(lo: int, hi: int) -> list[dict[str, Any]]:
    return [{"id": i, "vec": [float(i)] * DIM, "chunks": _chunks(i, i % 4)} for i in range(lo, hi)]


def _create(client: Any, **kw: Any) -> None:
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("s", schema=_schema(client, **kw), index_params=idx)


def _by_id(rows: list[dict[str, Any]]) -> dict[int, Any]:
    return {r["id"]: r["chunks"] for r in rows}


# -- schema ----------------------------------------------------------------------------------


def test_describe_shows_the_struct_field_as_pymilvus_3_does(client: Any) -> None:
    _create(client, nullable=True)
    fields = client.describe_collection("s")["fields"]
    assert [f["name"] for f in fields] == ["id", "vec", "chunks"]
    st = fields[2]
    assert st["type"] == DataType.ARRAY and st["element_type"] == DataType.STRUCT
    assert st["params"] == {"max_capacity": 3} and st["nullable"] is True
    assert st["field_id"] == 102
    assert [(f["name"], f["type"], f["field_id"], f.get("params")) for f in st["struct_fields"]] == [
        ("text", DataType.VARCHAR, 103, {"max_length": 16}),
        ("emb", DataType.FLOAT_VECTOR, 104, {"dim": DIM}),
        ("n", DataType.INT16, 105, None),
    ]


def test_the_same_schema_again_is_accepted_and_another_refused(client: Any) -> None:
    _create(client)
    client.create_collection("s", schema=_schema(client))
    with pytest.raises(heron.AlreadyExistsError):
        client.create_collection("s", schema=_schema(client, capacity=4))


def test_schema_round_trips_through_its_dict() -> None:
    s = _schema(nullable=True)
    s.assign_field_ids()
    back = CollectionSchema.from_dict(s.to_json_dict())
    assert back == s
    assert [f.name for f in back.struct_fields] == ["chunks"]
    assert isinstance(back.field("chunks"), StructFieldSchema)
    assert [f.name for f in back.struct_fields[0].fields] == ["text", "emb", "n"]


def test_struct_fields_given_to_the_constructor_or_added_count_the_same() -> None:
    st = _struct()
    st.name, st.max_capacity = "chunks", 3
    a = CollectionSchema([heron.FieldSchema("id", DataType.INT64, is_primary=True),
                          heron.FieldSchema("vec", DataType.FLOAT_VECTOR, dim=DIM)], "", [st])
    b = _schema()
    a.validate()
    b.validate()
    assert a.to_dict() == b.to_dict()


@pytest.mark.parametrize(("change", "message"), [
    (lambda st, kw: kw.pop("max_capacity"), "max_capacity"),
    (lambda st, kw: kw.update(max_capacity=5000), "max_capacity"),
    (lambda st, kw: st.fields.clear(), "at least one sub-field"),
    (lambda st, kw: st.add_field("j", DataType.JSON), "'j' has type JSON"),
    (lambda st, kw: st.add_field("a", DataType.ARRAY, element_type=DataType.INT64, max_capacity=2), "type ARRAY"),
    (lambda st, kw: st.add_field("sp", DataType.SPARSE_FLOAT_VECTOR), "SPARSE_FLOAT_VECTOR"),
    (lambda st, kw: st.add_field("x", DataType.INT8, nullable=True), "cannot be nullable"),
    (lambda st, kw: st.add_field("x", DataType.INT8, is_partition_key=True), "is_partition_key"),
    (lambda st, kw: st.add_field("x", DataType.INT8, default_value=1), "default value"),
    (lambda st, kw: st.add_field("s", DataType.VARCHAR), "max_length"),
    (lambda st, kw: st.add_field("w", DataType.FLOAT_VECTOR), "needs dim"),
    (lambda st, kw: st.add_field("text", DataType.INT8), "appears twice"),
    (lambda st, kw: kw.update(name="vec"), "'vec' appears twice"),
])
def test_unsound_struct_schemas_are_refused_naming_what_is_wrong(client: Any, change: Any, message: str) -> None:
    st = _struct(client)
    kw: dict[str, Any] = {"name": "chunks", "max_capacity": 3}
    change(st, kw)
    s = CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field(kw.pop("name"), DataType.ARRAY, element_type=DataType.STRUCT, struct_schema=st, **kw)
    with pytest.raises(heron.SchemaError, match=message):
        client.create_collection("s", schema=s)
    assert not client.has_collection("s")


def test_array_of_struct_without_struct_schema_is_refused() -> None:
    with pytest.raises(heron.SchemaError, match="struct_schema"):
        CollectionSchema().add_field("chunks", DataType.ARRAY, element_type=DataType.STRUCT, max_capacity=2)


def test_pymilvus_struct_schema_is_taken_by_shape(client: Any) -> None:
    pm = require_module("pymilvus")
    pst = pm.MilvusClient.create_struct_field_schema()
    pst.add_field("text", pm.DataType.VARCHAR, max_length=16)
    pst.add_field("emb", pm.DataType.FLOAT_VECTOR, dim=DIM)
    pst.add_field("n", pm.DataType.INT16)
    ps = pm.MilvusClient.create_schema()
    ps.add_field("id", pm.DataType.INT64, is_primary=True)
    ps.add_field("vec", pm.DataType.FLOAT_VECTOR, dim=DIM)
    ps.add_field("chunks", pm.DataType.ARRAY, element_type=pm.DataType.STRUCT, struct_schema=pst, max_capacity=3)
    client.create_collection("s", schema=ps)
    _schema_ours = _schema(client)
    _schema_ours.assign_field_ids()
    assert client.describe_collection("s")["fields"] == _schema_ours.to_dict()["fields"]


# -- rows ------------------------------------------------------------------------------------


def test_rows_come_back_as_inserted_from_query_and_get(client: Any) -> None:
    _create(client)
    rows = _rows(0, 12)
    assert client.insert("s", rows)["insert_count"] == 12
    got = _by_id(client.query("s", "id >= 0", output_fields=["chunks"]))
    want = {r["id"]: r["chunks"] for r in rows}
    assert got.keys() == want.keys()
    for i, chunks in want.items():
        assert [c["text"] for c in got[i]] == [c["text"] for c in chunks]
        assert [c["n"] for c in got[i]] == [c["n"] for c in chunks]
        for a, b in zip(got[i], chunks):
            np.testing.assert_array_equal(np.float32(a["emb"]), np.float32(b["emb"]))
    assert _by_id(client.get("s", [3], output_fields=["*"]))[3] == got[3]


def test_nullable_struct_field_reads_none_for_null_and_missing(client: Any) -> None:
    _create(client, nullable=True)
    client.insert("s", [{"id": 1, "vec": [0.0] * DIM, "chunks": None}, {"id": 2, "vec": [0.0] * DIM},
                        {"id": 3, "vec": [0.0] * DIM, "chunks": []}])
    assert _by_id(client.query("s", "id > 0", output_fields=["chunks"])) == {1: None, 2: None, 3: []}


def test_upsert_replaces_the_struct_list(client: Any) -> None:
    _create(client)
    client.insert("s", _rows(0, 3))
    client.upsert("s", [{"id": 1, "vec": [1.0] * DIM, "chunks": [{"text": "new", "emb": [1.0] * DIM, "n": -1}]}])
    assert _by_id(client.get("s", [1], output_fields=["chunks"]))[1] == [{"text": "new", "emb": [1.0] * DIM, "n": -1}]


@pytest.mark.parametrize(("chunks", "message"), [
    (None, "not nullable"),
    ("abc", "a list of dicts"),
    ([1, 2], "each element a dict"),
    ([{"text": "a", "emb": [0.0] * DIM}], "missing sub-field"),
    ([{"text": "a", "emb": [0.0] * DIM, "n": 1, "x": 2}], r"unknown sub-field\(s\) \['x'\]"),
    ([{"text": "a", "emb": [0.0] * (DIM - 1), "n": 1}], "'emb': vectors of dim 4"),
    ([{"text": "a", "emb": [float("nan")] * DIM, "n": 1}], "finite"),
    ([{"text": "a" * 17, "emb": [0.0] * DIM, "n": 1}], "max_length=16"),
    ([{"text": 5, "emb": [0.0] * DIM, "n": 1}], "'text': a string"),
    ([{"text": "a", "emb": [0.0] * DIM, "n": 40000}], "INT16 values in"),
    ([{"text": "a", "emb": [0.0] * DIM, "n": 1.5}], "INT16 values"),
    (_chunks(1, 4), "max_capacity=3"),
])
def test_bad_struct_values_are_refused_and_the_batch_writes_nothing(client: Any, chunks: Any, message: str) -> None:
    _create(client)
    rows = [*_rows(0, 2), {"id": 7, "vec": [0.0] * DIM, "chunks": chunks}]
    with pytest.raises(heron.DataError, match=message):
        client.insert("s", rows)
    assert client.query("s", "id >= 0", output_fields=["count(*)"])[0]["count(*)"] == 0


# -- storage -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flush", [False, True])
def test_rows_survive_a_reopen_from_the_log_or_a_sealed_segment(tmp_path: Path, flush: bool) -> None:
    path = str(tmp_path / "db")
    c = heron.Client(path)
    _create(c, nullable=True)
    rows = [*_rows(0, 9), {"id": 50, "vec": [0.0] * DIM, "chunks": None}]
    c.insert("s", rows)
    before = _by_id(c.query("s", "id >= 0", output_fields=["chunks"]))
    if flush:
        c.flush("s")
    c.close()
    c = heron.Client(path)
    try:
        assert _by_id(c.query("s", "id >= 0", output_fields=["chunks"])) == before
        assert before[50] is None and len(before[3]) == 3
        assert isinstance(c.describe_collection("s")["fields"][2]["struct_fields"], list)
    finally:
        c.close()


# -- added to a live collection ------------------------------------------------------------------


def test_a_struct_field_added_later_reads_none_for_old_rows_and_values_for_new(client: Any) -> None:
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    client.create_collection("s", schema=s, index_params=idx)
    client.insert("s", [{"id": i, "vec": [float(i)] * DIM} for i in range(3)])
    client.flush("s")
    client.insert("s", [{"id": 3, "vec": [3.0] * DIM}])
    client.add_collection_struct_field("s", "chunks", _struct(client), max_capacity=3, desc="parts")
    fields = client.describe_collection("s")["fields"]
    st = fields[-1]
    assert (st["name"], st["nullable"], st["params"], st["description"]) == ("chunks", True, {"max_capacity": 3},
                                                                             "parts")
    assert [f["field_id"] for f in st["struct_fields"]] == [st["field_id"] + 1, st["field_id"] + 2,
                                                            st["field_id"] + 3]
    new = _rows(4, 8)
    client.insert("s", new)
    got = _by_id(client.query("s", "id >= 0", output_fields=["chunks"]))
    assert {i: got[i] for i in range(4)} == dict.fromkeys(range(4))
    assert [len(got[r["id"]]) for r in new] == [len(r["chunks"]) for r in new]
    with pytest.raises(heron.DataError, match="max_capacity=3"):
        client.insert("s", [{"id": 9, "vec": [0.0] * DIM, "chunks": _chunks(9, 4)}])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nullable": False}, "requires nullable=True"),
    ({"max_capacity": 0}, "max_capacity"),
    ({"field_name": "vec"}, "duplicate field name"),
])
def test_add_collection_struct_field_refuses_what_milvus_refuses(client: Any, kwargs: dict[str, Any],
                                                                 message: str) -> None:
    _create(client)
    args: dict[str, Any] = {"field_name": "more", "max_capacity": 2, **kwargs}
    with pytest.raises((heron.ParamError, heron.AlreadyExistsError), match=message):
        client.add_collection_struct_field("s", struct_schema=_struct(client), **args)
    assert [f["name"] for f in client.describe_collection("s")["fields"]] == ["id", "vec", "chunks"]


def test_max_capacity_of_a_struct_field_grows_and_the_field_can_be_dropped(client: Any) -> None:
    _create(client)
    client.insert("s", _rows(0, 4))
    client.alter_collection_field("s", "chunks", {"max_capacity": 5})
    st = client.describe_collection("s")["fields"][-1]
    assert st["params"] == {"max_capacity": 5} and len(st["struct_fields"]) == 3
    client.insert("s", [{"id": 9, "vec": [0.0] * DIM, "chunks": _chunks(9, 5)}])
    assert len(_by_id(client.get("s", [9], output_fields=["chunks"]))[9]) == 5
    client.drop_collection_field("s", "chunks")
    assert [f["name"] for f in client.describe_collection("s")["fields"]] == ["id", "vec"]
    assert client.query("s", "id >= 0", output_fields=["*"])[0].keys() == {"id", "vec"}
