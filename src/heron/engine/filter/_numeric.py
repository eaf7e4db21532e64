"""Exact comparison of integers with floats.

Converting an int64 to float64 can round, so ``x < 2.5`` on an integer
column and ``x == 9007199254740993`` on a float column are rewritten into
comparisons that are exact for every value: a constant of the other kind
becomes a bound of the column's own kind, or a constant answer.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def int_vs_float(op: str, c: float) -> bool | tuple[str, int]:
    """``x op c`` for every integer ``x``, as ``(op', int)`` or a constant answer."""
    if math.isnan(c):
        return op == "!="
    if math.isinf(c):
        below = c > 0  # every integer is below +inf
        return {"==": False, "!=": True, "<": below, "<=": below, ">": not below, ">=": not below}[op]
    if c.is_integer():
        return (op, int(c))
    fl = math.floor(c)
    if op in ("==", "!="):
        return op == "!="
    if op in ("<", "<="):
        return ("<=", fl)
    return (">=", fl + 1)


def float_vs_int(op: str, c: int) -> bool | tuple[str, float]:
    """``x op c`` for every float ``x`` (NaN included), as ``(op', float)`` or a constant answer."""
    fc = float(c)
    if math.isinf(fc) or int(fc) == c:
        return (op, fc)
    if op in ("==", "!="):
        return op == "!="
    if fc > c:
        return {"<": ("<", fc), "<=": ("<", fc), ">": (">=", fc), ">=": (">=", fc)}[op]
    return {"<": ("<=", fc), "<=": ("<=", fc), ">": (">", fc), ">=": (">", fc)}[op]


def cmp_int_float(op: str, xi: np.ndarray, yf: np.ndarray) -> np.ndarray:
    """Elementwise ``xi op yf`` for an int64 array and a float64 array, exactly."""
    xi = np.asarray(xi, dtype=np.int64)
    fx = xi.astype(np.float64)
    res = np.asarray(OPS[op](fx, yf))
    tie = np.flatnonzero(fx == yf)  # only here can rounding hide the true order
    if len(tie):
        yv = yf[tie]
        big = yv >= 2.0**63
        yi = np.where(big, 0.0, yv).astype(np.int64)
        r = np.asarray(OPS[op](xi[tie], yi))
        r[big] = OPS[op](0, 1)
        res[tie] = r
    return res
