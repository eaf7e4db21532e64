"""Scalar indexes over one segment's column, used by compiled filters.

* STL_SORT, INVERTED and TRIE keep each typed lane's values sorted with their
  row ids (postings grouped by value): ``==``, ``in`` and ranges are binary
  searches; TRIE (and any string index) answers prefix ``like``. INVERTED on
  an ARRAY field indexes the elements, for ``array_contains*``.
* BITMAP keeps one packed bitmap per distinct value (for low-cardinality
  fields; at most 4096 distinct values).

An index gives exactly the answer a scan gives, including for nulls, NaN
and mixed int/float constants; a lookup it cannot serve returns None and the
caller scans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..._types import DataType
from ...data._column import Column
from ...data._pa import objects, strings, to_numpy
from ._extract import Vals
from ._numeric import float_vs_int, int_vs_float
from ._vector import Tri, _classes, from_known

MAX_BITMAP_VALUES = 4096
INDEX_TYPES = ("INVERTED", "STL_SORT", "BITMAP", "TRIE", "AUTOINDEX", "RTREE")


def _column_vals(column: Column) -> Vals:
    from ._extract import Lane

    t = column.dtype
    if t is DataType.VARCHAR:
        return {"s": Lane(column.values, column.valid)}
    data = np.asarray(column.values)
    key = "b" if t is DataType.BOOL else ("i" if t.is_integer or t is DataType.TIMESTAMPTZ else "f")
    return {key: Lane(data.astype(np.float64) if key == "f" else data, column.valid)}


def _string_keys(data: Any) -> np.ndarray:
    if isinstance(data, pa.ChunkedArray):
        data = data.combine_chunks()
    return objects(data)


@dataclass(frozen=True)
class _Sorted:
    """Values of one lane in sorted order, and the row each came from."""

    keys: np.ndarray
    rows: np.ndarray

    @classmethod
    def build(cls, kind: str, data: Any, mask: np.ndarray | None) -> _Sorted:
        rows = np.arange(len(data)) if mask is None else np.flatnonzero(mask)
        if kind == "s":
            keys = _string_keys(data)[rows] if len(rows) != len(data) else _string_keys(data)
            order = to_numpy(pc.sort_indices(strings(keys)))
        else:
            keys = np.asarray(data)[rows]
            if kind == "i":
                keys = keys.astype(np.int64, copy=False)
            if kind == "f":
                ok = ~np.isnan(keys)
                keys, rows = keys[ok], rows[ok]
            order = np.argsort(keys, kind="stable")
        return cls(keys[order], rows[order])

    def span(self, op: str, c: Any) -> np.ndarray:
        """Row ids whose value satisfies ``value op c`` (``op`` not ``!=``)."""
        k = self.keys
        if op == "==":
            return self.rows[np.searchsorted(k, c, "left") : np.searchsorted(k, c, "right")]
        if op in ("<", "<="):
            return self.rows[: np.searchsorted(k, c, "left" if op == "<" else "right")]
        return self.rows[np.searchsorted(k, c, "right" if op == ">" else "left") :]

    def many(self, consts: list[Any]) -> np.ndarray:
        if not consts:
            return self.rows[:0]
        c = np.asarray(consts, dtype=object if self.keys.dtype == object else self.keys.dtype)
        lo, hi = np.searchsorted(self.keys, c, "left"), np.searchsorted(self.keys, c, "right")
        parts = [self.rows[a:b] for a, b in zip(lo, hi) if b > a]
        return np.concatenate(parts) if parts else self.rows[:0]

    def prefix(self, s: str) -> np.ndarray:
        lo = int(np.searchsorted(self.keys, s, "left"))
        upper = _successor(s)
        hi = len(self.keys) if upper is None else int(np.searchsorted(self.keys, upper, "left"))
        return self.rows[lo:hi]


def _successor(s: str) -> str | None:
    """The least string greater than every string starting with ``s`` (None: none exists)."""
    s = s.rstrip("\U0010ffff")
    if not s:
        return None
    return s[:-1] + chr(ord(s[-1]) + 1)


def _normalise(kind: str, op: str, c: Any) -> bool | tuple[str, Any] | None:
    """``(op, const)`` in the lane's own kind, a constant answer, or None if not comparable."""
    ctype = _classes((c,))
    if kind in ("i", "f") and not (ctype["i"] or ctype["f"]) or kind in ("s", "b") and not ctype[kind]:
        return None
    if kind == "i" and isinstance(c, float):
        return int_vs_float(op, c)
    if kind == "f":
        if isinstance(c, float) and math.isnan(c):
            return op == "!="
        return float_vs_int(op, c) if isinstance(c, int) else (op, float(c))
    return (op, c)


class ScalarIndex:
    """An index on one column of one segment; see the module docstring for what each type serves."""

    def __init__(self, index_type: str, n: int, valid: np.ndarray | None) -> None:
        self.index_type = index_type
        self.n = n
        self.valid = None if valid is None else np.asarray(valid, dtype=bool)

    def _mask(self, rows: np.ndarray) -> np.ndarray:
        t = np.zeros(self.n, dtype=bool)
        t[rows] = True
        return t

    def _known(self, t: np.ndarray) -> Tri:
        return from_known(t, self.valid)

    def _all(self, value: bool) -> Tri:
        return self._known(np.full(self.n, value, dtype=bool))

    def compare(self, op: str, c: Any) -> Tri | None:
        return None

    def isin(self, items: tuple[Any, ...]) -> Tri | None:
        return None

    def prefix(self, s: str) -> Tri | None:
        return None

    def contains(self, mode: str, items: tuple[Any, ...]) -> Tri | None:
        return None
