"""Filters past their limits are refused with a clear `FilterError`; long lists and chains are set lookups.

Timings are printed with bounds a loaded machine keeps: the mechanism (no
row-by-row or term-by-term work) is what makes them fast.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pytest

from heron import FilterError
from heron._schema import CollectionSchema
from heron._types import DataType
from heron.data._column import Column, DictColumnSource
from heron.engine.filter import _limits, _parser, _plan, compile_filter, evaluate_reference
from heron.engine.filter._cache import ByteBoundedCache

N = 100_000


def _schema() -> CollectionSchema:
    s = CollectionSchema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("a", DataType.INT64, nullable=True)
    s.add_field("b", DataType.VARCHAR, max_length=20)
    s.add_field("f", DataType.DOUBLE)
    return s


@pytest.fixture(scope="module")
def source() -> DictColumnSource:
    a = np.arange(N, dtype=np.int64)
    valid = np.ones(N, dtype=bool)
    valid[::7] = False
    return DictColumnSource({
        "a": Column(DataType.INT64, a, valid),
        "b": Column(DataType.VARCHAR, pa.array([str(i) for i in range(N)])),
        "f": Column(DataType.DOUBLE, a.astype(np.float64) / 2),
    }, N)


def _timed(expr: str, source: DictColumnSource) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    mask = compile_filter(expr, _schema()).evaluate(source)
    return mask, time.perf_counter() - t0


def test_an_in_list_of_100k_terms_is_a_set_lookup(source):
    wanted = np.arange(0, 2 * N, 2)
    mask, took = _timed("a in [" + ",".join(map(str, wanted)) + "]", source)
    expect = np.isin(np.arange(N), wanted) & (np.arange(N) % 7 != 0)
    assert np.array_equal(mask, expect)
    smask, stook = _timed("b in [" + ",".join(f'"{i}"' for i in wanted) + "]", source)
    assert np.array_equal(smask, np.isin(np.arange(N), wanted))
    print(f"\n100,000-term in list over {N:,} rows: int field {took * 1e3:.0f} ms, "
          f"VARCHAR field {stook * 1e3:.0f} ms (parse + bind + evaluate; was 15.7 s)")
    assert took < 5 and stook < 5


def test_an_or_chain_of_10k_equalities_is_a_set_lookup(source):
    wanted = list(range(0, 20_000, 2))
    mask, took = _timed(" or ".join(f"a == {i}" for i in wanted), source)
    expect = np.isin(np.arange(N), wanted) & (np.arange(N) % 7 != 0)
    assert np.array_equal(mask, expect)
    plan = compile_filter(" or ".join(f"a == {i}" for i in wanted), _schema())
    assert type(plan.pred).__name__ == "InList"
    print(f"\n10,000-term or chain over {N:,} rows: {took * 1e3:.0f} ms (was 10 s)")
    assert took < 5


@pytest.mark.parametrize("template", [
    "{chain}",
    "({chain}) and id >= 0",
    "id >= 5 and {chain} or b == \"9\"",
    "not {chain}",
    "{chain} or f > 40",
    "{chain} and id < 30",
])
@pytest.mark.parametrize("field,fmt", [("a", "{}"), ("b", '"{}"'), ("f", "{}.5"), ("dyn", "{}")])
def test_long_chains_and_lists_select_what_the_grammar_alone_selects(template, field, fmt, monkeypatch):
    """The same text with and without the lifting of long runs, against the reference and De Morgan's form."""
    rows = []
    for i in range(60):
        row = {"id": i, "a": None if i % 5 == 0 else i, "b": str(i), "f": i + 0.5}
        row["$meta"] = {"dyn": i if i % 4 else str(i)} if i % 3 else {}
        rows.append(row)
    values = [fmt.format(i) for i in range(0, 40, 2)]
    chain = " or ".join(f"{field} == {v}" for v in values)
    listed = f"{field} in [{', '.join(values)}]"
    plain = "not (" + " and ".join(f"{field} != {v}" for v in values) + ")"
    schema, cols = _schema(), _columns(rows)
    texts = [template.format(chain=c) for c in (chain, listed)]

    def run() -> list[list[bool]]:
        out = []
        for t in texts:
            ref = evaluate_reference(t, schema, rows)
            assert list(compile_filter(t, schema).evaluate(cols)) == ref, t
            out.append(ref)
        return out

    lifted = run()
    monkeypatch.setattr(_limits, "LIFT_MIN", 10**9)
    _parser._CACHE.clear()
    _plan._CACHE.clear()
    assert run() == lifted
    _parser._CACHE.clear()
    _plan._CACHE.clear()
    if template.startswith("{chain}") and " and " not in template:
        assert evaluate_reference(template.format(chain=plain), schema, rows) == lifted[0] == lifted[1]


def _columns(rows: list[dict]) -> DictColumnSource:
    n = len(rows)
    a = np.array([r["a"] or 0 for r in rows], dtype=np.int64)
    meta = np.empty(n, dtype=object)
    meta[:] = [r["$meta"] for r in rows]
    return DictColumnSource({
        "id": Column(DataType.INT64, np.array([r["id"] for r in rows], dtype=np.int64)),
        "a": Column(DataType.INT64, a, np.array([r["a"] is not None for r in rows])),
        "b": Column(DataType.VARCHAR, pa.array([r["b"] for r in rows])),
        "f": Column(DataType.DOUBLE, np.array([r["f"] for r in rows])),
        "$meta": Column(DataType.JSON, meta),
    }, n)


def test_a_long_list_item_of_the_wrong_type_is_named_with_its_offset():
    expr = "a in [" + ", ".join(map(str, range(30))) + ', "x"]'
    with pytest.raises(FilterError) as e:
        compile_filter(expr, _schema())
    assert "'x'" in str(e.value) and e.value.position == expr.index('"x"')


def test_deep_nesting_is_refused_before_it_recurses():
    for expr in ["(" * 10_000 + "a == 1" + ")" * 10_000,
                 "(a == 2 or " * 5_000 + "a == 1" + ")" * 5_000,
                 "not " * 10_000 + "a == 1",
                 "a == " + "-" * 10_000 + "1",
                 "a == " + " + ".join(["1"] * 10_000)]:
        with pytest.raises(FilterError) as e:
            compile_filter(expr, _schema())
        msg = str(e.value)
        assert "HERON_FILTER_MAX_DEPTH" in msg and "100 levels" in msg
        assert len(msg) < 600  # the expression is shown cut short around the caret


def test_nesting_within_the_limit_evaluates(source):
    expr = "a == 0"
    for i in range(1, 45):
        expr = f"(a == {i} or {expr})"
    mask = compile_filter(expr, _schema()).evaluate(source)
    assert np.array_equal(np.flatnonzero(mask), [i for i in range(45) if i % 7])


def test_length_and_term_limits_name_the_variable_that_raises_them(monkeypatch):
    monkeypatch.setenv("HERON_FILTER_MAX_LENGTH", "1000")
    with pytest.raises(FilterError, match="HERON_FILTER_MAX_LENGTH") as e:
        compile_filter("a in [" + ",".join(map(str, range(400))) + "]", _schema())
    assert "1,000" in str(e.value)
    monkeypatch.delenv("HERON_FILTER_MAX_LENGTH")
    monkeypatch.setenv("HERON_FILTER_MAX_TERMS", "50")
    with pytest.raises(FilterError, match="HERON_FILTER_MAX_TERMS"):
        compile_filter("a in [" + ",".join(map(str, range(100, 200))) + "]", _schema())
    with pytest.raises(FilterError, match="HERON_FILTER_MAX_TERMS"):
        compile_filter(" or ".join(f"a == {i}" for i in range(60)), _schema())
    monkeypatch.setenv("HERON_FILTER_MAX_DEPTH", "300")
    monkeypatch.delenv("HERON_FILTER_MAX_TERMS")
    compile_filter("(" * 250 + "a == 1" + ")" * 250, _schema())


def test_the_caches_are_bounded_in_bytes_not_entries():
    c = ByteBoundedCache(1000)
    for i in range(10):
        c.put(i, str(i), cost=300)
    assert c.nbytes <= 1000 and len(c) == 3 and c.get(9) == "9" and c.get(0) is None
    c.put("huge", "x", cost=5000)  # costlier than the whole budget: not kept
    assert c.get("huge") is None and c.nbytes <= 1000
    # Distinct 1 MiB filters: what the parse and plan caches hold stays within their budgets.
    schema = _schema()
    for k in range(24):
        expr = f"a in [{k}," + ",".join(map(str, range(1_000_000, 1_000_000 + 125_000))) + "]"
        assert 1_000_000 < len(expr) <= 1 << 20
        compile_filter(expr, schema)
        assert _parser._CACHE.nbytes <= _parser._CACHE.budget
        assert _plan._CACHE.nbytes <= _plan._CACHE.budget
    print(f"\n24 distinct 1 MiB filters: parse cache holds {len(_parser._CACHE)} trees ({_parser._CACHE.nbytes >> 20} MiB"
          f" estimated), plan cache {len(_plan._CACHE)} plans ({_plan._CACHE.nbytes >> 20} MiB); budget "
          f"{_plan._CACHE.budget >> 20} MiB each")
