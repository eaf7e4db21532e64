"""Bound filter: names resolved to columns, types checked, constants folded.

Values (`Value`) and predicates (`Pred`) are frozen dataclasses. A value's
``ty`` is its static type: ``int``, ``float``, ``num`` (a number whose
int/float kind is known only per row), ``str``, ``bool``, or ``any`` (a JSON
value: any type, decided per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..._types import DataType


@dataclass(frozen=True)
class Const:
    value: Any

    @property
    def ty(self) -> str:
        v = self.value
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "float"
        return "str"


@dataclass(frozen=True)
class TimeConst(Const):
    """``ISO '...'`` or ``INTERVAL '...'``: microseconds, the only constants a TIMESTAMPTZ value meets."""


@dataclass(frozen=True)
class Field:
    """A scalar column (BOOL, integers, FLOAT, DOUBLE, VARCHAR)."""

    name: str
    dtype: DataType

    @property
    def ty(self) -> str:
        if self.dtype is DataType.BOOL:
            return "bool"
        if self.dtype.is_integer or self.dtype is DataType.TIMESTAMPTZ:  # TIMESTAMPTZ: microseconds
            return "int"
        if self.dtype is DataType.VARCHAR:
            return "str"
        if self.dtype is DataType.GEOMETRY:
            return "geometry"
        return "float"


@dataclass(frozen=True)
class JsonPath:
    """A path into a JSON column (a declared JSON field or ``$meta``); ``()`` is the whole value."""

    field: str
    path: tuple[str | int, ...]
    ty: str = "any"


@dataclass(frozen=True)
class ArrayField:
    """A whole ARRAY column."""

    name: str
    element_type: DataType
    ty: str = "array"


@dataclass(frozen=True)
class ArrayElem:
    """``arr[index]``: null where the array is null or too short."""

    name: str
    index: int
    element_type: DataType

    @property
    def ty(self) -> str:
        return Field(self.name, self.element_type).ty


@dataclass(frozen=True)
class Arith:
    op: str
    left: Value
    right: Value
    ty: str


@dataclass(frozen=True)
class UnaryOp:
    op: str
    operand: Value
    ty: str


@dataclass(frozen=True)
class ArrayLength:
    target: ArrayField | JsonPath
    ty: str = "int"


Value = Const | Field | JsonPath | ArrayField | ArrayElem | Arith | UnaryOp | ArrayLength


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Value
    right: Value


@dataclass(frozen=True)
class InList:
    value: Value
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Like:
    value: Value
    pattern: str


@dataclass(frozen=True)
class IsNull:
    """Always true or false, never unknown; ``negated`` is ``is not null``."""

    value: Value
    negated: bool


@dataclass(frozen=True)
class Exists:
    value: JsonPath


@dataclass(frozen=True)
class Contains:
    """``array_contains`` / ``json_contains`` (mode ``one``), ``_all`` and ``_any``."""

    mode: str
    target: ArrayField | JsonPath
    items: tuple[Any, ...]


@dataclass(frozen=True)
class TextMatch:
    """``text_match`` (any of ``tokens``) or ``phrase_match`` (``tokens`` at ``offsets``, within ``slop``).

    The tokens are the query's, by the field's analyzer (``analyzer``: its params as JSON).
    """

    field: str
    analyzer: str
    tokens: tuple[str, ...]
    offsets: tuple[int, ...]
    phrase: bool = False
    slop: int = 0


@dataclass(frozen=True)
class Geo:
    """``ST_*(field, 'wkt'[, metres])`` (see `_geo`): ``op`` in lower case, the literal as WKB."""

    op: str
    field: str
    wkb: bytes
    distance: float = 0.0


@dataclass(frozen=True)
class Truth:
    """A boolean value used as a predicate (``is_active``, ``meta["flag"]``)."""

    value: Value


@dataclass(frozen=True)
class ConstPred:
    value: bool


@dataclass(frozen=True)
class And:
    items: tuple[Pred, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Pred, ...]


@dataclass(frozen=True)
class Not:
    item: Pred


@dataclass(frozen=True)
class Sample:
    """``random_sample(p)``: keeps each row with probability ``p``; only as a top-level conjunct."""

    p: float


Pred = Cmp | InList | Like | IsNull | Exists | Contains | TextMatch | Geo | Truth | ConstPred | And | Or | Not | Sample
