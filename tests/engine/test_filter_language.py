"""The filter language construct by construct, on ten hand-written rows.

Also holds the schema, rows and column builders the other filter tests import.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from heron._errors import FilterError
from heron._schema import CollectionSchema, FieldSchema
from heron._types import NUMPY_DTYPES, DataType
from heron.data._column import Column, DictColumnSource
from heron.data._scalars import convert_scalars
from heron.engine.filter import compile_filter, evaluate_reference


def make_schema() -> CollectionSchema:
    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
            FieldSchema("age", DataType.INT32, nullable=True),
            FieldSchema("score", DataType.DOUBLE),
            FieldSchema("price", DataType.FLOAT, nullable=True),
            FieldSchema("name", DataType.VARCHAR, max_length=64, nullable=True),
            FieldSchema("active", DataType.BOOL),
            FieldSchema("flags", DataType.INT64),
            FieldSchema("meta", DataType.JSON, nullable=True),
            FieldSchema(
                "tags",
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=8,
                max_length=16,
                nullable=True,
            ),
            FieldSchema("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8, nullable=True),
        ],
        enable_dynamic_field=True,
    )


def column_from_rows(field: FieldSchema, rows: list[dict[str, Any]]) -> Column:
    vals = [r.get(field.name) for r in rows]
    valid = np.array([v is not None for v in vals], dtype=bool)
    mask = None if valid.all() else valid
    t = field.dtype
    if t in (DataType.TIMESTAMPTZ, DataType.GEOMETRY):  # ISO text and WKT, as users give them
        return convert_scalars(field, vals, len(vals))
    if t in NUMPY_DTYPES:
        data = np.array([0 if v is None else v for v in vals], dtype=NUMPY_DTYPES[t])
        return Column(t, data, mask)
    if t is DataType.VARCHAR:
        return Column(t, pa.array(vals, type=pa.string()), mask)
    obj = np.empty(len(vals), dtype=object)
    obj[:] = [None] * len(vals)
    for i, v in enumerate(vals):
        obj[i] = v
    return Column(t, obj, None, field.element_type)


def source_from_rows(
    schema: CollectionSchema, rows: list[dict[str, Any]], indexes: dict | None = None
) -> DictColumnSource:
    cols = {f.name: column_from_rows(f, rows) for f in schema.fields if not f.dtype.is_vector}
    if schema.enable_dynamic_field:
        meta = np.empty(len(rows), dtype=object)
        for i, r in enumerate(rows):
            meta[i] = r.get("$meta", {})
        cols["$meta"] = Column(DataType.JSON, meta)
    return DictColumnSource(cols, len(rows), indexes)


ROWS: list[dict[str, Any]] = [
    {
        "id": 0,
        "age": 25,
        "score": 1.5,
        "price": 9.5,
        "name": "alice",
        "active": True,
        "flags": 5,
        "meta": {"a": 1, "b": {"c": "x"}, "tags": ["sale", "new"]},
        "tags": ["red", "blue"],
        "nums": [1, 2, 3],
        "$meta": {"color": "red", "size": 3},
    },
    {
        "id": 1,
        "age": 30,
        "score": 2.5,
        "price": None,
        "name": "bob",
        "active": False,
        "flags": 4,
        "meta": {"a": 2.5, "tags": ["sale"]},
        "tags": ["green"],
        "nums": [4],
        "$meta": {"color": "blue"},
    },
    {
        "id": 2,
        "age": None,
        "score": -1.0,
        "price": 3.25,
        "name": "Alice",
        "active": True,
        "flags": 0,
        "meta": None,
        "tags": [],
        "nums": None,
        "$meta": {},
    },
    {
        "id": 3,
        "age": 40,
        "score": 0.0,
        "price": 100.0,
        "name": None,
        "active": False,
        "flags": 7,
        "meta": {"a": "1", "b": {"c": None}},
        "tags": ["red"],
        "nums": [2, 2],
        "$meta": {"color": "red", "size": 10},
    },
    {
        "id": 4,
        "age": 18,
        "score": 3.0,
        "price": 0.5,
        "name": "ab%cd",
        "active": True,
        "flags": 1,
        "meta": {"a": True, "tags": []},
        "tags": ["blue", "red", "green"],
        "nums": [],
        "$meta": {"size": "big"},
    },
    {
        "id": 5,
        "age": 65,
        "score": 10.0,
        "price": 20.0,
        "name": "C:\\dir\\x",
        "active": False,
        "flags": 8,
        "meta": {"a": [1, 2], "b": {"c": "y"}},
        "tags": ["x"],
        "nums": [7, 8, 9, 10],
        "$meta": {"color": None},
    },
    {
        "id": 6,
        "age": 25,
        "score": 2.0,
        "price": 7.0,
        "name": "abc",
        "active": True,
        "flags": 12,
        "meta": {"a": 3, "tags": ["new"]},
        "tags": None,
        "nums": [5],
        "$meta": {"color": "green", "size": 3.0},
    },
    {
        "id": 7,
        "age": 33,
        "score": 7.5,
        "price": None,
        "name": "xyz",
        "active": False,
        "flags": 3,
        "meta": {},
        "tags": ["red", "red"],
        "nums": [3, 1],
        "$meta": {},
    },
    {
        "id": 8,
        "age": 50,
        "score": 5.0,
        "price": 1.0,
        "name": "",
        "active": True,
        "flags": 2,
        "meta": {"a": -1, "tags": ["sale", "new", "hot"]},
        "tags": ["blue"],
        "nums": [1],
        "$meta": {"color": "RED"},
    },
    {
        "id": 9,
        "age": 20,
        "score": 9.0,
        "price": 2.0,
        "name": "abcd",
        "active": False,
        "flags": 6,
        "meta": {"a": 1.0},
        "tags": ["green", "blue"],
        "nums": [10],
        "$meta": {"size": -3},
    },
]

ALL = set(range(len(ROWS)))
EVEN = {0, 2, 4, 6, 8}
ODD = ALL - EVEN
SCHEMA = make_schema()
SOURCE = source_from_rows(SCHEMA, ROWS)

CASES: list[tuple[str, set[int]]] = [
    # comparisons on scalar fields
    ("age == 25", {0, 6}),
    ("age != 25", {1, 3, 4, 5, 7, 8, 9}),
    ("age > 30", {3, 5, 7, 8}),
    ("age >= 30", {1, 3, 5, 7, 8}),
    ("age < 25", {4, 9}),
    ("age <= 25", {0, 4, 6, 9}),
    ("age > 24.5", {0, 1, 3, 5, 6, 7, 8}),
    ("age == 25.0", {0, 6}),
    ("age == 25.5", set()),
    ("score == 2.5", {1}),
    ("price > 5", {0, 3, 5, 6}),
    ("price == 9.5", {0}),
    ('name == "bob"', {1}),
    ('name != "bob"', {0, 2, 4, 5, 6, 7, 8, 9}),
    ('name > "b"', {1, 7}),
    ("name == 'bob'", {1}),
    ("active == true", EVEN),
    ("active == False", ODD),
    ("active != TRUE", ODD),
    ("active", EVEN),
    ("not active", ODD),
    ("true", ALL),
    ("false", set()),
    ("price < score", {4, 8, 9}),
    ("age > 10 * 3", {3, 5, 7, 8}),
    ("1 < 2", ALL),
    # chained ranges
    ("10 < age <= 30", {0, 1, 4, 6, 9}),
    ("100 > age >= 30", {1, 3, 5, 7, 8}),
    ("30 >= age > 20", {0, 1, 6}),
    # logic and precedence, both spellings, any case
    ("age > 20 and age < 40", {0, 1, 6, 7}),
    ("age > 60 or score < 0", {2, 5}),
    ("age > 20 AND active", {0, 6, 8}),
    ("age < 20 Or active", EVEN),
    ("age > 20 && not active", {1, 3, 5, 7}),
    ("age < 20 || !active", {1, 3, 4, 5, 7, 9}),
    ("active or age > 60 and score < 0", EVEN),
    ("not active and age > 30", {3, 5, 7}),
    ('age > 20 AND name LIKE "a%" OR NOT active', {0, 1, 3, 5, 6, 7, 9}),
    # null semantics: unknown stays unknown under not
    ("not (age > 30)", {0, 1, 4, 6, 9}),
    ("not (price > 5)", {2, 4, 8, 9}),
    # membership
    ("age in [25, 40]", {0, 3, 6}),
    ("age not in [25, 40]", {1, 4, 5, 7, 8, 9}),
    ("age in []", set()),
    ("age not in []", ALL - {2}),
    ("age IN [18]", {4}),
    ('name in ["bob", "abc"]', {1, 6}),
    ("flags in [4.0, 5.5]", {1}),
    # like
    ('name like "ab%"', {4, 6, 9}),
    ('name like "%c"', {6}),
    ('name like "%c%"', {0, 2, 4, 6, 9}),
    ('name like "a_c"', {6}),
    ('name like "ab\\%%"', {4}),
    ('name LIKE "___"', {1, 6, 7}),
    ('name like r"C:\\dir%"', {5}),
    ('name like "%"', ALL - {3}),
    ('name == "C:\\\\dir\\\\x"', {5}),
    ('name == r"C:\\dir\\x"', {5}),
    # arithmetic
    ("age + 5 == 30", {0, 6}),
    ("score * 2 > 10", {5, 7, 9}),
    ("age - 20 < 0", {4}),
    ("age / 10 == 2", {0, 6, 9}),
    ("score / 2 == 1.25", {1}),
    ("age % 10 == 5", {0, 5, 6}),
    ("age ** 2 > 2000", {5, 8}),
    ("-age < -60", {5}),
    ("(age + 5) % 10 == 0", {0, 5, 6}),
    # bitwise
    ("flags & 4 == 4", {0, 1, 3, 6, 9}),
    ("flags | 1 == 5", {0, 1}),
    ("flags ^ 1 == 6", {3}),
    ("flags << 1 == 8", {1}),
    ("flags >> 2 == 1", {0, 1, 3, 9}),
    ("~flags == -1", {2}),
    # JSON paths
    ('meta["a"] == 1', {0, 9}),
    ('meta["a"] > 1', {1, 6}),
    ('meta["a"] == "1"', {3}),
    ('meta["a"] == true', {4}),
    ('meta["a"] != 1', {1, 6, 8}),
    ('meta["b"]["c"] == "x"', {0}),
    ('meta["tags"][0] == "sale"', {0, 1, 8}),
    ('meta["a"] + 1 == 2', {0, 9}),
    ('meta["a"] in [1, "1"]', {0, 3, 9}),
    ('exists meta["b"]', {0, 3, 5}),
    ('EXISTS meta["b"]["c"]', {0, 3, 5}),
    # dynamic fields
    ('color == "red"', {0, 3}),
    ('$meta["color"] == "red"', {0, 3}),
    ("size > 2", {0, 3, 6}),
    ("color is null", {2, 4, 5, 7, 9}),
    ("exists color", {0, 1, 3, 5, 6, 8}),
    ('exists $meta["size"]', {0, 3, 4, 6, 9}),
    # null tests
    ("age is null", {2}),
    ("age IS NOT NULL", ALL - {2}),
    ("price is null", {1, 7}),
    ("name is null", {3}),
    ("meta is null", {2}),
    ('meta["b"]["c"] is null', {1, 2, 3, 4, 6, 7, 8, 9}),
    ('meta["b"]["c"] is not null', {0, 5}),
    ("tags is null", {6}),
    ("nums[3] is null", ALL - {5}),
    # JSON containment
    ('json_contains(meta["tags"], "sale")', {0, 1, 8}),
    ('json_contains_all(meta["tags"], ["sale", "new"])', {0, 8}),
    ('json_contains_any(meta["tags"], ["hot", "new"])', {0, 6, 8}),
    ('JSON_CONTAINS(meta["tags"], "new")', {0, 6, 8}),
    # ARRAY fields
    ('array_contains(tags, "red")', {0, 3, 4, 7}),
    ('array_contains_all(tags, ["red", "blue"])', {0, 4}),
    ('array_contains_any(tags, ["x", "green"])', {1, 4, 5, 9}),
    ("array_contains(nums, 2)", {0, 3}),
    ("array_length(nums) == 0", {4}),
    ("array_length(tags) >= 2", {0, 4, 7, 9}),
    ('array_length(meta["tags"]) == 1', {1, 6}),
    ('tags[0] == "red"', {0, 3, 7}),
    ("nums[1] > 1", {0, 3, 5}),
    ("nums[5] == 1", set()),
]


def _selected(mask: np.ndarray) -> set[int]:
    return {int(i) for i in np.flatnonzero(mask)}


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filter_selects_expected_rows(expr: str, expected: set[int]) -> None:
    plan = compile_filter(expr, SCHEMA)
    mask = plan.evaluate(SOURCE)
    assert mask.dtype == np.bool_ and mask.shape == (len(ROWS),)
    assert _selected(mask) == expected
    ref = evaluate_reference(expr, SCHEMA, ROWS)
    assert {i for i, ok in enumerate(ref) if ok} == expected


TEMPLATE_CASES = [
    ("age > {a} and name in {names}", {"a": 20, "names": ["alice", "bob", "abc"]}, {0, 1, 6}),
    ('meta["a"] == {v}', {"v": 3}, {6}),
    ("name like {p}", {"p": "ab%"}, {4, 6, 9}),
    ("age in {ages}", {"ages": np.array([25, 18])}, {0, 4, 6}),
    ("age > {a}", {"a": np.int64(60)}, {5}),
]


@pytest.mark.parametrize(("expr", "params", "expected"), TEMPLATE_CASES, ids=[c[0] for c in TEMPLATE_CASES])
def test_template_parameters_fill_placeholders(expr: str, params: dict[str, Any], expected: set[int]) -> None:
    assert _selected(compile_filter(expr, SCHEMA, params).evaluate(SOURCE)) == expected
    assert {i for i, ok in enumerate(evaluate_reference(expr, SCHEMA, ROWS, params)) if ok} == expected


def test_same_expression_with_other_params_is_not_served_from_cache() -> None:
    a = compile_filter("age > {a}", SCHEMA, {"a": 60})
    b = compile_filter("age > {a}", SCHEMA, {"a": 30})
    assert _selected(a.evaluate(SOURCE)) == {5}
    assert _selected(b.evaluate(SOURCE)) == {3, 5, 7, 8}


def test_plan_is_not_reused_for_a_different_schema() -> None:
    other = make_schema()
    other.fields = [f for f in other.fields if f.name != "age"]
    other.enable_dynamic_field = False
    compile_filter("age > 1", SCHEMA)
    with pytest.raises(FilterError, match="unknown field 'age'"):
        compile_filter("age > 1", other)


@pytest.mark.parametrize("expr", ["", None, "   ", "\n"])
def test_empty_filter_matches_all(expr: str | None) -> None:
    plan = compile_filter(expr, SCHEMA)
    assert plan.matches_all
    assert plan.evaluate(SOURCE).all()


def test_plan_reports_fields_read() -> None:
    plan = compile_filter('age > 1 and color == "x" and meta["a"] == 1 and array_contains(tags, "x")', SCHEMA)
    assert plan.fields == frozenset({"age", "$meta", "meta", "tags"})
    assert not plan.matches_all


def test_random_sample_keeps_a_fraction_of_the_matching_rows() -> None:
    n = 20000
    rows = [{"id": i, "age": i % 100, "score": 0.0, "active": True, "flags": 0} for i in range(n)]
    src = source_from_rows(SCHEMA, rows)
    mask = compile_filter("age < 50 and random_sample(0.1)", SCHEMA).evaluate(src)
    ages = np.arange(n) % 100
    assert not mask[ages >= 50].any()
    assert 700 < mask.sum() < 1300


def test_integer_comparisons_are_exact_beyond_float_precision() -> None:
    big = 2**53
    rows = [{"id": i, "flags": big + i, "score": float(big), "active": True} for i in range(4)]
    src = source_from_rows(SCHEMA, rows)
    assert _selected(compile_filter(f"flags == {big + 1}", SCHEMA).evaluate(src)) == {1}
    assert _selected(compile_filter(f"flags > {float(big)}", SCHEMA).evaluate(src)) == {1, 2, 3}
    assert _selected(compile_filter("flags == score", SCHEMA).evaluate(src)) == {0}
    assert _selected(compile_filter("flags > score", SCHEMA).evaluate(src)) == {1, 2, 3}
    assert _selected(compile_filter(f"score < {big + 1}", SCHEMA).evaluate(src)) == {0, 1, 2, 3}
    assert _selected(compile_filter(f"score == {big + 1}", SCHEMA).evaluate(src)) == set()


def test_missing_column_reads_as_null() -> None:
    src = DictColumnSource({"age": SOURCE.column("age")}, len(ROWS))
    assert _selected(compile_filter('color == "red" or name is null', SCHEMA).evaluate(src)) == ALL
