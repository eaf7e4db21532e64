"""Every data type round-trips exactly, from every input shape users have."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.sparse import csr_matrix

import heron
from tests.conftest import require_module


def all_types_schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema(enable_dynamic_field=True)
    s.add_field("pk", heron.DataType.VARCHAR, is_primary=True, max_length=20)
    s.add_field("b", heron.DataType.BOOL)
    s.add_field("i8", heron.DataType.INT8)
    s.add_field("i16", heron.DataType.INT16)
    s.add_field("i32", heron.DataType.INT32)
    s.add_field("i64", heron.DataType.INT64)
    s.add_field("f", heron.DataType.FLOAT)
    s.add_field("d", heron.DataType.DOUBLE)
    s.add_field("s", heron.DataType.VARCHAR, max_length=50)
    s.add_field("j", heron.DataType.JSON)
    s.add_field("arr", heron.DataType.ARRAY, element_type=heron.DataType.INT64, max_capacity=5)
    s.add_field("sarr", heron.DataType.ARRAY, element_type=heron.DataType.VARCHAR, max_capacity=3, max_length=10)
    s.add_field("nul", heron.DataType.INT32, nullable=True)
    s.add_field("dflt", heron.DataType.VARCHAR, max_length=10, default_value="dv")
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=3)
    s.add_field("sp", heron.DataType.SPARSE_FLOAT_VECTOR)
    return s


ROWS = [
    {
        "pk": "a",
        "b": True,
        "i8": -128,
        "i16": 32767,
        "i32": -(2**31),
        "i64": 2**63 - 1,
        "f": 1.5,
        "d": 1e300,
        "s": "héllo wörld",
        "j": {"k": [1, 2, {"x": None}], "s": "v"},
        "arr": [1, 2, 3],
        "sarr": ["x", "yy"],
        "nul": None,
        "vec": [0.25, -1.0, 3.0],
        "sp": {0: 0.5, 7: 2.0},
        "dyn": {"nested": True},
    },
    {
        "pk": "b",
        "b": False,
        "i8": 127,
        "i16": -32768,
        "i32": 2**31 - 1,
        "i64": -(2**63),
        "f": -0.0,
        "d": -2.5,
        "s": "",
        "j": [1, "two", 3.0],
        "arr": [],
        "sarr": [],
        "nul": 7,
        "dflt": "given",
        "vec": [1.0, 2.0, 3.0],
        "sp": csr_matrix(([1.25], ([0], [3])), shape=(1, 4)),
    },
]


def expected(row: dict) -> dict:
    out = dict(row)
    out.setdefault("dflt", "dv")
    if not isinstance(out["sp"], dict):
        out["sp"] = {3: 1.25}
    return out


@pytest.mark.parametrize("flush", [False, True])
def test_every_type_round_trips(client, flush):
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    idx.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("t", schema=all_types_schema(), index_params=idx)
    client.insert("t", ROWS)
    if flush:
        client.flush("t")
    got = {r["pk"]: r for r in client.query("t", filter="", limit=10, output_fields=["*"])}
    for row in ROWS:
        assert got[row["pk"]] == expected(row)
    assert got["a"]["f"] == 1.5 and isinstance(got["a"]["i64"], int)


def test_dynamic_fields_are_flattened_and_selectable(client):
    client.create_collection("q", dimension=2)
    client.insert("q", [{"id": 1, "vector": [1, 2], "color": "red", "size": 3}, {"id": 2, "vector": [1, 1]}])
    rows = client.query("q", filter="", limit=5, output_fields=["color"])
    assert rows == [{"id": 1, "color": "red"}, {"id": 2}]


def _columns(n: int, dim: int):
    rng = np.random.default_rng(1)
    return {
        "id": np.arange(n, dtype=np.int64),
        "vec": rng.random((n, dim), dtype=np.float32),
        "name": [f"r{i}" for i in range(n)],
        "n": np.arange(n, dtype=np.int32) % 7,
    }


def _make(client):
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("name", heron.DataType.VARCHAR, max_length=10)
    s.add_field("n", heron.DataType.INT32)
    client.create_collection("c", schema=s)
    client.load_collection("c")


def test_insert_dict_of_numpy_columns(client):
    _make(client)
    cols = _columns(100, 4)
    assert client.insert("c", cols)["insert_count"] == 100
    got = client.get("c", ids=[42])[0]
    assert got["name"] == "r42" and got["n"] == 42 % 7
    assert np.allclose(got["vec"], cols["vec"][42])


def test_insert_pyarrow_table_and_pandas_frame(client):
    pd = require_module("pandas")
    _make(client)
    cols = _columns(50, 4)
    table = pa.table(
        {
            "id": cols["id"],
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(cols["vec"].ravel()), 4),
            "name": cols["name"],
            "n": cols["n"],
        }
    )
    client.insert("c", table)
    frame = pd.DataFrame({"id": cols["id"] + 100, "vec": list(cols["vec"]), "name": cols["name"], "n": cols["n"]})
    client.insert("c", frame)
    assert client.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 100
    assert client.get("c", ids=[107])[0]["name"] == "r7"


def test_auto_id_generates_unique_increasing_ids(client):
    s = heron.Client.create_schema(auto_id=True)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    client.create_collection("a", schema=s)
    first = client.insert("a", [{"v": [1, 2]}, {"v": [3, 4]}])["ids"]
    second = client.insert("a", [{"v": [5, 6]}])["ids"]
    ids = first + second
    assert len(set(ids)) == 3 and ids == sorted(ids)


def test_other_vector_types_round_trip(client):
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("bv", heron.DataType.BINARY_VECTOR, dim=16)
    s.add_field("h", heron.DataType.FLOAT16_VECTOR, dim=2)
    s.add_field("bf", heron.DataType.BFLOAT16_VECTOR, dim=2)
    s.add_field("i8", heron.DataType.INT8_VECTOR, dim=2)
    client.create_collection("v", schema=s)
    client.load_collection("v")
    client.insert("v", [{"id": 1, "bv": b"\x0f\xf0", "h": [0.5, 1.5], "bf": [2.0, -1.0], "i8": [-3, 7]}])
    got = client.get("v", ids=[1])[0]
    assert got["bv"] == b"\x0f\xf0"
    assert got["h"] == [0.5, 1.5] and got["bf"] == [2.0, -1.0] and got["i8"] == [-3, 7]


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [1.5, None, True, "é\n\"x\""], "c": {"d": {}}},
        [],
        "text",
        3,
        -0.0,
        1e308,
        None,
        {"k": "\u2603", "n": 2**70},
    ],
)
def test_json_texts_are_those_of_json_dumps(value):
    import json

    from heron.data._json import dumps_json

    assert dumps_json(value) == json.dumps(value, allow_nan=False)


@pytest.mark.parametrize("value", [{"x": float("nan")}, {"x": np.int64(3)}, {"x": {1, 2}}, [float("inf")]])
def test_json_values_that_json_refuses_are_refused(client, value):
    s = client.create_schema(auto_id=False)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("j", heron.DataType.JSON)
    client.create_collection("jbad", schema=s)
    with pytest.raises(heron.DataError, match="field 'j' in row 1"):
        client.insert("jbad", [{"id": 1, "v": [0, 1], "j": {}}, {"id": 2, "v": [1, 0], "j": value}])
    assert client.get_collection_stats("jbad")["row_count"] == 0
