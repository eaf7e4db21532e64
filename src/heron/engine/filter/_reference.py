"""A plain-Python evaluator over row dicts: the definition the compiled filter is checked against.

It shares only parsing and binding with the compiled path; values are
computed one row at a time with ordinary Python, using the three-valued
logic of the language (``None`` is unknown). ``random_sample`` counts as
true here. Not for production use: it is slow by design.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from ..._schema import META_FIELD, CollectionSchema
from ..._types import DataType
from . import _bound as B
from . import _like
from . import _scalar as S
from ._binder import Binder
from ._geo import reference_geo
from ._parser import parse
from ._text_match import reference_match

_MISSING = object()
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _micros(v: Any) -> int | None:
    """A TIMESTAMPTZ row value (ISO text, a datetime; naive means UTC) as microseconds since the epoch."""
    if v is None:
        return None
    if isinstance(v, str):
        v = datetime.datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("z", "Z")) else v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=datetime.timezone.utc)
    return (v - _EPOCH) // datetime.timedelta(microseconds=1)


def _cls(v: Any) -> str | None:
    """The comparison class of a value: num, str, bool, or None (null, list, dict, huge int)."""
    if S.is_bool(v):
        return "bool"
    if S.is_int(v):
        return "num" if S.is_int64(v) else None
    if S.is_float(v):
        return "num"
    if isinstance(v, str):
        return "str"
    return None


def _cmp(op: str, a: Any, b: Any) -> bool | None:
    ca, cb = _cls(a), _cls(b)
    if ca is None or ca != cb or (ca == "bool" and op not in ("==", "!=")):
        return None
    return {
        "==": lambda: a == b,
        "!=": lambda: a != b,
        "<": lambda: a < b,
        "<=": lambda: a <= b,
        ">": lambda: a > b,
        ">=": lambda: a >= b,
    }[op]()


def _equal(a: Any, b: Any) -> bool:
    return _cmp("==", a, b) is True


def _and(vals: list[bool | None]) -> bool | None:
    if any(v is False for v in vals):
        return False
    return True if all(v is True for v in vals) else None


def _or(vals: list[bool | None]) -> bool | None:
    if any(v is True for v in vals):
        return True
    return False if all(v is False for v in vals) else None


class _Row:
    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row

    def json(self, v: B.JsonPath) -> Any:
        cur: Any = self.row.get(v.field, _MISSING if v.field == META_FIELD else None)
        if v.field == META_FIELD and cur is _MISSING:
            cur = {}
        for step in v.path:
            if isinstance(step, str):
                cur = cur.get(step, _MISSING) if isinstance(cur, dict) else _MISSING
            else:
                ok = isinstance(cur, list) and 0 <= step < len(cur)
                cur = cur[step] if ok else _MISSING
        return cur

    def value(self, v: B.Value) -> Any:
        """The value, or None for null (missing JSON keys read as null too)."""
        if isinstance(v, B.Const):
            return v.value
        if isinstance(v, B.Field) and v.dtype is DataType.TIMESTAMPTZ:
            return _micros(self.row.get(v.name))
        if isinstance(v, (B.Field, B.ArrayField)):
            return self.row.get(v.name)
        if isinstance(v, B.JsonPath):
            out = self.json(v)
            return None if out is _MISSING else out
        if isinstance(v, B.ArrayElem):
            arr = self.row.get(v.name)
            return arr[v.index] if isinstance(arr, (list, tuple)) and v.index < len(arr) else None
        if isinstance(v, B.ArrayLength):
            arr = self.value(v.target)
            return len(arr) if isinstance(arr, (list, tuple)) else None
        if isinstance(v, B.Arith):
            return self._arith(v)
        if isinstance(v, B.UnaryOp):
            a = self.value(v.operand)
            if _cls(a) != "num" or (v.op == "~" and not S.is_int(a)):
                return None
            return S.negate(v.op, a)
        raise TypeError(v)

    def _arith(self, v: B.Arith) -> Any:
        a, b = self.value(v.left), self.value(v.right)
        if _cls(a) != "num" or _cls(b) != "num":
            return None
        if v.op in ("&", "|", "^", "<<", ">>") and not (S.is_int(a) and S.is_int(b)):
            return None
        return S.arith(v.op, a, b)

    def pred(self, p: B.Pred) -> bool | None:
        if isinstance(p, B.And):
            return _and([self.pred(i) for i in p.items])
        if isinstance(p, B.Or):
            return _or([self.pred(i) for i in p.items])
        if isinstance(p, B.Not):
            r = self.pred(p.item)
            return None if r is None else not r
        if isinstance(p, B.Cmp):
            return _cmp(p.op, self.value(p.left), self.value(p.right))
        if isinstance(p, B.InList):
            return self._in(p)
        if isinstance(p, B.Like):
            s = self.value(p.value)
            return _like.matches(p.pattern, s) if isinstance(s, str) else None
        if isinstance(p, B.IsNull):
            return self._is_null(p.value) != p.negated
        if isinstance(p, B.Exists):
            return self.json(p.value) is not _MISSING
        if isinstance(p, B.TextMatch):
            return reference_match(self.value(B.Field(p.field, DataType.VARCHAR)), p)
        if isinstance(p, B.Contains):
            return self._contains(p)
        if isinstance(p, B.Geo):
            return reference_geo(p, self.row.get(p.field))
        if isinstance(p, B.Truth):
            v = self.value(p.value)
            return bool(v) if S.is_bool(v) else None
        if isinstance(p, B.ConstPred):
            return p.value
        if isinstance(p, B.Sample):
            return True
        raise TypeError(p)

    def _in(self, p: B.InList) -> bool | None:
        v = self.value(p.value)
        c = _cls(v)
        if c is None or (p.items and c not in {_cls(i) for i in p.items}):
            return None
        return any(_equal(v, i) for i in p.items)

    def _is_null(self, v: B.Value) -> bool:
        if isinstance(v, B.JsonPath):
            out = self.json(v)
            return out is _MISSING or out is None
        if isinstance(v, B.ArrayField):
            return not isinstance(self.row.get(v.name), (list, tuple))
        return self.value(v) is None

    def _contains(self, p: B.Contains) -> bool | None:
        arr = self.value(p.target)
        if not isinstance(arr, (list, tuple)):
            return None
        found = [any(_equal(e, i) for e in arr) for i in p.items]
        return all(found) if p.mode == "all" else any(found)


def evaluate_reference(
    expr: str, schema: CollectionSchema, rows: list[dict[str, Any]], params: Mapping[str, Any] | None = None
) -> list[bool]:
    """Whether each row (a dict; dynamic fields in a ``"$meta"`` dict) matches ``expr``."""
    if expr is None or not expr.strip():
        return [True] * len(rows)
    pred = Binder(expr, schema, params).bind(parse(expr))
    return [_Row(r).pred(pred) is True for r in rows]
