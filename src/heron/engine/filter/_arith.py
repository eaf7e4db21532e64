"""Vectorised arithmetic and bitwise operations on typed lanes.

Semantics match `_scalar`: int64 wrap-around, ``/`` truncating on integers,
``%`` with the dividend's sign, ``**`` in float64, null for division or
modulo by zero and for shift counts outside 0..63.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._extract import Lane, Vals
from ._vector import and_mask

_BIT = {"&": np.bitwise_and, "|": np.bitwise_or, "^": np.bitwise_xor}


def _i64(x: Any) -> Any:
    return np.int64(x) if np.isscalar(x) else np.asarray(x, dtype=np.int64)  # type: ignore[arg-type]


def _f64(x: Any) -> Any:
    return np.float64(x) if np.isscalar(x) else np.asarray(x, dtype=np.float64)  # type: ignore[arg-type]


def _as_float(v: Vals, n: int) -> Lane | None:
    """The numeric lanes of ``v`` merged into one float64 lane."""
    li, lf = v.get("i"), v.get("f")
    if li is None and lf is None:
        return None
    if lf is None:
        assert li is not None
        return Lane(_f64(li.data), li.mask)
    if li is None:
        return Lane(_f64(lf.data), lf.mask)
    assert li.mask is not None and lf.mask is not None
    data = np.where(li.mask, np.asarray(li.data, dtype=np.float64), lf.data)
    return Lane(data, li.mask | lf.mask)


def _nonzero_mask(b: Any, mask: np.ndarray | None, n: int) -> tuple[Any, np.ndarray | None]:
    """Divisor with zeros replaced by 1, and the mask with those rows removed."""
    if np.isscalar(b):
        if b == 0:
            return 1, np.zeros(n, dtype=bool)
        return b, mask
    zero = b == 0
    if not zero.any():
        return b, mask
    return np.where(zero, 1, b), and_mask(mask, ~zero)


def int_op(op: str, a: Any, b: Any, mask: np.ndarray | None, n: int) -> Lane:
    a, b = _i64(a), _i64(b)
    with np.errstate(all="ignore"):
        if op in ("+", "-", "*"):
            data = a + b if op == "+" else (a - b if op == "-" else a * b)
            return Lane(data, mask)
        if op in _BIT:
            return Lane(_BIT[op](a, b), mask)
        if op in ("<<", ">>"):
            ok = (b >= 0) & (b <= 63)
            bs = np.where(ok, b, 0)
            data = np.left_shift(a, bs) if op == "<<" else np.right_shift(a, bs)
            return Lane(data, and_mask(mask, np.broadcast_to(ok, (n,)).copy()) if not np.all(ok) else mask)
        b, mask = _nonzero_mask(b, mask, n)
        q = np.floor_divide(a, b)
        r = a - q * b
        fix = (r != 0) & ((a < 0) != (b < 0))
        q = q + fix
        if op == "/":
            return Lane(q, mask)
        return Lane(a - q * b, mask)


def float_op(op: str, a: Any, b: Any, mask: np.ndarray | None, n: int) -> Lane:
    with np.errstate(all="ignore"):
        if op in ("/", "%"):
            b, mask = _nonzero_mask(b, mask, n)
            data = a / b if op == "/" else np.fmod(a, b)
        elif op == "**":
            data = np.power(a, b)
        else:
            data = a + b if op == "+" else (a - b if op == "-" else a * b)
    return Lane(np.broadcast_to(data, (n,)) if np.isscalar(data) else data, mask)


def arith(op: str, left: Vals, right: Vals, n: int) -> Vals:
    """``left op right``: an int lane where both are integers (float for ``**``), float elsewhere."""
    out: Vals = {}
    li, ri = left.get("i"), right.get("i")
    int_mask: np.ndarray | None = np.zeros(n, dtype=bool)
    if li is not None and ri is not None and op != "**":
        int_mask = and_mask(li.mask, ri.mask)
        out["i"] = int_op(op, li.data, ri.data, int_mask, n)
    if op in _BIT or op in ("<<", ">>"):
        return out
    lf, rf = _as_float(left, n), _as_float(right, n)
    if lf is None or rf is None or ("f" not in left and "f" not in right and op != "**"):
        return out
    mask = and_mask(lf.mask, rf.mask)
    if int_mask is None:
        return out
    if int_mask.any():
        mask = ~int_mask if mask is None else mask & ~int_mask
    out["f"] = float_op(op, lf.data, rf.data, mask, n)
    return out


def unary(op: str, v: Vals, n: int) -> Vals:
    out: Vals = {}
    if "i" in v:
        li = v["i"]
        data = np.invert(_i64(li.data)) if op == "~" else np.negative(_i64(li.data))
        out["i"] = Lane(data, li.mask)
    if "f" in v and op == "-":
        out["f"] = Lane(np.negative(_f64(v["f"].data)), v["f"].mask)
    return out
