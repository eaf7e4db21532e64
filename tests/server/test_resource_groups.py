"""Resource groups and the server type, as a one-node Milvus answers them.

pymilvus against ``heron serve``, and both Heron clients served and
embedded, run one scenario and must give the same answers: the default
group holds the one node and every loaded collection's replica; other
groups can be created, configured and dropped but get no node, so a
replica cannot move into one. Milvus Lite does not implement resource
groups (checked, so a change there shows up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format

import heron
from tests.conftest import Server, launch_server, require_module

pm = require_module("pymilvus")
DEFAULT = "__default_resource_group"


class _Blocking:
    def __init__(self, client: heron.AsyncClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(method):
            return method
        return lambda *a, **k: asyncio.run(method(*a, **k))


def _outcome(call: Any) -> Any:
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the code is the outcome compared
        return ("error", int(getattr(exc, "code", -1)))
    return result


def _group(info: Any) -> dict[str, Any]:
    """A ResourceGroupInfo (pymilvus's or Heron's) as plain values."""
    config = info.config
    if not isinstance(config, dict):  # pymilvus's: the message
        config = json_format.MessageToDict(config, preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True)
    return {
        "name": info.name, "capacity": info.capacity, "num_available_node": info.num_available_node,
        "num_loaded_replica": dict(info.num_loaded_replica), "num_outgoing_node": dict(info.num_outgoing_node),
        "num_incoming_node": dict(info.num_incoming_node), "config": config,
        "nodes": [n.node_id for n in info.nodes],
    }


def _scenario(c: Any) -> list[Any]:
    from pymilvus.client.types import ResourceGroupConfig

    c.create_collection("rg_c", dimension=2)  # loaded, as the quick way loads it
    out: list[Any] = ["-", c.list_resource_groups(), _group(c.describe_resource_group(DEFAULT))]
    out.append(_outcome(lambda: c.create_resource_group("rg1")))
    out.append(_outcome(lambda: c.create_resource_group("rg1")))  # again: kept
    out.append(c.list_resource_groups())
    out.append(_group(c.describe_resource_group("rg1")))
    config = ResourceGroupConfig(requests={"node_num": 1}, limits={"node_num": 2})
    out.append(_outcome(lambda: c.update_resource_groups({"rg1": config})))
    out.append(_group(c.describe_resource_group("rg1")))
    out.append(_outcome(lambda: c.update_resource_groups({"rg1": config, "nope": config})))
    out.append(_outcome(lambda: c.describe_resource_group("nope")))
    out.append(_outcome(lambda: c.transfer_replica(DEFAULT, "rg1", "rg_c", 1)))
    out.append(_outcome(lambda: c.transfer_replica(DEFAULT, DEFAULT, "rg_c", 1)))
    out.append(_group(c.describe_resource_group(DEFAULT)))
    out.append(_outcome(lambda: c.drop_resource_group(DEFAULT)))
    out.append(_outcome(lambda: c.drop_resource_group("rg1")))
    out.append(_outcome(lambda: c.drop_resource_group("rg1")))  # gone already: not an error
    out.append(c.list_resource_groups())
    c.drop_collection("rg_c")
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = launch_server(str(tmp_path_factory.mktemp("rg") / "data"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pymilvus_answers(served: Server) -> list[Any]:
    c = pm.MilvusClient(served.uri)
    try:
        return _scenario(c)
    finally:
        c.close()


def test_pymilvus_sees_one_node_in_the_default_group(pymilvus_answers):
    a = pymilvus_answers
    assert a[1] == [DEFAULT]
    assert a[2]["num_available_node"] == 1 and a[2]["nodes"] == [1] and a[2]["num_loaded_replica"] == {"rg_c": 1}
    assert a[5] == [DEFAULT, "rg1"]
    assert a[6]["num_available_node"] == 0 and a[6]["nodes"] == []
    assert a[8]["config"]["requests"] == {"node_num": 1} and a[8]["config"]["limits"] == {"node_num": 2}
    assert a[9] == ("error", 300) and a[10] == ("error", 300)  # nothing updated: "nope" does not exist
    assert a[11][0] == "error" and a[12][0] == "error" and a[13] == a[2]  # nothing moved
    assert a[14][0] == "error" and a[15] is None and a[16] is None and a[17] == [DEFAULT]


@pytest.mark.parametrize("kind", ["sync-served", "async-served", "sync-embedded", "async-embedded"])
def test_heron_clients_answer_the_same(kind, pymilvus_answers, served, tmp_path):
    client_kind, where = kind.split("-")
    uri = served.uri if where == "served" else str(tmp_path / "db")
    c: Any = heron.Client(uri) if client_kind == "sync" else _Blocking(heron.AsyncClient(uri))
    try:
        assert _scenario(c) == pymilvus_answers
    finally:
        c.close()


def test_server_type_is_what_pymilvus_answers(served, tmp_path):
    """pymilvus (2.6 and later) answers "milvus" for any server but Zilliz Cloud; Heron's clients say the same,
    and give the server info pymilvus reads from `heron serve`."""
    c = pm.MilvusClient(served.uri)
    try:
        expected = c.get_server_type()
        detail = c.get_server_version(detail=True)
    finally:
        c.close()
    assert expected == "milvus"
    assert detail["deploy_mode"] == "STANDALONE" and detail["version"] == f"heron-{heron.__version__}"
    for uri in (served.uri, str(tmp_path / "db")):
        with heron.Client(uri) as h:
            assert h.get_server_type() == expected
            assert h.get_server_version(detail=True) == detail
            assert h.get_server_version() == f"v{heron.__version__}" == pm.MilvusClient(served.uri).get_server_version()
        ac = heron.AsyncClient(uri)
        assert ac.get_server_type() == expected
        asyncio.run(ac.close())


def test_groups_are_kept_across_reopening(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        c.create_resource_group("kept", config={"requests": {"node_num": 0}, "limits": {"node_num": 3}})
    with heron.Client(path) as c:
        assert c.list_resource_groups() == [DEFAULT, "kept"]
        assert c.describe_resource_group("kept").config["limits"] == {"node_num": 3}


def test_milvus_lite_does_not_implement_resource_groups(tmp_path):
    require_module("milvus_lite")
    lite = pm.MilvusClient(str(tmp_path / "lite.db"))
    try:
        with pytest.raises(Exception, match="UNIMPLEMENTED|not implemented"):
            lite.list_resource_groups()
    finally:
        lite.close()
