"""The seam every schema function plugs into: a definition, a write-time step, a search-time step.

- `FunctionDef` is what the schema stores (pymilvus's ``Function`` fields).
- A `RowFunction` is built from a definition and the collection's schema by
  the factory registered for its type (``register``/``build``):
  ``compute(columns)`` maps the batch's input columns (by field name) to its
  output columns (by field name), for insert and upsert, before the batch is
  logged, and raises on any bad row so the batch writes nothing;
  ``query(data)`` turns search data (texts) into the query vectors the
  output field's index searches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..._errors import ParamError


@dataclass(frozen=True)
class FunctionDef:
    """One function of a schema: its name, type (``BM25``, ``TEXTEMBEDDING``), fields and params."""

    name: str
    function_type: str
    input_field_names: tuple[str, ...]
    output_field_names: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""


class RowFunction(Protocol):
    definition: FunctionDef

    def compute(self, columns: dict[str, Any]) -> dict[str, Any]:
        """Output columns (by field name) for the batch's input columns (by field name)."""
        ...

    def query(self, data: list[Any]) -> Any:
        """Query vectors for search data given as texts."""
        ...


Factory = Callable[[FunctionDef, Any], RowFunction]
_FACTORIES: dict[str, Factory] = {}


def register(function_type: str, factory: Factory) -> None:
    """Make ``build`` use ``factory`` for functions of ``function_type``."""
    _FACTORIES[function_type.upper()] = factory


def build(definition: FunctionDef, schema: Any) -> RowFunction:
    """The function ``definition`` describes, for a collection with ``schema``."""
    factory = _FACTORIES.get(definition.function_type.upper())
    if factory is None:
        raise ParamError(f"function {definition.name!r}: type {definition.function_type!r} is not supported; "
                         f"expected one of {sorted(_FACTORIES)}")
    return factory(definition, schema)
