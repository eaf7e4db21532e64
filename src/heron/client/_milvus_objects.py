"""pymilvus's own objects, taken where Heron's are: schemas, index params, hybrid requests, rankers.

Code written for `MilvusClient` builds these with pymilvus's classes; the
clients turn each into Heron's form here, at the boundary, before any
request is built. The checks are by shape (attributes and methods pymilvus
2.5 to 3.x share), so Heron never imports pymilvus for this and works
without it. An object of neither kind raises `ParamError` naming the
argument, what it got and what it expects.
"""

from __future__ import annotations

from typing import Any

from .._errors import ParamError, SchemaError
from .._functions import as_function
from .._schema import CollectionSchema, StructFieldSchema
from ._helpers import AnnSearchRequest, IndexParams

#: Field keys of pymilvus's ``FieldSchema.to_dict`` that Heron's `FieldSchema.from_dict` reads.
_FIELD_KEYS = ("name", "description", "params", "is_primary", "auto_id", "nullable",
               "is_partition_key", "is_clustering_key")
#: Field flags pymilvus may set that mean nothing to Heron while false.
_IDLE_FLAGS = ("is_dynamic", "external_field", "mmap_enabled")


def as_schema(schema: Any) -> CollectionSchema:
    """Heron's `CollectionSchema` for ``schema``: Heron's own, or pymilvus's (``CollectionSchema``, ``create_schema()``).

    Schema functions (BM25, text embedding) come along as Heron's
    `Function`; struct fields (pymilvus 3) become Heron's `StructFieldSchema`.
    """
    if isinstance(schema, CollectionSchema):
        return schema
    to_dict = getattr(schema, "to_dict", None)
    if not callable(to_dict) or not hasattr(schema, "fields"):
        raise ParamError(f"schema: got {type(schema).__name__}, expected a CollectionSchema "
                         "(heron's or pymilvus's, e.g. from create_schema())")
    d = to_dict()
    structs = [_struct_dict(x if isinstance(x, dict) else x.to_dict()) for x in d.get("struct_fields") or []]
    out = CollectionSchema.from_dict({
        "fields": [_field_dict(f) for f in d.get("fields") or []] + structs,
        "description": d.get("description") or "",
        "enable_dynamic_field": bool(d.get("enable_dynamic_field", False)),
    })
    for fn in getattr(schema, "functions", None) or d.get("functions") or []:
        out.add_function(as_function(fn))
    out.auto_id = d.get("auto_id")
    return out


def _field_dict(f: dict[str, Any]) -> dict[str, Any]:
    name = f.get("name")
    for flag in _IDLE_FLAGS:
        if f.get(flag):
            raise SchemaError(f"field {name!r}: {flag}={f[flag]!r} is not supported by Heron")
    out = {k: f[k] for k in _FIELD_KEYS if k in f}
    out["type"] = _type_name(f.get("type"))
    if f.get("element_type") is not None:
        out["element_type"] = _type_name(f["element_type"])
    if f.get("default_value") is not None:
        out["default_value"] = _plain_value(f["default_value"])
    return out


def as_struct(struct: Any) -> StructFieldSchema:
    """Heron's `StructFieldSchema` for pymilvus's (by its ``to_dict``)."""
    return StructFieldSchema.from_dict(_struct_dict(struct.to_dict()))


def _struct_dict(st: dict[str, Any]) -> dict[str, Any]:
    """A pymilvus ``StructFieldSchema.to_dict`` as the struct entry `CollectionSchema.from_dict` reads."""
    params = dict(st.get("params") or {})
    params["max_capacity"] = st.get("max_capacity")
    out = {"name": st.get("name"), "description": st.get("description") or "", "type": "ARRAY",
           "element_type": "STRUCT", "params": params,
           "struct_fields": [_field_dict(f if isinstance(f, dict) else f.to_dict()) for f in st.get("fields") or []]}
    if st.get("nullable"):
        out["nullable"] = True
    return out


def _type_name(t: Any) -> Any:
    """A data type by name, so that one pymilvus has and Heron lacks (TEXT, GEOMETRY) is refused by name."""
    return getattr(t, "name", t)


def _plain_value(v: Any) -> Any:
    """A default value as Python: pymilvus keeps it as a protobuf ``ValueField``."""
    which = getattr(v, "WhichOneof", None)
    if not callable(which):
        return v
    kind = which("data")
    return None if kind is None else getattr(v, kind)


def as_index_specs(index_params: Any) -> tuple[dict[str, Any], ...]:
    """The index definitions of ``index_params``: Heron's `IndexParams`, or pymilvus's ``prepare_index_params()``."""
    if isinstance(index_params, IndexParams):
        return index_params.to_specs()
    try:
        items = list(index_params)
    except TypeError:
        items = None
    if items is None or not all(callable(getattr(i, "to_dict", None)) for i in items):
        raise ParamError(f"index_params: got {type(index_params).__name__}, expected prepare_index_params()")
    specs = IndexParams()
    for item in items:
        d = dict(item.to_dict())
        field = d.pop("field_name", "")
        index_type = d.pop("index_type", "") or ""
        index_name = d.pop("index_name", "") or ""
        metric = d.pop("metric_type", "") or ""
        params = dict(d.pop("params", None) or {})
        params.update(d)
        specs.add_index(field, index_type=index_type, index_name=index_name, metric_type=metric, params=params)
    return specs.to_specs()


def as_ann_request(req: Any) -> AnnSearchRequest:
    """Heron's `AnnSearchRequest` for ``req``: Heron's own, or pymilvus's."""
    if isinstance(req, AnnSearchRequest):
        return req
    if not all(hasattr(req, a) for a in ("data", "anns_field", "param", "limit")):
        raise ParamError(f"reqs: got {type(req).__name__}, expected AnnSearchRequest objects")
    return AnnSearchRequest(req.data, req.anns_field, getattr(req, "param", None) or {}, req.limit,
                            expr=getattr(req, "expr", None) or "",
                            expr_params=getattr(req, "expr_params", None) or {})


def as_ranker(ranker: Any) -> dict[str, Any]:
    """A hybrid search's ranker: ``{"strategy", "params"}`` for RRFRanker or WeightedRanker (Heron's or
    pymilvus's), or a function score (see `as_function_score`) for a rerank ``Function``."""
    if _function_dicts(ranker) is not None:
        return as_function_score(ranker)
    as_dict = getattr(ranker, "dict", None)
    if callable(as_dict):
        d = as_dict()
        if isinstance(d, dict) and "strategy" in d:
            return {"strategy": d["strategy"], "params": dict(d.get("params") or {})}
    raise ParamError(f"ranker: got {ranker!r}, expected RRFRanker, WeightedRanker or a rerank Function")


def as_function_score(ranker: Any) -> dict[str, Any]:
    """``{"functions": [...], "params": {...}}`` for a rerank ``Function`` or a ``FunctionScore`` (pymilvus's
    or Heron's, by shape). The engine validates the parameters; this only takes the definitions."""
    functions = _function_dicts(ranker)
    if functions is None:
        raise ParamError(f"ranker: got {ranker!r}, expected a rerank Function or a FunctionScore")
    params = getattr(ranker, "params", None) if hasattr(ranker, "functions") else None
    return {"functions": functions, "params": dict(params or {})}


def _function_dicts(ranker: Any) -> list[dict[str, Any]] | None:
    """The definitions of a rerank ``Function`` (alone or the functions of a ``FunctionScore``), or None."""
    functions = getattr(ranker, "functions", None)
    items = list(functions) if isinstance(functions, (list, tuple)) else [ranker]
    if hasattr(ranker, "dict") or not all(callable(getattr(f, "to_dict", None)) for f in items):
        return None
    out = []
    for f in items:
        d = f.to_dict()
        kind = d.get("type") if isinstance(d, dict) else None
        if getattr(kind, "name", kind) not in ("RERANK", 3) and getattr(kind, "value", kind) != 3:
            raise ParamError(f"ranker: got {f!r}, expected a Function of type FunctionType.RERANK")
        out.append({"name": d.get("name") or "", "type": 3,
                    "input_field_names": list(d.get("input_field_names") or []),
                    "output_field_names": list(d.get("output_field_names") or []),
                    "params": dict(d.get("params") or {})})
    return out
