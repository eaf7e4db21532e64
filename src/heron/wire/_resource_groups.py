"""The resource group RPCs as entries of the codec table (pure translation, as `heron.wire._codecs`).

A group's config travels as pymilvus's ``ResourceGroupConfig`` message and
is a dict (the message's fields, by their proto names) in Heron's requests
and answers.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from pymilvus.grpc_gen import common_pb2, milvus_pb2, rg_pb2

from .. import _requests as rq
from ._codecs import CODECS, Codec

M = milvus_pb2


def config_dict(config: Any) -> dict[str, Any]:
    """A ``ResourceGroupConfig`` message (or a dict of its fields) as a dict of its fields."""
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    return json_format.MessageToDict(config, preserving_proto_field_name=True,
                                      always_print_fields_with_no_presence=True)


def config_pb(config: dict[str, Any]) -> rg_pb2.ResourceGroupConfig:
    return json_format.ParseDict(config, rg_pb2.ResourceGroupConfig())


def _ok(result: Any, r: Any, s: Any) -> common_pb2.Status:
    return common_pb2.Status()


def _none(reply: Any, r: Any) -> None:
    return None


def _describe_reply(res: dict[str, Any], r: Any, s: Any) -> Any:
    group = M.ResourceGroup(
        name=res["name"],
        capacity=res["capacity"],
        num_available_node=res["num_available_node"],
        num_loaded_replica=res["num_loaded_replica"],
        num_outgoing_node=res["num_outgoing_node"],
        num_incoming_node=res["num_incoming_node"],
        config=config_pb(res["config"]),
        nodes=[common_pb2.NodeInfo(**n) for n in res["nodes"]],
    )
    return M.DescribeResourceGroupResponse(resource_group=group)


def _describe_from(reply: Any, r: Any) -> dict[str, Any]:
    g = reply.resource_group
    return {
        "name": g.name,
        "capacity": g.capacity,
        "num_available_node": g.num_available_node,
        "num_loaded_replica": dict(g.num_loaded_replica),
        "num_outgoing_node": dict(g.num_outgoing_node),
        "num_incoming_node": dict(g.num_incoming_node),
        "config": config_dict(g.config),
        "nodes": [{"node_id": n.node_id, "address": n.address, "hostname": n.hostname} for n in g.nodes],
    }


CODECS.update({c.rpc: c for c in [
    Codec(
        "CreateResourceGroup",
        rq.CreateResourceGroup,
        lambda m, db, s: rq.CreateResourceGroup(m.resource_group, config_dict(m.config) if m.HasField("config")
                                                else {}),
        _ok,
        lambda r, s: M.CreateResourceGroupRequest(resource_group=r.name, config=config_pb(r.config) if r.config
                                                  else None),
        _none,
    ),
    Codec(
        "DropResourceGroup",
        rq.DropResourceGroup,
        lambda m, db, s: rq.DropResourceGroup(m.resource_group),
        _ok,
        lambda r, s: M.DropResourceGroupRequest(resource_group=r.name),
        _none,
    ),
    Codec(
        "UpdateResourceGroups",
        rq.UpdateResourceGroups,
        lambda m, db, s: rq.UpdateResourceGroups({k: config_dict(v) for k, v in m.resource_groups.items()}),
        _ok,
        lambda r, s: M.UpdateResourceGroupsRequest(resource_groups={k: config_pb(v) for k, v in r.configs.items()}),
        _none,
    ),
    Codec(
        "ListResourceGroups",
        rq.ListResourceGroups,
        lambda m, db, s: rq.ListResourceGroups(),
        lambda res, r, s: M.ListResourceGroupsResponse(resource_groups=res),
        lambda r, s: M.ListResourceGroupsRequest(),
        lambda reply, r: list(reply.resource_groups),
    ),
    Codec(
        "DescribeResourceGroup",
        rq.DescribeResourceGroup,
        lambda m, db, s: rq.DescribeResourceGroup(m.resource_group),
        _describe_reply,
        lambda r, s: M.DescribeResourceGroupRequest(resource_group=r.name),
        _describe_from,
    ),
    Codec(
        "TransferReplica",
        rq.TransferReplica,
        lambda m, db, s: rq.TransferReplica(m.db_name or db, m.source_resource_group, m.target_resource_group,
                                            m.collection_name, int(m.num_replica)),
        _ok,
        lambda r, s: M.TransferReplicaRequest(
            source_resource_group=r.source_group, target_resource_group=r.target_group,
            collection_name=r.collection_name, num_replica=r.num_replicas, db_name=r.db_name),
        _none,
    ),
]})
