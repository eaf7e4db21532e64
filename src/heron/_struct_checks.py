"""The checks of a struct array field's definition, behind `heron.StructFieldSchema.validate`.

Kept apart from `heron._schema` (which calls it) and duck-typed over the
field and its sub-fields, so that it imports nothing from there.
"""

from __future__ import annotations

import re
from typing import Any

from ._errors import SchemaError
from ._types import STRUCT_SUBFIELD_TYPES

#: Sub-field flags that belong to the struct as a whole (or to no struct at all).
_SUB_FLAGS = ("is_primary", "is_partition_key", "is_clustering_key", "nullable", "auto_id")


def check_struct(st: Any, name_pattern: re.Pattern[str], max_capacity: int) -> None:
    """Raise `SchemaError` naming the struct and sub-field if ``st``'s definition is unsound."""
    n = st.name
    if not isinstance(n, str) or not name_pattern.match(n):
        raise SchemaError(f"struct field name {n!r} is invalid: expected a letter or '_' followed by "
                          "letters, digits or '_'")
    if st.max_capacity is None or not 0 < st.max_capacity <= max_capacity:
        raise SchemaError(f"struct field {n!r}: max_capacity must be in 1..{max_capacity}; got {st.max_capacity!r}")
    if not st.fields:
        raise SchemaError(f"struct field {n!r} must have at least one sub-field")
    seen: set[str] = set()
    for f in st.fields:
        if f.dtype not in STRUCT_SUBFIELD_TYPES:
            raise SchemaError(f"struct field {n!r}: sub-field {f.name!r} has type {f.dtype.name}; expected one of "
                              f"{sorted(t.name for t in STRUCT_SUBFIELD_TYPES)}")
        for flag in _SUB_FLAGS:
            if getattr(f, flag):
                raise SchemaError(f"struct field {n!r}: sub-field {f.name!r} cannot be {flag} "
                                  "(nullable is set on the struct field as a whole)")
        if f.default_value is not None:
            raise SchemaError(f"struct field {n!r}: sub-field {f.name!r} cannot have a default value")
        f.validate()
        if f.name in seen:
            raise SchemaError(f"struct field {n!r}: sub-field name {f.name!r} appears twice")
        seen.add(f.name)
