"""TIMESTAMPTZ in filters: ``ISO '...'`` literals and ``INTERVAL '...'`` durations.

A TIMESTAMPTZ field binds as an integer column of microseconds since the
epoch (UTC), so comparisons, ranges, ``in`` and arithmetic with a fixed
duration run on the numeric path. ``ISO '2025-01-01T00:00:00+08:00'`` binds to
those microseconds (text without an offset is read in the collection's
``timezone``, else UTC), and
``INTERVAL 'P1DT2H'`` to the microseconds of a duration given in weeks, days,
hours, minutes and seconds; a duration in years or months has no fixed length
and is refused. As in Milvus, a TIMESTAMPTZ value meets no plain number or
string: ``ts > 5`` and ``ts > '2025-01-01'`` are refused.
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


def bind_time_literal(b: Binder, node: A.Call) -> B.TimeConst:
    """``ISO '...'`` or ``INTERVAL '...'`` as a constant number of microseconds."""
    (arg,) = node.args
    text = b.const(arg)
    if not isinstance(text, str):
        raise b.error(f"{node.name} needs a quoted string, got {text!r}", arg.pos)
    try:
        if node.name == "ISO":  # text without an offset: in the collection's timezone, else UTC
            return B.TimeConst(parse_literal(text, b.schema.properties.get("timezone") or "UTC"))
        months, days, us = parse_interval(text)
    except ParamError as e:
        raise b.error(e.message, arg.pos) from None
    if months:
        raise b.error(f"INTERVAL {text!r} has years or months, which have no fixed length; "
                      "give it in weeks, days, hours, minutes and seconds", arg.pos)
    return B.TimeConst(days * 86_400_000_000 + us)


def is_time_field(v: B.Value) -> bool:
    """Whether ``v`` is a TIMESTAMPTZ field, or arithmetic on one."""
    if isinstance(v, B.Field):
        return v.dtype is DataType.TIMESTAMPTZ
    if isinstance(v, B.Arith):
        return is_time_field(v.left) or is_time_field(v.right)
    return False


def _timely(v: B.Value) -> bool:
    return isinstance(v, B.TimeConst) or is_time_field(v)


def check_time_operands(b: Binder, op: str, left: B.Value, right: B.Value, pos: int) -> None:
    """A TIMESTAMPTZ value meets only ``ISO '...'``, ``INTERVAL '...'`` and other TIMESTAMPTZ values, as in Milvus."""
    if _timely(left) == _timely(right):
        return
    time_side, other = (left, right) if _timely(left) else (right, left)
    hint = " (write a timestamp as ISO '2025-01-01T00:00:00Z')" if isinstance(other, B.Const) else ""
    raise b.error(f"{op!r} between incompatible types: {b._describe(time_side)} and {b._describe(other)}{hint}",
                  pos)


def check_time_arith(b: Binder, op: str, left: B.Value, right: B.Value, pos: int) -> None:
    """Arithmetic on a TIMESTAMPTZ value: only ``+`` or ``-`` an ``INTERVAL '...'``."""
    if not (is_time_field(left) or is_time_field(right)):
        return
    if op in ("+", "-") and is_time_field(left) and isinstance(right, B.TimeConst):
        return
    raise b.error(f"a TIMESTAMPTZ value takes only '+' or '-' INTERVAL '...' (e.g. ts + INTERVAL 'P1D'), not {op!r} "
                  f"with {b._describe(right if is_time_field(left) else left)}", pos)
