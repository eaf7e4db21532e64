"""Scalar indexes: every index type answers exactly as a scan does, and wrong types are refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_filter_language import ROWS, make_schema, source_from_rows
from test_filter_property import f32, iso_text, point_wkt, q, rows, small_int, text, wkt

from heron._errors import FilterError, ParamError
from heron._types import DataType
from heron.data._column import Column, DictColumnSource
from heron.engine.filter import ScalarIndex, build_scalar_index, compile_filter

SCHEMA = make_schema()
SCHEMA.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
SCHEMA.add_field("geo", DataType.GEOMETRY, nullable=True)
INDEXABLE = ["age", "score", "price", "name", "active", "flags", "tags", "nums", "ts", "geo"]
INDEX_TYPES = ["INVERTED", "STL_SORT", "BITMAP", "TRIE", "AUTOINDEX", "RTREE"]


def _indexes(index_type: str, source: DictColumnSource) -> dict[str, Any]:
    out = {}
    for name in INDEXABLE:
        try:
            out[name] = build_scalar_index(index_type, source.column(name))
        except ParamError:
            pass
    return out


num_lit = st.one_of(small_int, st.integers(-6, 6).map(lambda i: i + 0.5), st.sampled_from([2**53 + 1, 1e300]))
num_field = st.sampled_from(["age", "score", "price", "flags"])
CMP = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
leaf = st.one_of(
    st.tuples(num_field, CMP, num_lit.map(repr)).map(" ".join),
    st.tuples(
        num_lit.map(repr),
        st.sampled_from(["<", "<="]),
        num_field,
        st.sampled_from(["<", "<="]),
        num_lit.map(repr),
    ).map(" ".join),
    st.tuples(num_field, st.sampled_from(["in", "not in"]), st.lists(num_lit, max_size=4).map(repr)).map(
        " ".join
    ),
    st.tuples(st.just("name"), CMP, text.map(q)).map(" ".join),
    st.tuples(
        st.just("name in"), st.lists(text, max_size=3).map(lambda v: "[" + ", ".join(map(q, v)) + "]")
    ).map(" ".join),
    text.map(lambda s: f"name like {q(s + '%')}"),
    text.map(lambda s: f"name like {q(s)}"),
    st.sampled_from(["active", "active == false", "not active", "age is null", "name is not null"]),
    st.tuples(
        st.sampled_from(["array_contains_any", "array_contains_all"]), st.lists(small_int, max_size=3)
    ).map(lambda t: f"{t[0]}(nums, {t[1]!r})"),
    text.map(lambda s: f"array_contains(tags, {q(s)})"),
    st.tuples(st.sampled_from(["ts", "ts + INTERVAL 'PT1H'"]), CMP, iso_text).map(lambda t: f"{t[0]} {t[1]} ISO '{t[2]}'"),
    st.tuples(st.just("ts in"), st.lists(iso_text, max_size=3)).map(
        lambda t: f"{t[0]} [{', '.join(f'ISO {chr(39)}{x}{chr(39)}' for x in t[1])}]"),
    st.tuples(st.sampled_from(["ST_INTERSECTS", "ST_CONTAINS", "ST_WITHIN", "ST_EQUALS", "ST_TOUCHES"]), wkt).map(
        lambda t: f"{t[0]}(geo, '{t[1]}')"),
    point_wkt.map(lambda p: f"ST_DWITHIN(geo, '{p}', 150000)"),
)
expr_strategy = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        inner.map(lambda x: f"not ({x})"),
    ),
    max_leaves=3,
)


@pytest.mark.parametrize("index_type", INDEX_TYPES)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(expr=expr_strategy, data=rows())
def test_index_gives_same_rows_as_scan(index_type: str, expr: str, data: list[dict[str, Any]]) -> None:
    try:
        plan = compile_filter(expr, SCHEMA)
    except FilterError:
        assume(False)
        raise
    plain = source_from_rows(SCHEMA, data)
    indexed = source_from_rows(SCHEMA, data, _indexes(index_type, plain))
    assert plan.evaluate(indexed).tolist() == plan.evaluate(plain).tolist(), expr


def test_plan_uses_the_index_when_offered() -> None:
    src = source_from_rows(SCHEMA, ROWS)
    # an index built over other values than the column's shows which one answered
    other = Column(DataType.INT32, np.full(len(ROWS), 7, dtype=np.int32))
    spy = DictColumnSource(
        {"age": src.column("age")}, len(ROWS), {"age": build_scalar_index("STL_SORT", other)}
    )
    assert compile_filter("age == 7", SCHEMA).evaluate(spy).all()
    assert not compile_filter("age == 7", SCHEMA).evaluate(src).any()


@pytest.mark.parametrize(
    ("index_type", "column"),
    [
        ("TRIE", Column(DataType.INT64, np.arange(3))),
        ("STL_SORT", Column(DataType.BOOL, np.zeros(3, dtype=bool))),
        ("BITMAP", Column(DataType.DOUBLE, np.arange(3.0))),
        ("INVERTED", Column(DataType.JSON, np.array([{}, {}, None], dtype=object))),
        ("AUTOINDEX", Column(DataType.JSON, np.array([{}, {}, None], dtype=object))),
        ("HNSW", Column(DataType.INT64, np.arange(3))),
    ],
)
def test_index_type_that_does_not_fit_is_refused(index_type: str, column: Column) -> None:
    with pytest.raises(ParamError, match=index_type if index_type != "HNSW" else "unknown scalar index"):
        build_scalar_index(index_type, column)


def test_bitmap_refuses_high_cardinality() -> None:
    with pytest.raises(ParamError, match="distinct values"):
        build_scalar_index("BITMAP", Column(DataType.INT64, np.arange(10_000)))


@pytest.mark.parametrize("name", ["inverted", "Stl_Sort", "trie", "autoindex", "bitmap"])
def test_index_type_names_are_case_insensitive(name: str) -> None:
    idx = build_scalar_index(
        name, Column(DataType.VARCHAR, pa.array(["a", "b", None]), np.array([1, 1, 0], bool))
    )
    assert isinstance(idx, ScalarIndex)


def test_prefix_like_on_trie_handles_top_code_point() -> None:
    col = Column(DataType.VARCHAR, pa.array(["a\U0010ffff", "a\U0010ffffb", "b", "a"]))
    src = DictColumnSource({"name": col}, 4, {"name": build_scalar_index("TRIE", col)})
    got = compile_filter('name like "a\U0010ffff%"', SCHEMA).evaluate(src)
    assert got.tolist() == [True, True, False, False]


_ = f32
