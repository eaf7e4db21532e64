"""The client side of the codec table: which Milvus calls carry a Heron request, and what its answer is.

Most requests travel as the one RPC whose codec carries their type; the
few that Milvus splits or merges differently (an insert that is an upsert,
a collection created with its indexes, several indexes at once, the index
names of a collection) are spelled out in `client_messages`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from .. import _errors
from .. import _requests as rq
from . import _compat as compat
from . import (
    _import_codecs,  # noqa: F401  (adds the bulk import RPCs to CODECS)
    _ops_codecs,  # noqa: F401  (adds the operations RPCs to CODECS)
    _resource_groups,  # noqa: F401  (its codecs join the table before RPC_OF is read)
    _struct_codecs,  # noqa: F401  (adds AddCollectionStructField to CODECS)
)
from . import _schema as ws
from ._access import CLIENT as ACCESS_CLIENT
from ._codecs import CODECS, SchemaFn
from ._function_codecs import FUNCTION_CODECS

#: Heron request class → the RPC that carries it (an insert goes as Upsert when it is one).
RPC_OF: dict[type, str] = {
    c.carries: c.rpc for c in {**CODECS, **FUNCTION_CODECS}.values() if c.carries is not None and c.rpc != "Upsert"
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
        rq.ListUsers,
        rq.DescribeUser,
        rq.DescribeRole,
        rq.ListGrants,
        rq.ListPrivilegeGroups,
        rq.ListResourceGroups,
        rq.DescribeResourceGroup,
        rq.RunAnalyzer,
        rq.GetServerVersion,
    }
)


def client_messages(r: Any, schema: SchemaFn) -> list[tuple[str, Any]]:
    """The Milvus calls that carry one Heron request, in order (most requests need exactly one)."""
    access = ACCESS_CLIENT.get(type(r))
    if access is not None:
        access_rpc, msg = access[0](r)
        compat.require_rpc(access_rpc)
        return [(access_rpc, msg)]
    if isinstance(r, rq.CreateCollection) and r.index_params:
        bare = CODECS["CreateCollection"].request(replace(r, index_params=()), schema)  # type: ignore[misc]
        indexes = [
            ("CreateIndex", ws.index_spec_to_pb(spec, r.db_name, r.collection_name))
            for spec in r.index_params
        ]
        load = milvus_pb2.LoadCollectionRequest(db_name=r.db_name, collection_name=r.collection_name)
        return [("CreateCollection", bare), *indexes, ("LoadCollection", load)]
    if isinstance(r, rq.CreateIndex):
        return [
            ("CreateIndex", ws.index_spec_to_pb(spec, r.db_name, r.collection_name)) for spec in r.indexes
        ]
    if isinstance(r, rq.GetServerVersion):
        if r.detail:
            return [("Connect", milvus_pb2.ConnectRequest())]
        return [("GetVersion", milvus_pb2.GetVersionRequest())]
    if isinstance(r, rq.ListIndexes):
        msg = milvus_pb2.DescribeIndexRequest(
            db_name=r.db_name, collection_name=r.collection_name, field_name=r.field_name
        )
        return [("DescribeIndex", msg)]
    rpc = "Upsert" if isinstance(r, rq.Insert) and r.upsert else RPC_OF.get(type(r))
    if rpc is None:
        raise _errors.ParamError(f"{type(r).__name__} cannot be sent to a server")
    compat.require_rpc(rpc)
    return [(rpc, CODECS[rpc].request(r, schema))]  # type: ignore[misc]


def client_result(r: Any, rpc: str, reply: Any) -> Any:
    """The engine-shaped answer to ``r`` from the reply of its (last) Milvus call."""
    access = ACCESS_CLIENT.get(type(r))
    if access is not None:
        return access[1](reply, r)
    if isinstance(r, rq.ListIndexes):
        return [d.index_name for d in reply.index_descriptions]
    if isinstance(r, rq.GetServerVersion):
        return _server_version(reply)
    if isinstance(r, (rq.CreateIndex, rq.Flush, rq.CreateCollection)):
        return None
    codec = CODECS[rpc]
    return codec.result(reply, r) if codec.result else None


def _server_version(reply: Any) -> str | dict[str, str]:
    """``GetVersion``'s version string, or ``Connect``'s server info as pymilvus's dict."""
    if isinstance(reply, milvus_pb2.GetVersionResponse):
        return str(reply.version)
    info = reply.server_info
    return {"version": info.build_tags, "build_time": info.build_time, "git_commit": info.git_commit,
            "go_version": info.go_version, "deploy_mode": info.deploy_mode}


#: pymilvus's stand-in timestamps: "as of a moment ago" (Eventually) and "as the server's Bounded lag says".
EVENTUALLY_TS = 1
BOUNDED_TS = 2
_READS = (rq.Query, rq.Search, rq.HybridSearch)


def pin_read(r: Any, last_write: int) -> Any:
    """A read with the ``guarantee_timestamp`` pymilvus sends for its consistency level.

    Strong: 0 (the server takes its newest time); Bounded: 2 and Eventually: 1 (pymilvus's
    markers); Session and the collection's default: the last write this client made to the
    collection (``last_write``), else 1; Customized: the timestamp given. Other requests
    come back as they are.
    """
    if not isinstance(r, _READS) or r.consistency_level == "Customized":
        return r
    level = r.consistency_level
    ts = {"Strong": 0, "Bounded": BOUNDED_TS, "Eventually": EVENTUALLY_TS}.get(level, last_write or EVENTUALLY_TS)
    if isinstance(r, rq.HybridSearch):
        return replace(r, guarantee_timestamp=ts, reqs=tuple(replace(s, guarantee_timestamp=ts) for s in r.reqs))
    return replace(r, guarantee_timestamp=ts)


def write_timestamp(r: Any, reply: Any) -> int:
    """The timestamp of a write's reply (a Milvus ``MutationResult``), 0 for anything else."""
    if isinstance(r, (rq.Insert, rq.Delete)) and isinstance(reply, milvus_pb2.MutationResult):
        return int(reply.timestamp)
    return 0
