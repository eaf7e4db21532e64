"""TIMESTAMPTZ in filters: ``ISO '...'`` literals, ``INTERVAL '...'`` durations, and ISO text compared with a field.

A TIMESTAMPTZ field binds as an integer column of microseconds since the
epoch (UTC), so comparisons, ranges, ``in`` and arithmetic with a fixed
duration run on the numeric path. ``ISO '2025-01-01T00:00:00+08:00'`` binds to
those microseconds (text without an offset is read as UTC), and
``INTERVAL 'P1DT2H'`` to the microseconds of a duration given in weeks, days,
hours, minutes and seconds; a duration in years or months has no fixed length
and is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._errors import ParamError
from ..._types import DataType
from ...data._timestamptz import parse_interval, parse_literal
from . import _ast as A
from . import _bound as B

if TYPE_CHECKING:
    from ._binder import Binder

TIME_WORDS = frozenset({"ISO", "INTERVAL"})


def bind_time_literal(b: Binder, node: A.Call) -> B.Const:
    """``ISO '...'`` or ``INTERVAL '...'`` as a constant number of microseconds."""
    (arg,) = node.args
    text = b.const(arg)
    if not isinstance(text, str):
        raise b.error(f"{node.name} needs a quoted string, got {text!r}", arg.pos)
    try:
        if node.name == "ISO":
            return B.Const(parse_literal(text))
        months, days, us = parse_interval(text)
    except ParamError as e:
        raise b.error(e.message, arg.pos) from None
    if months:
        raise b.error(f"INTERVAL {text!r} has years or months, which have no fixed length; "
                      "give it in weeks, days, hours, minutes and seconds", arg.pos)
    return B.Const(days * 86_400_000_000 + us)


def is_time_field(v: B.Value) -> bool:
    if isinstance(v, B.Field):
        return v.dtype is DataType.TIMESTAMPTZ
    if isinstance(v, B.Arith):
        return is_time_field(v.left) or is_time_field(v.right)
    return False


def coerce_text(b: Binder, left: B.Value, right: B.Value, nodes: tuple[A.Node, ...]) -> tuple[B.Value, B.Value]:
    """ISO text compared with a TIMESTAMPTZ value, as microseconds; other operands as they are."""
    out = [left, right]
    for i, (v, other) in enumerate(((left, right), (right, left))):
        if isinstance(v, B.Const) and isinstance(v.value, str) and is_time_field(other):
            try:
                out[i] = B.Const(parse_literal(v.value))
            except ParamError as e:
                raise b.error(e.message, nodes[i].pos) from None
    return out[0], out[1]
