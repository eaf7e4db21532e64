"""`compile_filter` and `FilterPlan`: the entry points the engine calls."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._schema import CollectionSchema
from ...data._column import ColumnSource
from . import _bound as B
from ._binder import Binder
from ._cache import ByteBoundedCache, cache_bytes
from ._compiler import Evaluator
from ._parser import parse


@dataclass(frozen=True)
class FilterPlan:
    """A filter bound to a schema, ready to evaluate over any number of sources.

    ``matches_all`` is True for an empty filter; ``fields`` names the columns
    read (``"$meta"`` when dynamic fields are used). Plans are immutable and
    safe to share between threads.
    """

    expr: str
    matches_all: bool
    fields: frozenset[str]
    pred: B.Pred | None = field(default=None, repr=False)

    def evaluate(self, source: ColumnSource) -> np.ndarray:
        """A bool array of ``source.num_rows``: True for rows the filter selects.

        Rows where the filter is unknown (it involves a null) are not
        selected. Columns missing from ``source`` read as all null.
        """
        n = source.num_rows
        if self.pred is None:
            return np.ones(n, dtype=bool)
        return Evaluator(source).pred(self.pred).t


_MATCH_ALL = FilterPlan("", True, frozenset())


def _freeze(v: Any) -> Hashable:
    """A hashable key for a parameter value that tells 1, 1.0 and True apart."""
    if isinstance(v, (list, tuple)):
        return ("list", tuple(_freeze(x) for x in v))
    if isinstance(v, np.ndarray):
        return ("list", tuple(_freeze(x) for x in v.tolist()))
    if isinstance(v, np.generic):
        v = v.item()
    hash(v)
    return (type(v).__name__, v)


def _schema_key(schema: CollectionSchema) -> Hashable:
    fields = tuple(
        (f.name, int(f.dtype), None if f.element_type is None else int(f.element_type), f.nullable,
         f.params.get("enable_match"), f.params.get("analyzer_params"))  # text_match binds to the analyzer
        for f in schema.fields
    )
    return (fields, schema.enable_dynamic_field, schema.properties.get("timezone"))  # zone: ISO text without offset


#: Compiled plans by (expression, schema, parameters), bounded in bytes (see `_cache`).
_CACHE = ByteBoundedCache(cache_bytes())


def plan_cost(expr: str, pkey: Hashable, pred: Any) -> int:
    """An estimate of the bytes a cached plan holds: its text, its parameters' values and its constants."""
    return len(expr) * 4 + 64 * (_count_values(pkey) + _count_values(pred)) + 1024


def _count_values(root: Any) -> int:
    """Values in nested tuples and bound nodes (each costs a pointer and, usually, an object)."""
    n = 0
    stack = [root]
    while stack:
        v = stack.pop()
        if isinstance(v, tuple):
            n += len(v)
            stack.extend(x for x in v if isinstance(x, tuple) or hasattr(x, "__dataclass_fields__"))
        elif hasattr(v, "__dataclass_fields__"):
            stack.extend(x for x in vars(v).values() if isinstance(x, tuple) or hasattr(x, "__dataclass_fields__"))
    return n


def compile_filter(
    expr: str | None, schema: CollectionSchema, params: Mapping[str, Any] | None = None
) -> FilterPlan:
    """Parse and bind ``expr`` against ``schema`` (both cached); nothing reads data yet.

    Raises `FilterError` (with a caret under the offending token) for bad
    syntax, unknown fields or functions, type errors and missing template
    parameters. ``params`` fills ``{name}`` placeholders.
    """
    if expr is None or not expr.strip():
        return _MATCH_ALL
    try:
        pkey = tuple(sorted((k, _freeze(v)) for k, v in (params or {}).items()))
        key: Hashable | None = (expr, _schema_key(schema), pkey)
    except TypeError:
        key = None
    if key is not None and (plan := _CACHE.get(key)) is not None:
        return plan
    binder = Binder(expr, schema, params)
    pred = binder.bind(parse(expr))
    plan = FilterPlan(expr, False, frozenset(binder.fields), pred)
    if key is not None:
        _CACHE.put(key, plan, cost=plan_cost(expr, key[2], pred))  # type: ignore[index]
    return plan
