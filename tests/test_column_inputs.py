"""Column-shaped inserts behave as row dicts do: extra columns are dynamic fields or refused,
Arrow list columns (chunked, sliced, fixed or variable) are vectors, polars frames are taken."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import heron
from heron.data._batch import build_batch
from tests.conftest import make_collection, require_module, simple_schema


def count(client: Any, name: str = "c") -> int:
    return client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


def frames(ids: list[int], extra: dict[str, list[Any]]) -> dict[str, Any]:
    """The same columns (id, vec, name, n and ``extra``) as a dict of columns, a pandas DataFrame and an Arrow Table."""
    pd = require_module("pandas")
    cols: dict[str, Any] = {"id": ids, "vec": [[float(i)] * 4 for i in ids], "name": [f"r{i}" for i in ids],
                            "n": [i % 3 for i in ids], **extra}
    return {"dict": cols, "pandas": pd.DataFrame(cols), "arrow": pa.table(cols)}


def test_extra_columns_become_dynamic_fields_and_nulls_are_absent_keys(client):
    make_collection(client, rows=0, dynamic=True)
    for k, (kind, data) in enumerate(frames([0, 1, 2], {"colour": ["red", None, "blue"], "size": [1, 2, None]}).items()):
        ids = [10 * k, 10 * k + 1, 10 * k + 2]
        if kind == "dict":
            data = {**data, "id": ids}
        elif kind == "pandas":
            data = data.assign(id=ids)
        else:
            data = data.set_column(0, "id", pa.array(ids))
        assert client.insert("c", data)["insert_count"] == 3, kind
        got = client.query("c", filter=f"id in {ids}", output_fields=["id", "colour", "size"])
        by_id = {r["id"]: r for r in got}
        assert by_id[ids[0]]["colour"] == "red" and by_id[ids[0]]["size"] == 1, kind
        assert "colour" not in by_id[ids[1]] and by_id[ids[1]]["size"] == 2, kind
        assert by_id[ids[2]]["colour"] == "blue" and "size" not in by_id[ids[2]], kind
        assert [r["id"] for r in client.query("c", filter='colour == "blue"', output_fields=["id"])][-1] == ids[2]


def test_extra_columns_without_a_dynamic_field_are_refused_like_unknown_keys(client):
    make_collection(client, rows=0, dynamic=False)
    with pytest.raises(heron.DataError) as as_rows:
        client.insert("c", [{"id": 1, "vec": [0.0] * 4, "name": "a", "n": 1},
                            {"id": 2, "vec": [0.0] * 4, "name": "b", "n": 1, "colour": "red"}])
    for kind, data in frames([1, 2], {"colour": [None, "red"]}).items():
        with pytest.raises(heron.DataError) as as_columns:
            client.insert("c", data)
        assert str(as_columns.value) == str(as_rows.value), kind
        assert "field 'colour' in row 1" in str(as_columns.value)
    assert count(client) == 0


def _vectors_table(vecs: np.ndarray, fixed: bool, chunks: int, child: pa.DataType) -> pa.Table:
    n, dim = vecs.shape
    parts = []
    for part in np.array_split(np.arange(n), chunks):
        lo, hi = (int(part[0]), int(part[-1]) + 1) if len(part) else (0, 0)
        flat = pa.array(vecs[lo:hi].reshape(-1), type=child)
        if fixed:
            v = pa.FixedSizeListArray.from_arrays(flat, dim)
        else:
            v = pa.ListArray.from_arrays(pa.array(np.arange(0, (hi - lo) * dim + 1, dim, dtype=np.int32)), flat)
        parts.append(pa.record_batch({"id": pa.array(np.arange(lo, hi, dtype=np.int64)), "vec": v,
                                      "name": pa.array([f"r{i}" for i in range(lo, hi)], type=pa.large_string()),
                                      "n": pa.array(np.arange(lo, hi) % 7, type=pa.int32())}))
    return pa.Table.from_batches(parts)


@pytest.mark.parametrize("fixed", [True, False])
@pytest.mark.parametrize("child", [pa.float32(), pa.float64()])
def test_arrow_vector_columns_of_any_chunking_are_the_vectors_given(fixed, child):
    schema = simple_schema(dim=8)
    vecs = np.random.default_rng(3).random((50, 8), dtype=np.float32)
    for chunks in (1, 3, 7):
        table = _vectors_table(vecs, fixed, chunks, child)
        for data in (table, table.slice(5, 30), table.column("vec")):
            if isinstance(data, pa.ChunkedArray):
                got = build_batch(schema, {"id": np.arange(50), "vec": data, "name": ["x"] * 50, "n": [0] * 50})
                want = vecs
            else:
                got = build_batch(schema, data)
                want = vecs[5:35] if data.num_rows == 30 else vecs
            assert got.vectors["vec"].dtype == np.float32
            assert np.array_equal(got.vectors["vec"], want), (fixed, child, chunks)
            assert got.columns["name"].values.type == pa.string()


def test_arrow_vectors_of_another_length_or_null_are_refused_naming_the_row():
    schema = simple_schema(dim=2)
    ragged = pa.chunked_array([pa.array([[1.0, 2.0]]), pa.array([[1.0, 2.0], [3.0]])])
    base = {"id": [1, 2, 3], "name": ["a", "b", "c"], "n": [1, 2, 3]}
    with pytest.raises(heron.DataError, match=r"field 'vec' in row 2: got 'a vector of 1 values', expected dim=2"):
        build_batch(schema, {**base, "vec": ragged})
    nulls = pa.chunked_array([pa.array([[1.0, 2.0]]), pa.array([None, [1.0, 2.0]], type=pa.list_(pa.float64()))])
    with pytest.raises(heron.DataError, match=r"field 'vec' in row 1: got '<missing>'"):
        build_batch(schema, {**base, "vec": nulls})
    holes = pa.array([[1.0, 2.0], [1.0, None], [0.0, 0.0]])
    with pytest.raises(heron.DataError, match=r"field 'vec' in row 1: .*null element"):
        build_batch(schema, {**base, "vec": holes})


def test_arrow_nulls_in_numbers_and_strings_follow_the_field(client):
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("opt", heron.DataType.INT16, nullable=True)
    s.add_field("dflt", heron.DataType.DOUBLE, default_value=0.5)
    s.add_field("label", heron.DataType.VARCHAR, max_length=4, nullable=True)
    s.add_field("req", heron.DataType.INT32)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("t", schema=s, index_params=idx)
    table = pa.table({"id": [1, 2], "vec": [[0.0, 1.0], [1.0, 0.0]], "opt": pa.array([None, 3], pa.int64()),
                      "dflt": [None, 2.0], "label": pa.array(["ab", None], pa.large_string()), "req": [5, 6]})
    client.insert("t", table)
    got = client.query("t", filter="", output_fields=["id", "opt", "dflt", "label"], limit=10)
    assert sorted((r["id"], r["opt"], r["dflt"], r["label"]) for r in got) == [(1, None, 0.5, "ab"), (2, 3, 2.0, None)]
    bad = table.set_column(5, "req", pa.array([7, None], pa.int64())).set_column(0, "id", pa.array([3, 4]))
    with pytest.raises(heron.DataError, match=r"field 'req' in row 1: got None, expected a INT32 value"):
        client.insert("t", bad)
    too_long = table.set_column(4, "label", pa.array([None, "abcde"])).set_column(0, "id", pa.array([3, 4]))
    with pytest.raises(heron.DataError, match=r"field 'label' in row 1: got 'abcde'"):
        client.insert("t", too_long)
    assert count(client, "t") == 2


def test_polars_frames_insert_like_arrow_tables(client):
    pl = require_module("polars")
    make_collection(client, rows=0, dynamic=True)
    frame = pl.DataFrame({"id": [1, 2], "vec": np.ones((2, 4), dtype=np.float32), "name": ["a", None],
                          "n": [3, 4], "tag": ["x", None]}, schema_overrides={"name": pl.String})
    with pytest.raises(heron.DataError, match=r"field 'name' in row 1"):
        client.insert("c", frame)  # name is not nullable
    frame = frame.with_columns(pl.col("name").fill_null("b"))
    assert client.insert("c", frame)["insert_count"] == 2
    got = sorted(client.query("c", filter="", output_fields=["*"], limit=10), key=lambda r: r["id"])
    assert [(r["id"], r["name"], r["n"], r.get("tag")) for r in got] == [(1, "a", 3, "x"), (2, "b", 4, None)]
    assert "tag" not in got[1] and got[0]["vec"] == [1.0] * 4


def test_pandas_integers_with_missing_values_are_integers(client):
    pd = require_module("pandas")
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("opt", heron.DataType.INT64, nullable=True)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("p", schema=s, index_params=idx)
    frame = pd.DataFrame([{"id": 1, "vec": [0.0, 1.0], "opt": 2**40}, {"id": 2, "vec": [1.0, 0.0]}])
    assert frame["opt"].dtype == np.float64  # how pandas holds a missing integer
    client.insert("p", frame)
    got = sorted((r["id"], r["opt"]) for r in client.query("p", filter="", output_fields=["opt"], limit=10))
    assert got == [(1, 2**40), (2, None)] and isinstance(got[0][1], int)
    with pytest.raises(heron.DataError, match=r"field 'opt' in row 0: got 1.5, expected an integer"):
        client.insert("p", pd.DataFrame([{"id": 3, "vec": [0.0, 1.0], "opt": 1.5}, {"id": 4, "vec": [1.0, 0.0]}]))


def test_arrow_nulls_take_defaults_wider_than_the_column():
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=1)
    s.add_field("big", heron.DataType.INT64, default_value=2**40)
    s.add_field("fl", heron.DataType.FLOAT, default_value=1.5)
    s.add_field("flag", heron.DataType.BOOL, default_value=True)
    b = build_batch(s, pa.table({"id": [1, 2], "v": [[1.0], [2.0]], "big": pa.array([None, 3], pa.int32()),
                                 "fl": pa.array([None, 2], pa.int8()), "flag": pa.array([None, False])}))
    assert b.columns["big"].values.tolist() == [2**40, 3] and b.columns["big"].values.dtype == np.int64
    assert b.columns["fl"].values.tolist() == [1.5, 2.0] and b.columns["fl"].values.dtype == np.float32
    assert b.columns["flag"].values.tolist() == [True, False]
    assert all(b.columns[k].valid is None for k in ("big", "fl", "flag"))
