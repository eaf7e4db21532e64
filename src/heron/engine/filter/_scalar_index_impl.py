"""The concrete scalar index types and `build_scalar_index`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._errors import ParamError
from ..._types import DataType
from ...data._column import Column
from ._extract import list_view
from ._scalar_index import (
    INDEX_TYPES,
    MAX_BITMAP_VALUES,
    ScalarIndex,
    _column_vals,
    _normalise,
    _Sorted,
    _string_keys,
)
from ._vector import Tri, _classes, from_known


class SortedIndex(ScalarIndex):
    """STL_SORT / INVERTED / TRIE on a scalar column: sorted values with row ids."""

    def __init__(self, index_type: str, column: Column) -> None:
        super().__init__(index_type, len(column), column.valid)
        ((kind, lane),) = _column_vals(column).items()
        self.kind = kind
        self.sorted = _Sorted.build(kind, lane.data, lane.mask)

    def compare(self, op: str, c: Any) -> Tri | None:
        norm = _normalise(self.kind, op, c)
        if norm is None:
            return None
        if isinstance(norm, bool):
            return self._all(norm)
        op2, c2 = norm
        if op2 == "!=":
            eq = self._mask(self.sorted.span("==", c2))
            return self._known(~eq)
        return self._known(self._mask(self.sorted.span(op2, c2)))

    def isin(self, items: tuple[Any, ...]) -> Tri | None:
        consts = _classes(items)[self.kind]
        return self._known(self._mask(self.sorted.many(consts)))

    def prefix(self, s: str) -> Tri | None:
        if self.kind != "s":
            return None
        return self._known(self._mask(self.sorted.prefix(s)))


class BitmapIndex(ScalarIndex):
    """BITMAP: one packed bitmap per distinct value."""

    def __init__(self, column: Column) -> None:
        super().__init__("BITMAP", len(column), column.valid)
        ((kind, lane),) = _column_vals(column).items()
        self.kind = kind
        data = _string_keys(lane.data) if kind == "s" else np.asarray(lane.data)
        if kind == "i":
            data = data.astype(np.int64, copy=False)
        rows = np.arange(self.n) if lane.mask is None else np.flatnonzero(lane.mask)
        values = data[rows]
        uniq, inverse = np.unique(values, return_inverse=True)
        if len(uniq) > MAX_BITMAP_VALUES:
            raise ParamError(
                f"BITMAP index: the column has {len(uniq)} distinct values; BITMAP serves at most "
                f"{MAX_BITMAP_VALUES}; use INVERTED or STL_SORT"
            )
        self.values = uniq
        self.bitmaps = []
        for i in range(len(uniq)):
            bits = np.zeros(self.n, dtype=bool)
            bits[rows[inverse == i]] = True
            self.bitmaps.append(np.packbits(bits))

    def _union(self, which: np.ndarray) -> np.ndarray:
        acc = np.zeros((self.n + 7) // 8, dtype=np.uint8)
        for i in which:
            acc |= self.bitmaps[i]
        return np.unpackbits(acc, count=self.n).astype(bool)

    def _where(self, op: str, c: Any) -> np.ndarray:
        v = self.values
        ops = {"==": v == c, "!=": v != c, "<": v < c, "<=": v <= c, ">": v > c, ">=": v >= c}
        return np.flatnonzero(ops[op])

    def compare(self, op: str, c: Any) -> Tri | None:
        norm = _normalise(self.kind, op, c)
        if norm is None:
            return None
        if isinstance(norm, bool):
            return self._all(norm)
        op2, c2 = norm
        if self.kind == "b" and op2 not in ("==", "!="):
            return None
        return self._known(self._union(self._where(op2, c2)))

    def isin(self, items: tuple[Any, ...]) -> Tri | None:
        consts = _classes(items)[self.kind]
        which: Any = (
            np.flatnonzero(np.isin(self.values, np.asarray(consts, dtype=self.values.dtype)))
            if consts
            else []
        )
        return self._known(self._union(np.asarray(which, dtype=np.int64)))

    def prefix(self, s: str) -> Tri | None:
        if self.kind != "s":
            return None
        which = [i for i, v in enumerate(self.values) if v.startswith(s)]
        return self._known(self._union(np.asarray(which, dtype=np.int64)))


class ArrayIndex(ScalarIndex):
    """INVERTED on an ARRAY field: each element value with the row holding it."""

    def __init__(self, column: Column) -> None:
        values = np.asarray(column.values, dtype=object)
        lv = list_view(values, None)
        super().__init__("INVERTED", len(column), lv.is_list)
        rows = np.repeat(np.arange(self.n), lv.lengths)
        self.lanes = {}
        for k, lane in lv.elems.vals.items():
            srt = _Sorted.build(k, lane.data, lane.mask)
            self.lanes[k] = _Sorted(srt.keys, rows[srt.rows])

    def _hits(self, items: tuple[Any, ...]) -> np.ndarray:
        groups = _classes(items)
        parts = [s.many(groups[k]) for k, s in self.lanes.items() if groups[k]]
        return self._mask(np.concatenate(parts)) if parts else np.zeros(self.n, dtype=bool)

    def contains(self, mode: str, items: tuple[Any, ...]) -> Tri | None:
        if mode != "all":
            return from_known(self._hits(items), self.valid)
        t = np.ones(self.n, dtype=bool) if self.valid is None else self.valid.copy()
        for item in dict.fromkeys((type(i), i) for i in items):
            t &= self._hits((item[1],))
        return from_known(t, self.valid)


_SCALAR = frozenset(
    {
        DataType.BOOL,
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.FLOAT,
        DataType.DOUBLE,
        DataType.VARCHAR,
        DataType.TIMESTAMPTZ,
    }
)
_ALLOWED = {
    "STL_SORT": _SCALAR - {DataType.BOOL},
    "TRIE": frozenset({DataType.VARCHAR}),
    "INVERTED": _SCALAR | {DataType.ARRAY},
    "BITMAP": frozenset(
        {DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.VARCHAR}
    ),
}
_AUTO = {DataType.VARCHAR: "INVERTED", DataType.BOOL: "BITMAP", DataType.ARRAY: "INVERTED",
         DataType.GEOMETRY: "RTREE"}


def build_scalar_index(index_type: str, column: Column) -> ScalarIndex:
    """Build a scalar index of ``index_type`` (case-insensitive) over ``column``.

    Raises `ParamError` naming the type and the column type when they do not
    fit (e.g. TRIE on an INT64 column, anything on JSON).
    """
    kind = str(index_type).upper()
    if kind not in INDEX_TYPES:
        raise ParamError(f"unknown scalar index type {index_type!r}; expected one of {list(INDEX_TYPES)}")
    dtype = column.dtype
    if kind == "RTREE" or (kind == "AUTOINDEX" and dtype is DataType.GEOMETRY):
        from ._geo_eval import RTreeIndex

        if dtype is not DataType.GEOMETRY:
            raise ParamError(f"RTREE index cannot be built on a {dtype.name} column; it serves GEOMETRY")
        return RTreeIndex(column)  # type: ignore[return-value]
    if kind == "AUTOINDEX":
        if dtype not in _SCALAR | {DataType.ARRAY}:
            raise ParamError(f"AUTOINDEX: no scalar index serves a {dtype.name} column")
        kind = _AUTO.get(dtype, "STL_SORT")
    if dtype not in _ALLOWED[kind]:
        allowed = ", ".join(sorted(t.name for t in _ALLOWED[kind]))
        raise ParamError(f"{kind} index cannot be built on a {dtype.name} column; it serves {allowed}")
    if dtype is DataType.ARRAY:
        return ArrayIndex(column)
    if kind == "BITMAP":
        return BitmapIndex(column)
    return SortedIndex(kind, column)
