"""Bad input gets an error naming the field, the value and what was expected — and writes nothing."""

from __future__ import annotations

import pytest

import heron
from tests.conftest import make_collection


def count(client, name="c"):
    return client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


GOOD = {"id": 1000, "vec": [1.0, 2.0, 3.0, 4.0], "name": "ok", "n": 1}


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"vec": [1.0, 2.0]}, ["vec", "dim=4"]),
        ({"vec": "abcd"}, ["vec"]),
        ({"vec": [1.0, float("nan"), 0.0, 0.0]}, ["vec", "NaN"]),
        ({"n": "seven"}, ["'n'", "'seven'", "integer"]),
        ({"n": 2**40}, ["'n'", "INT32"]),
        ({"n": 1.5}, ["'n'", "1.5", "integer"]),
        ({"name": 42}, ["'name'", "42", "string"]),
        ({"name": "x" * 33}, ["'name'", "max_length=32"]),
        ({"colour": "red"}, ["'colour'", "no such field"]),
        ({"id": "abc"}, ["'id'", "'abc'"]),
    ],
)
def test_bad_value_in_batch_writes_nothing(client, bad, words):
    make_collection(client, "c", rows=5)
    rows = [dict(GOOD, id=2000 + i) for i in range(3)]
    rows.insert(1, {**GOOD, **bad})
    with pytest.raises(heron.DataError) as e:
        client.insert("c", rows)
    msg = str(e.value)
    for w in words:
        assert w in msg, (w, msg)
    assert count(client) == 5


def test_missing_required_field(client):
    make_collection(client, "c", rows=5)
    row = dict(GOOD)
    del row["n"]
    with pytest.raises(heron.DataError, match="'n'.*missing"):
        client.insert("c", [dict(GOOD, id=1), row])
    assert count(client) == 5


def test_an_upsert_batch_that_repeats_a_key_is_refused_as_milvus_refuses_it(client):
    make_collection(client, "c", rows=5)
    with pytest.raises(heron.DataError, match="duplicate primary keys are not allowed in the same batch: "
                                              "field 'id' got 7 more than once") as err:
        client.upsert("c", [dict(GOOD, id=7), dict(GOOD, id=8), dict(GOOD, id=7)])
    assert err.value.code == 1100
    assert count(client) == 5


def test_an_insert_batch_that_repeats_a_key_is_accepted_and_reads_once(client):
    make_collection(client, "c", rows=5)
    got = client.insert("c", [dict(GOOD, id=7, n=1), dict(GOOD, id=8), dict(GOOD, id=7, n=2)])
    assert got["insert_count"] == 3 and list(got["ids"]) == [7, 8, 7]
    assert count(client) == 7
    assert client.get("c", ids=[7], output_fields=["n"]) == [{"id": 7, "n": 2}]


def test_malformed_sparse_vector(client):
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("sp", heron.DataType.SPARSE_FLOAT_VECTOR)
    idx = client.prepare_index_params()
    idx.add_index("sp", metric_type="IP")
    client.create_collection("s", schema=s, index_params=idx)
    client.insert("s", [{"id": 1, "sp": {1: 1.0}}])
    for bad in ({-1: 1.0}, {"a": 1.0}, {1: "x"}, [1, 2, 3], {1: float("inf")}):
        with pytest.raises(heron.DataError, match="'sp'"):
            client.insert("s", [{"id": 2, "sp": {3: 1.0}}, {"id": 3, "sp": bad}])
    assert count(client, "s") == 1


def test_unknown_collection_and_partition(client):
    with pytest.raises(heron.CollectionNotFoundError, match="'nope'"):
        client.insert("nope", [GOOD])
    make_collection(client, "c", rows=0)
    with pytest.raises(heron.PartitionNotFoundError, match="'px'"):
        client.insert("c", [GOOD], partition_name="px")
    assert count(client) == 0


def test_unknown_output_field_and_anns_field(client):
    make_collection(client, "c", rows=2)
    with pytest.raises(heron.ParamError, match="'zzz'"):
        client.query("c", filter="id > 0", output_fields=["zzz"])
    with pytest.raises(heron.ParamError, match="'zzz'"):
        client.search("c", data=[[1.0] * 4], anns_field="zzz")
    with pytest.raises(heron.ParamError, match="dim=4"):
        client.search("c", data=[[1.0] * 3])


def test_bad_filter_deletes_nothing(client):
    make_collection(client, "c", rows=5)
    with pytest.raises(heron.FilterError):
        client.delete("c", filter="nn > 1")
    with pytest.raises(heron.FilterError):
        client.delete("c", filter="n >")
    assert count(client) == 5


@pytest.mark.parametrize(
    "field_kwargs, words",
    [
        (dict(field_name="v", datatype=heron.DataType.FLOAT_VECTOR), ["'v'", "dim"]),
        (dict(field_name="s", datatype=heron.DataType.VARCHAR), ["'s'", "max_length"]),
        (dict(field_name="a", datatype=heron.DataType.ARRAY, max_capacity=3), ["'a'", "element_type"]),
        (dict(field_name="1x", datatype=heron.DataType.INT64), ["'1x'", "invalid"]),
    ],
)
def test_schema_errors_name_the_field(client, field_kwargs, words):
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field(**field_kwargs)
    with pytest.raises(heron.SchemaError) as e:
        client.create_collection("x", schema=s)
    for w in words:
        assert w in str(e.value)
    assert not client.has_collection("x")


def test_schema_without_primary_key_or_vector(client):
    s = client.create_schema()
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(heron.SchemaError, match="primary key"):
        client.create_collection("x", schema=s)
    s2 = client.create_schema()
    s2.add_field("id", heron.DataType.INT64, is_primary=True)
    with pytest.raises(heron.SchemaError, match="vector field"):
        client.create_collection("x", schema=s2)
