"""What a ``heron copy`` destination can hold: Milvus servers by version, Heron everything.

`check_target` runs before anything is written, so a collection that the
destination cannot hold is refused whole with one line naming the field.
"""

from __future__ import annotations

import re
from typing import Any

from .._errors import HeronError
from .._schema import CollectionSchema
from .._types import DataType

#: Field types by the Milvus version that first holds them.
_TYPE_SINCE: dict[DataType, tuple[int, int]] = {
    DataType.SPARSE_FLOAT_VECTOR: (2, 4), DataType.FLOAT16_VECTOR: (2, 4), DataType.BFLOAT16_VECTOR: (2, 4),
    DataType.INT8_VECTOR: (2, 6), DataType.GEOMETRY: (2, 6), DataType.TIMESTAMPTZ: (2, 6),
    DataType.ARRAY: (2, 3), DataType.JSON: (2, 3),
}
_NULLABLE_SINCE = (2, 5)
_DEFAULT_SINCE = (2, 5)
_FUNCTIONS_SINCE = (2, 5)
_CLUSTERING_SINCE = (2, 5)
_VECTORS_SINCE = (2, 4)  # several vector fields in one collection


def target_version(client: Any) -> tuple[int, int] | None:
    """The Milvus version (major, minor) ``client`` talks to; None for Heron (embedded or served)."""
    try:
        detail = client.get_server_version(detail=True)
        text = str(detail.get("version", "")) if isinstance(detail, dict) else str(detail)
    except Exception:  # a Milvus without the detailed answer (Connect) still gives the plain one
        text = str(client.get_server_version())
    if text.startswith("heron"):
        return None
    m = re.match(r"v?(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_target(schema: CollectionSchema, indexes: list[dict[str, Any]], version: tuple[int, int] | None,
                 name: str) -> None:
    """`HeronError` naming the first field or feature of ``name`` that Milvus ``version`` cannot hold."""
    if version is None:
        return
    where = f"the destination (Milvus {version[0]}.{version[1]})"

    def refuse(what: str, since: tuple[int, int]) -> None:
        raise HeronError(f"collection {name!r}: {what}: {where} cannot hold it (Milvus {since[0]}.{since[1]} "
                         "and later can); nothing was copied")

    vectors = []
    for f in schema.fields:
        since = _TYPE_SINCE.get(f.dtype)
        if since and version < since:
            refuse(f"field {f.name!r} is {f.dtype.name}", since)
        if f.nullable and version < _NULLABLE_SINCE:
            refuse(f"field {f.name!r} is nullable", _NULLABLE_SINCE)
        if f.default_value is not None and version < _DEFAULT_SINCE:
            refuse(f"field {f.name!r} has a default value", _DEFAULT_SINCE)
        if f.is_clustering_key and version < _CLUSTERING_SINCE:
            refuse(f"field {f.name!r} is a clustering key", _CLUSTERING_SINCE)
        if DataType.BINARY_VECTOR <= f.dtype <= DataType.INT8_VECTOR:
            vectors.append(f.name)
    if len(vectors) > 1 and version < _VECTORS_SINCE:
        refuse(f"fields {', '.join(map(repr, vectors))} are {len(vectors)} vector fields", _VECTORS_SINCE)
    if schema.functions and version < _FUNCTIONS_SINCE:
        refuse(f"function {schema.functions[0].name!r}", _FUNCTIONS_SINCE)
    indexed = {i.get("field_name") for i in indexes}
    for v in vectors:
        if v not in indexed:
            raise HeronError(f"collection {name!r}: vector field {v!r} has no index, and {where} loads a "
                             "collection only when every vector field has one: create_index on the source first")
