"""Arithmetic on single values with the semantics the vectorised compiler has.

Integers are 64-bit and wrap on overflow (as numpy's int64 does); ``/`` on
two integers truncates toward zero and ``%`` takes the sign of the dividend
(as in C and Milvus); ``**`` always yields a float; division or modulo by
zero and shifts outside 0..63 yield null (``None``). Mixed int/float
operations convert the int to float first. Used for constant folding and by
the reference evaluator.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def is_int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, np.integer) and not isinstance(v, np.bool_))


def is_float(v: Any) -> bool:
    return type(v) is float or isinstance(v, np.floating)


def is_number(v: Any) -> bool:
    return is_int(v) or is_float(v)


def is_bool(v: Any) -> bool:
    return type(v) is bool or isinstance(v, np.bool_)


def is_int64(v: Any) -> bool:
    return is_int(v) and INT64_MIN <= int(v) <= INT64_MAX


def wrap(v: int) -> int:
    """``v`` reduced to the int64 range the way two's-complement overflow does."""
    return ((v - INT64_MIN) % 2**64) + INT64_MIN


def _int_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _int_mod(a: int, b: int) -> int:
    return a - b * _int_div(a, b)


_INT_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "&": operator.and_,
    "|": operator.or_,
    "^": operator.xor,
}
_FLOAT_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def int_op(op: str, a: int, b: int) -> int | float | None:
    """``a op b`` on two int64 values (None where the result is null)."""
    if op in _INT_OPS:
        return wrap(_INT_OPS[op](a, b))
    if op in ("/", "%"):
        if b == 0:
            return None
        return wrap(_int_div(a, b)) if op == "/" else _int_mod(a, b)
    if op in ("<<", ">>"):
        if not 0 <= b <= 63:
            return None
        return wrap(a << b) if op == "<<" else a >> b
    if op == "**":
        return float_op(op, float(a), float(b))
    raise ValueError(op)


def float_op(op: str, a: float, b: float) -> float | None:
    """``a op b`` on two float64 values, IEEE semantics except null for ``/`` and ``%`` by zero."""
    if op in ("/", "%") and b == 0:
        return None
    if op == "%":
        return math.fmod(a, b) if math.isfinite(a) and not math.isnan(b) else math.nan
    if op == "**":
        with np.errstate(all="ignore"):
            return float(np.power(np.float64(a), np.float64(b)))
    with np.errstate(all="ignore"):
        return float(_FLOAT_OPS[op](np.float64(a), np.float64(b)))


def arith(op: str, a: Any, b: Any) -> Any:
    """``a op b`` for two numbers (None if either is None or the result is null)."""
    if a is None or b is None:
        return None
    if is_int(a) and is_int(b):
        return int_op(op, int(a), int(b))
    return float_op(op, float(a), float(b))


def negate(op: str, a: Any) -> Any:
    """Unary ``-``, ``+`` or ``~`` on a number."""
    if a is None:
        return None
    if op == "+":
        return a
    if op == "~":
        return ~int(a)
    return wrap(-int(a)) if is_int(a) else -float(a)
