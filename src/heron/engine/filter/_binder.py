"""Syntax tree + schema + template parameters → bound filter (`_bound`).

Every name is resolved, every operand type-checked and constant arithmetic
folded before any data is touched; problems raise `FilterError` with a caret
under the offending token. Type rules: numbers compare with numbers (int and
float exactly), strings with strings, bools with bools (only ``==``/``!=``);
JSON values compare with anything and are decided per row.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..._errors import FilterError
from ..._schema import META_FIELD, CollectionSchema
from ..._types import DataType
from . import _ast as A
from . import _bound as B
from . import _scalar as S
from ._binder_values import NUMERIC, bind_value
from ._geo import GEO_FUNCS, bind_geo
from ._limits import filter_error, item_positions
from ._text_match import bind_match
from ._timestamptz import check_time_operands

ORDER_OPS = frozenset({"<", "<=", ">", ">="})
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
CONTAINS = {
    "json_contains": "one",
    "json_contains_all": "all",
    "json_contains_any": "any",
    "array_contains": "one",
    "array_contains_all": "all",
    "array_contains_any": "any",
}
MATCH_FUNCS = frozenset({"text_match", "phrase_match"})
KNOWN_FUNCS = frozenset(CONTAINS) | MATCH_FUNCS | GEO_FUNCS | {"array_length", "random_sample"}
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a float",
    "num": "a number",
    "str": "a string",
    "bool": "a boolean",
    "any": "a JSON value",
    "array": "an ARRAY",
}


def _plain(v: Any) -> Any:
    """numpy scalars and arrays in template parameters as plain Python values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _value_ty(v: Any) -> str:
    if S.is_bool(v):
        return "bool"
    if S.is_int(v):
        return "int"
    if S.is_float(v):
        return "float"
    if isinstance(v, str):
        return "str"
    return "other"


def _comparable(a: str, b: str) -> bool:
    if "any" in (a, b):
        return b != "array" and a != "array"
    if a in NUMERIC and b in NUMERIC:
        return True
    return a == b and a in ("str", "bool")


def _fits(elem_ty: str, v: Any) -> bool:
    """Whether constant ``v`` can be compared with values of static type ``elem_ty``."""
    t = _value_ty(v)
    if elem_ty == "any":
        return t != "other"
    if elem_ty == "int":
        return t == "int"
    return _comparable(elem_ty, t)


class Binder:
    """Binds one expression; create one per (expression, schema, params)."""

    def __init__(self, expr: str, schema: CollectionSchema, params: Mapping[str, Any] | None) -> None:
        self.expr = expr
        self.schema = schema
        self.params = params or {}
        self.fields: set[str] = set()

    def error(self, message: str, pos: int) -> FilterError:
        return filter_error(message, self.expr, pos)

    # -- predicates --------------------------------------------------------------
    def bind(self, node: A.Node) -> B.Pred:
        """The whole filter; ``random_sample`` is accepted only as a top-level conjunct."""
        items = list(node.items) if isinstance(node, A.BoolOp) and node.op == "and" else [node]
        samples = [i for i in items if isinstance(i, A.Call) and i.name.lower() == "random_sample"]
        if len(samples) > 1:
            raise self.error("random_sample may appear only once", samples[1].pos)
        rest = [self.pred(i) for i in items if i not in samples]
        if samples:
            rest.append(self._sample(samples[0]))
        return rest[0] if len(rest) == 1 else B.And(tuple(rest))

    def _sample(self, node: A.Call) -> B.Sample:
        if len(node.args) != 1 or node.kwargs:
            raise self.error("random_sample takes one argument, a float in (0, 1)", node.pos)
        v = self.const(node.args[0])
        if not S.is_number(v) or not 0 < float(v) < 1:
            raise self.error(f"random_sample factor must be a float in (0, 1), got {v!r}", node.args[0].pos)
        return B.Sample(float(v))

    def pred(self, node: A.Node) -> B.Pred:
        if isinstance(node, A.BoolOp):
            items = tuple(self.pred(i) for i in node.items)
            return B.And(items) if node.op == "and" else B.Or(_merge_equalities(items))
        if isinstance(node, A.EqChain):
            return self._eq_chain(node)
        if isinstance(node, A.Not):
            return B.Not(self.pred(node.operand))
        if isinstance(node, A.Compare):
            return self._compare(node)
        if isinstance(node, A.InTest):
            return self._in(node)
        if isinstance(node, A.LikeTest):
            return self._like(node)
        if isinstance(node, A.NullTest):
            value = self.value(node.value)
            if isinstance(value, B.Const):
                raise self.error("'is null' needs a field, not a constant", node.value.pos)
            return B.IsNull(value, node.negated)
        if isinstance(node, A.Exists):
            value = self.value(node.value)
            if not isinstance(value, B.JsonPath):
                raise self.error('exists needs a JSON path such as meta["key"]', node.value.pos)
            return B.Exists(value)
        if isinstance(node, A.Call) and node.name.lower() in CONTAINS | dict.fromkeys(MATCH_FUNCS):
            return self._call_pred(node)
        if isinstance(node, A.Call) and node.name.lower() in GEO_FUNCS:
            self.func_name(node)
            return bind_geo(self, node)
        if isinstance(node, A.Call) and node.name.lower() == "random_sample":
            raise self.error(
                "random_sample must be combined with the rest of the filter by a top-level AND", node.pos
            )
        return self._truth(node)

    def _truth(self, node: A.Node) -> B.Pred:
        value = self.value(node)
        if isinstance(value, B.Const):
            if isinstance(value.value, bool):
                return B.ConstPred(value.value)
        elif value.ty in ("bool", "any"):
            return B.Truth(value)
        raise self.error(
            f"expected a boolean expression, got {_TYPE_WORDS.get(value.ty, value.ty)}", node.pos
        )

    def _compare(self, node: A.Compare) -> B.Pred:
        if len(node.ops) > 2:
            raise self.error("a range may chain at most two comparisons", node.op_pos[2])
        if len(node.ops) == 2:
            a, b = node.ops
            same = (a in ("<", "<=") and b in ("<", "<=")) or (a in (">", ">=") and b in (">", ">="))
            if not same:
                raise self.error("a chained range needs both '<'/'<=' or both '>'/'>='", node.op_pos[1])
        values = [self.value(o) for o in node.operands]
        preds = [
            self._cmp(node.ops[i], values[i], values[i + 1], node.op_pos[i], node.operands[i : i + 2])
            for i in range(len(node.ops))
        ]
        return preds[0] if len(preds) == 1 else B.And(tuple(preds))

    def _cmp(self, op: str, left: B.Value, right: B.Value, pos: int, nodes: tuple[A.Node, ...]) -> B.Pred:
        check_time_operands(self, op, left, right, pos)
        for v, n in zip((left, right), nodes):
            if v.ty == "array":
                raise self.error("an ARRAY field cannot be compared; use array_contains or arr[i]", n.pos)
        if not _comparable(left.ty, right.ty):
            raise self.error(
                f"cannot compare {self._describe(left)} with {self._describe(right)} using {op!r}", pos
            )
        if op in ORDER_OPS and "bool" in (left.ty, right.ty):
            raise self.error(f"booleans support only '==' and '!=', not {op!r}", pos)
        if isinstance(left, B.Const) and isinstance(right, B.Const):
            return B.ConstPred(_fold_cmp(op, left.value, right.value))
        if isinstance(left, B.Const):
            left, right, op = right, left, FLIP[op]
        return B.Cmp(op, left, right)

    def _describe(self, v: B.Value) -> str:
        if isinstance(v, (B.Field, B.ArrayField)):
            dt = v.dtype if isinstance(v, B.Field) else DataType.ARRAY
            return f"{dt.name} field {v.name!r}"
        if isinstance(v, B.Const):
            return f"{_TYPE_WORDS[v.ty]} ({v.value!r})"
        return _TYPE_WORDS.get(v.ty, v.ty)

    def _in(self, node: A.InTest) -> B.Pred:
        value = self.value(node.value)
        if value.ty == "array":
            raise self.error("'in' on an ARRAY field is not supported; use array_contains_any", node.pos)
        values, positions = self._const_items(node.container)
        self._check_items(value, values, positions, lambda item: f"list item {item!r}")
        pred = B.InList(value, tuple(values))
        return B.Not(pred) if node.negated else pred

    def _check_items(self, value: B.Value, values: list[Any], positions: Any, what: Callable[[Any], str]) -> None:
        """Refuse an item that cannot be compared with ``value``; one check per item type, not per item."""
        ty = "float" if value.ty == "num" else value.ty
        for t in set(map(type, values)):
            sample = next(v for v in values if type(v) is t)
            if _fits(ty, sample) or (value.ty == "int" and S.is_float(sample)):
                continue
            i = next(i for i, v in enumerate(values) if type(v) is t)
            raise self.error(f"{what(values[i])} does not fit {self._describe(value)}", positions[i])

    def _eq_chain(self, node: A.EqChain) -> B.Pred:
        """A long chain of equalities on one name: membership in a set where the name is a scalar field."""
        value = self.value(node.name)
        if isinstance(value, B.Field):
            values = list(node.values)
            self._check_items(value, values, node.op_pos, lambda item: f"cannot compare {item!r}:")
            return B.InList(value, node.values)
        preds = tuple(
            self._cmp("==", value, B.Const(v), op, (node.name, A.Literal(p, v)))
            for v, p, op in zip(node.values, node.positions, node.op_pos)
        )
        return B.Or(preds)

    def _like(self, node: A.LikeTest) -> B.Pred:
        value = self.value(node.value)
        if value.ty not in ("str", "any"):
            raise self.error(f"'like' needs a VARCHAR or JSON value, not {self._describe(value)}", node.pos)
        pattern = self.const(node.pattern)
        if not isinstance(pattern, str):
            raise self.error("a 'like' pattern must be a string", node.pattern.pos)
        pred = B.Like(value, pattern)
        return B.Not(pred) if node.negated else pred

    def _call_pred(self, node: A.Call) -> B.Pred:
        name = self.func_name(node)
        if name in MATCH_FUNCS:
            return bind_match(self, node, name)
        if len(node.args) != 2 or node.kwargs:
            raise self.error(f"{name} takes two arguments", node.pos)
        target = self.value(node.args[0])
        if not isinstance(target, (B.ArrayField, B.JsonPath)):
            raise self.error(f"{name} needs an ARRAY field or a JSON path", node.args[0].pos)
        mode = CONTAINS[name]
        if mode == "one":
            items = [(self.const(node.args[1]), node.args[1].pos)]
            if isinstance(items[0][0], list):
                raise self.error(
                    f"{name} takes one value; use {name}_all or {name}_any for a list", node.args[1].pos
                )
        else:
            items = self.const_list(node.args[1])
        elem_ty = "any" if isinstance(target, B.JsonPath) else B.Field("", target.element_type).ty
        for item, pos in items:
            if not _fits(elem_ty, item):
                raise self.error(f"{name}: {item!r} does not fit the element type {target_elem(target)}", pos)
        return B.Contains(mode, target, tuple(i for i, _ in items))

    def func_name(self, node: A.Call) -> str:
        name = node.name
        if (name.lower() == name or name.upper() == name) and name.lower() in KNOWN_FUNCS:
            return name.lower()
        raise self.error(f"unknown function {name!r}", node.pos)

    # -- constants -----------------------------------------------------------------
    def const(self, node: A.Node) -> Any:
        """A constant (or template parameter) value; lists come back as Python lists."""
        if isinstance(node, A.Param):
            return self.param(node)
        if isinstance(node, A.ListExpr):
            return [self.const(i) for i in node.items]
        if isinstance(node, A.ConstList):
            return list(node.values)
        value = self.value(node)
        if not isinstance(value, B.Const):
            raise self.error("expected a constant", node.pos)
        return value.value

    def _const_items(self, node: A.Node) -> tuple[list[Any], Any]:
        """`const_list` as a list of values and a sequence of positions (a long literal list as it is)."""
        if isinstance(node, A.ConstList):
            return list(node.values), _Lazy(lambda: item_positions(self.expr, node))
        if isinstance(node, A.Param):
            v = self.const(node)
            if isinstance(v, list):
                for t in set(map(type, v)):
                    if _value_ty(next(x for x in v if type(x) is t)) == "other":
                        bad = next(x for x in v if type(x) is t)
                        raise self.error(f"list items must be numbers, strings or booleans, got {bad!r}", node.pos)
                return v, _Repeat(node.pos)
        items = self.const_list(node)
        return [i for i, _ in items], [p for _, p in items]

    def const_list(self, node: A.Node) -> list[tuple[Any, int]]:
        """Items of a list literal or list parameter, each with a position for errors."""
        if isinstance(node, A.ConstList):
            return list(zip(node.values, item_positions(self.expr, node)))
        if isinstance(node, A.ListExpr):
            out = [(self.const(i), i.pos) for i in node.items]
        else:
            v = self.const(node)
            if not isinstance(v, list):
                raise self.error(f"expected a list, got {v!r}", node.pos)
            out = [(i, node.pos) for i in v]
        for item, pos in out:
            if _value_ty(item) == "other":
                raise self.error(f"list items must be numbers, strings or booleans, got {item!r}", pos)
        return out

    def param(self, node: A.Param) -> Any:
        if node.name not in self.params:
            have = ", ".join(sorted(self.params)) or "none"
            raise self.error(
                f"template parameter {{{node.name}}} is missing from filter_params (given: {have})", node.pos
            )
        v = _plain(self.params[node.name])
        if S.is_int(v) and not S.is_int64(v):
            raise self.error(f"template parameter {{{node.name}}} = {v} is outside the int64 range", node.pos)
        return v

    # -- values (see _binder_values) ------------------------------------------------
    def value(self, node: A.Node) -> B.Value:
        return bind_value(self, node)

    def resolve(self, node: A.Name) -> B.Value:
        """A bare name: a declared field, or a dynamic field under ``$meta``."""
        name = node.name
        if name == META_FIELD:
            if not self.schema.enable_dynamic_field:
                raise self.error("$meta is only available with enable_dynamic_field=True", node.pos)
            self.fields.add(META_FIELD)
            return B.JsonPath(META_FIELD, ())
        f = self.schema.field(name)
        if f is None:
            if self.schema.enable_dynamic_field:
                self.fields.add(META_FIELD)
                return B.JsonPath(META_FIELD, (name,))
            names = [x.name for x in self.schema.fields if not x.dtype.is_vector]
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise self.error(f"unknown field {name!r}{hint}", node.pos)
        if f.dtype.is_vector:
            raise self.error(f"vector field {name!r} cannot be used in a filter", node.pos)
        self.fields.add(name)
        if f.dtype is DataType.JSON:
            return B.JsonPath(name, ())
        if f.dtype is DataType.ARRAY:
            assert f.element_type is not None
            return B.ArrayField(name, f.element_type)
        return B.Field(name, f.dtype)


class _Lazy:
    """Positions computed on first use (only an error needs them)."""

    def __init__(self, make: Callable[[], list[int]]) -> None:
        self._make = make
        self._got: list[int] | None = None

    def __getitem__(self, i: int) -> int:
        if self._got is None:
            self._got = self._make()
        return self._got[i]


class _Repeat:
    """The same position for every item (the items of a list parameter)."""

    def __init__(self, pos: int) -> None:
        self.pos = pos

    def __getitem__(self, i: int) -> int:
        return self.pos


def _merge_equalities(items: tuple[B.Pred, ...]) -> tuple[B.Pred, ...]:
    """Operands of ``or``: equalities of one scalar field with constants become one membership test.

    ``a == 1 or a == 2`` and ``a in [1, 2]`` select the same rows, nulls
    included (both are unknown on a null), and a set is tested once per row
    rather than once per constant.
    """
    groups: dict[B.Field, list[Any]] = {}
    for p in items:
        if isinstance(p, B.Cmp) and p.op == "==" and isinstance(p.left, B.Field) and isinstance(p.right, B.Const):
            groups.setdefault(p.left, []).append(p.right.value)
    if not any(len(v) > 1 for v in groups.values()):
        return items
    out: list[B.Pred] = []
    done: set[B.Field] = set()
    for p in items:
        if isinstance(p, B.Cmp) and p.op == "==" and isinstance(p.left, B.Field) and isinstance(p.right, B.Const) \
                and len(groups[p.left]) > 1:
            if p.left not in done:
                done.add(p.left)
                out.append(B.InList(p.left, tuple(groups[p.left])))
            continue
        out.append(p)
    return tuple(out)


def target_elem(target: B.ArrayField | B.JsonPath) -> str:
    return target.element_type.name if isinstance(target, B.ArrayField) else "JSON"


def _fold_cmp(op: str, a: Any, b: Any) -> bool:
    import operator

    fn = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt}
    return bool(fn[op](a, b)) if op in fn else bool(a >= b)
