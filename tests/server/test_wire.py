"""Round trips through the pure Milvus ⇄ Heron translation (no server)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse as sp

from heron import DataError, DataType, wire
from heron import _requests as rq
from heron._schema import CollectionSchema
from heron.data._batch import build_batch
from heron.wire import _data as _wire_data
from heron.wire import _placeholders
from heron.wire import _query as _wire_query
from heron.wire import _schema as _wire_schema


def _schema() -> CollectionSchema:
    s = CollectionSchema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("t", DataType.VARCHAR, max_length=16)
    s.add_field("n", DataType.INT16, nullable=True)
    s.add_field("a", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8)
    s.add_field("j", DataType.JSON)
    s.add_field("v", DataType.FLOAT16_VECTOR, dim=4)
    s.add_field("b", DataType.BINARY_VECTOR, dim=16)
    s.add_field("bf", DataType.BFLOAT16_VECTOR, dim=2)
    s.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
    s.validate()
    s.assign_field_ids()
    return s


def test_schema_round_trip():
    d = _schema().to_json_dict()
    back = _wire_schema.json_schema(_wire_schema.schema_from_pb(_wire_schema.schema_to_pb(d, "c")))
    assert back == d


def test_batch_round_trip_keeps_every_value():
    schema = _schema()
    rows = [
        {
            "id": i,
            "t": f"r{i}",
            "n": None if i == 1 else i,
            "a": ["x"] * i,
            "j": {"k": i},
            "v": [0.5, 1.0, 2.0, i],
            "b": bytes([i, 255 - i]),
            "bf": [1.0, -2.0],
            "sv": {i: 1.5, 9: 0.25},
            **({"dyn": i} if i else {}),
        }
        for i in range(3)
    ]
    batch = build_batch(schema, rows)
    fields = _wire_data.batch_to_fields(schema, batch)
    again = _wire_data.batch_from_fields(schema, fields, batch.num_rows)
    assert _wire_data.batch_to_fields(schema, again) == fields


def test_batch_from_fields_refuses_a_bad_value():
    schema = _schema()
    row = {"id": 1, "t": "ok", "a": [], "j": {}, "v": [0.0] * 4, "b": b"ab", "bf": [0.0, 0.0], "sv": {1: 1.0}}
    fields = _wire_data.batch_to_fields(schema, build_batch(schema, [row]))
    fields = [f for f in fields if f.field_name != "t"]
    fields.append(_wire_data.scalar_field_data("t", DataType.VARCHAR, ["far too long for sixteen bytes"]))
    with pytest.raises(DataError, match="'t'"):
        _wire_data.batch_from_fields(schema, fields, 1)


@pytest.mark.parametrize(
    "data",
    [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.arange(6, dtype=np.float16).reshape(2, 3),
        np.arange(4, dtype=np.uint8).reshape(2, 2),
        np.arange(6, dtype=np.int8).reshape(3, 2),
        sp.csr_matrix(np.array([[0, 1.5, 0], [2.0, 0, 0.25]], dtype=np.float32)),
    ],
)
def test_query_vectors_round_trip(data):
    back = _placeholders.vectors_from_placeholder(_placeholders.vectors_to_placeholder(data))
    if sp.issparse(data):
        assert (back[:, : data.shape[1]] != data).nnz == 0
    else:
        assert back.dtype == data.dtype and np.array_equal(back, data)


def test_search_request_and_hits_round_trip():
    schema = _schema()
    req = rq.Search(
        "db",
        "c",
        np.ones((2, 4), np.float32),
        "v",
        "id > 1",
        3,
        1,
        ("t",),
        "L2",
        {"ef": 8},
        ("p",),
        {"x": [1, 2]},
        "t",
        2,
        True,
        3,
        "Strong",
    )
    back = _wire_query.search_from_pb(_wire_query.search_to_pb(req), "db")
    assert (
        back.limit == 3
        and back.offset == 1
        and back.params == {"ef": 8}
        and back.filter_params == {"x": [1, 2]}
    )
    assert (back.group_by_field, back.group_size, back.strict_group_size) == ("t", 2, True)
    hits = [[{"id": 1, "distance": 0.5, "entity": {"t": "a", "dyn": 3}}], []]
    assert _wire_data.hits_from_pb(_wire_data.hits_to_pb(schema, hits, ["t", "dyn"])) == hits


def test_pk_lists_in_expressions():
    schema = _schema()
    assert _wire_query.pks_of_expr("id in [1, 2,3]", schema) == [1, 2, 3]
    assert _wire_query.pks_of_expr("id in [1] and t == 'x'", schema) is None
    assert _wire_query.pks_of_expr(_wire_query.pks_to_expr("id", [5, 6]), schema) == [5, 6]


def test_errors_round_trip_through_status():
    from heron import CollectionNotFoundError, FilterError

    for exc in (CollectionNotFoundError("gone"), DataError("bad row"), FilterError("bad filter")):
        back = wire.error_of(wire.status_of(exc))
        assert type(back) is type(exc) and back.code == exc.code
    assert wire.error_of(wire.status_of(ValueError("boom"))).code == 1
