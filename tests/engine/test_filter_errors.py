"""Filter errors: every bad expression fails at compile time with a caret under the culprit."""

from __future__ import annotations

import pytest
from test_filter_language import make_schema

from heron._errors import FilterError, ParamError
from heron._schema import CollectionSchema, FieldSchema
from heron._types import DataType
from heron.engine.filter import compile_filter

SCHEMA = make_schema()
STATIC = CollectionSchema(
    [
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
        FieldSchema("color", DataType.VARCHAR, max_length=8),
        FieldSchema("age", DataType.INT64),
        FieldSchema("title", DataType.VARCHAR, max_length=64),
    ]
)

# (expression, schema, part of the message, the text the caret points at)
ERRORS = [
    ("colour == 'red'", STATIC, "unknown field 'colour' (did you mean 'color'?)", "colour"),
    ("age > 1 and wxyz == 2", STATIC, "unknown field 'wxyz'", "wxyz"),
    ("color > 3", STATIC, "cannot compare VARCHAR field 'color' with an integer", ">"),
    ("age like 'a%'", STATIC, "'like' needs a VARCHAR or JSON value", "like"),
    ("age == 'x'", STATIC, "cannot compare INT64 field 'age'", "=="),
    ("active > true", SCHEMA, "booleans support only", ">"),
    ("array_contains(nums, 'a')", SCHEMA, "does not fit the element type INT64", "'a'"),
    ("array_contains_any(tags, [1, 2])", SCHEMA, "does not fit the element type VARCHAR", "1"),
    ("frobnicate(age)", STATIC, "unknown function 'frobnicate'", "frobnicate"),
    ("Array_Contains(nums, 1)", SCHEMA, "unknown function", "Array_Contains"),
    ("age > {a}", STATIC, "template parameter {a} is missing from filter_params", "{a}"),
    ("random_sample(0.1) or age > 1", STATIC, "random_sample must be combined", "random_sample"),
    ("not random_sample(0.1)", STATIC, "random_sample must be combined", "random_sample"),
    ("age > 1 and random_sample(1.5)", STATIC, "factor must be a float in (0, 1)", "1.5"),
    ("text_match(title, 'machine learning')", STATIC, "requires an analyzer-enabled field", "text_match"),
    ("phrase_match(title, 'a b', 2)", STATIC, "enable_analyzer=True, enable_match=True", "phrase_match"),
    ("age >", STATIC, "ends too early", ""),
    ("age == == 1", STATIC, "unexpected '=='", "=="),
    ("age @ 2", STATIC, "unexpected character '@'", "@"),
    ("10 < age > 5", STATIC, "chained range", ">"),
    ("age in [1, 'x']", STATIC, "does not fit", "'x'"),
    ("vec == 1", STATIC, "vector field 'vec' cannot be used", "vec"),
    ('age["k"] == 1', STATIC, "only JSON and ARRAY fields can be indexed", "["),
    ("exists age", STATIC, "exists needs a JSON path", "age"),
    ("color + 1 > 2", STATIC, "operator '+' needs numbers", "color"),
    ("score & 1 == 1", SCHEMA, "operator '&' needs integers", "score"),
    ("tags == 1", SCHEMA, "ARRAY field cannot be compared", "tags"),
    ("age", STATIC, "expected a boolean expression", "age"),
    ("age > 99999999999999999999", STATIC, "outside the int64 range", "9999"),
    ("$meta['a'] == 1", STATIC, "enable_dynamic_field", "$meta"),
]


@pytest.mark.parametrize(("expr", "schema", "message", "at"), ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_filter_raises_with_caret(expr: str, schema: CollectionSchema, message: str, at: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(expr, schema)
    err = info.value
    assert message in str(err)
    assert err.expr == expr
    assert err.position is not None
    assert expr[err.position :].startswith(at)
    lines = str(err).splitlines()
    assert lines[-2].strip() == expr and lines[-1].index("^") - 2 == err.position


def test_filter_error_is_a_param_error_with_milvus_code() -> None:
    with pytest.raises(ParamError) as info:
        compile_filter("nope == 1", STATIC)
    assert info.value.code == 1100


def test_undeclared_name_is_a_dynamic_field_when_enabled() -> None:
    assert compile_filter("colour == 'red'", SCHEMA).fields == frozenset({"$meta"})
