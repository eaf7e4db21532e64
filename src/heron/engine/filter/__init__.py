"""The Milvus boolean filter language: parse, bind to a schema, evaluate column-wise.

`compile_filter` turns an expression into a `FilterPlan` (cached), whose
`FilterPlan.evaluate` yields a bool bitmap over a `ColumnSource`.
`build_scalar_index` builds the scalar indexes plans use when a source
offers them. `evaluate_reference` is a plain-Python evaluator over row
dicts that defines the expected answers in tests.
"""

from __future__ import annotations

from ._plan import FilterPlan, compile_filter
from ._reference import evaluate_reference
from ._scalar_index import ScalarIndex
from ._scalar_index_impl import build_scalar_index

__all__ = ["FilterPlan", "ScalarIndex", "build_scalar_index", "compile_filter", "evaluate_reference"]
