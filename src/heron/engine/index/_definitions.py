"""Index definitions: what an index is (`IndexDef`), validating what users ask for, building per segment.

Vector indexes are delegated to `_vector_index` (faiss and friends), scalar
indexes to the filter package. A definition is validated completely before
it is recorded, so a bad parameter never leaves a half-made index behind.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from ..._errors import ParamError
from ..._schema import CollectionSchema, StructFieldSchema
from ..._types import DataType

#: The key under which the catalog keeps an index's properties beside its build parameters.
PROPERTIES_KEY = "$properties"
SCALAR_INDEX_TYPES = ("INVERTED", "STL_SORT", "TRIE", "BITMAP", "AUTOINDEX", "NGRAM", "RTREE")


@dataclass
class IndexDef:
    """One index as the catalog records it: its name, its field, its type and metric, and their parameters."""

    index_name: str
    field_name: str
    index_type: str
    metric_type: str
    params: dict[str, Any]
    #: Properties that do not change what is built (``mmap.enabled``): set by `alter_index_properties`.
    properties: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, name: str, field_name: str, index_type: str, metric: str, params: str) -> IndexDef:
        """The definition as the catalog row holds it (see `catalog_params`)."""
        stored = json.loads(params)
        props = stored.pop(PROPERTIES_KEY, {})
        return cls(name, field_name, index_type, metric, stored, dict(props))

    def catalog_params(self, properties: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``params`` of the catalog row: the build parameters, and the properties under one reserved key."""
        props = self.properties if properties is None else properties
        return {**self.params, PROPERTIES_KEY: props} if props else dict(self.params)

    @functools.cached_property
    def signature(self) -> tuple[str, str, str]:
        """What an index built for this definition must match to be used."""
        return (self.index_type, self.metric_type, json.dumps(self.params, sort_keys=True))


def normalize_index(schema: CollectionSchema, spec: dict[str, Any]) -> IndexDef:
    """Turn one `IndexParams` entry into a validated `IndexDef`."""
    field_name = spec.get("field_name") or ""
    if "[" in field_name:
        return _emb_list_index(schema, spec, field_name)
    f = schema.field(field_name)
    if f is None:
        raise ParamError(f"index on field {field_name!r}: no such field; fields are {schema.field_names()}")
    index_name = spec.get("index_name") or field_name
    index_type = str(spec.get("index_type") or "AUTOINDEX").upper()
    metric = spec.get("metric_type") or ""
    params = dict(spec.get("params") or {})
    if f.dtype.is_vector:
        from ._vector_index import normalize_index_params

        index_type, metric, params = normalize_index_params(f.dtype, index_type, metric or None, params)
        return IndexDef(index_name, field_name, index_type, metric, params)
    if index_type == "TRIE" and f.dtype is not DataType.VARCHAR:
        raise ParamError(f"index on field {field_name!r}: TRIE needs a VARCHAR field, not {f.dtype.name}")
    if index_type == "STL_SORT" and not (f.dtype.is_numeric or f.dtype in (DataType.VARCHAR, DataType.TIMESTAMPTZ)):
        raise ParamError(f"index on field {field_name!r}: STL_SORT needs a numeric, VARCHAR or TIMESTAMPTZ field")
    if (index_type == "RTREE") != (f.dtype is DataType.GEOMETRY) and index_type != "AUTOINDEX":
        raise ParamError(f"index on field {field_name!r}: {f.dtype.name} takes no {index_type} index"
                         if index_type == "RTREE" else
                         f"index on field {field_name!r}: a GEOMETRY field takes an RTREE index, not {index_type}")
    if index_type not in SCALAR_INDEX_TYPES:
        raise ParamError(
            f"index on field {field_name!r}: index_type {index_type!r} is not a scalar index; "
            f"expected one of {list(SCALAR_INDEX_TYPES)}"
        )
    if metric:
        raise ParamError(f"index on field {field_name!r}: a scalar index takes no metric_type (got {metric!r})")
    return IndexDef(index_name, field_name, index_type, "", params)


#: Index types of a struct's vector sub-field searched with embedding lists, and their metrics.
EMB_LIST_INDEX_TYPES = ("EMB_LIST_HNSW", "HNSW", "AUTOINDEX")
EMB_LIST_METRICS = ("MAX_SIM", "MAX_SIM_COSINE", "MAX_SIM_IP", "MAX_SIM_L2")


def _emb_list_index(schema: CollectionSchema, spec: dict[str, Any], name: str) -> IndexDef:
    """The index of ``struct[sub]``: recorded for its metric (searches of it are exact)."""
    struct, _, sub = name[:-1].partition("[") if name.endswith("]") else ("", "", "")
    f = schema.field(struct)
    s = f.field(sub) if isinstance(f, StructFieldSchema) else None
    if s is None or s.dtype is not DataType.FLOAT_VECTOR:
        raise ParamError(f"index on field {name!r}: no such struct vector sub-field; expected struct[sub] "
                         "naming a FLOAT_VECTOR sub-field")
    index_type = str(spec.get("index_type") or "AUTOINDEX").upper()
    metric = str(spec.get("metric_type") or "MAX_SIM_COSINE").upper()
    if index_type not in EMB_LIST_INDEX_TYPES or metric not in EMB_LIST_METRICS:
        raise ParamError(f"index on field {name!r}: got {index_type} with {metric}; expected index_type one of "
                         f"{list(EMB_LIST_INDEX_TYPES)} and metric_type one of {list(EMB_LIST_METRICS)}")
    return IndexDef(spec.get("index_name") or name, name, index_type, metric, dict(spec.get("params") or {}))


def build_scalar(d: IndexDef, column: Any) -> Any | None:
    """A scalar index for one sealed segment's column, or None where none applies."""
    try:
        from ..filter import build_scalar_index
    except ImportError:
        return None
    if d.index_type == "NGRAM":
        return None
    try:
        return build_scalar_index(d.index_type, column)
    except ParamError:
        return None
