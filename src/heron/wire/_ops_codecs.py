"""Codecs of the operations RPCs: schema evolution, field and index properties, flushing every collection.

Importing this module adds its codecs to `heron.wire._codecs.CODECS` (the
one table the server and the remote client read); `heron.wire` imports it
before anything reads the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from .. import _errors
from .. import _requests as rq
from .._types import LoadState
from . import _schema as ws
from ._codecs import CODECS, Codec, SchemaFn
from ._composite import Const as _Const

C = milvus_pb2


def _ok(result: Any, r: Any, schema: SchemaFn) -> common_pb2.Status:
    return common_pb2.Status()


def _none(reply: Any, r: Any) -> None:
    return None


def _alter_schema_decode(m: Any, db: str, s: SchemaFn) -> Any:
    """AlterCollectionSchema (pymilvus 3): one field added, or one field dropped."""
    action = m.action
    if action.HasField("drop_request"):
        drop = action.drop_request
        if drop.function_name:
            raise _errors.ParamError(f"function {drop.function_name!r}: collection functions cannot be dropped "
                                     "by AlterCollectionSchema here; expected a field to drop")
        return rq.DropCollectionField(db, m.collection_name, drop.field_name, int(drop.field_id))
    infos = list(action.add_request.field_infos)
    if action.add_request.func_schema or len(infos) != 1:
        raise _errors.ParamError(f"AlterCollectionSchema: got {len(infos)} fields and "
                                 f"{len(action.add_request.func_schema)} functions; expected one field to add")
    return rq.AddCollectionField(db, m.collection_name, ws.field_from_pb(infos[0].field_schema))


def _drop_field_request(r: rq.DropCollectionField, s: SchemaFn) -> Any:
    which = {"field_name": r.field_name} if r.field_name else {"field_id": r.field_id}  # a oneof
    drop = C.AlterCollectionSchemaRequest.DropRequest(**which)
    return C.AlterCollectionSchemaRequest(db_name=r.db_name, collection_name=r.collection_name,
                                          action=C.AlterCollectionSchemaRequest.Action(drop_request=drop))


def _index_props_decode(m: Any, db: str, s: SchemaFn) -> rq.AlterIndexProperties:
    props = {k: ws.loads_or_str(v) for k, v in ws.kv_dict(m.extra_params).items()}
    return rq.AlterIndexProperties(db, m.collection_name, m.index_name, props, tuple(m.delete_keys))


def _index_props_request(r: rq.AlterIndexProperties, s: SchemaFn) -> Any:
    return C.AlterIndexRequest(db_name=r.db_name, collection_name=r.collection_name, index_name=r.index_name,
                               extra_params=ws.kv_pairs(r.properties), delete_keys=list(r.delete_keys))


def _field_props_request(r: rq.AlterCollectionField, s: SchemaFn) -> Any:
    props = [common_pb2.KeyValuePair(key=k, value=str(v)) for k, v in r.properties.items()]
    return C.AlterCollectionFieldRequest(db_name=r.db_name, collection_name=r.collection_name,
                                         field_name=r.field_name, properties=props, delete_keys=list(r.delete_keys))


OPS_CODECS = [
    Codec(
        "AddCollectionField",
        rq.AddCollectionField,
        lambda m, db, s: rq.AddCollectionField(
            db, m.collection_name, ws.field_from_pb(schema_pb2.FieldSchema.FromString(m.schema))),
        _ok,
        lambda r, s: C.AddCollectionFieldRequest(db_name=r.db_name, collection_name=r.collection_name,
                                                 schema=ws.field_to_pb(r.field).SerializeToString()),
        _none,
    ),
    Codec(
        "AlterCollectionSchema",
        rq.DropCollectionField,
        _alter_schema_decode,
        lambda res, r, s: C.AlterCollectionSchemaResponse(alter_status=common_pb2.Status()),
        _drop_field_request,
        _none,
    ),
    Codec(
        "AlterCollectionField",
        rq.AlterCollectionField,
        lambda m, db, s: rq.AlterCollectionField(db, m.collection_name, m.field_name, ws.kv_dict(m.properties),
                                                 tuple(m.delete_keys)),
        _ok,
        _field_props_request,
        _none,
    ),
    Codec("AlterIndex", rq.AlterIndexProperties, _index_props_decode, _ok, _index_props_request, _none),
]

CODECS.update({c.rpc: c for c in OPS_CODECS})


def _job_to_pb(j: dict[str, Any]) -> Any:
    return C.RestoreSnapshotInfo(job_id=j["job_id"], snapshot_name=j["snapshot_name"], db_name=j["db_name"],
                                 collection_name=j["collection_name"],
                                 state=C.RestoreSnapshotState.Value(j["state"]), progress=j["progress"],
                                 reason=j["reason"], start_time=j["start_time"], time_cost=j["time_cost"])


def _job_from_pb(info: Any) -> dict[str, Any]:
    return {"job_id": int(info.job_id), "snapshot_name": info.snapshot_name, "db_name": info.db_name,
            "collection_name": info.collection_name, "state": C.RestoreSnapshotState.Name(info.state),
            "progress": int(info.progress), "reason": info.reason, "start_time": int(info.start_time),
            "time_cost": int(info.time_cost)}


SNAPSHOT_CODECS = [
    Codec(
        "CreateSnapshot",
        rq.CreateSnapshot,
        lambda m, db, s: rq.CreateSnapshot(db, m.collection_name, m.name, m.description),
        _ok,
        lambda r, s: C.CreateSnapshotRequest(db_name=r.db_name, collection_name=r.collection_name,
                                             name=r.snapshot_name, description=r.description),
        _none,
    ),
    Codec(
        "DropSnapshot",
        rq.DropSnapshot,
        lambda m, db, s: rq.DropSnapshot(db, m.collection_name, m.name),
        _ok,
        lambda r, s: C.DropSnapshotRequest(db_name=r.db_name, collection_name=r.collection_name,
                                           name=r.snapshot_name),
        _none,
    ),
    Codec(
        "ListSnapshots",
        rq.ListSnapshots,
        lambda m, db, s: rq.ListSnapshots(db, m.collection_name),
        lambda res, r, s: C.ListSnapshotsResponse(snapshots=res),
        lambda r, s: C.ListSnapshotsRequest(db_name=r.db_name, collection_name=r.collection_name),
        lambda reply, r: list(reply.snapshots),
    ),
    Codec(
        "DescribeSnapshot",
        rq.DescribeSnapshot,
        lambda m, db, s: rq.DescribeSnapshot(db, m.collection_name, m.name),
        lambda res, r, s: C.DescribeSnapshotResponse(**res),
        lambda r, s: C.DescribeSnapshotRequest(db_name=r.db_name, collection_name=r.collection_name,
                                               name=r.snapshot_name),
        lambda reply, r: {"name": reply.name, "description": reply.description,
                          "collection_name": reply.collection_name, "partition_names": list(reply.partition_names),
                          "create_ts": int(reply.create_ts), "s3_location": reply.s3_location},
    ),
    Codec(
        "RestoreSnapshot",
        rq.RestoreSnapshot,
        lambda m, db, s: rq.RestoreSnapshot(db, m.collection_name, m.name, m.target_collection_name,
                                            m.target_db_name),
        lambda res, r, s: C.RestoreSnapshotResponse(job_id=int(res)),
        lambda r, s: C.RestoreSnapshotRequest(db_name=r.db_name, collection_name=r.collection_name,
                                              name=r.snapshot_name, target_collection_name=r.target_collection_name,
                                              target_db_name=r.target_db_name),
        lambda reply, r: int(reply.job_id),
    ),
    Codec(
        "GetRestoreSnapshotState",
        rq.GetRestoreSnapshotState,
        lambda m, db, s: rq.GetRestoreSnapshotState(int(m.job_id)),
        lambda res, r, s: C.GetRestoreSnapshotStateResponse(info=_job_to_pb(res)),
        lambda r, s: C.GetRestoreSnapshotStateRequest(job_id=r.job_id),
        lambda reply, r: _job_from_pb(reply.info),
    ),
    Codec(
        "ListRestoreSnapshotJobs",
        rq.ListRestoreSnapshotJobs,
        lambda m, db, s: rq.ListRestoreSnapshotJobs(db, m.collection_name),
        lambda res, r, s: C.ListRestoreSnapshotJobsResponse(jobs=[_job_to_pb(j) for j in res]),
        lambda r, s: C.ListRestoreSnapshotJobsRequest(db_name=r.db_name, collection_name=r.collection_name),
        lambda reply, r: [_job_from_pb(j) for j in reply.jobs],
    ),
    Codec(
        "PinSnapshotData",
        rq.PinSnapshotData,
        lambda m, db, s: rq.PinSnapshotData(db, m.collection_name, m.name, int(m.ttl_seconds)),
        lambda res, r, s: C.PinSnapshotDataResponse(pin_id=int(res)),
        lambda r, s: C.PinSnapshotDataRequest(db_name=r.db_name, collection_name=r.collection_name,
                                              name=r.snapshot_name, ttl_seconds=r.ttl_seconds),
        lambda reply, r: int(reply.pin_id),
    ),
    Codec(
        "UnpinSnapshotData",
        rq.UnpinSnapshotData,
        lambda m, db, s: rq.UnpinSnapshotData(int(m.pin_id)),
        _ok,
        lambda r, s: C.UnpinSnapshotDataRequest(pin_id=r.pin_id),
        _none,
    ),
]

CODECS.update({c.rpc: c for c in SNAPSHOT_CODECS})


# -- flushing, segments, and listings with names --------------------------------------------------

_STATE = {"Growing": common_pb2.Growing, "Sealed": common_pb2.Sealed, "Flushed": common_pb2.Flushed}


def _persistent_to_pb(d: dict[str, Any]) -> Any:
    return C.PersistentSegmentInfo(segmentID=d["segment_id"], collectionID=d["collection_id"],
                                   partitionID=d["partition_id"], num_rows=d["num_rows"], state=_STATE[d["state"]],
                                   level=common_pb2.SegmentLevel.Value(d["level"]), is_sorted=d["is_sorted"],
                                   storage_version=d["storage_version"])


def _loaded_to_pb(d: dict[str, Any]) -> Any:
    return C.QuerySegmentInfo(segmentID=d["segment_id"], collectionID=d["collection_id"],
                              partitionID=d["partition_id"], num_rows=d["num_rows"], state=_STATE[d["state"]],
                              level=common_pb2.SegmentLevel.Value(d["level"]), is_sorted=d["is_sorted"],
                              storage_version=d["storage_version"], mem_size=d["mem_size"],
                              index_name=d["index_name"], nodeID=1, nodeIds=[1])


def _segment_from_pb(info: Any, r: Any) -> dict[str, Any]:
    out = {"segment_id": int(info.segmentID), "collection_id": int(info.collectionID),
           "collection_name": r.collection_name, "partition_id": int(info.partitionID),
           "num_rows": int(info.num_rows), "state": common_pb2.SegmentState.Name(info.state),
           "level": common_pb2.SegmentLevel.Name(info.level), "is_sorted": bool(info.is_sorted),
           "storage_version": int(info.storage_version)}
    if isinstance(r, rq.ListLoadedSegments):
        out.update(mem_size=int(info.mem_size), index_name=info.index_name, node_ids=list(info.nodeIds))
    return out


def _segments_request(r: Any, s: SchemaFn) -> Any:
    cls = C.GetQuerySegmentInfoRequest if isinstance(r, rq.ListLoadedSegments) else C.GetPersistentSegmentInfoRequest
    return cls(dbName=r.db_name, collectionName=r.collection_name)


class ListedCollection(str):
    """A collection's name that also carries its id, creation time and in-memory percentage.

    A name, so that what filters listings by name (the server's privilege
    checks) keeps these entries whole.
    """

    collection_id: int
    created: int
    in_memory: int


def _listed(name: str, collection_id: int, created: int, in_memory: int) -> ListedCollection:
    out = ListedCollection(name)
    out.collection_id, out.created, out.in_memory = collection_id, created, in_memory
    return out


@dataclass(frozen=True)
class ShowCollections:
    """ShowCollections, with names (pymilvus asks so for load progress) or without, with load states.

    A name that is not a collection is refused, as Milvus refuses it.
    """

    db_name: str
    names: tuple[str, ...]

    def run(self, execute: Callable[[Any], Any]) -> list[ListedCollection]:
        names = execute(rq.ListCollections(self.db_name))
        if self.names:  # each must exist; listed in the collections' order, as Milvus Lite lists them
            for name in self.names:
                execute(rq.DescribeCollection(self.db_name, name))
            names = [n for n in names if n in set(self.names)]
        out = []
        for name in names:
            d = execute(rq.DescribeCollection(self.db_name, name))
            state = execute(rq.GetLoadState(self.db_name, name))["state"]
            out.append(_listed(name, int(d["collection_id"]), int(d["created_timestamp"]),
                               100 if state == LoadState.Loaded else 0))
        return out


@dataclass(frozen=True)
class ShowPartitions:
    """ShowPartitions, with names or without: the partitions with their ids and in-memory percentages."""

    db_name: str
    collection_name: str
    names: tuple[str, ...]

    def run(self, execute: Callable[[Any], Any]) -> list[tuple[str, int]]:
        have = execute(rq.ListPartitions(self.db_name, self.collection_name))
        names = list(self.names) or have
        for n in names:
            if n not in have:
                raise _errors.PartitionNotFoundError(f"partition not found[partition={n}]")
        out = []
        for n in names:
            state = execute(rq.GetLoadState(self.db_name, self.collection_name, (n,)))["state"]
            out.append((n, 100 if state == LoadState.Loaded else 0))
        return out


def _collections_reply(res: Any, r: Any, s: SchemaFn) -> Any:
    if not isinstance(r, ShowCollections):
        return C.ShowCollectionsResponse(collection_names=res)
    return C.ShowCollectionsResponse(collection_names=[str(x) for x in res],
                                     collection_ids=[x.collection_id for x in res],
                                     created_timestamps=[x.created for x in res],
                                     created_utc_timestamps=[x.created >> 18 for x in res],
                                     inMemory_percentages=[x.in_memory for x in res])


def _partitions_reply(res: Any, r: Any, s: SchemaFn) -> Any:
    return C.ShowPartitionsResponse(partition_names=[x[0] for x in res], inMemory_percentages=[x[1] for x in res])


_LISTINGS = [
    Codec(
        "ShowCollections",
        rq.ListCollections,
        lambda m, db, s: ShowCollections(db, tuple(m.collection_names)),
        _collections_reply,
        CODECS["ShowCollections"].request,
        CODECS["ShowCollections"].result,
    ),
    Codec(
        "ShowPartitions",
        rq.ListPartitions,
        lambda m, db, s: ShowPartitions(db, m.collection_name, tuple(m.partition_names)),
        _partitions_reply,
        CODECS["ShowPartitions"].request,
        CODECS["ShowPartitions"].result,
    ),
]

SEGMENT_CODECS = [
    Codec(
        "FlushAll",
        rq.FlushAll,
        lambda m, db, s: rq.FlushAll(m.db_name),
        lambda res, r, s: C.FlushAllResponse(flush_all_ts=int(res)),
        lambda r, s: C.FlushAllRequest(db_name=r.db_name),
        _none,
    ),
    Codec(
        "GetFlushAllState",
        rq.GetFlushAllState,
        lambda m, db, s: rq.GetFlushAllState(m.db_name, int(m.flush_all_ts)),
        lambda res, r, s: C.GetFlushAllStateResponse(flushed=bool(res)),
        lambda r, s: C.GetFlushAllStateRequest(db_name=r.db_name, flush_all_ts=r.flush_all_ts),
        lambda reply, r: bool(reply.flushed),
    ),
    Codec(
        "GetPersistentSegmentInfo",
        rq.ListSegments,
        lambda m, db, s: rq.ListSegments(db, m.collectionName),
        lambda res, r, s: C.GetPersistentSegmentInfoResponse(infos=[_persistent_to_pb(d) for d in res]),
        _segments_request,
        lambda reply, r: [_segment_from_pb(i, r) for i in reply.infos],
    ),
    Codec(
        "GetQuerySegmentInfo",
        rq.ListLoadedSegments,
        lambda m, db, s: rq.ListLoadedSegments(db, m.collectionName),
        lambda res, r, s: C.GetQuerySegmentInfoResponse(infos=[_loaded_to_pb(d) for d in res]),
        _segments_request,
        lambda reply, r: [_segment_from_pb(i, r) for i in reply.infos],
    ),
]

CODECS.update({c.rpc: c for c in [*_LISTINGS, *SEGMENT_CODECS]})


FILE_RESOURCE_CODECS = [
    Codec(
        "AddFileResource",
        rq.AddFileResource,
        lambda m, db, s: rq.AddFileResource(m.name, m.path),
        _ok,
        lambda r, s: C.AddFileResourceRequest(name=r.name, path=r.path),
        _none,
    ),
    Codec(
        "RemoveFileResource",
        rq.RemoveFileResource,
        lambda m, db, s: rq.RemoveFileResource(m.name),
        _ok,
        lambda r, s: C.RemoveFileResourceRequest(name=r.name),
        _none,
    ),
    Codec(
        "ListFileResources",
        rq.ListFileResources,
        lambda m, db, s: rq.ListFileResources(),
        lambda res, r, s: C.ListFileResourcesResponse(
            resources=[C.FileResourceInfo(id=d["id"], name=d["name"], path=d["path"]) for d in res]),
        lambda r, s: C.ListFileResourcesRequest(),
        lambda reply, r: [{"id": int(i.id), "name": i.name, "path": i.path} for i in reply.resources],
    ),
]

CODECS.update({c.rpc: c for c in FILE_RESOURCE_CODECS})

CODECS["GetCompactionStateWithPlans"] = Codec(
    "GetCompactionStateWithPlans",
    None,  # pymilvus's get_compaction_plans / list_compaction_tasks; compactions finish inside ManualCompaction
    lambda m, db, s: _Const(None),
    lambda res, r, s: C.GetCompactionPlansResponse(state=common_pb2.Completed),
)
