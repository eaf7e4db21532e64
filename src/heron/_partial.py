"""The schema a partial upsert's rows are built against: the primary key and the fields they give.

A partial upsert (``upsert(..., partial_update=True)``) sends only some
fields; building its rows against the whole schema would fill the others
with defaults or refuse them as missing. Against this narrower schema the
fields given are checked and converted as usual, and the engine completes
each row from the stored one (`heron.engine._partial_update`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._errors import DataError
from ._schema import META_FIELD, CollectionSchema


def partial_schema(schema: CollectionSchema, given: Iterable[str]) -> CollectionSchema:
    """``schema`` narrowed to the primary key and the fields named in ``given`` (other names are dynamic keys)."""
    names = set(given)
    pk = schema.primary_field
    if pk.name not in names:
        raise DataError(f"field {pk.name!r}: missing; a partial upsert needs the primary key in every row")
    fields = [f for f in schema.fields if f.name in names]
    return CollectionSchema(
        fields,
        schema.description,
        auto_id=schema.auto_id,
        enable_dynamic_field=schema.enable_dynamic_field,
    )


def given_fields(schema: CollectionSchema, data: Any) -> list[str]:
    """The schema fields that ``data`` (rows, one row, a dict of columns or a table) gives values for.

    Every row of a partial upsert must give the same fields, as pymilvus
    requires: a row that leaves one out would be ambiguous (keep the stored
    value, or set null?). `DataError` names the first row that differs.
    """
    known = set(schema.field_names()) - {META_FIELD}
    columns = getattr(data, "columns", None) if not isinstance(data, Mapping) else None
    if columns is None and hasattr(data, "column_names"):
        columns = data.column_names
    if columns is not None:
        return [str(c) for c in columns if str(c) in known]
    if isinstance(data, Mapping):
        return [k for k in data if k in known]
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)) or not data:
        return []  # the batch builder names what is wrong with data of another shape
    first: list[str] | None = None
    for i, row in enumerate(data):
        if not isinstance(row, Mapping):
            return []
        names = [k for k in row if k in known]
        if first is None:
            first = names
        elif set(names) != set(first):
            raise DataError(f"row {i}: gives fields {sorted(names)}, row 0 gives {sorted(first)}; every row of a "
                            "partial upsert must give the same fields")
    return first or []
