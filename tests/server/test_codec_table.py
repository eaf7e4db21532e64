"""The codec table is the one list of RPCs: every request type travels by it, every RPC served is in it."""

from __future__ import annotations

import dataclasses

from heron import _requests as rq
from heron import wire
from heron.server._rbac import ADMIN_ONLY, PRIVILEGES
from heron.server._service import OPEN_RPCS, RPCS
from heron.wire._access import CLIENT as ACCESS_CLIENT
from heron.wire._client import RPC_OF

REQUEST_TYPES = [
    c
    for c in vars(rq).values()
    if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__.startswith(rq.__name__)
]

#: Request types not carried by exactly one codec, with the RPCs that carry them.
NOT_ONE_CODEC: dict[type, tuple[str, ...]] = {
    # one RPC each way: the client picks Upsert when ``upsert`` is set
    rq.Insert: ("Insert", "Upsert"),
    # Milvus has no such RPC: DescribeIndex without an index name answers every index and the client
    # keeps their names (`heron.wire._client.client_messages`)
    rq.ListIndexes: (),
    # the server's version: GetVersion, or Connect's server info with ``detail``; the server answers both
    # without the engine (`heron.wire._client.client_messages`)
    rq.GetServerVersion: (),
}

#: RPCs that pymilvus makes and a Heron client never does: the server answers them, no request type rides them.
SERVER_ONLY = {
    "GetLoadingProgress",  # pymilvus polls it while loading; Heron clients ask GetLoadState
    "GetIndexState",  # pymilvus waits on index builds with these two; Heron clients describe the index
    "GetIndexBuildProgress",
    "GetFlushState",  # flushes are done when Flush answers
    "GetCompactionState",  # compactions are done when ManualCompaction answers
    "Connect",  # pymilvus's handshake, version and health checks, timestamps for its own use
    "GetVersion",
    "CheckHealth",
    "AllocTimestamp",
    "GetCompactionStateWithPlans",  # compaction plans: compactions are done when ManualCompaction answers
}


def _carriers(cls: type) -> tuple[str, ...]:
    return tuple(rpc for rpc, codec in wire.CODECS.items() if codec.carries is cls)


def test_request_types_are_the_dataclasses_of_heron_requests():
    assert len(REQUEST_TYPES) > 30 and rq.Search in REQUEST_TYPES and rq.Insert in REQUEST_TYPES


def test_every_request_type_has_exactly_one_codec():
    for cls in REQUEST_TYPES:
        if cls in ACCESS_CLIENT:  # users, roles and privileges travel by heron.wire._access
            assert not _carriers(cls), cls.__name__
            continue
        expected = NOT_ONE_CODEC.get(cls)
        carriers = _carriers(cls)
        if expected is None:
            assert len(carriers) == 1, f"{cls.__name__} is carried by {carriers or 'no codec'}"
        else:
            assert carriers == expected, cls.__name__
    assert set(NOT_ONE_CODEC) <= set(REQUEST_TYPES)


def test_codecs_that_carry_a_type_can_send_it_and_carry_only_request_types():
    for rpc, codec in wire.CODECS.items():
        assert codec.rpc == rpc
        if codec.carries is not None:
            assert codec.carries in REQUEST_TYPES, rpc
            assert codec.request is not None, f"{rpc}: a client cannot send {codec.carries.__name__}"


def test_rpcs_without_a_request_type_are_the_server_only_ones():
    assert {rpc for rpc, codec in wire.CODECS.items() if codec.carries is None} == SERVER_ONLY


def test_every_request_type_can_be_sent_to_a_server():
    for cls in REQUEST_TYPES:
        assert cls in RPC_OF or cls in NOT_ONE_CODEC or cls in ACCESS_CLIENT, cls.__name__


def test_read_only_requests_travel_by_a_codec():
    for cls in wire.READ_ONLY:
        assert cls in REQUEST_TYPES and (_carriers(cls) or cls in NOT_ONE_CODEC or cls in ACCESS_CLIENT), cls.__name__


def test_every_rpc_served_has_a_codec_or_an_access_entry_and_not_both():
    assert set(RPCS) == {rpc for rpc in set(wire.CODECS) | set(wire.ACCESS) if wire.has_rpc(rpc)}
    assert not set(wire.CODECS) & set(wire.ACCESS)
    for rpc in RPCS:
        assert wire.request_class(rpc) is not None and wire.response_class(rpc) is not None


def test_privilege_tables_name_only_rpcs_served():
    assert set(PRIVILEGES) <= set(wire.CODECS) | set(wire.ACCESS)
    assert set(ADMIN_ONLY) <= set(wire.ACCESS)
    assert set(OPEN_RPCS) <= set(wire.CODECS)
