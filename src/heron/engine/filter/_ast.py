"""Syntax tree of a filter expression: frozen nodes that remember where they start.

``pos`` is the character offset in the expression of the token that best
names the node (an operator, a function name, a literal), so errors can put
a caret under it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Literal:
    """A constant: int, float, bool or str."""

    pos: int
    value: int | float | bool | str


@dataclass(frozen=True)
class ListExpr:
    """``[a, b, ...]``; items are usually literals or parameters."""

    pos: int
    items: tuple[Node, ...]


@dataclass(frozen=True)
class ConstList:
    """A long list of literals read without the grammar (see `_limits.lift`): ``[`` is at ``pos``, ``]``
    ends at ``end``."""

    pos: int
    values: tuple[int | float | bool | str, ...]
    end: int


@dataclass(frozen=True)
class EqChain:
    """``name == v1 or name == v2 or ...`` read without the grammar: the name, the values and the offsets
    of each value and of each ``==``."""

    pos: int
    name: Name
    values: tuple[int | float | bool | str, ...]
    positions: tuple[int, ...]
    op_pos: tuple[int, ...]


@dataclass(frozen=True)
class Name:
    """A bare identifier (a field, or a dynamic field) or ``$meta``."""

    pos: int
    name: str


@dataclass(frozen=True)
class Param:
    """A template placeholder ``{name}``, filled from ``params`` when binding."""

    pos: int
    name: str


@dataclass(frozen=True)
class Index:
    """``base[key]``: a JSON key or index, or an ARRAY element."""

    pos: int
    base: Node
    key: Node


@dataclass(frozen=True)
class Call:
    """``name(args..., kw=value)``."""

    pos: int
    name: str
    args: tuple[Node, ...]
    kwargs: tuple[tuple[str, Node], ...] = ()


@dataclass(frozen=True)
class Unary:
    """``-x``, ``+x`` or ``~x``."""

    pos: int
    op: str
    operand: Node


@dataclass(frozen=True)
class BinOp:
    """Arithmetic or bitwise operation; ``op`` is one of ``+ - * / % ** & | ^ << >>``."""

    pos: int
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare:
    """``a op b`` or a chained range ``a op b op c``; ``op_pos`` locates each operator."""

    pos: int
    ops: tuple[str, ...]
    operands: tuple[Node, ...]
    op_pos: tuple[int, ...]


@dataclass(frozen=True)
class InTest:
    pos: int
    value: Node
    container: Node
    negated: bool


@dataclass(frozen=True)
class LikeTest:
    pos: int
    value: Node
    pattern: Node
    negated: bool


@dataclass(frozen=True)
class NullTest:
    """``x is null`` (``negated``: ``x is not null``)."""

    pos: int
    value: Node
    negated: bool


@dataclass(frozen=True)
class Exists:
    pos: int
    value: Node


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    pos: int
    op: str
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    pos: int
    operand: Node


Node = (
    Literal
    | ListExpr
    | ConstList
    | EqChain
    | Name
    | Param
    | Index
    | Call
    | Unary
    | BinOp
    | Compare
    | InTest
    | LikeTest
    | NullTest
    | Exists
    | BoolOp
    | Not
)
