"""The codec table: per Milvus RPC, how its messages translate to and from Heron requests and results.

Pure translation, no sockets and no engine: the server decodes each Milvus
request into a `heron._requests` object, the engine runs it, and the
server encodes the answer; Heron's remote transport does the mirror image
(`heron.wire._client`). `CODECS` holds, per RPC, the request type it
carries and the four functions of that translation; data operations live in
`heron.wire._query`, schemas and indexes in `heron.wire._schema`; what a
message asks for that is not one engine request, in `heron.wire._composite`.

Every function that needs a collection's schema gets it through a
``schema(collection_name)`` callable, so that nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from .. import _errors
from .. import _requests as rq
from .._schema import CollectionSchema
from .._types import LoadState
from .._version import __version__
from . import _query as wq
from . import _schema as ws
from . import _text as wt
from ._compaction import compact_from_pb, compact_to_pb
from ._composite import Const, DescribeIndexes, Sequence, timestamp

SchemaFn = Callable[[str], CollectionSchema]


@dataclass(frozen=True)
class Codec:
    """One RPC: the Heron request type a client sends with it, and the four translations.

    ``carries`` is None for RPCs only the server answers (pymilvus makes them, a Heron
    client does not). decode(msg, db, schema) → Heron request (server);
    encode(result, request, schema) → reply (server); request(r, schema) → Milvus
    message (client); result(reply, r) → the engine's answer shape (client).
    """

    rpc: str
    carries: type | None
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


def _flush_reply(result: Any, r: Any, schema: SchemaFn) -> milvus_pb2.FlushResponse:
    return milvus_pb2.FlushResponse(db_name=r.requests[0].db_name if r.requests else "")


def _connect_reply(result: Any, r: Any, schema: SchemaFn) -> milvus_pb2.ConnectResponse:
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
    return {"name": reply.db_name, **ws.kv_dict(reply.properties)}  # the strings Milvus keeps, as pymilvus shows them


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
            rq.CreateDatabase,
            lambda m, db, s: rq.CreateDatabase(
                m.db_name, {k: ws.loads_or_str(v) for k, v in ws.kv_dict(m.properties).items()}
            ),
            _ok,
            lambda r, s: C.CreateDatabaseRequest(db_name=r.db_name, properties=ws.kv_pairs(r.properties)),
            _none,
        ),
        Codec(
            "DropDatabase",
            rq.DropDatabase,
            lambda m, db, s: rq.DropDatabase(m.db_name),
            _ok,
            lambda r, s: C.DropDatabaseRequest(db_name=r.db_name),
            _none,
        ),
        Codec(
            "ListDatabases",
            rq.ListDatabases,
            lambda m, db, s: rq.ListDatabases(),
            lambda res, r, s: C.ListDatabasesResponse(db_names=res),
            lambda r, s: C.ListDatabasesRequest(),
            lambda reply, r: list(reply.db_names),
        ),
        Codec(
            "DescribeDatabase",
            rq.DescribeDatabase,
            lambda m, db, s: rq.DescribeDatabase(m.db_name or db),
            _db_reply,
            lambda r, s: C.DescribeDatabaseRequest(db_name=r.db_name),
            _db_from,
        ),
        # collections
        Codec(
            "CreateCollection",
            rq.CreateCollection,
            lambda m, db, s: ws.create_collection_from_pb(m, db),
            _ok,
            lambda r, s: ws.create_collection_to_pb(r),
            _none,
        ),
        Codec(
            "DropCollection",
            rq.DropCollection,
            lambda m, db, s: rq.DropCollection(db, m.collection_name),
            _ok,
            lambda r, s: C.DropCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "HasCollection",
            rq.HasCollection,
            lambda m, db, s: rq.HasCollection(db, m.collection_name),
            _bool,
            lambda r, s: C.HasCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _bool_from,
        ),
        Codec(
            "DescribeCollection",
            rq.DescribeCollection,
            lambda m, db, s: rq.DescribeCollection(db, m.collection_name),
            lambda res, r, s: ws.describe_to_pb(res),
            lambda r, s: C.DescribeCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            lambda reply, r: ws.describe_from_pb(reply),
        ),
        Codec(
            "ShowCollections",
            rq.ListCollections,
            lambda m, db, s: rq.ListCollections(db),
            lambda res, r, s: C.ShowCollectionsResponse(collection_names=res),
            lambda r, s: C.ShowCollectionsRequest(db_name=r.db_name),
            lambda reply, r: list(reply.collection_names),
        ),
        Codec(
            "RenameCollection",
            rq.RenameCollection,
            lambda m, db, s: rq.RenameCollection(db, m.oldName, m.newName, m.newDBName),
            _ok,
            lambda r, s: C.RenameCollectionRequest(
                db_name=r.db_name, oldName=r.old_name, newName=r.new_name, newDBName=r.target_db
            ),
            _none,
        ),
        Codec(
            "GetCollectionStatistics",
            rq.GetCollectionStats,
            lambda m, db, s: rq.GetCollectionStats(db, m.collection_name),
            lambda res, r, s: C.GetCollectionStatisticsResponse(stats=_stats(res, r, s)),
            lambda r, s: C.GetCollectionStatisticsRequest(
                db_name=r.db_name, collection_name=r.collection_name
            ),
            _stats_from,
        ),
        Codec(
            "TruncateCollection",
            rq.TruncateCollection,
            lambda m, db, s: rq.TruncateCollection(db, m.collection_name),
            lambda res, r, s: C.TruncateCollectionResponse(),
            lambda r, s: C.TruncateCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "AlterCollection",
            rq.AlterCollectionProperties,
            lambda m, db, s: rq.AlterCollectionProperties(
                db,
                m.collection_name,
                ws.kv_dict(m.properties),  # kept as the strings sent, as Milvus keeps them
                tuple(getattr(m, "delete_keys", ())),  # drop_collection_properties; absent before 2.5
            ),
            _ok,
            lambda r, s: C.AlterCollectionRequest(
                db_name=r.db_name,
                collection_name=r.collection_name,
                properties=ws.kv_pairs(r.properties),
                **({"delete_keys": list(r.delete_keys)} if r.delete_keys else {}),
            ),
            _none,
        ),
        # partitions
        Codec(
            "CreatePartition",
            rq.CreatePartition,
            lambda m, db, s: rq.CreatePartition(db, m.collection_name, m.partition_name),
            _ok,
            lambda r, s: C.CreatePartitionRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _none,
        ),
        Codec(
            "DropPartition",
            rq.DropPartition,
            lambda m, db, s: rq.DropPartition(db, m.collection_name, m.partition_name),
            _ok,
            lambda r, s: C.DropPartitionRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _none,
        ),
        Codec(
            "HasPartition",
            rq.HasPartition,
            lambda m, db, s: rq.HasPartition(db, m.collection_name, m.partition_name),
            _bool,
            lambda r, s: C.HasPartitionRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_name=r.partition_name
            ),
            _bool_from,
        ),
        Codec(
            "ShowPartitions",
            rq.ListPartitions,
            lambda m, db, s: rq.ListPartitions(db, m.collection_name),
            lambda res, r, s: C.ShowPartitionsResponse(
                partition_names=res, inMemory_percentages=[100] * len(res)
            ),
            lambda r, s: C.ShowPartitionsRequest(db_name=r.db_name, collection_name=r.collection_name),
            lambda reply, r: list(reply.partition_names),
        ),
        Codec(
            "GetPartitionStatistics",
            rq.GetPartitionStats,
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
            rq.LoadCollection,
            lambda m, db, s: rq.LoadCollection(db, m.collection_name),
            _ok,
            lambda r, s: C.LoadCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "ReleaseCollection",
            rq.ReleaseCollection,
            lambda m, db, s: rq.ReleaseCollection(db, m.collection_name),
            _ok,
            lambda r, s: C.ReleaseCollectionRequest(db_name=r.db_name, collection_name=r.collection_name),
            _none,
        ),
        Codec(
            "LoadPartitions",
            rq.LoadPartitions,
            lambda m, db, s: rq.LoadPartitions(db, m.collection_name, tuple(m.partition_names)),
            _ok,
            lambda r, s: C.LoadPartitionsRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_names=list(r.partition_names)
            ),
            _none,
        ),
        Codec(
            "ReleasePartitions",
            rq.ReleasePartitions,
            lambda m, db, s: rq.ReleasePartitions(db, m.collection_name, tuple(m.partition_names)),
            _ok,
            lambda r, s: C.ReleasePartitionsRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_names=list(r.partition_names)
            ),
            _none,
        ),
        Codec(
            "GetLoadState",
            rq.GetLoadState,
            lambda m, db, s: rq.GetLoadState(db, m.collection_name, tuple(m.partition_names)),
            _load_state,
            lambda r, s: C.GetLoadStateRequest(
                db_name=r.db_name, collection_name=r.collection_name, partition_names=list(r.partition_names)
            ),
            lambda reply, r: {"state": LoadState(reply.state)},
        ),
        Codec(
            "GetLoadingProgress",
            None,
            lambda m, db, s: rq.GetLoadState(db, m.collection_name, tuple(m.partition_names)),
            _progress,
        ),
        # indexes
        Codec(
            "CreateIndex",
            rq.CreateIndex,
            lambda m, db, s: ws.create_index_from_pb(m, db),
            _ok,
            lambda r, s: ws.index_spec_to_pb(r.indexes[0], r.db_name, r.collection_name),
            _none,
        ),
        Codec(
            "DescribeIndex",
            rq.DescribeIndex,
            _describe_index_decode,
            _describe_index_reply,
            lambda r, s: C.DescribeIndexRequest(
                db_name=r.db_name, collection_name=r.collection_name, index_name=r.index_name
            ),
            lambda reply, r: ws.index_description_from_pb(reply.index_descriptions[0]),
        ),
        Codec(
            "DropIndex",
            rq.DropIndex,
            lambda m, db, s: rq.DropIndex(db, m.collection_name, m.index_name or m.field_name),
            _ok,
            lambda r, s: C.DropIndexRequest(
                db_name=r.db_name, collection_name=r.collection_name, index_name=r.index_name
            ),
            _none,
        ),
        Codec(
            "GetIndexState",
            None,
            lambda m, db, s: rq.DescribeIndex(db, m.collection_name, m.index_name or m.field_name),
            lambda res, r, s: C.GetIndexStateResponse(
                state=ws.index_description_to_pb(res).state, fail_reason=res.get("index_state_fail_reason", "")
            ),
        ),
        Codec(
            "GetIndexBuildProgress",
            None,
            lambda m, db, s: rq.DescribeIndex(db, m.collection_name, m.index_name or m.field_name),
            lambda res, r, s: C.GetIndexBuildProgressResponse(
                indexed_rows=res["indexed_rows"], total_rows=res["total_rows"]
            ),
        ),
        # aliases
        Codec(
            "CreateAlias",
            rq.CreateAlias,
            lambda m, db, s: rq.CreateAlias(db, m.collection_name, m.alias),
            _ok,
            lambda r, s: C.CreateAliasRequest(
                db_name=r.db_name, collection_name=r.collection_name, alias=r.alias
            ),
            _none,
        ),
        Codec(
            "DropAlias",
            rq.DropAlias,
            lambda m, db, s: rq.DropAlias(db, m.alias),
            _ok,
            lambda r, s: C.DropAliasRequest(db_name=r.db_name, alias=r.alias),
            _none,
        ),
        Codec(
            "AlterAlias",
            rq.AlterAlias,
            lambda m, db, s: rq.AlterAlias(db, m.collection_name, m.alias),
            _ok,
            lambda r, s: C.AlterAliasRequest(
                db_name=r.db_name, collection_name=r.collection_name, alias=r.alias
            ),
            _none,
        ),
        Codec(
            "DescribeAlias",
            rq.DescribeAlias,
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
            rq.ListAliases,
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
            rq.Insert,
            _insert_decode(False),
            lambda res, r, s: wq.mutation_result_to_pb(res),
            lambda r, s: wq.insert_to_pb(r, s(r.collection_name)),
            wq.insert_result_from_pb,
        ),
        Codec(
            "Upsert",
            rq.Insert,
            _insert_decode(True),
            lambda res, r, s: wq.mutation_result_to_pb(res),
            lambda r, s: wq.insert_to_pb(r, s(r.collection_name)),
            wq.insert_result_from_pb,
        ),
        Codec(
            "Delete",
            rq.Delete,
            lambda m, db, s: wq.delete_from_pb(m, db, s(m.collection_name)),
            lambda res, r, s: wq.mutation_result_to_pb(res),
            lambda r, s: wq.delete_to_pb(r, _pk(s, r)),
            wq.delete_result_from_pb,
        ),
        Codec(
            "Query",
            rq.Query,
            lambda m, db, s: wq.query_from_pb(m, db, s(m.collection_name)),
            lambda res, r, s: wq.query_result_to_pb(res, r, s(r.collection_name)),
            lambda r, s: wq.query_to_pb(r, _pk(s, r)),
            wq.query_result_from_pb,
        ),
        Codec(
            "Search",
            rq.Search,
            lambda m, db, s: wq.search_from_pb(m, db),
            lambda res, r, s: wq.search_result_to_pb(res, r, s(r.collection_name)),
            lambda r, s: wq.search_to_pb(r),
            wq.search_result_from_pb,
        ),
        Codec(
            "HybridSearch",
            rq.HybridSearch,
            lambda m, db, s: wq.hybrid_from_pb(m, db),
            lambda res, r, s: wq.search_result_to_pb(res, r, s(r.collection_name)),
            lambda r, s: wq.hybrid_to_pb(r),
            wq.search_result_from_pb,
        ),
        Codec(
            "Flush",
            rq.Flush,
            lambda m, db, s: Sequence(tuple(rq.Flush(db, n) for n in m.collection_names)),
            _flush_reply,
            lambda r, s: C.FlushRequest(db_name=r.db_name, collection_names=[r.collection_name]),
            _none,
        ),
        Codec(
            "GetFlushState",
            None,
            _const(lambda m: True),
            lambda res, r, s: C.GetFlushStateResponse(flushed=True),
        ),
        Codec(
            "ManualCompaction",
            rq.Compact,
            compact_from_pb,
            lambda res, r, s: C.ManualCompactionResponse(compactionID=int(res or 0)),
            compact_to_pb,
            lambda reply, r: int(reply.compactionID),
        ),
        Codec(
            "GetCompactionState",
            None,
            _const(lambda m: None),
            lambda res, r, s: C.GetCompactionStateResponse(state=common_pb2.Completed),
        ),
        Codec(
            "RunAnalyzer",
            rq.RunAnalyzer,
            lambda m, db, s: wt.run_analyzer_from_pb(m, db),
            lambda res, r, s: wt.tokens_to_pb(res),
            lambda r, s: wt.run_analyzer_to_pb(r),
            wt.tokens_from_pb,
        ),
        # server
        Codec("Connect", None, _const(lambda m: None), _connect_reply),
        Codec(
            "GetVersion",
            None,
            _const(lambda m: None),
            lambda res, r, s: C.GetVersionResponse(version=_version()),
        ),
        Codec(
            "CheckHealth",
            None,
            _const(lambda m: None),
            lambda res, r, s: C.CheckHealthResponse(isHealthy=True),
        ),
        Codec(
            "AllocTimestamp",
            None,
            _const(lambda m: timestamp()),
            lambda res, r, s: C.AllocTimestampResponse(timestamp=res),
        ),
    ]
}


def _version() -> str:
    return f"v{__version__}"
