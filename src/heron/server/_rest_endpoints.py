"""The endpoints of the Milvus RESTful API v2: collections, partitions, indexes, aliases, databases, import jobs.

The entities (insert, upsert, delete, query, get, search, hybrid_search)
are in `heron.server._rest_entities`. Each endpoint reads Milvus's body
parameters, builds the request the matching RPC builds, runs it with
`Call.run` under that RPC's name (its privilege), and shapes the answer as
Milvus's REST server does.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import schema_pb2

from .. import _requests as rq
from .._errors import IndexNotFoundError, ParamError
from .._schema import CollectionSchema
from .._types import DataType
from ._rest import Call, Endpoint
from ._rest_entities import ENTITY_ENDPOINTS

#: Milvus's REST name of each load state.
LOAD_STATES = {0: "LoadStateNotExist", 1: "LoadStateNotLoad", 2: "LoadStateLoading", 3: "LoadStateLoaded"}
#: Collection properties by the names Milvus's REST ``params`` give them.
_PROPERTY_NAMES = {"ttlSeconds": "collection.ttl.seconds", "mmapEnabled": "mmap.enabled"}
_CONSISTENCY = {0: "Strong", 1: "Session", 2: "Bounded", 3: "Eventually", 4: "Customized"}


def type_name(dtype: Any) -> str:
    """Milvus's name of a data type (``Int64``, ``FloatVector``, ``VarChar``)."""
    return str(schema_pb2.DataType.Name(int(dtype)))


def data_type(value: Any, key: str) -> DataType:
    """The data type Milvus's REST API names ``value`` (``"Int64"``, ``"FloatVector"``)."""
    if not isinstance(value, str):
        raise ParamError(f"{key}: got {value!r}, expected a data type name such as 'Int64' or 'FloatVector'")
    try:
        return DataType(schema_pb2.DataType.Value(value))
    except ValueError:
        names = ", ".join(n for n in schema_pb2.DataType.keys() if n != "None")
        raise ParamError(f"{key}: got {value!r}, expected one of {names}") from None


# -- collections -------------------------------------------------------------------------------
def _field(spec: Any, i: int) -> tuple[str, DataType, dict[str, Any]]:
    """(name, type, keywords of `CollectionSchema.add_field`) of a REST field definition."""
    if not isinstance(spec, dict):
        raise ParamError(f"schema.fields[{i}]: got {spec!r}, expected an object with fieldName and dataType")
    name = spec.get("fieldName")
    if not isinstance(name, str) or not name:
        raise ParamError(f"schema.fields[{i}].fieldName: got {name!r}, expected a field name")
    kwargs: dict[str, Any] = {"description": str(spec.get("description") or "")}
    params = dict(spec.get("elementTypeParams") or {})
    for key in ("dim", "max_length", "max_capacity"):
        if key in params:
            kwargs[key] = int(params.pop(key))
    kwargs.update(params)
    if spec.get("elementDataType"):
        kwargs["element_type"] = data_type(spec["elementDataType"], f"schema.fields[{i}].elementDataType")
    for rest, ours in (("isPrimary", "is_primary"), ("isPartitionKey", "is_partition_key"),
                       ("isClusteringKey", "is_clustering_key"), ("nullable", "nullable"), ("autoID", "auto_id")):
        if spec.get(rest):
            kwargs[ours] = True
    if "defaultValue" in spec:
        kwargs["default_value"] = spec["defaultValue"]
    return name, data_type(spec.get("dataType"), f"schema.fields[{i}].dataType"), kwargs


def _schema(body: dict[str, Any]) -> CollectionSchema:
    s = body["schema"]
    if not isinstance(s, dict) or not isinstance(s.get("fields"), list):
        raise ParamError(f"schema: got {s!r}, expected an object with a list of fields")
    schema = CollectionSchema(
        auto_id=bool(s.get("autoId", s.get("autoID", False))),
        enable_dynamic_field=bool(s.get("enableDynamicField", False)),
    )
    for i, spec in enumerate(s["fields"]):
        name, dtype, kwargs = _field(spec, i)
        schema.add_field(name, dtype, **kwargs)
    return schema


def _quick_schema(body: dict[str, Any]) -> CollectionSchema:
    dim = body.get("dimension")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ParamError(f"dimension: got {dim!r}, expected a positive integer (or pass schema)")
    params = dict(body.get("params") or {})
    id_type = str(body.get("idType") or "Int64")
    auto_id = bool(body.get("autoID", body.get("autoId", False)))
    schema = CollectionSchema(enable_dynamic_field=bool(params.get("enableDynamicField", True)), auto_id=auto_id)
    pk = str(body.get("primaryFieldName") or "id")
    if data_type(id_type, "idType") == DataType.VARCHAR:
        if auto_id:
            raise ParamError("autoID: needs idType 'Int64'")
        schema.add_field(pk, DataType.VARCHAR, is_primary=True, max_length=int(params.get("max_length", 65535)))
    else:
        schema.add_field(pk, DataType.INT64, is_primary=True, auto_id=auto_id)
    schema.add_field(str(body.get("vectorFieldName") or "vector"), DataType.FLOAT_VECTOR, dim=dim)
    return schema


def index_specs(items: Any, key: str = "indexParams") -> tuple[dict[str, Any], ...]:
    """Heron's index definitions of REST ``indexParams`` (``fieldName``, ``indexName``, ``metricType``, ``params``)."""
    if not isinstance(items, list) or not items:
        raise ParamError(f"{key}: got {items!r}, expected a list of objects with fieldName and metricType")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("fieldName"), str):
            raise ParamError(f"{key}[{i}]: got {item!r}, expected an object with fieldName")
        params = dict(item.get("params") or item.get("indexConfig") or {})
        index_type = str(params.pop("index_type", "") or params.pop("indexType", "") or item.get("indexType") or "")
        out.append({
            "field_name": item["fieldName"], "index_type": index_type or "AUTOINDEX",
            "index_name": str(item.get("indexName") or ""), "metric_type": str(item.get("metricType") or ""),
            "params": params,
        })
    return tuple(out)


async def create_collection(c: Call) -> None:
    name = c.name()
    body = c.body
    if body.get("schema") is not None:
        schema = _schema(body)
        specs = index_specs(body["indexParams"]) if body.get("indexParams") else ()
    else:
        schema = _quick_schema(body)
        vec = str(body.get("vectorFieldName") or "vector")
        specs = ({"field_name": vec, "index_type": "AUTOINDEX", "index_name": vec,
                  "metric_type": str(body.get("metricType") or "COSINE"), "params": {}},)
    schema.validate()
    params = dict(body.get("params") or {})
    level = str(params.pop("consistencyLevel", "Bounded"))
    props = {_PROPERTY_NAMES.get(k) or k: v for k, v in params.items()
             if k not in ("max_length", "enableDynamicField", "shardsNum", "partitionsNum")}
    await c.run("CreateCollection", rq.CreateCollection(
        c.db, name, schema.to_json_dict(), specs, level, props, int(params.get("partitionsNum") or 0)
    ), name)


async def describe_collection(c: Call) -> dict[str, Any]:
    name = c.name()
    d = await c.run("DescribeCollection", rq.DescribeCollection(c.db, name), name)
    indexes = await c.run("DescribeIndex", rq.ListIndexes(c.db, name), name)
    described = [await c.run("DescribeIndex", rq.DescribeIndex(c.db, name, i), name) for i in indexes]
    load = await c.run("GetLoadState", rq.GetLoadState(c.db, name), name)
    fields = []
    for f in d["fields"]:
        params = [{"key": k, "value": str(v)} for k, v in (f.get("params") or {}).items()]
        field = {
            "name": f["name"], "type": type_name(f["type"]), "id": f.get("field_id", 0),
            "description": f.get("description", ""), "primaryKey": bool(f.get("is_primary")),
            "autoId": bool(f.get("auto_id")), "partitionKey": bool(f.get("is_partition_key")),
            "clusteringKey": bool(f.get("is_clustering_key")), "nullable": bool(f.get("nullable")),
            "params": params,
        }
        if f.get("element_type") is not None:
            field["elementType"] = type_name(f["element_type"])
        if "default_value" in f:
            field["defaultValue"] = f["default_value"]
        fields.append(field)
    return {
        "collectionName": d["collection_name"], "collectionID": d["collection_id"], "dbName": c.db,
        "description": d.get("description", ""), "autoId": bool(d.get("auto_id")),
        "enableDynamicField": bool(d.get("enable_dynamic_field")), "fields": fields,
        "functions": d.get("functions") or [], "aliases": list(d.get("aliases") or []),
        "indexes": [{"fieldName": i["field_name"], "indexName": i["index_name"], "metricType": i["metric_type"]}
                    for i in described],
        "load": LOAD_STATES.get(int(load["state"]), str(load["state"])),
        "partitionsNum": d.get("num_partitions", 1), "shardsNum": d.get("num_shards", 1),
        "consistencyLevel": _CONSISTENCY.get(d.get("consistency_level", 2), "Bounded"),
        "properties": [{"key": k, "value": str(v)} for k, v in (d.get("properties") or {}).items()],
    }


async def list_collections(c: Call) -> list[str]:
    return list(await c.run("ShowCollections", rq.ListCollections(c.db)))


async def has_collection(c: Call) -> dict[str, Any]:
    name = c.name()
    return {"has": bool(await c.run("HasCollection", rq.HasCollection(c.db, name), name))}


async def drop_collection(c: Call) -> None:
    name = c.name()
    await c.run("DropCollection", rq.DropCollection(c.db, name), name)


async def collection_stats(c: Call) -> dict[str, Any]:
    name = c.name()
    stats = await c.run("GetCollectionStatistics", rq.GetCollectionStats(c.db, name), name)
    return {"rowCount": int(stats["row_count"])}


async def load_collection(c: Call) -> None:
    name = c.name()
    await c.run("LoadCollection", rq.LoadCollection(c.db, name), name)


async def release_collection(c: Call) -> None:
    name = c.name()
    await c.run("ReleaseCollection", rq.ReleaseCollection(c.db, name), name)


async def load_state(c: Call) -> dict[str, Any]:
    name = c.name()
    st = await c.run("GetLoadState", rq.GetLoadState(c.db, name, c.names("partitionNames")), name)
    state = LOAD_STATES.get(int(st["state"]), str(st["state"]))
    return {"loadState": state, "loadProgress": 100 if state == "LoadStateLoaded" else 0}


async def rename_collection(c: Call) -> None:
    name = c.name()
    new = c.name("newCollectionName")
    await c.run("RenameCollection", rq.RenameCollection(c.db, name, new, c.name("newDbName", False)), name)


async def flush_collection(c: Call) -> None:
    name = c.name()
    await c.run("Flush", rq.Flush(c.db, name), name)


async def compact_collection(c: Call) -> dict[str, Any]:
    name = c.name()
    return {"compactionID": await c.run("ManualCompaction", rq.Compact(c.db, name), name)}


def _keys(c: Call, key: str) -> tuple[str, ...]:
    return c.names(key)


async def alter_collection_properties(c: Call) -> None:
    name = c.name()
    req = rq.AlterCollectionProperties(c.db, name, _properties(c))
    await c.run("AlterCollection", req, name)


async def drop_collection_properties(c: Call) -> None:
    name = c.name()
    req = rq.AlterCollectionProperties(c.db, name, {}, _keys(c, "propertyKeys"))
    await c.run("AlterCollection", req, name)


async def alter_field_properties(c: Call) -> None:
    name = c.name()
    req = rq.AlterCollectionField(c.db, name, c.name("fieldName"), dict(c.body.get("fieldParams") or {}))
    await c.run("AlterCollectionField", req, name)


async def alter_index_properties(c: Call) -> None:
    name = c.name()
    req = rq.AlterIndexProperties(c.db, name, c.name("indexName"), _properties(c))
    await c.run("AlterIndex", req, name)


async def drop_index_properties(c: Call) -> None:
    name = c.name()
    req = rq.AlterIndexProperties(c.db, name, c.name("indexName"), {}, _keys(c, "propertyKeys"))
    await c.run("AlterIndex", req, name)


# -- partitions --------------------------------------------------------------------------------
async def list_partitions(c: Call) -> list[str]:
    name = c.name()
    return list(await c.run("ShowPartitions", rq.ListPartitions(c.db, name), name))


async def create_partition(c: Call) -> None:
    name = c.name()
    await c.run("CreatePartition", rq.CreatePartition(c.db, name, c.name("partitionName")), name)


async def drop_partition(c: Call) -> None:
    name = c.name()
    await c.run("DropPartition", rq.DropPartition(c.db, name, c.name("partitionName")), name)


async def has_partition(c: Call) -> dict[str, Any]:
    name = c.name()
    return {"has": bool(await c.run("HasPartition", rq.HasPartition(c.db, name, c.name("partitionName")), name))}


async def load_partitions(c: Call) -> None:
    name = c.name()
    await c.run("LoadPartitions", rq.LoadPartitions(c.db, name, c.names("partitionNames")), name)


async def release_partitions(c: Call) -> None:
    name = c.name()
    await c.run("ReleasePartitions", rq.ReleasePartitions(c.db, name, c.names("partitionNames")), name)


async def partition_stats(c: Call) -> dict[str, Any]:
    name = c.name()
    req = rq.GetPartitionStats(c.db, name, c.name("partitionName"))
    return {"rowCount": int((await c.run("GetPartitionStatistics", req, name))["row_count"])}


# -- indexes -----------------------------------------------------------------------------------
async def create_index(c: Call) -> None:
    name = c.name()
    await c.run("CreateIndex", rq.CreateIndex(c.db, name, index_specs(c.body.get("indexParams"))), name)


async def describe_index(c: Call) -> list[dict[str, Any]]:
    name = c.name()
    index = c.name("indexName")
    d = await c.run("DescribeIndex", rq.DescribeIndex(c.db, name, index), name)
    if d is None:  # pymilvus answers None; Milvus's REST server an error
        raise IndexNotFoundError(f"index not found[collection={name}][index={index}]")
    return [{
        "indexName": d["index_name"], "fieldName": d["field_name"], "indexType": d["index_type"],
        "metricType": d["metric_type"], "indexState": d["state"], "totalRows": d["total_rows"],
        "indexedRows": d["indexed_rows"], "pendingRows": d["pending_index_rows"], "failReason": "",
    }]


async def list_indexes(c: Call) -> list[str]:
    name = c.name()
    return list(await c.run("DescribeIndex", rq.ListIndexes(c.db, name), name))


async def drop_index(c: Call) -> None:
    name = c.name()
    await c.run("DropIndex", rq.DropIndex(c.db, name, c.name("indexName")), name)


# -- aliases -----------------------------------------------------------------------------------
async def list_aliases(c: Call) -> list[str]:
    name = c.name(required=False)
    return list((await c.run("ListAliases", rq.ListAliases(c.db, name), name))["aliases"])


async def create_alias(c: Call) -> None:
    name = c.name()
    await c.run("CreateAlias", rq.CreateAlias(c.db, name, c.name("aliasName")), name)


async def alter_alias(c: Call) -> None:
    name = c.name()
    await c.run("AlterAlias", rq.AlterAlias(c.db, name, c.name("aliasName")), name)


async def describe_alias(c: Call) -> dict[str, Any]:
    d = await c.run("DescribeAlias", rq.DescribeAlias(c.db, c.name("aliasName")))
    return {"aliasName": d["alias"], "collectionName": d["collection_name"], "dbName": d["db_name"]}


async def drop_alias(c: Call) -> None:
    await c.run("DropAlias", rq.DropAlias(c.db, c.name("aliasName")))


# -- databases ---------------------------------------------------------------------------------
def _properties(c: Call) -> dict[str, Any]:
    props = c.body.get("properties") or {}
    if not isinstance(props, dict):
        raise ParamError(f"properties: got {props!r}, expected an object")
    return dict(props)


async def list_databases(c: Call) -> list[str]:
    return list(await c.run("ListDatabases", rq.ListDatabases()))


async def create_database(c: Call) -> None:
    await c.run("CreateDatabase", rq.CreateDatabase(c.name("dbName"), _properties(c)))


async def drop_database(c: Call) -> None:
    await c.run("DropDatabase", rq.DropDatabase(c.name("dbName")))


async def describe_database(c: Call) -> dict[str, Any]:
    d = dict(await c.run("DescribeDatabase", rq.DescribeDatabase(c.name("dbName"))))
    name = d.pop("name", c.db)
    d.pop("db_name", None)
    db_id = d.pop("db_id", d.pop("id", 0))
    props = d.pop("properties", d)
    return {"dbName": name, "dbID": db_id, "properties": [{"key": k, "value": str(v)} for k, v in props.items()]}


async def alter_database(c: Call) -> None:
    await c.run("AlterDatabase", rq.AlterDatabase(c.name("dbName"), _properties(c)))


async def drop_database_properties(c: Call) -> None:
    await c.run("AlterDatabase", rq.AlterDatabase(c.name("dbName"), {}, _keys(c, "propertyKeys")))


# -- import jobs -------------------------------------------------------------------------------
def _files(c: Call) -> tuple[str, ...]:
    """The body's ``files`` (a list of lists of paths on the server's machine), flattened."""
    groups = c.body.get("files")
    if not isinstance(groups, list) or not groups or not all(
            isinstance(g, list) and g and all(isinstance(f, str) for f in g) for g in groups):
        raise ParamError(f"files: got {groups!r}, expected a list of lists of file paths on the server's machine, "
                         "such as [[\"a.parquet\"], [\"cols/id.npy\", \"cols/vec.npy\"]]")
    if sum(1 for g in groups if g[0].endswith(".npy")) > 1:
        raise ParamError("files: one set of numpy files per import job; give the others in a job of their own")
    return tuple(f for g in groups for f in g)


async def import_create(c: Call) -> dict[str, Any]:
    options = {str(k): str(v) for k, v in dict(c.body.get("options") or {}).items()}
    name = c.name()
    job = await c.run("Import", rq.ImportFiles(c.db, name, _files(c), c.name("partitionName", False), options), name)
    return {"jobId": str(job)}


def _job_id(c: Call) -> int:
    raw = c.body.get("jobId")
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ParamError(f"jobId: got {raw!r}, expected the id /jobs/import/create answered") from None


def _job(j: dict[str, Any]) -> dict[str, Any]:
    return {"jobId": str(j["job_id"]), "collectionName": j["collection_name"], "state": j["state_name"],
            "progress": j["progress"], "reason": j["reason"]}


async def import_progress(c: Call) -> dict[str, Any]:
    j = await c.run("GetImportState", rq.GetImportProgress(_job_id(c)))
    details = [{"fileName": ",".join(g), "progress": j["progress"], "state": j["state_name"]} for g in j["files"]]
    return {**_job(j), "importedRows": j["imported_rows"], "totalRows": j["imported_rows"], "details": details}


async def import_list(c: Call) -> dict[str, Any]:
    name = c.name(required=False)
    jobs = await c.run("ListImportTasks", rq.ListImports(c.db, name), name)
    return {"records": [_job(j) for j in jobs]}


V2 = "/v2/vectordb"
ENDPOINTS: dict[str, Endpoint] = {
    f"{V2}/collections/create": create_collection,
    f"{V2}/collections/describe": describe_collection,
    f"{V2}/collections/list": list_collections,
    f"{V2}/collections/has": has_collection,
    f"{V2}/collections/drop": drop_collection,
    f"{V2}/collections/get_stats": collection_stats,
    f"{V2}/collections/load": load_collection,
    f"{V2}/collections/release": release_collection,
    f"{V2}/collections/get_load_state": load_state,
    f"{V2}/collections/rename": rename_collection,
    f"{V2}/collections/flush": flush_collection,
    f"{V2}/collections/compact": compact_collection,
    f"{V2}/collections/alter_properties": alter_collection_properties,
    f"{V2}/collections/drop_properties": drop_collection_properties,
    f"{V2}/collections/fields/alter_properties": alter_field_properties,
    f"{V2}/indexes/alter_properties": alter_index_properties,
    f"{V2}/indexes/drop_properties": drop_index_properties,
    f"{V2}/databases/drop_properties": drop_database_properties,
    f"{V2}/partitions/list": list_partitions,
    f"{V2}/partitions/create": create_partition,
    f"{V2}/partitions/drop": drop_partition,
    f"{V2}/partitions/has": has_partition,
    f"{V2}/partitions/load": load_partitions,
    f"{V2}/partitions/release": release_partitions,
    f"{V2}/partitions/get_stats": partition_stats,
    f"{V2}/indexes/create": create_index,
    f"{V2}/indexes/describe": describe_index,
    f"{V2}/indexes/list": list_indexes,
    f"{V2}/indexes/drop": drop_index,
    f"{V2}/aliases/list": list_aliases,
    f"{V2}/aliases/create": create_alias,
    f"{V2}/aliases/alter": alter_alias,
    f"{V2}/aliases/describe": describe_alias,
    f"{V2}/aliases/drop": drop_alias,
    f"{V2}/databases/list": list_databases,
    f"{V2}/databases/create": create_database,
    f"{V2}/databases/drop": drop_database,
    f"{V2}/databases/describe": describe_database,
    f"{V2}/databases/alter": alter_database,
    f"{V2}/jobs/import/create": import_create,
    f"{V2}/jobs/import/get_progress": import_progress,
    f"{V2}/jobs/import/describe": import_progress,
    f"{V2}/jobs/import/list": import_list,
    **{f"{V2}/entities/{action}": fn for action, fn in ENTITY_ENDPOINTS.items()},
}
