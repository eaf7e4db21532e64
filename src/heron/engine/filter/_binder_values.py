"""Binding of value expressions: names, paths, indexing, arithmetic, array_length."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _ast as A
from . import _bound as B
from . import _scalar as S
from ._timestamptz import TIME_WORDS, bind_time_literal, check_time_arith

if TYPE_CHECKING:
    from ._binder import Binder

#: Value types that take part in arithmetic and compare with one another.
NUMERIC = frozenset({"int", "float", "num"})
ARITH_OPS = frozenset({"+", "-", "*", "/", "%", "**"})
BIT_OPS = frozenset({"&", "|", "^", "<<", ">>"})


def bind_value(b: Binder, node: A.Node) -> B.Value:
    """The bound form of a value expression; `FilterError` if ``node`` is not one."""
    if isinstance(node, A.Literal):
        if S.is_int(node.value) and not S.is_int64(node.value):
            raise b.error(f"integer {node.value} is outside the int64 range", node.pos)
        return B.Const(node.value)
    if isinstance(node, A.Param):
        v = b.param(node)
        if isinstance(v, list):
            raise b.error(f"template parameter {{{node.name}}} is a list; lists go after 'in'", node.pos)
        if v is None or not isinstance(v, (bool, int, float, str)):
            raise b.error(f"template parameter {{{node.name}}} must be a number, string or boolean", node.pos)
        return B.Const(v)
    if isinstance(node, A.Name):
        return b.resolve(node)
    if isinstance(node, A.Index):
        return _index(b, node)
    if isinstance(node, A.Unary):
        return _unary(b, node)
    if isinstance(node, A.BinOp):
        return _binop(b, node)
    if isinstance(node, A.Call):
        return _call(b, node)
    if isinstance(node, A.ListExpr):
        raise b.error("a list is allowed only after 'in' or as a function argument", node.pos)
    raise b.error("expected a value here, not a condition", node.pos)


def _index(b: Binder, node: A.Index) -> B.Value:
    base = bind_value(b, node.base)
    key = b.const(node.key)
    if isinstance(base, B.JsonPath):
        if not (isinstance(key, str) or S.is_int(key)) or isinstance(key, bool):
            raise b.error(
                f"a JSON path step must be a string key or an integer index, got {key!r}", node.key.pos
            )
        return B.JsonPath(base.field, (*base.path, key))
    if isinstance(base, B.ArrayField):
        if not S.is_int(key) or isinstance(key, bool) or key < 0:
            raise b.error(f"an ARRAY index must be a non-negative integer, got {key!r}", node.key.pos)
        return B.ArrayElem(base.name, int(key), base.element_type)
    raise b.error("only JSON and ARRAY fields can be indexed with [...]", node.pos)


def _numeric_operand(b: Binder, v: B.Value, node: A.Node, op: str, need_int: bool) -> None:
    ok = ("int", "num", "any") if need_int else (*NUMERIC, "any")
    if v.ty not in ok:
        what = "integers" if need_int else "numbers"
        raise b.error(f"operator {op!r} needs {what}, got {b._describe(v)}", node.pos)


def _unary(b: Binder, node: A.Unary) -> B.Value:
    v = bind_value(b, node.operand)
    _numeric_operand(b, v, node.operand, node.op, node.op == "~")
    if isinstance(v, B.Const):
        return B.Const(S.negate(node.op, v.value))
    if node.op == "+":
        return v
    ty = "int" if node.op == "~" else ("num" if v.ty == "any" else v.ty)
    return B.UnaryOp(node.op, v, ty)


def _binop(b: Binder, node: A.BinOp) -> B.Value:
    left = bind_value(b, node.left)
    right = bind_value(b, node.right)
    is_bit = node.op in BIT_OPS
    assert is_bit or node.op in ARITH_OPS
    _numeric_operand(b, left, node.left, node.op, is_bit)
    _numeric_operand(b, right, node.right, node.op, is_bit)
    check_time_arith(b, node.op, left, right, node.pos)
    if isinstance(left, B.Const) and isinstance(right, B.Const):
        v = S.arith(node.op, left.value, right.value)
        if v is None:
            raise b.error(f"{left.value!r} {node.op} {right.value!r} has no value", node.pos)
        return B.Const(v)
    return B.Arith(node.op, left, right, _arith_ty(node.op, left.ty, right.ty))


def _arith_ty(op: str, a: str, b: str) -> str:
    if op in BIT_OPS:
        return "int"
    if op == "**":
        return "float"
    if a == "int" and b == "int":
        return "int"
    if "num" in (a, b) or "any" in (a, b):
        return "num"
    return "float"


def _call(b: Binder, node: A.Call) -> B.Value:
    if node.name in TIME_WORDS and len(node.args) == 1 and not node.kwargs:
        return bind_time_literal(b, node)
    name = b.func_name(node)
    if name != "array_length":
        raise b.error(f"{name} is a condition, not a value", node.pos)
    if len(node.args) != 1 or node.kwargs:
        raise b.error("array_length takes one argument", node.pos)
    target = bind_value(b, node.args[0])
    if not isinstance(target, (B.ArrayField, B.JsonPath)):
        raise b.error("array_length needs an ARRAY field or a JSON path", node.args[0].pos)
    return B.ArrayLength(target)
