"""Evaluation of a bound filter over a `ColumnSource`, column at a time.

Every operation works on whole columns (numpy, pyarrow.compute); JSON and
ARRAY columns go through the cached typed views of `_extract`. Where the
source offers one of our scalar indexes on a field, ``==``, ``in``, ranges,
prefix ``like`` and array containment on that field use it; the answer is
the same either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..._types import NUMPY_DTYPES, DataType
from ...data._column import Column, ColumnSource
from ...data._pa import from_numpy, string_scalar
from . import _bound as B
from . import _like
from ._arith import arith, unary
from ._extract import Lane, ListView, Typed, Vals, json_view, list_view
from ._geo_eval import eval_geo
from ._scalar_index import ScalarIndex
from ._text_match_eval import evaluate_match
from ._vector import (
    Tri,
    compare,
    from_known,
    full,
    isin,
    isin_lane,
    lane_classes,
    to_bool,
    tri_and,
    tri_not,
    tri_or,
)


def _null_column(dtype: DataType, n: int, element_type: DataType | None) -> Column:
    if dtype in NUMPY_DTYPES:
        return Column(dtype, np.zeros(n, dtype=NUMPY_DTYPES[dtype]), np.zeros(n, dtype=bool))
    if dtype is DataType.VARCHAR:
        return Column(dtype, pa.nulls(n, pa.string()), np.zeros(n, dtype=bool))
    return Column(dtype, np.full(n, None, dtype=object), None, element_type)


class Evaluator:
    """Evaluates predicates of one bound filter over one source."""

    def __init__(self, source: ColumnSource) -> None:
        self.source = source
        self.n = source.num_rows
        self._cols: dict[str, Column] = {}

    # -- columns ---------------------------------------------------------------------
    def column(self, name: str, dtype: DataType, element_type: DataType | None = None) -> Column:
        col = self._cols.get(name)
        if col is None:
            try:
                col = self.source.column(name)
            except KeyError:  # e.g. a segment written before the field existed
                col = _null_column(dtype, self.n, element_type)
            self._cols[name] = col
        return col

    def index(self, name: str) -> ScalarIndex | None:
        idx = self.source.scalar_index(name)
        return idx if isinstance(idx, ScalarIndex) else None

    def typed(self, v: B.JsonPath) -> Typed:
        col = self.column(v.field, DataType.JSON)
        return json_view(np.asarray(col.values, dtype=object), v.path)

    def lists(self, v: B.ArrayField | B.JsonPath) -> ListView:
        if isinstance(v, B.ArrayField):
            col = self.column(v.name, DataType.ARRAY, v.element_type)
            return list_view(np.asarray(col.values, dtype=object), None)
        col = self.column(v.field, DataType.JSON)
        return list_view(np.asarray(col.values, dtype=object), v.path)

    # -- values --------------------------------------------------------------------
    def vals(self, v: B.Value) -> Vals:
        if isinstance(v, B.Const):
            key = {"bool": "b", "int": "i", "float": "f", "str": "s"}[v.ty]
            return {key: Lane(v.value, None)}
        if isinstance(v, B.Field):
            return self._field(v)
        if isinstance(v, B.JsonPath):
            return self.typed(v).vals
        if isinstance(v, B.ArrayElem):
            return self._elem(v)
        if isinstance(v, B.ArrayLength):
            lv = self.lists(v.target)
            return {"i": Lane(lv.lengths, None if lv.is_list.all() else lv.is_list)}
        if isinstance(v, B.Arith):
            return arith(v.op, self.vals(v.left), self.vals(v.right), self.n)
        if isinstance(v, B.UnaryOp):
            return unary(v.op, self.vals(v.operand), self.n)
        raise TypeError(f"not a value: {v!r}")

    def _field(self, v: B.Field) -> Vals:
        col = self.column(v.name, v.dtype)
        ty = v.ty
        if ty == "str":
            return {"s": Lane(col.values, col.valid)}
        data = np.asarray(col.values)
        if ty == "float":
            data = data.astype(np.float64, copy=False)
        return {{"int": "i", "float": "f", "bool": "b"}[ty]: Lane(data, col.valid)}

    def _elem(self, v: B.ArrayElem) -> Vals:
        lv = self.lists(B.ArrayField(v.name, v.element_type))
        ok = lv.is_list & (lv.lengths > v.index)
        pos = np.where(ok, lv.offsets[:-1] + v.index, 0)
        out: Vals = {}
        for k, lane in lv.elems.vals.items():
            m = ok if lane.mask is None else ok & lane.mask[pos]
            data = lane.data.take(from_numpy(pos, pa.int64())) if k == "s" else lane.data[pos]
            out[k] = Lane(data, m)
        return out

    # -- predicates ----------------------------------------------------------------
    def pred(self, p: B.Pred) -> Tri:
        if isinstance(p, B.And):
            return self._and(p)
        if isinstance(p, B.Or):
            out = self.pred(p.items[0])
            for item in p.items[1:]:
                out = tri_or(out, self.pred(item))
            return out
        if isinstance(p, B.Not):
            return tri_not(self.pred(p.item))
        if isinstance(p, B.Cmp):
            return self._cmp(p)
        if isinstance(p, B.InList):
            return self._in(p)
        if isinstance(p, B.Like):
            return self._like(p)
        if isinstance(p, B.IsNull):
            null = self._null(p.value)
            return Tri(~null if p.negated else null)
        if isinstance(p, B.Exists):
            return Tri(self.typed(p.value).present.copy())
        if isinstance(p, B.Contains):
            return self._contains(p)
        if isinstance(p, B.TextMatch):
            return evaluate_match(self, p)
        if isinstance(p, B.Geo):
            return eval_geo(self, p)
        if isinstance(p, B.Truth):
            lane = self.vals(p.value).get("b")
            if lane is None:
                return Tri(full(self.n, False), full(self.n, False))
            return from_known(np.array(lane.data, dtype=bool), lane.mask)
        if isinstance(p, B.ConstPred):
            return Tri(full(self.n, p.value))
        if isinstance(p, B.Sample):
            return Tri(np.random.default_rng().random(self.n) < p.p)
        raise TypeError(f"not a predicate: {p!r}")

    def _and(self, p: B.And) -> Tri:
        out = self.pred(p.items[0])
        for item in p.items[1:]:
            if not out.t.any() and out.f is None:
                return out
            out = tri_and(out, self.pred(item))
        return out

    def _cmp(self, p: B.Cmp) -> Tri:
        if isinstance(p.left, B.Field) and isinstance(p.right, B.Const):
            idx = self.index(p.left.name)
            if idx is not None:
                res = idx.compare(p.op, p.right.value)
                if res is not None:
                    return res
        return compare(p.op, self.vals(p.left), self.vals(p.right), self.n)

    def _in(self, p: B.InList) -> Tri:
        if isinstance(p.value, B.Field):
            idx = self.index(p.value.name)
            if idx is not None:
                res = idx.isin(p.items)
                if res is not None:
                    return res
        return isin(self.vals(p.value), p.items, self.n)

    def _like(self, p: B.Like) -> Tri:
        kind, arg = _like.plan(p.pattern)
        if isinstance(p.value, B.Field):
            idx = self.index(p.value.name)
            if idx is not None and kind in ("eq", "prefix"):
                res = idx.compare("==", arg) if kind == "eq" else idx.prefix(arg)
                if res is not None:
                    return res
        lane = self.vals(p.value).get("s")
        if lane is None:
            return Tri(full(self.n, False), full(self.n, False))
        return from_known(like_strings(lane.data, kind, arg), lane.mask)

    def _null(self, v: B.Value) -> np.ndarray:
        if isinstance(v, B.Field):
            col = self.column(v.name, v.dtype)
            return full(self.n, False) if col.valid is None else ~np.asarray(col.valid, dtype=bool)
        if isinstance(v, B.JsonPath):
            return self.typed(v).null.copy()
        if isinstance(v, B.ArrayField):
            return ~self.lists(v).is_list
        known = None if not (vals := self.vals(v)) else full(self.n, False)
        for lane in vals.values():
            if lane.mask is None:
                return full(self.n, False)
            assert known is not None
            known |= lane.mask
        return full(self.n, True) if known is None else ~known

    def _contains(self, p: B.Contains) -> Tri:
        if isinstance(p.target, B.ArrayField):
            idx = self.index(p.target.name)
            if idx is not None:
                res = idx.contains(p.mode, p.items)
                if res is not None:
                    return res
        lv = self.lists(p.target)
        return contains(lv, p.mode, p.items, self.n)


def like_strings(data: Any, kind: str, arg: str) -> np.ndarray:
    """Rows of an Arrow string array matching a classified ``like`` pattern (null → False)."""
    if kind == "eq":
        res = pc.equal(data, string_scalar(arg))
    elif kind == "prefix":
        res = pc.starts_with(data, arg) if arg else pc.is_valid(data)
    elif kind == "suffix":
        res = pc.ends_with(data, arg)
    elif kind == "infix":
        res = pc.match_substring(data, arg)
    else:
        res = pc.match_substring_regex(data, arg)
    return to_bool(res)


def _elem_hits(elems: Typed, items: tuple[Any, ...]) -> np.ndarray:
    """Elements equal to one of ``items`` (numbers by value, bools and strings by type)."""
    from ._vector import _classes

    groups = _classes(items)
    kinds = lane_classes(items) if items else set()
    hit = full(len(elems.raw), False)
    for k, lane in elems.vals.items():
        if k in kinds and groups[k]:
            h = isin_lane(k, lane.data, groups[k])
            hit |= h if lane.mask is None else h & lane.mask
    return hit


def contains(lv: ListView, mode: str, items: tuple[Any, ...], n: int) -> Tri:
    """``array_contains`` family over flattened lists; unknown where the row holds no list."""
    rows = np.repeat(np.arange(n), lv.lengths)
    if mode == "all":
        t = lv.is_list.copy()
        for item in dict.fromkeys((type(i), i) for i in items):
            row_hit = full(n, False)
            row_hit[rows[_elem_hits(lv.elems, (item[1],))]] = True
            t &= row_hit
    else:
        t = full(n, False)
        t[rows[_elem_hits(lv.elems, items)]] = True
    return from_known(t, None if lv.is_list.all() else lv.is_list)
