"""Vectorised operations on typed lanes, with three-valued results.

A predicate evaluates to a `Tri`: rows known true (``t``) and rows known
false (``f``); rows in neither are unknown (a null was involved) and are
not selected, and stay unknown under ``not``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...data._pa import string_scalar, strings, to_numpy
from ._extract import Vals
from ._numeric import OPS, cmp_int_float, float_vs_int, int_vs_float

_PC_OPS = {
    "==": "equal",
    "!=": "not_equal",
    "<": "less",
    "<=": "less_equal",
    ">": "greater",
    ">=": "greater_equal",
}
_NUM_PAIRS = (("i", "i"), ("i", "f"), ("f", "i"), ("f", "f"))
_PAIRS = (*_NUM_PAIRS, ("s", "s"), ("b", "b"))


@dataclass(frozen=True)
class Tri:
    """Known-true rows and known-false rows (``f`` None: every row not true is false)."""

    t: np.ndarray
    f: np.ndarray | None = None

    def false(self) -> np.ndarray:
        return ~self.t if self.f is None else self.f


def tri_and(a: Tri, b: Tri) -> Tri:
    if a.f is None and b.f is None:
        return Tri(a.t & b.t)
    return Tri(a.t & b.t, a.false() | b.false())


def tri_or(a: Tri, b: Tri) -> Tri:
    if a.f is None and b.f is None:
        return Tri(a.t | b.t)
    return Tri(a.t | b.t, a.false() & b.false())


def tri_not(a: Tri) -> Tri:
    return Tri(~a.t) if a.f is None else Tri(a.f, a.t)


def from_known(t: np.ndarray, known: np.ndarray | None) -> Tri:
    """A `Tri` from true rows and the rows where the answer is known (None: all)."""
    if known is None:
        return Tri(t)
    return Tri(t & known, known & ~t)


def and_mask(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    return a if b is None else a & b


def or_mask(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None or b is None:
        return None
    return a | b


def to_bool(arr: Any) -> np.ndarray:
    """A pyarrow boolean result as a numpy bool array, null read as False."""
    if isinstance(arr, (pa.Array, pa.ChunkedArray)):
        return np.asarray(to_numpy(arr, fill=False), dtype=bool)
    return np.asarray(arr, dtype=bool)


def full(n: int, value: bool) -> np.ndarray:
    return np.full(n, value, dtype=bool)


def _is_scalar(x: Any) -> bool:
    return not isinstance(x, (np.ndarray, pa.Array, pa.ChunkedArray))


def cmp_num(op: str, lk: str, a: Any, rk: str, b: Any, n: int) -> np.ndarray:
    """``a op b`` where each side is an int ("i") or float ("f") array or scalar; exact."""
    if _is_scalar(a):
        from ._binder import FLIP

        return cmp_num(FLIP[op], rk, b, lk, a, n)
    if lk == rk:
        if lk == "f" and _is_scalar(b):
            b = np.float64(b)
        return np.asarray(OPS[op](a, b))
    if _is_scalar(b):
        norm = int_vs_float(op, float(b)) if lk == "i" else float_vs_int(op, int(b))
        if isinstance(norm, bool):
            return full(n, norm)
        op2, c = norm
        return np.asarray(OPS[op2](a, np.float64(c) if lk == "f" else c))
    if lk == "i":
        return cmp_int_float(op, a, b)
    from ._binder import FLIP

    return cmp_int_float(FLIP[op], b, a)


def cmp_lane(op: str, lk: str, a: Any, rk: str, b: Any, n: int) -> np.ndarray:
    if lk == "s":
        if _is_scalar(a):
            from ._binder import FLIP

            a, b, op = b, a, FLIP[op]
        if isinstance(b, str):
            b = string_scalar(b)
        return to_bool(getattr(pc, _PC_OPS[op])(a, b))
    if lk == "b":
        return np.asarray(OPS[op](a, b)) if not _is_scalar(a) else np.asarray(OPS[op](b, a))
    return cmp_num(op, lk, a, rk, b, n)


def compare(op: str, left: Vals, right: Vals, n: int) -> Tri:
    """``left op right`` per row; unknown where either side is null or the types differ."""
    pairs = [
        (lk, rk) for lk, rk in _PAIRS if lk in left and rk in right and (lk != "b" or op in ("==", "!="))
    ]
    if not pairs:
        return Tri(full(n, False), full(n, False))
    if len(pairs) == 1:
        lk, rk = pairs[0]
        res = cmp_lane(op, lk, left[lk].data, rk, right[rk].data, n)
        return from_known(res, and_mask(left[lk].mask, right[rk].mask))
    t = full(n, False)
    known = full(n, False)
    for lk, rk in pairs:
        res = cmp_lane(op, lk, left[lk].data, rk, right[rk].data, n)
        m = and_mask(left[lk].mask, right[rk].mask)
        if m is None:
            t |= res
            known[:] = True
        else:
            t |= res & m
            known |= m
    return Tri(t, known & ~t)


def _classes(items: tuple[Any, ...]) -> dict[str, list[Any]]:
    """The constants of a list grouped by the lane they can match (remembered for the last few lists).

    A plan's lists are tuples that live as long as the plan, and one
    evaluation asks for the same list once per segment and lane.
    """
    key = id(items)
    hit = _CLASSES.get(key)
    if hit is not None and hit[0] is items:
        return hit[1]
    out = _classify(items)
    if len(_CLASSES) >= 16:
        _CLASSES.clear()
    _CLASSES[key] = (items, out)
    return out


_CLASSES: dict[int, tuple[tuple[Any, ...], dict[str, list[Any]]]] = {}


def _classify(items: tuple[Any, ...]) -> dict[str, list[Any]]:
    from ._scalar import is_bool, is_float, is_int, is_int64

    types = set(map(type, items))
    if types == {str}:
        return {"i": [], "f": [], "s": list(items), "b": []}
    if types == {int} and len(items) > 64:
        try:
            ints = np.asarray(items, dtype=np.int64)
        except OverflowError:
            pass
        else:
            floats = ints.astype(np.float64)
            with np.errstate(invalid="ignore"):
                exact = (floats < 2.0**63) & (floats.astype(np.int64) == ints)
            return {"i": list(items), "f": floats[exact].tolist(), "s": [], "b": []}
    out: dict[str, list[Any]] = {"i": [], "f": [], "s": [], "b": []}
    for v in items:
        if is_bool(v):
            out["b"].append(bool(v))
        elif is_int(v):
            out["i"].append(int(v))
            if float(v) == v and int(float(v)) == v:
                out["f"].append(float(v))
        elif is_float(v):
            out["f"].append(float(v))
            if float(v).is_integer() and is_int64(int(v)):
                out["i"].append(int(v))
        else:
            out["s"].append(v)
    return out


def lane_classes(items: tuple[Any, ...]) -> set[str]:
    """Lanes that are comparable with at least one item (all scalar lanes for an empty list)."""
    if not items:
        return {"i", "f", "s", "b"}
    c = _classes(items)
    kinds = {k for k, v in c.items() if v}
    if "i" in kinds or "f" in kinds:
        kinds |= {"i", "f"}
    return kinds


def isin_lane(k: str, data: Any, consts: list[Any]) -> np.ndarray:
    if k == "s":
        return to_bool(pc.is_in(data, value_set=strings(consts)))
    if not consts:
        return full(len(data), False)
    if k == "i":
        info = np.iinfo(data.dtype)
        c = np.asarray(consts, dtype=np.int64)
        if info.bits < 64:
            c = c[(c >= info.min) & (c <= info.max)]
        if not c.size:
            return full(len(data), False)
        return np.isin(data, c.astype(data.dtype, copy=False))
    return np.isin(data, np.asarray(consts, dtype=data.dtype))


def isin(vals: Vals, items: tuple[Any, ...], n: int) -> Tri:
    """``value in items``: known for scalar values of a type some item has."""
    groups = _classes(items)
    kinds = lane_classes(items)  # the same groups, remembered
    t = full(n, False)
    known: np.ndarray | None = full(n, False)
    for k, lane in vals.items():
        if k not in kinds:
            continue
        hit = isin_lane(k, lane.data, groups[k])
        if lane.mask is None:
            t |= hit
            known = None
        else:
            t |= hit & lane.mask
            if known is not None:
                known |= lane.mask
    return from_known(t, known)
