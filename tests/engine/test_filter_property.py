"""Differential tests: the compiled filter agrees with the reference evaluator on random data.

Expressions are generated from the schema's types (so they bind), over rows
with nulls, NaN, huge integers, nested JSON, dynamic fields and arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_filter_language import make_schema, source_from_rows

from heron._errors import FilterError
from heron._types import DataType
from heron.engine.filter import compile_filter, evaluate_reference

SCHEMA = make_schema()
SCHEMA.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
SCHEMA.add_field("geo", DataType.GEOMETRY, nullable=True)

# -- data -----------------------------------------------------------------------------
small_int = st.integers(-6, 6)
big_int = st.sampled_from([2**53, 2**53 + 1, -(2**53) - 1, 2**62, -(2**63), 2**63 - 1])
any_int = st.one_of(small_int, small_int, big_int)
special = st.sampled_from([0.0, -0.0, 0.5, -2.5, 1e300, float("inf"), float("-inf"), float("nan"), 2.0**53])
any_float = st.one_of(
    st.integers(-6, 6).map(lambda i: i / 2),
    st.floats(-30, 30, allow_nan=False).map(lambda x: round(x, 1)),
    special,
)


def _to_f32(x: float) -> float:
    with np.errstate(over="ignore"):
        return float(np.float32(x))


f32 = any_float.map(_to_f32)
text = st.text(alphabet="ab%_\\c", max_size=4)
json_leaf = st.one_of(st.none(), st.booleans(), small_int, big_int, any_float, text)
json_value = st.one_of(json_leaf, st.lists(json_leaf, max_size=3))
json_doc = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "a": json_value,
            "b": st.one_of(json_leaf, st.fixed_dictionaries({}, optional={"c": json_leaf})),
            "tags": st.one_of(st.lists(st.one_of(text, small_int), max_size=3), json_leaf),
        },
    ),
)
dyn = st.fixed_dictionaries({}, optional={"color": json_leaf, "size": json_leaf})

# TIMESTAMPTZ: a few instants, each written in several zones, so equal instants meet in different text
_WALL = ["2025-01-01T00:00:00", "2025-01-01T08:00:00", "2025-01-01T09:30:00", "2024-12-31T23:59:59.5",
         "2025-03-30T01:00:00"]
_OFFSETS = ["Z", "+08:00", "-05:00", "+05:30", "+00:00"]
iso_text = st.tuples(st.sampled_from(_WALL), st.sampled_from(_OFFSETS)).map(lambda t: t[0] + t[1])
# GEOMETRY: points, segments and boxes on a small grid (degrees), so relations hold and fail often
coord = st.integers(0, 3)
point_wkt = st.tuples(coord, coord).map(lambda p: f"POINT ({p[0]} {p[1]})")
line_wkt = st.tuples(coord, coord, coord, coord).filter(lambda t: t[:2] != t[2:]).map(
    lambda t: f"LINESTRING ({t[0]} {t[1]}, {t[2]} {t[3]})")
box_wkt = st.tuples(coord, coord, st.integers(1, 2), st.integers(1, 2)).map(
    lambda t: "POLYGON (({0} {1}, {2} {1}, {2} {3}, {0} {3}, {0} {1}))".format(t[0], t[1], t[0] + t[2], t[1] + t[3]))
wkt = st.one_of(point_wkt, line_wkt, box_wkt)


@st.composite
def rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        out.append(
            {
                "id": i,
                "age": draw(st.one_of(st.none(), small_int)),
                "score": draw(any_float),
                "price": draw(st.one_of(st.none(), f32)),
                "name": draw(st.one_of(st.none(), text)),
                "active": draw(st.booleans()),
                "flags": draw(any_int),
                "meta": draw(json_doc),
                "tags": draw(st.one_of(st.none(), st.lists(text, max_size=3))),
                "nums": draw(st.one_of(st.none(), st.lists(small_int, max_size=4))),
                "$meta": draw(dyn),
                "ts": draw(st.one_of(st.none(), iso_text)),
                "geo": draw(st.one_of(st.none(), wkt)),
            }
        )
    return out


# -- expressions ------------------------------------------------------------------------
def q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lit(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return q(v)
    return repr(v)


int_lit = st.one_of(small_int, st.sampled_from([2**53, 2**53 + 1, 2**62])).map(str)
float_lit = st.one_of(
    st.integers(-6, 6).map(lambda i: repr(i + 0.5)),
    st.floats(-30, 30, allow_nan=False).map(lambda x: repr(round(x, 1))),
)
num_lit = st.one_of(int_lit, float_lit)
json_path = st.sampled_from(
    ['meta["a"]', 'meta["b"]["c"]', 'meta["tags"][0]', "color", "size", '$meta["size"]']
)
int_atom = st.one_of(st.sampled_from(["age", "flags", "nums[0]", "nums[2]", "array_length(nums)"]), int_lit)
float_atom = st.one_of(st.sampled_from(["score", "price"]), float_lit)
str_atom = st.sampled_from(["name", "tags[0]", "tags[1]"])
ARITH = ["+", "-", "*", "/", "%", "**"]
BITS = ["&", "|", "^", "<<", ">>"]


def num_expr() -> st.SearchStrategy[str]:
    base = st.one_of(int_atom, float_atom, json_path)
    return st.recursive(
        base,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(ARITH), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(int_atom, st.sampled_from(BITS), st.one_of(int_atom, st.integers(0, 70).map(str))).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda x: f"-{x}"),
            int_atom.map(lambda x: f"~{x}"),
        ),
        max_leaves=4,
    )


CMP = ["==", "!=", "<", "<=", ">", ">="]
pattern = st.text(alphabet="ab%_\\c", max_size=4)
scalar_lit = st.one_of(small_int, any_float.filter(lambda x: x == x and abs(x) < 1e308), text, st.booleans())


def leaf_pred() -> st.SearchStrategy[str]:
    num = num_expr()
    op = st.sampled_from(CMP)
    return st.one_of(
        st.tuples(num, op, st.one_of(num_lit, num)).map(" ".join),
        st.tuples(st.one_of(str_atom, json_path), op, st.one_of(text.map(q), str_atom)).map(" ".join),
        st.tuples(
            st.sampled_from(["active", 'meta["a"]', "color"]),
            st.sampled_from(["==", "!="]),
            st.sampled_from(["true", "false", "active"]),
        ).map(" ".join),
        st.tuples(json_path, op, scalar_lit.map(lit)).map(" ".join),
        st.tuples(num_lit, st.sampled_from(["<", "<="]), num, st.sampled_from(["<", "<="]), num_lit).map(
            " ".join
        ),
        st.tuples(num_lit, st.sampled_from([">", ">="]), num, st.sampled_from([">", ">="]), num_lit).map(
            " ".join
        ),
        st.tuples(
            st.sampled_from(["age", "flags", "score", "nums[1]"]),
            st.sampled_from(["in", "not in"]),
            st.lists(st.one_of(small_int, float_lit.map(float)), max_size=4).map(lambda v: repr(v)),
        ).map(" ".join),
        st.tuples(
            st.sampled_from(["name", "tags[0]"]),
            st.sampled_from(["in", "not in"]),
            st.lists(text, max_size=3).map(lambda v: "[" + ", ".join(map(q, v)) + "]"),
        ).map(" ".join),
        st.tuples(
            json_path,
            st.sampled_from(["in", "not in"]),
            st.lists(scalar_lit, max_size=3).map(lambda v: "[" + ", ".join(map(lit, v)) + "]"),
        ).map(" ".join),
        st.tuples(st.one_of(str_atom, json_path), pattern.map(q)).map(lambda t: f"{t[0]} like {t[1]}"),
        st.tuples(
            st.sampled_from(["age", "price", "name", "meta", "tags", "nums[1]", "(age + 1)"]) | json_path,
            st.sampled_from(["is null", "is not null"]),
        ).map(" ".join),
        json_path.map(lambda p: f"exists {p}"),
        st.tuples(
            st.sampled_from(["array_contains", "json_contains"]),
            st.sampled_from(["tags", 'meta["tags"]']),
            text.map(q),
        ).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(
            st.sampled_from(["array_contains_all", "array_contains_any", "json_contains_any"]),
            st.lists(small_int, max_size=3),
        ).map(lambda t: f"{t[0]}(nums, {t[1]!r})"),
        st.tuples(
            st.sampled_from(["json_contains_all", "json_contains_any"]),
            st.lists(st.one_of(text, small_int), max_size=3),
        ).map(lambda t: f'{t[0]}(meta["tags"], [{", ".join(map(lit, t[1]))}])'),
        st.sampled_from(["active", "not active", "true", "false", 'meta["a"]']),
        st.tuples(st.sampled_from(["ts", "ts + INTERVAL 'PT1H'", "ts - INTERVAL 'P1DT30M'"]), op,
                  iso_text.map(lambda t: f"ISO '{t}'")).map(" ".join),
        st.tuples(iso_text, op, st.sampled_from(["ts", "ts - INTERVAL 'PT30M'"])).map(
            lambda t: f"ISO '{t[0]}' {t[1]} {t[2]}"),
        st.tuples(iso_text, st.sampled_from(["<", "<="]), iso_text).map(
            lambda t: f"ISO '{t[0]}' {t[1]} ts {t[1]} ISO '{t[2]}'"),
        st.tuples(st.sampled_from(["ST_EQUALS", "ST_INTERSECTS", "ST_CONTAINS", "ST_WITHIN", "ST_TOUCHES",
                                   "ST_OVERLAPS", "ST_CROSSES", "st_within"]), wkt).map(
            lambda t: f"{t[0]}(geo, '{t[1]}')"),
        st.tuples(point_wkt, st.sampled_from([0, 50_000, 150_000, 250_000, 400_000])).map(
            lambda t: f"ST_DWITHIN(geo, '{t[0]}', {t[1]})"),
        st.sampled_from(["ts is null", "geo is not null"]),
    )


predicate = st.recursive(
    leaf_pred(),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or ", " && ", " || "]), inner).map(
            lambda t: f"({t[0]}{t[1]}{t[2]})"
        ),
        inner.map(lambda x: f"not ({x})"),
    ),
    max_leaves=4,
)


def _check(expr: str, data: list[dict[str, Any]], indexes: dict[str, Any] | None = None) -> None:
    try:
        plan = compile_filter(expr, SCHEMA)
    except FilterError:
        assume(False)
        raise
    got = plan.evaluate(source_from_rows(SCHEMA, data, indexes)).tolist()
    want = evaluate_reference(expr, SCHEMA, data)
    assert got == want, expr


@settings(
    max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(expr=predicate, data=rows())
def test_compiled_filter_matches_reference(expr: str, data: list[dict[str, Any]]) -> None:
    _check(expr, data)
