"""The user, role and privilege messages, and the resource group ones, round-trip: pure translation, no server.

A request a Heron client sends decodes on the server into the same
request; an answer the server encodes reads back on the client as the
answer the embedded client gives.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus.grpc_gen import milvus_pb2

from heron import ParamError, wire
from heron import _requests as rq
from heron.wire import _compat as compat
from heron.wire._access import ACCESS, CLIENT
from heron.wire._client import client_messages, client_result

#: Descriptions of users and roles, and AlterRole, are in the protocol modules of pymilvus>=2.6.
DESCRIBED = compat.has_field(milvus_pb2.CreateCredentialRequest, "description")
DESCRIPTIONS: list[Any] = [
    rq.CreateUser("alice", "pw:with:colons", "a user"),
    rq.UpdateUser("alice", "described"),
    rq.CreateRole("readers", "reads"),
    rq.AlterRole("readers", "reads more"),
]
REQUESTS: list[Any] = [
    rq.CreateUser("bob", "pw"),
    rq.DropUser("alice"),
    rq.UpdatePassword("alice", "old", "néw"),
    rq.ListUsers(),
    rq.DescribeUser("alice"),
    rq.DescribeUser("", include_roles=False),
    rq.CreateRole("readers"),
    rq.DropRole("readers", force_drop=True),
    rq.OperateUserRole("alice", "readers", True),
    rq.OperateUserRole("alice", "readers", False),
    rq.DescribeRole("readers", include_users=True),
    rq.DescribeRole(""),
    rq.ListGrants("readers", "Collection", "c", "db1"),
    rq.ListGrants("readers"),
    rq.OperatePrivilege("readers", "Collection", "Search", "c", "db1", True),
    rq.OperatePrivilege("readers", "Global", "All", "*", "db2", False),
    rq.OperatePrivilege("readers", "", "Query", "c", "default", True, v2=True),
    rq.CreatePrivilegeGroup("g"),
    rq.DropPrivilegeGroup("g"),
    rq.ListPrivilegeGroups(),
    rq.OperatePrivilegeGroup("g", ("Search", "Query"), True),
    rq.OperatePrivilegeGroup("g", ("Search",), False),
]


def _no_schema(name: str) -> Any:
    raise AssertionError("access messages need no schema")


@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: type(r).__name__)
def test_a_request_decodes_on_the_server_as_sent(request_):
    [(rpc, msg)] = client_messages(request_, _no_schema)
    decoded = ACCESS[rpc].decode(wire.request_class(rpc).FromString(msg.SerializeToString()), "default")
    assert decoded == request_


@pytest.mark.parametrize("v2", [False, True])
def test_a_grant_without_a_database_is_in_the_callers(v2):
    """As Milvus's proxy does: no database named means the one the call was made in."""
    sent = rq.OperatePrivilege("readers", "" if v2 else "Collection", "Search", "c", "", True, v2=v2)
    [(rpc, msg)] = client_messages(sent, _no_schema)
    assert ACCESS[rpc].decode(msg, "db7").db_name == "db7"


ANSWERS: list[tuple[Any, Any]] = [
    (rq.ListUsers(), ["root", "alice"]),
    (rq.DescribeUser("alice"), [{"user_name": "alice", "roles": ("readers",),
                                 "description": "a user" if DESCRIBED else ""}]),
    (rq.DescribeUser("nobody"), []),
    (rq.DescribeRole("readers", True), [{"role": "readers", "description": "reads" if DESCRIBED else "",
                                         "users": ("alice",)}]),
    (rq.ListGrants("readers"), [{"object_type": "Collection", "object_name": "c", "db_name": "default",
                                 "role_name": "readers", "privilege": "Search", "grantor_name": "root"}]),
    (rq.ListPrivilegeGroups(), [{"privilege_group": "g", "privileges": ("Query", "Search")}]),
    (rq.CreateUser("x", "y"), None),
]


@pytest.mark.parametrize(("request_", "answer"), ANSWERS, ids=lambda v: type(v).__name__)
def test_an_answer_reads_back_on_the_client_as_given(request_, answer):
    [(rpc, msg)] = client_messages(request_, _no_schema)
    reply = ACCESS[rpc].encode(answer, request_)
    assert client_result(request_, rpc, wire.response_class(rpc).FromString(reply.SerializeToString())) == answer


def test_every_access_request_travels_and_every_access_rpc_is_answered():
    sendable = REQUESTS + (DESCRIPTIONS if DESCRIBED else [])
    sent = {client_messages(r, _no_schema)[0][0] for r in sendable}
    assert {type(r) for r in REQUESTS + DESCRIPTIONS} == set(CLIENT)
    assert sent == {rpc for rpc in ACCESS if wire.has_rpc(rpc)}


@pytest.mark.parametrize("request_", DESCRIPTIONS, ids=lambda r: type(r).__name__)
def test_a_description_travels_or_is_refused_saying_why(request_):
    if DESCRIBED:
        test_a_request_decodes_on_the_server_as_sent(request_)
    else:
        with pytest.raises(ParamError, match="pymilvus"):
            client_messages(request_, _no_schema)


GROUP = {"name": "rg1", "capacity": 1, "num_available_node": 0, "num_loaded_replica": {"c": 1},
         "num_outgoing_node": {}, "num_incoming_node": {},
         "config": {"requests": {"node_num": 1}, "limits": {"node_num": 2}, "transfer_from": [],
                    "transfer_to": [{"resource_group": "rg2"}]},
         "nodes": [{"node_id": 1, "address": "localhost", "hostname": "localhost"}]}


@pytest.mark.parametrize("request_", [
    rq.CreateResourceGroup("rg1", GROUP["config"]), rq.CreateResourceGroup("rg1"), rq.DropResourceGroup("rg1"),
    rq.UpdateResourceGroups({"rg1": GROUP["config"]}), rq.DescribeResourceGroup("rg1"), rq.ListResourceGroups(),
    rq.TransferReplica("db1", "a", "b", "c", 1), rq.AlterDatabase("db1", {"k": "v"}, ("x",)),
], ids=lambda r: type(r).__name__)
def test_resource_group_and_database_requests_round_trip(request_):
    [(rpc, msg)] = client_messages(request_, _no_schema)
    codec = wire.CODECS[rpc]
    assert codec.decode(wire.request_class(rpc).FromString(msg.SerializeToString()), "default", _no_schema) == request_


def test_a_described_group_reads_back_as_given():
    r = rq.DescribeResourceGroup("rg1")
    reply = wire.CODECS["DescribeResourceGroup"].encode(GROUP, r, _no_schema)
    reply = wire.response_class("DescribeResourceGroup").FromString(reply.SerializeToString())
    assert client_result(r, "DescribeResourceGroup", reply) == GROUP
