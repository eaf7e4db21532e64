"""Milvus protobuf ⇄ Heron: schemas, collection descriptions, indexes, key-value lists.

Pure functions, no I/O. Schemas travel inside Heron as the JSON-ready dicts
of `CollectionSchema.to_json_dict`; these functions convert them to and from
`schema_pb2.CollectionSchema` so that a round trip gives back an equal dict.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from .. import _requests as rq
from .._functions import FunctionType
from .._schema import META_FIELD, is_struct_dict
from .._types import DataType
from ..data._timestamptz import format_micros, parse_one
from . import _compat as compat

_INT_PARAMS = ("dim", "max_length", "max_capacity")
_CONSISTENCY = {"Strong": 0, "Session": 1, "Bounded": 2, "Eventually": 3, "Customized": 4}
CONSISTENCY_NAMES = {v: k for k, v in _CONSISTENCY.items()}


# -- key-value lists ----------------------------------------------------------------


def kv_dict(pairs: Any) -> dict[str, str]:
    """A repeated KeyValuePair as a plain dict (later keys win)."""
    return {p.key: p.value for p in pairs}


def kv_pairs(d: dict[str, Any]) -> list[common_pb2.KeyValuePair]:
    """A dict as KeyValuePairs: strings as they are, everything else as JSON."""
    return [
        common_pb2.KeyValuePair(key=str(k), value=v if isinstance(v, str) else json.dumps(v))
        for k, v in d.items()
    ]


def loads_or_str(value: str) -> Any:
    """A KeyValuePair value decoded as JSON when it is JSON, else the string itself."""
    try:
        return json.loads(value)
    except ValueError:
        if value in ("True", "False"):
            return value == "True"
        return value


def consistency_name(level: Any) -> str:
    """A consistency level (number or name) as Heron's name."""
    if isinstance(level, str) and level in _CONSISTENCY:
        return level
    return CONSISTENCY_NAMES.get(int(level or 0), "Strong")


def consistency_number(level: Any) -> int:
    if isinstance(level, int):
        return level
    return _CONSISTENCY.get(str(level), 2)


# -- default values -------------------------------------------------------------------


def _value_field(dtype: DataType, value: Any) -> schema_pb2.ValueField:
    if dtype is DataType.BOOL:
        return schema_pb2.ValueField(bool_data=bool(value))
    if dtype is DataType.INT64:
        return schema_pb2.ValueField(long_data=int(value))
    if dtype.is_integer:
        return schema_pb2.ValueField(int_data=int(value))
    if dtype is DataType.FLOAT:
        return schema_pb2.ValueField(float_data=float(value))
    if dtype is DataType.DOUBLE:
        return schema_pb2.ValueField(double_data=float(value))
    if dtype is DataType.TIMESTAMPTZ and "timestamptz_data" in schema_pb2.ValueField.DESCRIPTOR.fields_by_name:
        us = parse_one(value)  # Milvus describes the default as microseconds
        if us is not None:
            return schema_pb2.ValueField(timestamptz_data=us)
    return schema_pb2.ValueField(string_data=str(value))


def _from_value_field(v: schema_pb2.ValueField) -> Any:
    which = v.WhichOneof("data")
    if which == "timestamptz_data":  # back to the ISO text a schema holds
        return format_micros(np.array([v.timestamptz_data], dtype=np.int64))[0]
    return None if which is None else getattr(v, which)


# -- fields and schemas -----------------------------------------------------------------


def field_to_pb(d: dict[str, Any]) -> schema_pb2.FieldSchema:
    """One field dict (as `FieldSchema.to_dict` gives it) as a protobuf FieldSchema."""
    dtype = DataType(int(d["type"]))
    params = {
        k: (str(v) if not isinstance(v, (dict, list)) else json.dumps(v))
        for k, v in d.get("params", {}).items()
        if k != "mmap_enabled"
    }
    if "mmap_enabled" in d.get("params", {}):  # Milvus's key; `field_from_pb` reads it back as mmap_enabled
        params["mmap.enabled"] = str(bool(d["params"]["mmap_enabled"])).lower()
    f = schema_pb2.FieldSchema(
        fieldID=int(d.get("field_id", 0)),
        name=d["name"],
        is_primary_key=bool(d.get("is_primary", False)),
        description=d.get("description", ""),
        data_type=int(dtype),
        type_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in params.items()],
        autoID=bool(d.get("auto_id", False)),
        element_type=int(d.get("element_type") or 0),
        is_partition_key=bool(d.get("is_partition_key", False)),
        is_clustering_key=bool(d.get("is_clustering_key", False)),
        nullable=bool(d.get("nullable", False)),
        is_function_output=bool(d.get("is_function_output", False)),
    )
    if d.get("default_value") is not None:
        f.default_value.CopyFrom(_value_field(dtype, d["default_value"]))
    return f


def field_from_pb(f: schema_pb2.FieldSchema) -> dict[str, Any]:
    """A protobuf FieldSchema as a field dict that `FieldSchema.from_dict` accepts."""
    params: dict[str, Any] = {}
    for kv in f.type_params:
        if kv.key in _INT_PARAMS:
            params[kv.key] = int(kv.value)
        elif kv.key == "mmap.enabled":
            params["mmap_enabled"] = kv.value.lower() == "true"
        else:
            params[kv.key] = loads_or_str(kv.value) if kv.key == "params" else kv.value
    d: dict[str, Any] = {
        "field_id": int(f.fieldID),
        "name": f.name,
        "description": f.description,
        "type": DataType(f.data_type),
        "params": params,
    }
    if f.element_type:
        d["element_type"] = DataType(f.element_type)
    for key, value in (
        ("is_primary", f.is_primary_key),
        ("auto_id", f.autoID),
        ("nullable", f.nullable),
        ("is_partition_key", f.is_partition_key),
        ("is_clustering_key", f.is_clustering_key),
        ("is_function_output", f.is_function_output),
    ):
        if value:
            d[key] = True
    if f.HasField("default_value"):
        default = _from_value_field(f.default_value)
        if default is not None:
            d["default_value"] = default
    return d


def schema_to_pb(d: dict[str, Any], name: str = "") -> schema_pb2.CollectionSchema:
    """A schema dict as protobuf.

    The dynamic field stays implicit, as Milvus describes it: no ``$meta`` field,
    only ``enable_dynamic_field`` (pymilvus adds the ``$meta`` column itself when
    it sends rows with keys outside the schema).
    """
    fields = [field_to_pb(f) for f in d.get("fields", []) if not is_struct_dict(f)]
    out = schema_pb2.CollectionSchema(
        name=name,
        description=d.get("description", ""),
        autoID=bool(d.get("auto_id", False)),
        fields=fields,
        enable_dynamic_field=bool(d.get("enable_dynamic_field", False)),
        functions=[function_to_pb(fn) for fn in d.get("functions") or []],
    )
    structs = [f for f in d.get("fields", []) if is_struct_dict(f)]
    if structs:
        compat.require_field(out, "struct_array_fields", "a struct array field")
        out.struct_array_fields.extend(struct_to_pb(f) for f in structs)
    return out


def struct_to_pb(d: dict[str, Any]) -> schema_pb2.StructArrayFieldSchema:
    """A struct field dict (``StructFieldSchema.describe``) as Milvus sends it: each sub-field an
    ARRAY (scalars) or ArrayOfVector (vectors) of its type, carrying the struct's max_capacity."""
    params = dict(d.get("params") or {})
    cap = params.pop("max_capacity", None)
    subs = []
    for sub in d.get("struct_fields", []):
        t = DataType(int(sub["type"]))
        f = field_to_pb({**sub, "type": DataType._ARRAY_OF_VECTOR if t.is_vector else DataType.ARRAY,
                         "element_type": t, "params": {**(sub.get("params") or {}), "max_capacity": cap},
                         "nullable": bool(d.get("nullable"))})
        subs.append(f)
    return schema_pb2.StructArrayFieldSchema(
        fieldID=int(d.get("field_id", 0)), name=d["name"], description=d.get("description", ""),
        fields=subs, type_params=kv_pairs(params), nullable=bool(d.get("nullable", False)),
    )


def struct_from_pb(s: schema_pb2.StructArrayFieldSchema) -> dict[str, Any]:
    """A protobuf struct array field as the struct field dict `CollectionSchema.from_dict` reads."""
    subs, cap = [], None
    for f in s.fields:
        sub = field_from_pb(f)
        cap = sub["params"].pop("max_capacity", cap)
        prefix = f"{s.name}["
        if sub["name"].startswith(prefix) and sub["name"].endswith("]"):
            sub["name"] = sub["name"][len(prefix):-1]
        sub["type"] = sub.pop("element_type", sub["type"])
        sub.pop("nullable", None)
        if not sub["params"]:
            del sub["params"]
        subs.append(sub)
    d: dict[str, Any] = {
        "field_id": int(s.fieldID), "name": s.name, "description": s.description, "type": DataType.ARRAY,
        "element_type": DataType.STRUCT, "params": {**kv_dict(s.type_params), "max_capacity": cap},
        "struct_fields": subs,
    }
    if s.nullable:
        d["nullable"] = True
    return d


def schema_from_pb(s: schema_pb2.CollectionSchema) -> dict[str, Any]:
    """A protobuf schema as a schema dict (the ``$meta`` field becomes ``enable_dynamic_field``)."""
    fields = [field_from_pb(f) for f in s.fields if not f.is_dynamic and f.name != META_FIELD]
    if compat.has_field(s, "struct_array_fields"):
        fields += [struct_from_pb(f) for f in s.struct_array_fields]
    auto_id = bool(s.autoID) or any(f.get("auto_id") and f.get("is_primary") for f in fields)
    if auto_id:
        for f in fields:
            if f.get("is_primary"):
                f["auto_id"] = True
    out = {
        "auto_id": auto_id,
        "description": s.description,
        "fields": fields,
        "enable_dynamic_field": bool(s.enable_dynamic_field) or any(f.is_dynamic for f in s.fields),
    }
    if s.functions:
        out["functions"] = [function_from_pb(fn) for fn in s.functions]
    return out


def function_to_pb(d: dict[str, Any]) -> schema_pb2.FunctionSchema:
    """One function dict (as `Function.to_dict` or a description gives it) as a protobuf FunctionSchema.

    Parameters travel as key-value strings, JSON for anything but a string,
    as pymilvus sends them.
    """
    return schema_pb2.FunctionSchema(
        name=d["name"],
        id=int(d.get("id", 0)),
        description=d.get("description", ""),
        type=int(d.get("type", 0)),
        input_field_names=list(d.get("input_field_names") or []),
        input_field_ids=[int(i) for i in d.get("input_field_ids") or []],
        output_field_names=list(d.get("output_field_names") or []),
        output_field_ids=[int(i) for i in d.get("output_field_ids") or []],
        params=kv_pairs(d.get("params") or {}),
    )


def function_from_pb(f: schema_pb2.FunctionSchema) -> dict[str, Any]:
    """A protobuf FunctionSchema as a function dict (numbers and JSON in parameters decoded)."""
    return {
        "name": f.name,
        "id": int(f.id),
        "description": f.description,
        "type": FunctionType(f.type) if f.type in FunctionType._value2member_map_ else int(f.type),
        "params": {kv.key: loads_or_str(kv.value) for kv in f.params},
        "input_field_names": list(f.input_field_names),
        "input_field_ids": list(f.input_field_ids),
        "output_field_names": list(f.output_field_names),
        "output_field_ids": list(f.output_field_ids),
    }


def json_schema(d: dict[str, Any]) -> dict[str, Any]:
    """A schema dict with enum types turned into plain numbers (for requests and the catalog)."""
    out = dict(d)
    out["fields"] = []
    for f in d.get("fields", []):
        f = dict(f)
        f["type"] = int(f["type"])
        if "element_type" in f:
            f["element_type"] = int(f["element_type"])
        if "struct_fields" in f:
            f["struct_fields"] = [{**x, "type": int(x["type"])} for x in f["struct_fields"]]
        out["fields"].append(f)
    if "functions" in d:
        out["functions"] = [{**fn, "type": int(fn["type"])} for fn in d["functions"]]
    return out


# -- collection descriptions ----------------------------------------------------------------


def describe_to_pb(desc: dict[str, Any]) -> milvus_pb2.DescribeCollectionResponse:
    """The engine's description of a collection as a DescribeCollectionResponse."""
    schema = schema_to_pb(
        {
            "auto_id": desc.get("auto_id"),
            "description": desc.get("description", ""),
            "fields": desc["fields"],
            "enable_dynamic_field": desc.get("enable_dynamic_field", False),
            "functions": desc.get("functions") or [],
        },
        desc["collection_name"],
    )
    created = int(desc.get("created_timestamp", 0))
    return milvus_pb2.DescribeCollectionResponse(
        schema=schema,
        collectionID=int(desc.get("collection_id", 0)),
        created_timestamp=created,
        created_utc_timestamp=created >> 18,
        shards_num=int(desc.get("num_shards", 1)),
        aliases=list(desc.get("aliases", [])),
        consistency_level=int(desc.get("consistency_level", 2)),
        collection_name=desc["collection_name"],
        properties=kv_pairs(desc.get("properties", {})),
        db_name=desc.get("db_name", ""),
        num_partitions=int(desc.get("num_partitions", 0)),
        update_timestamp=created,
    )


def describe_from_pb(r: milvus_pb2.DescribeCollectionResponse) -> dict[str, Any]:
    """A DescribeCollectionResponse as the engine's description dict."""
    schema = schema_from_pb(r.schema)
    return {
        "collection_name": r.collection_name or r.schema.name,
        "auto_id": schema["auto_id"],
        "num_shards": int(r.shards_num),
        "description": schema["description"],
        "fields": schema["fields"],
        "functions": schema.get("functions", []),
        "aliases": list(r.aliases),
        "collection_id": int(r.collectionID),
        "consistency_level": int(r.consistency_level),
        "properties": kv_dict(r.properties),
        "num_partitions": int(r.num_partitions),
        "enable_dynamic_field": schema["enable_dynamic_field"],
        "created_timestamp": int(r.created_timestamp),
        "db_name": r.db_name,
    }


def create_collection_from_pb(m: milvus_pb2.CreateCollectionRequest, db: str) -> rq.CreateCollection:
    """The Heron request for a Milvus CreateCollection (its indexes come as separate CreateIndex calls)."""
    schema = json_schema(schema_from_pb(schema_pb2.CollectionSchema.FromString(m.schema)))
    return rq.CreateCollection(
        db,
        m.collection_name,
        schema,
        (),
        consistency_name(m.consistency_level),
        {k: loads_or_str(v) for k, v in kv_dict(m.properties).items()},
        int(m.num_partitions),
    )


def create_collection_to_pb(r: rq.CreateCollection) -> milvus_pb2.CreateCollectionRequest:
    """The Milvus CreateCollection for a Heron request, without its indexes."""
    schema = schema_to_pb(r.schema, r.collection_name).SerializeToString()
    return milvus_pb2.CreateCollectionRequest(
        db_name=r.db_name,
        collection_name=r.collection_name,
        schema=schema,
        shards_num=1,
        consistency_level=consistency_number(r.consistency_level),
        properties=kv_pairs(r.properties),
        num_partitions=r.num_partitions,
    )


# -- indexes ---------------------------------------------------------------------------------


_INDEX_KEYS = ("index_type", "metric_type")


def index_spec_from_pb(field_name: str, index_name: str, extra: Any) -> dict[str, Any]:
    """CreateIndexRequest parameters as one index spec dict (field, name, type, metric, params)."""
    kv = kv_dict(extra)
    params: dict[str, Any] = {}
    if "params" in kv:
        loaded = loads_or_str(kv.pop("params"))
        if isinstance(loaded, dict):
            params.update(loaded)
    for k, v in kv.items():
        if k not in _INDEX_KEYS and k != "index_param":
            params[k] = loads_or_str(v)
    return {
        "field_name": field_name,
        "index_type": kv.get("index_type", "") or "AUTOINDEX",
        "index_name": index_name or field_name,
        "metric_type": kv.get("metric_type", ""),
        "params": params,
    }


def index_spec_to_pb(
    spec: dict[str, Any], db_name: str, collection_name: str
) -> milvus_pb2.CreateIndexRequest:
    extra: dict[str, Any] = {"index_type": spec.get("index_type") or "AUTOINDEX"}
    if spec.get("metric_type"):
        extra["metric_type"] = spec["metric_type"]
    extra["params"] = json.dumps(spec.get("params") or {})
    return milvus_pb2.CreateIndexRequest(
        db_name=db_name,
        collection_name=collection_name,
        field_name=spec["field_name"],
        index_name=spec.get("index_name") or spec["field_name"],
        extra_params=kv_pairs(extra),
    )


def create_index_from_pb(m: milvus_pb2.CreateIndexRequest, db: str) -> rq.CreateIndex:
    """The Heron request for a Milvus CreateIndex (one index per message)."""
    return rq.CreateIndex(
        db, m.collection_name, (index_spec_from_pb(m.field_name, m.index_name, m.extra_params),)
    )


_DESC_KEYS = {"field_name", "index_name", "total_rows", "indexed_rows", "pending_index_rows", "state",
              "index_state_fail_reason"}
_STATES = {"Finished": common_pb2.Finished, "InProgress": common_pb2.InProgress, "Failed": common_pb2.Failed}


def index_description_to_pb(d: dict[str, Any]) -> milvus_pb2.IndexDescription:
    """The engine's `describe_index` dict as an IndexDescription, in Milvus's key layout.

    Milvus lists the build parameters as key-value pairs beside ``index_type``
    and ``metric_type`` (``{"index_type": "HNSW", "M": "16", ...}``), not as one
    nested ``params`` JSON, so pymilvus's ``describe_index`` shows them flat.
    """
    kv: dict[str, Any] = {"index_type": d.get("index_type", ""), "metric_type": d.get("metric_type", "")}
    kv.update({k: v for k, v in d.items() if k not in _DESC_KEYS and k not in _INDEX_KEYS})
    return milvus_pb2.IndexDescription(
        index_name=d["index_name"],
        field_name=d["field_name"],
        params=kv_pairs(kv),
        indexed_rows=int(d.get("indexed_rows", 0)),
        total_rows=int(d.get("total_rows", 0)),
        pending_index_rows=int(d.get("pending_index_rows", 0)),
        state=_STATES.get(d.get("state", "Finished"), common_pb2.InProgress),
        index_state_fail_reason=str(d.get("index_state_fail_reason", "")),
    )


def index_description_from_pb(desc: milvus_pb2.IndexDescription) -> dict[str, Any]:
    """An IndexDescription as the engine's `describe_index` dict (a nested ``params`` JSON is flattened too)."""
    kv = kv_dict(desc.params)
    out: dict[str, Any] = {}
    nested = loads_or_str(kv.pop("params", "{}"))
    if isinstance(nested, dict):
        out.update(nested)
    out.update({k: loads_or_str(v) for k, v in kv.items() if k not in _INDEX_KEYS})
    out.update(
        {
            "index_type": kv.get("index_type", ""),
            "metric_type": kv.get("metric_type", ""),
            "field_name": desc.field_name,
            "index_name": desc.index_name,
            "total_rows": int(desc.total_rows),
            "indexed_rows": int(desc.indexed_rows),
            "pending_index_rows": int(desc.pending_index_rows),
            "state": common_pb2.IndexState.Name(desc.state) if desc.state else "Finished",
        }
    )
    if desc.index_state_fail_reason:
        out["index_state_fail_reason"] = desc.index_state_fail_reason
    return out
