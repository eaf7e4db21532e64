"""Any batch stores the same rows whatever its shape: row dicts, a dict of columns, a pandas
DataFrame, a pyarrow Table (one chunk or several) or a polars DataFrame. A batch that one
shape refuses every shape refuses with the same error, and none of them writes a row.

The row dicts are the reference. The other shapes are built from them the way users build
them: pandas with ``pd.DataFrame(rows)`` (a key a row lacks is NaN/None there), the Arrow
table column by column with the Arrow type each field has in a Parquet file (JSON as text,
sparse vectors as maps, vectors as fixed-size or variable lists), polars from that table.
A dynamic key a row lacks is a null in a column; a null in a column is a key its row lacks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heron
from heron import DataType
from tests.conftest import require_module

pd = require_module("pandas")
try:
    import polars as pl
except ImportError:  # a dev dependency: test_polars_frames_are_among_the_shapes fails in CI without it
    pl = None

DIM = 4
MAX_LEN = 12  # three characters of up to four UTF-8 bytes each
#: The faults a batch may carry, in one of its rows (see `inject`).
FAULTS = ["i8 out of range", "vector of another dim", "string too long", "required field missing",
          "unknown key", "bool given a string", "sparse index negative"]


def make_schema(auto_id: bool, dynamic: bool) -> heron.CollectionSchema:
    s = heron.Client.create_schema(auto_id=auto_id, enable_dynamic_field=dynamic)
    s.add_field("pk", DataType.INT64, is_primary=True)
    s.add_field("b", DataType.BOOL)
    s.add_field("i8", DataType.INT8)
    s.add_field("i16", DataType.INT16)
    s.add_field("i32", DataType.INT32)
    s.add_field("f", DataType.FLOAT)
    s.add_field("d", DataType.DOUBLE)
    s.add_field("s", DataType.VARCHAR, max_length=MAX_LEN)
    s.add_field("j", DataType.JSON)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    s.add_field("sarr", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3, max_length=MAX_LEN)
    s.add_field("n_i64", DataType.INT64, nullable=True)
    s.add_field("n_s", DataType.VARCHAR, max_length=MAX_LEN, nullable=True)
    s.add_field("n_d", DataType.DOUBLE, nullable=True)
    s.add_field("df_i32", DataType.INT32, default_value=-7)
    s.add_field("df_s", DataType.VARCHAR, max_length=MAX_LEN, default_value="dflt")
    s.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
    return s


SCHEMAS = {(a, d): make_schema(a, d) for a in (False, True) for d in (False, True)}
#: Arrow types of the fields as a Parquet file would hold them.
ARROW = {
    "pk": pa.int64(), "b": pa.bool_(), "i8": pa.int64(), "i16": pa.int32(), "i32": pa.int64(), "f": pa.float32(),
    "d": pa.float64(), "s": pa.string(), "j": pa.string(), "arr": pa.list_(pa.int64()),
    "sarr": pa.list_(pa.string()), "n_i64": pa.int64(), "n_s": pa.large_string(), "n_d": pa.float64(),
    "df_i32": pa.int32(), "df_s": pa.string(), "sp": pa.map_(pa.int64(), pa.float32()),
    "dk_i": pa.int64(), "dk_s": pa.string(), "zz": pa.int64(),
}

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=3)
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
json_value = st.recursive(st.none() | st.booleans() | st.integers(-(2**40), 2**40) | f32 | text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                          max_leaves=6)
absent_or = st.none() | st.just("absent")  # how a nullable/default field is left out: None or no key


@st.composite
def row(draw: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "b": draw(st.booleans()),
        "i8": draw(st.integers(-128, 127)),
        "i16": draw(st.integers(-(2**15), 2**15 - 1)),
        "i32": draw(st.integers(-(2**31), 2**31 - 1)),
        "f": draw(f32),
        "d": draw(st.floats(allow_nan=False, allow_infinity=False)),
        "s": draw(text),
        "j": draw(st.dictionaries(text, json_value, max_size=3) | st.lists(json_value, max_size=3)),
        "arr": draw(st.lists(st.integers(-(2**62), 2**62), max_size=4)),
        "sarr": draw(st.lists(text, max_size=3)),
        "vec": draw(st.lists(f32, min_size=DIM, max_size=DIM)),
        "sp": draw(st.dictionaries(st.integers(0, 1000), st.floats(-1e3, 1e3, width=32), max_size=3)),
    }
    for name, values in (("n_i64", st.integers(-(2**53), 2**53)), ("n_s", text), ("n_d", st.floats(-1e9, 1e9)),
                         ("df_i32", st.integers(-(2**31), 2**31 - 1)), ("df_s", text)):
        v = draw(values | absent_or)
        if v != "absent":
            r[name] = v
    for name, values in (("dk_i", st.integers(-(2**53), 2**53)), ("dk_s", text)):  # dynamic keys, or unknown ones
        if draw(st.booleans()):
            r[name] = draw(values)
    return r


@st.composite
def batch(draw: Any) -> tuple[tuple[bool, bool], list[dict[str, Any]], str | None, list[int]]:
    auto_id, dynamic = draw(st.booleans()), draw(st.booleans())
    rows = draw(st.lists(row(), min_size=1, max_size=6))
    if not dynamic:
        for r in rows:
            r.pop("dk_i", None)
            r.pop("dk_s", None)
    if not auto_id:
        pks = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=len(rows), max_size=len(rows), unique=True))
        for r, pk in zip(rows, pks):
            r["pk"] = pk
    fault = draw(st.none() | st.sampled_from(FAULTS))
    if fault is not None:
        at = draw(st.integers(0, len(rows) - 1))
        inject(rows[at], fault)
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=2)))
    return (auto_id, dynamic), rows, fault, cuts


def inject(r: dict[str, Any], fault: str) -> None:
    if fault == "i8 out of range":
        r["i8"] = 200
    elif fault == "vector of another dim":
        r["vec"] = r["vec"][:-1]
    elif fault == "string too long":
        r["s"] = "x" * (MAX_LEN + 1)
    elif fault == "required field missing":
        del r["i32"]
    elif fault == "unknown key":
        r["zz"] = 5  # an unknown key without a dynamic field; a dynamic one with it
    elif fault == "bool given a string":
        r["b"] = "yes"
    elif fault == "sparse index negative":
        r["sp"] = {-1: 1.0}


# -- the shapes --------------------------------------------------------------------------------


def keys_of(rows: list[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    return list(keys)


def as_columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A dict of columns: numpy where a column holds numbers and no null, a 2-d array for vectors."""
    cols: dict[str, Any] = {}
    for k in keys_of(rows):
        vals = [r.get(k) for r in rows]
        if k == "vec" and len({len(v) for v in vals}) == 1:
            cols[k] = np.asarray(vals, dtype=np.float32)
        elif k in ("i8", "i16", "i32", "pk", "d") and None not in vals and all(type(v) in (int, float) for v in vals):
            cols[k] = np.asarray(vals)
        else:
            cols[k] = vals
    return cols


def arrow_column(k: str, vals: list[Any], fixed: bool) -> pa.Array:
    if k == "vec":
        if fixed:
            flat = np.asarray(vals, np.float32).reshape(-1)
            return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=pa.float32()), DIM)
        return pa.array(vals, type=pa.list_(pa.float32()))
    if k == "j":
        return pa.array([None if v is None else json.dumps(v) for v in vals], type=pa.string())
    if k == "sp":
        return pa.array([None if v is None else sorted(v.items()) for v in vals], type=ARROW[k])
    return pa.array(vals, type=ARROW[k])


def as_table(rows: list[dict[str, Any]], cuts: list[int]) -> pa.Table:
    """A table of one record batch per piece between ``cuts`` (empty pieces included)."""
    keys = keys_of(rows)
    fixed = all(len(r["vec"]) == DIM for r in rows)
    bounds = [0, *cuts, len(rows)]
    pieces = []
    for lo, hi in zip(bounds, bounds[1:]):
        part = rows[lo:hi]
        pieces.append(pa.record_batch([arrow_column(k, [r.get(k) for r in part], fixed) for k in keys], names=keys))
    return pa.Table.from_batches(pieces)


def shapes(rows: list[dict[str, Any]], cuts: list[int]) -> dict[str, Any]:
    """Every shape of ``rows``; without the Arrow ones where a column mixes types (a bool column holding a string)."""
    out: dict[str, Any] = {"dict of columns": as_columns(rows), "pandas DataFrame": pd.DataFrame(rows)}
    try:
        table = as_table(rows, cuts)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return out
    out["pyarrow Table"] = as_table(rows, []).combine_chunks()
    out["pyarrow Table, chunked"] = table
    if pl is not None:
        out["polars DataFrame"] = pl.from_arrow(table, rechunk=False)
    return out


# -- running them ------------------------------------------------------------------------------


def attempt(client: heron.Client, name: str, schema: heron.CollectionSchema, data: Any) -> Any:
    """The rows stored from ``data`` (pk dropped where it is generated), or the error raised."""
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    idx.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(name, schema=schema, index_params=idx)
    try:
        try:
            client.insert(name, data)
        except heron.HeronError as exc:
            assert client.query(name, "", output_fields=["count(*)"])[0]["count(*)"] == 0, "a refused batch wrote rows"
            return exc
        got = sorted(client.query(name, "", output_fields=["*"], limit=100), key=lambda r: r["pk"])
        if schema.primary_field.auto_id:
            for r in got:
                del r["pk"]
        return got
    finally:
        client.drop_collection(name)


def error_shape(exc: BaseException) -> tuple[str, str, str]:
    """The error's class, where it points (field and row) and what it expected; not the value it quotes.

    The value is quoted as each shape holds it: a key a row dict lacks is
    ``<missing>`` where a column holds a null, a sparse row read from an
    Arrow map is a list of pairs where a row dict holds a dict.
    """
    msg = str(exc)
    where = re.match(r"field '[^']*'( in row \d+)?", msg)
    expected = msg.rsplit(", expected ", 1)[-1] if ", expected " in msg else msg
    return type(exc).__name__, where.group(0) if where else msg, expected


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    c = heron.Client(str(tmp_path_factory.mktemp("columns") / "db"))
    yield c
    c.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(case=batch())
def test_every_shape_stores_what_row_dicts_store_or_fails_the_same_way(client, case):
    (auto_id, dynamic), rows, fault, cuts = case
    schema = SCHEMAS[auto_id, dynamic]
    want = attempt(client, "rows", schema, rows)
    if fault is None or (fault == "unknown key" and dynamic):
        assert not isinstance(want, BaseException), want
    else:
        assert isinstance(want, heron.DataError), want
    for shape, data in shapes(rows, cuts).items():
        got = attempt(client, "shape", schema, data)
        if isinstance(want, BaseException):
            assert isinstance(got, BaseException), f"{shape}: stored {got!r}, rows are refused with {want}"
            assert error_shape(got) == error_shape(want), shape
        else:
            assert not isinstance(got, BaseException), f"{shape}: refused with {got!r}"
            assert got == want, shape


def test_polars_frames_are_among_the_shapes():
    require_module("polars")  # a dev dependency: the property above covers polars wherever it is installed
    assert "polars DataFrame" in shapes([{"pk": 1, "vec": [0.0] * DIM}], [])
