"""Milvus protobuf ⇄ Heron request and result objects: the one table both sides use.

Pure translation, no sockets and no engine: the server decodes each Milvus
request into a `heron._requests` object, the engine runs it, and the
server encodes the answer; Heron's remote transport does the mirror image.
`CODECS` holds, per RPC, the four functions of that translation; data
operations live in `_wire_query`, schemas and indexes in `_wire_schema`.

Every function that needs a collection's schema gets it through a
``schema(collection_name)`` callable, so that nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from google.protobuf import message_factory
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from .. import _errors
from .. import _requests as rq
from .._errors import HeronError
from .._schema import CollectionSchema
from .._types import LoadState
from . import _query as wq
from . import _schema as ws

SchemaFn = Callable[[str], CollectionSchema]
SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


def response_class(rpc: str) -> Any:
    """The protobuf class an RPC of MilvusService answers with."""
    return message_factory.GetMessageClass(SERVICE.methods_by_name[rpc].output_type)


def request_class(rpc: str) -> Any:
    return message_factory.GetMessageClass(SERVICE.methods_by_name[rpc].input_type)


# -- requests answered without the engine ------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    """A request whose answer is known without the engine (version, health, timestamps)."""

    value: Any = None

    def run(self, execute: Callable[[Any], Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class DescribeIndexes:
    """Milvus's DescribeIndex with no index name: every index of a collection (optionally of one field)."""

    db_name: str
    collection_name: str
    field_name: str = ""

    def run(self, execute: Callable[[Any], Any]) -> list[dict[str, Any]]:
        names = execute(rq.ListIndexes(self.db_name, self.collection_name, self.field_name))
        return [execute(rq.DescribeIndex(self.db_name, self.collection_name, n)) for n in names]


@dataclass(frozen=True)
class Sequence:
    """Several engine requests run in order (Milvus sends some operations as one message)."""

    requests: tuple[Any, ...] = field(default_factory=tuple)

    def run(self, execute: Callable[[Any], Any]) -> list[Any]:
        return [execute(r) for r in self.requests]


def timestamp() -> int:
    """A hybrid timestamp in Milvus's layout (milliseconds << 18)."""
    return int(time.time() * 1000) << 18


# -- status ⇄ errors -----------------------------------------------------------------------------------

#: Heron error class → Milvus legacy error_code (the numeric ``code`` is the error's own).
_LEGACY = {
    _errors.CollectionNotFoundError: common_pb2.CollectionNotExists,
    _errors.IndexNotFoundError: common_pb2.IndexNotExist,
    _errors.ParamError: common_pb2.IllegalArgument,
    _errors.PermissionDeniedError: common_pb2.PermissionDenied,
    _errors.ServerBusyError: common_pb2.RateLimit,
}
_BY_CODE = {
    100: _errors.CollectionNotFoundError,
    101: _errors.CollectionNotLoadedError,
    200: _errors.PartitionNotFoundError,
    700: _errors.IndexNotFoundError,
    800: _errors.DatabaseNotFoundError,
    1600: _errors.AliasNotFoundError,
    65535: _errors.AlreadyExistsError,
    1100: _errors.ParamError,
    3: _errors.PermissionDeniedError,
    1800: _errors.AuthenticationError,
    8: _errors.ServerBusyError,
}


def status_of(exc: BaseException) -> common_pb2.Status:
    """The Milvus Status for an exception; the Heron class name rides along in ``extra_info``."""
    if not isinstance(exc, HeronError):
        return common_pb2.Status(
            code=1,
            error_code=common_pb2.UnexpectedError,
            reason=f"internal error: {type(exc).__name__}: {exc}",
        )
    legacy = next((v for k, v in _LEGACY.items() if isinstance(exc, k)), common_pb2.UnexpectedError)
    return common_pb2.Status(
        code=int(exc.code),
        error_code=legacy,
        reason=exc.message,
        extra_info={"heron_error": type(exc).__name__},
    )


def error_of(status: common_pb2.Status) -> HeronError | None:
    """The Heron exception a non-success Status stands for, or None for success."""
    if status.code == 0 and status.error_code == common_pb2.Success:
        return None
    name = status.extra_info.get("heron_error", "")
    cls = getattr(_errors, name, None) if name else None
    if not (isinstance(cls, type) and issubclass(cls, HeronError)):
        cls = _BY_CODE.get(status.code)
        if cls is None and status.error_code == common_pb2.CollectionNotExists:
            cls = _errors.CollectionNotFoundError
    if cls is None:
        return HeronError(status.reason or f"error code {status.code}", code=int(status.code or 1))
    if cls is _errors.FilterError:
        return _errors.FilterError(status.reason)
    err = cls(status.reason)
    if status.code and status.code != err.code:
        err.code = int(status.code)
    return err


# -- the codec table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """The four translations of one RPC.

    decode(msg, db, schema) → Heron request (server); encode(result, request, schema) → reply (server);
    request(r, schema) → Milvus message (client); result(reply, r) → the engine's answer shape (client).
    """

    rpc: str
    decode: Callable[[Any, str, SchemaFn], Any]
    encode: Callable[[Any, Any, SchemaFn], Any]
    request: Callable[[Any, SchemaFn], Any] | None = None
    result: Callable[[Any, Any], Any] | None = None


def _ok(result: Any, r: Any, schema: SchemaFn) -> common_pb2.Status:
    return common_pb2.Status()


def _none(reply: Any, r: Any) -> None:
    return None


def _bool(result: Any, r: Any, schema: SchemaFn) -> milvus_pb2.BoolResponse:
    return milvus_pb2.BoolResponse(value=bool(result))


def _bool_from(reply: Any, r: Any) -> bool:
    return bool(reply.value)


def _stats(result: dict[str, Any], r: Any, schema: SchemaFn) -> Any:
    return ws.kv_pairs({k: str(v) for k, v in result.items()})


def _stats_from(reply: Any, r: Any) -> dict[str, Any]:
    return {k: int(v) if v.lstrip("-").isdigit() else v for k, v in ws.kv_dict(reply.stats).items()}


def _load_state(result: dict[str, Any], r: Any, schema: SchemaFn) -> milvus_pb2.GetLoadStateResponse:
    return milvus_pb2.GetLoadStateResponse(state=int(result["state"]))


def _progress(result: dict[str, Any], r: Any, schema: SchemaFn) -> milvus_pb2.GetLoadingProgressResponse:
    done = 100 if int(result["state"]) == LoadState.Loaded else 0
    return milvus_pb2.GetLoadingProgressResponse(progress=done, refresh_progress=done)


def _describe_index_reply(result: Any, r: Any, schema: SchemaFn) -> milvus_pb2.DescribeIndexResponse:
    descs = result if isinstance(result, list) else [result]
    if isinstance(r, DescribeIndexes) and not descs:
        raise _errors.IndexNotFoundError(f"collection {r.collection_name!r} has no index")
    return milvus_pb2.DescribeIndexResponse(index_descriptions=[ws.index_description_to_pb(d) for d in descs])


def _describe_index_decode(m: Any, db: str, s: SchemaFn) -> Any:
    if m.index_name:
        return rq.DescribeIndex(db, m.collection_name, m.index_name)
    return DescribeIndexes(db, m.collection_name, m.field_name)


def _index_names_from(reply: Any, r: Any) -> list[str]:
    return [d.index_name for d in reply.index_descriptions]


def _create_collection_decode(m: Any, db: str, s: SchemaFn) -> rq.CreateCollection:
    schema = ws.json_schema(ws.schema_from_pb(schema_pb2.CollectionSchema.FromString(m.schema)))
    return rq.CreateCollection(
        db,
        m.collection_name,
        schema,
        (),
        ws.consistency_name(m.consistency_level),
        {k: ws.loads_or_str(v) for k, v in ws.kv_dict(m.properties).items()},
        int(m.num_partitions),
    )


def _create_collection_request(r: rq.CreateCollection, s: SchemaFn) -> Any:
    schema = ws.schema_to_pb(r.schema, r.collection_name).SerializeToString()
    return milvus_pb2.CreateCollectionRequest(
        db_name=r.db_name,
        collection_name=r.collection_name,
        schema=schema,
        shards_num=1,
        consistency_level=ws.consistency_number(r.consistency_level),
        properties=ws.kv_pairs(r.properties),
        num_partitions=r.num_partitions,
    )


def _create_index_decode(m: Any, db: str, s: SchemaFn) -> rq.CreateIndex:
    return rq.CreateIndex(
        db, m.collection_name, (ws.index_spec_from_pb(m.field_name, m.index_name, m.extra_params),)
    )


def _flush_reply(result: Any, r: Any, schema: SchemaFn) -> milvus_pb2.FlushResponse:
    return milvus_pb2.FlushResponse(db_name=r.requests[0].db_name if r.requests else "")


def _connect_reply(result: Any, r: Any, schema: SchemaFn) -> milvus_pb2.ConnectResponse:
    from .. import __version__

    info = common_pb2.ServerInfo(
        build_tags=f"heron-{__version__}", deploy_mode="STANDALONE", reserved={"server_type": "heron"}
    )
    return milvus_pb2.ConnectResponse(server_info=info, identifier=int(time.time() * 1000) & 0x7FFFFFFF)


def _const(fn: Callable[[Any], Any]) -> Callable[[Any, str, SchemaFn], Const]:
    return lambda m, db, s: Const(fn(m))


def _alias_reply(result: dict[str, Any], r: Any, s: SchemaFn) -> milvus_pb2.DescribeAliasResponse:
    return milvus_pb2.DescribeAliasResponse(
        db_name=result.get("db_name", ""), alias=result["alias"], collection=result["collection_name"]
    )


def _aliases_reply(result: dict[str, Any], r: Any, s: SchemaFn) -> milvus_pb2.ListAliasesResponse:
    return milvus_pb2.ListAliasesResponse(
        db_name=result.get("db_name", ""),
        aliases=result["aliases"],
        collection_name=result.get("collection_name", ""),
    )


def _db_reply(result: dict[str, Any], r: Any, s: SchemaFn) -> milvus_pb2.DescribeDatabaseResponse:
    props = {k: v for k, v in result.items() if k != "name"}
    return milvus_pb2.DescribeDatabaseResponse(db_name=result["name"], properties=ws.kv_pairs(props))


def _db_from(reply: Any, r: Any) -> dict[str, Any]:
    return {"name": reply.db_name, **{k: ws.loads_or_str(v) for k, v in ws.kv_dict(reply.properties).items()}}


def _insert_decode(upsert: bool) -> Callable[[Any, str, SchemaFn], rq.Insert]:
    return lambda m, db, s: wq.insert_from_pb(m, db, s(m.collection_name), upsert)


def _pk(s: SchemaFn, r: Any) -> str:
    return s(r.collection_name).primary_field.name


C = milvus_pb2
CODECS: dict[str, Codec] = {
    c.rpc: c
    for c in [
        # databases
        Codec(
            "CreateDatabase",
            lambda m, db, s: rq.CreateDatabase(
                m.db_name, {k: ws.loads_or_str(v) for k, v in ws.kv_dict(m.properties).items()}
            ),
            _ok,
            lambda r, s: C.CreateDatabaseRequest(db_name=r.db_name, properties=ws.kv_pairs(r.properties)),
            _none,
        ),
        Codec(
            "DropDatabase",
            lambda m, db, s: rq.DropDatabase(m.db_name),
            _ok,
            lambda r, s: C.DropDatabaseRequest(db_name=r.db_name),
            _none,
        ),
        Codec(
            "ListDatabases",
            lambda m, db, s: rq.ListDatabases(),
            lambda res, r, s: C.ListDatabasesResponse(db_names=res),
            lambda r, s: C.ListDatabasesRequest(),
            lambda reply, r: list(reply.db_names),
        ),
        Codec(
            "DescribeDatabase",
            lambda m, db, s: rq.DescribeDatabase(m.db_name or db),
            _db_reply,
            lambda r, s: C.DescribeDatabaseRequest(db_name=r.db_name),
            _db_from,
        ),
        # collections
        Codec("CreateCollection", _create_collection_decode, _ok, _create_collection_request, _none),
        Codec(
            "DropCollection",
            lambda m, db, s: rq.DropCollection(db, m.collection_name),
            _ok,
            lambda r, s: C.DropCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "HasCollection",
            lambda m, db, s: rq.HasCollection(db, m.collection_name),
            _bool,
            lambda r, s: C.HasCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _bool_from,
        ),
        Codec(
            "DescribeCollection",
            lambda m, db, s: rq.DescribeCollection(db, m.collection_name),
            lambda res, r, s: ws.describe_to_pb(res),
            lambda r, s: C.DescribeCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            lambda reply, r: ws.describe_from_pb(reply),
        ),
        Codec(
            "ShowCollections",
            lambda m, db, s: rq.ListCollections(db),
            lambda res, r, s: C.ShowCollectionsResponse(collection_names=res),
            lambda r, s: C.ShowCollectionsRequest(db_name=r.db_name),
            lambda reply, r: list(reply.collection_names),
        ),
        Codec(
            "RenameCollection",
            lambda m, db, s: rq.RenameCollection(db, m.oldName, m.newName, m.newDBName),
            _ok,
            lambda r, s: C.RenameCollectionRequest(
                db_name=r.db_name, oldName=r.old_name, newName=r.new_name, newDBName=r.target_db
            ),
            _none,
        ),
        Codec(
            "GetCollectionStatistics",
            lambda m, db, s: rq.GetCollectionStats(db, m.collection_name),
            lambda res, r, s: C.GetCollectionStatisticsResponse(stats=_stats(res, r, s)),
            lambda r, s: C.GetCollectionStatisticsRequest(
                db_name=r.db_name, collection_name=r.collection_name
            ),
            _stats_from,
        ),
        Codec(
            "TruncateCollection",
            lambda m, db, s: rq.TruncateCollection(db, m.collection_name),
            lambda res, r, s: C.TruncateCollectionResponse(),
            lambda r, s: C.TruncateCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "AlterCollection",
            lambda m, db, s: rq.AlterCollectionProperties(
                db, m.collection_name, {k: ws.loads_or_str(v) for k, v in ws.kv_dict(m.properties).items()}
            ),
            _ok,
            lambda r, s: C.AlterCollectionRequest(
                db_name=r.db_name, collection_name=r.collection_name, properties=ws.kv_pairs(r.properties)
            ),
            _none,
        ),
        # partitions
        Codec(
            "CreatePartition",
            lambda m, db, s: rq.CreatePartition(db, m.collection_name, m.partition_name),
            _ok,
            lambda r, s: C.CreatePartitionRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _none,
        ),
        Codec(
            "DropPartition",
            lambda m, db, s: rq.DropPartition(db, m.collection_name, m.partition_name),
            _ok,
            lambda r, s: C.DropPartitionRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _none,
        ),
        Codec(
            "HasPartition",
            lambda m, db, s: rq.HasPartition(db, m.collection_name, m.partition_name),
            _bool,
            lambda r, s: C.HasPartitionRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _bool_from,
        ),
        Codec(
            "ShowPartitions",
            lambda m, db, s: rq.ListPartitions(db, m.collection_name),
            lambda res, r, s: C.ShowPartitionsResponse(
                partition_names=res, inMemory_percentages=[100] * len(res)
            ),
            lambda r, s: C.ShowPartitionsRequest(db_name=r.db_name, collection_name=r.collection_name),
            lambda reply, r: list(reply.partition_names),
        ),
        Codec(
            "GetPartitionStatistics",
            lambda m, db, s: rq.GetPartitionStats(db, m.collection_name, m.partition_name),
            lambda res, r, s: C.GetPartitionStatisticsResponse(stats=_stats(res, r, s)),
            lambda r, s: C.GetPartitionStatisticsRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _stats_from,
        ),
        # load state
        Codec(
            "LoadCollection",
            lambda m, db, s: rq.LoadCollection(db, m.collection_name),
            _ok,
            lambda r, s: C.LoadCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "ReleaseCollection",
            lambda m, db, s: rq.ReleaseCollection(db, m.collection_name),
            _ok,
            lambda r, s: C.ReleaseCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "LoadPartitions",
            lambda m, db, s: rq.LoadPartitions(db, m.collection_name, tuple(m.partition_names)),
            _ok,
            lambda r, s: C.LoadPartitionsRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_names=list(r.partition_names)
            ),
            _none,
        ),
        Codec(
            "ReleasePartitions",
            lambda m, db, s: rq.ReleasePartitions(db, m.collection_name, tuple(m.partition_names)),
            _ok,
            lambda r, s: C.ReleasePartitionsRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_names=list(r.partition_names)
            ),
            _none,
        ),
        Codec(
            "GetLoadState",
            lambda m, db, s: rq.GetLoadState(db, m.collection_name, tuple(m.partition_names)),
            _load_state,
            lambda r, s: C.GetLoadStateRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_names=list(r.partition_names)
            ),
            lambda reply, r: {"state": LoadState(reply.state)},
        ),
        Codec(
            "GetLoadingProgress",
            lambda m, db, s: rq.GetLoadState(db, m.collection_name, tuple(m.partition_names)),
            _progress,
        ),
        # indexes
        Codec(
            "CreateIndex",
            _create_index_decode,
            _ok,
            lambda r, s: ws.index_spec_to_pb(r.indexes[0], r.db_name, r.collection_name),
            _none,
        ),
        Codec("DescribeIndex", _describe_index_decode, _describe_index_reply),
        Codec(
            "DropIndex",
            lambda m, db, s: rq.DropIndex(db, m.collection_name, m.index_name or m.field_name),
            _ok,
            lambda r, s: C.DropIndexRequest(
                db_name=r.db_name, collection_name=r.collection_name, index_name=r.index_name
            ),
            _none,
        ),
        Codec(
            "GetIndexState",
            lambda m, db, s: rq.DescribeIndex(db, m.collection_name, m.index_name or m.field_name),
            lambda res, r, s: C.GetIndexStateResponse(state=common_pb2.Finished),
        ),
        Codec(
            "GetIndexBuildProgress",
            lambda m, db, s: rq.DescribeIndex(db, m.collection_name, m.index_name or m.field_name),
            lambda res, r, s: C.GetIndexBuildProgressResponse(
                indexed_rows=res["indexed_rows"], total_rows=res["total_rows"]
            ),
        ),
        # aliases
        Codec(
            "CreateAlias",
            lambda m, db, s: rq.CreateAlias(db, m.collection_name, m.alias),
            _ok,
            lambda r, s: C.CreateAliasRequest(
                db_name=r.db_name, collection_name=r.collection_name, alias=r.alias
            ),
            _none,
        ),
        Codec(
            "DropAlias",
            lambda m, db, s: rq.DropAlias(db, m.alias),
            _ok,
            lambda r, s: C.DropAliasRequest(db_name=r.db_name, alias=r.alias),
            _none,
        ),
        Codec(
            "AlterAlias",
            lambda m, db, s: rq.AlterAlias(db, m.collection_name, m.alias),
            _ok,
            lambda r, s: C.AlterAliasRequest(
                db_name=r.db_name, collection_name=r.collection_name, alias=r.alias
            ),
            _none,
        ),
        Codec(
            "DescribeAlias",
            lambda m, db, s: rq.DescribeAlias(db, m.alias),
            _alias_reply,
            lambda r, s: C.DescribeAliasRequest(db_name=r.db_name, alias=r.alias),
            lambda reply, r: {
                "alias": reply.alias,
                "collection_name": reply.collection,
                "db_name": reply.db_name,
            },
        ),
        Codec(
            "ListAliases",
            lambda m, db, s: rq.ListAliases(db, m.collection_name),
            _aliases_reply,
            lambda r, s: C.ListAliasesRequest(db_name=r.db_name, collection_name=r.collection_name),
            lambda reply, r: {
                "aliases": list(reply.aliases),
                "collection_name": reply.collection_name,
                "db_name": reply.db_name,
            },
        ),
        # data
        Codec(
            "Insert",
            _insert_decode(False),
            lambda res, r, s: wq.mutation_result_to_pb(res),
            lambda r, s: wq.insert_to_pb(r, s(r.collection_name)),
            wq.insert_result_from_pb,
        ),
        Codec(
            "Upsert",
            _insert_decode(True),
            lambda res, r, s: wq.mutation_result_to_pb(res),
            lambda r, s: wq.insert_to_pb(r, s(r.collection_name)),
            wq.insert_result_from_pb,
        ),
        Codec(
            "Delete",
            lambda m, db, s: wq.delete_from_pb(m, db, s(m.collection_name)),
            lambda res, r, s: wq.mutation_result_to_pb(res),
            lambda r, s: wq.delete_to_pb(r, _pk(s, r)),
            wq.delete_result_from_pb,
        ),
        Codec(
            "Query",
            lambda m, db, s: wq.query_from_pb(m, db, s(m.collection_name)),
            lambda res, r, s: wq.query_result_to_pb(res, r, s(r.collection_name)),
            lambda r, s: wq.query_to_pb(r, _pk(s, r)),
            wq.query_result_from_pb,
        ),
        Codec(
            "Search",
            lambda m, db, s: wq.search_from_pb(m, db),
            lambda res, r, s: wq.search_result_to_pb(res, r, s(r.collection_name)),
            lambda r, s: wq.search_to_pb(r),
            wq.search_result_from_pb,
        ),
        Codec(
            "HybridSearch",
            lambda m, db, s: wq.hybrid_from_pb(m, db),
            lambda res, r, s: wq.search_result_to_pb(res, r, s(r.collection_name)),
            lambda r, s: wq.hybrid_to_pb(r),
            wq.search_result_from_pb,
        ),
        Codec(
            "Flush",
            lambda m, db, s: Sequence(tuple(rq.Flush(db, n) for n in m.collection_names)),
            _flush_reply,
        ),
        Codec(
            "GetFlushState", _const(lambda m: True), lambda res, r, s: C.GetFlushStateResponse(flushed=True)
        ),
        Codec(
            "ManualCompaction",
            lambda m, db, s: rq.Compact(db, m.collection_name),
            lambda res, r, s: C.ManualCompactionResponse(compactionID=int(res or 0)),
            lambda r, s: C.ManualCompactionRequest(db_name=r.db_name, collection_name=r.collection_name),
            lambda reply, r: int(reply.compactionID),
        ),
        Codec(
            "GetCompactionState",
            _const(lambda m: None),
            lambda res, r, s: C.GetCompactionStateResponse(state=common_pb2.Completed),
        ),
        # server
        Codec("Connect", _const(lambda m: None), _connect_reply),
        Codec(
            "GetVersion", _const(lambda m: None), lambda res, r, s: C.GetVersionResponse(version=_version())
        ),
        Codec("CheckHealth", _const(lambda m: None), lambda res, r, s: C.CheckHealthResponse(isHealthy=True)),
        Codec(
            "AllocTimestamp",
            _const(lambda m: timestamp()),
            lambda res, r, s: C.AllocTimestampResponse(timestamp=res),
        ),
    ]
}


def _version() -> str:
    from .. import __version__

    return f"v{__version__}"


#: Client side: Heron request class → the RPC that carries it.
RPC_OF: dict[type, str] = {
    rq.CreateDatabase: "CreateDatabase",
    rq.DropDatabase: "DropDatabase",
    rq.ListDatabases: "ListDatabases",
    rq.DescribeDatabase: "DescribeDatabase",
    rq.CreateCollection: "CreateCollection",
    rq.DropCollection: "DropCollection",
    rq.HasCollection: "HasCollection",
    rq.DescribeCollection: "DescribeCollection",
    rq.ListCollections: "ShowCollections",
    rq.RenameCollection: "RenameCollection",
    rq.GetCollectionStats: "GetCollectionStatistics",
    rq.TruncateCollection: "TruncateCollection",
    rq.AlterCollectionProperties: "AlterCollection",
    rq.CreatePartition: "CreatePartition",
    rq.DropPartition: "DropPartition",
    rq.HasPartition: "HasPartition",
    rq.ListPartitions: "ShowPartitions",
    rq.GetPartitionStats: "GetPartitionStatistics",
    rq.LoadCollection: "LoadCollection",
    rq.ReleaseCollection: "ReleaseCollection",
    rq.LoadPartitions: "LoadPartitions",
    rq.ReleasePartitions: "ReleasePartitions",
    rq.GetLoadState: "GetLoadState",
    rq.CreateIndex: "CreateIndex",
    rq.DropIndex: "DropIndex",
    rq.CreateAlias: "CreateAlias",
    rq.DropAlias: "DropAlias",
    rq.AlterAlias: "AlterAlias",
    rq.DescribeAlias: "DescribeAlias",
    rq.ListAliases: "ListAliases",
    rq.Delete: "Delete",
    rq.Query: "Query",
    rq.Search: "Search",
    rq.HybridSearch: "HybridSearch",
    rq.Compact: "ManualCompaction",
}

#: Requests that change nothing, so a client may resend them after a dropped connection.
READ_ONLY: frozenset[type] = frozenset(
    {
        rq.ListDatabases,
        rq.DescribeDatabase,
        rq.HasCollection,
        rq.DescribeCollection,
        rq.ListCollections,
        rq.GetCollectionStats,
        rq.HasPartition,
        rq.ListPartitions,
        rq.GetPartitionStats,
        rq.GetLoadState,
        rq.ListIndexes,
        rq.DescribeIndex,
        rq.DescribeAlias,
        rq.ListAliases,
        rq.Query,
        rq.Search,
        rq.HybridSearch,
    }
)


def client_messages(r: Any, schema: SchemaFn) -> list[tuple[str, Any]]:
    """The Milvus calls that carry one Heron request, in order (most requests need exactly one)."""
    if isinstance(r, rq.Insert):
        return [
            (
                "Upsert" if r.upsert else "Insert",
                CODECS["Upsert" if r.upsert else "Insert"].request(r, schema),  # type: ignore[misc]
            )
        ]
    if isinstance(r, rq.CreateCollection) and r.index_params:
        bare = CODECS["CreateCollection"].request(replace(r, index_params=()), schema)  # type: ignore[misc]
        indexes = [
            ("CreateIndex", ws.index_spec_to_pb(spec, r.db_name, r.collection_name))
            for spec in r.index_params
        ]
        load = C.LoadCollectionRequest(db_name=r.db_name, collection_name=r.collection_name)
        return [("CreateCollection", bare), *indexes, ("LoadCollection", load)]
    if isinstance(r, rq.CreateIndex):
        return [
            ("CreateIndex", ws.index_spec_to_pb(spec, r.db_name, r.collection_name)) for spec in r.indexes
        ]
    if isinstance(r, rq.Flush):
        return [("Flush", C.FlushRequest(db_name=r.db_name, collection_names=[r.collection_name]))]
    if isinstance(r, (rq.ListIndexes, rq.DescribeIndex)):
        name = r.index_name if isinstance(r, rq.DescribeIndex) else ""
        field_name = r.field_name if isinstance(r, rq.ListIndexes) else ""
        return [
            (
                "DescribeIndex",
                C.DescribeIndexRequest(
                    db_name=r.db_name,
                    collection_name=r.collection_name,
                    index_name=name,
                    field_name=field_name,
                ),
            )
        ]
    rpc = RPC_OF.get(type(r))
    if rpc is None:
        raise _errors.ParamError(f"{type(r).__name__} cannot be sent to a server")
    return [(rpc, CODECS[rpc].request(r, schema))]  # type: ignore[misc]


def client_result(r: Any, rpc: str, reply: Any) -> Any:
    """The engine-shaped answer to ``r`` from the reply of its (last) Milvus call."""
    if isinstance(r, rq.ListIndexes):
        return _index_names_from(reply, r)
    if isinstance(r, rq.DescribeIndex):
        return ws.index_description_from_pb(reply.index_descriptions[0])
    if isinstance(r, (rq.CreateIndex, rq.Flush, rq.CreateCollection)):
        return None
    codec = CODECS[rpc]
    return codec.result(reply, r) if codec.result else None


def reply_status(reply: Any) -> common_pb2.Status:
    return reply if isinstance(reply, common_pb2.Status) else reply.status


def db_of(msg: Any, metadata_db: str) -> str:
    """The database a Milvus request targets: its own ``db_name`` field, else the ``dbname`` header."""
    own = getattr(msg, "db_name", "") if hasattr(msg, "db_name") else ""
    return own or metadata_db or "default"
