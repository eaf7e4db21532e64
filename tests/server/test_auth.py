"""`heron serve --auth`: logins, wrong and missing credentials, per-collection privileges."""

from __future__ import annotations

import os
import subprocess
import sys

import grpc
import pytest
from pymilvus import MilvusClient, MilvusException

import heron
from heron import DataType
from tests.server.conftest import ROOT, run_scenario

PASSWORD = "s3cret-Root"


@pytest.fixture
def auth_server(start_server):
    return start_server("--auth", "--root-password", PASSWORD)


def _make_collection(client: heron.Client, name: str) -> None:
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=idx)
    client.insert(name, [{"id": i, "v": [float(i)] * 4} for i in range(10)])


@pytest.mark.parametrize("client", ["pymilvus", "heron"])
def test_seed_tutorial_with_root_token(auth_server, client):
    res = run_scenario(auth_server.uri, client, "--token", f"root:{PASSWORD}")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_wrong_password_is_refused(auth_server):
    with heron.Client(auth_server.uri, token="root:wrong") as c, pytest.raises(heron.AuthenticationError):
        c.list_collections()
    # pymilvus 2.5 lets the UNAUTHENTICATED error of its connect through; later releases wrap it.
    with pytest.raises((MilvusException, grpc.RpcError)):
        MilvusClient(auth_server.uri, token="root:wrong")


def test_missing_token_is_refused_and_touches_nothing(auth_server):
    with heron.Client(auth_server.uri) as anon, pytest.raises(heron.AuthenticationError):
        anon.create_collection("sneaky", dimension=4)
    with heron.Client(auth_server.uri, token=f"root:{PASSWORD}") as root:
        assert not root.has_collection("sneaky")


def test_privileges_are_enforced_per_collection(auth_server):
    with heron.Client(auth_server.uri, token=f"root:{PASSWORD}") as root:
        _make_collection(root, "granted")
        _make_collection(root, "other")
    admin = MilvusClient(auth_server.uri, token=f"root:{PASSWORD}")
    admin.create_user("alice", "alice-pw")
    admin.create_role("reader")
    admin.grant_role("alice", "reader")
    for privilege in ("Query", "DescribeCollection"):
        admin.grant_privilege("reader", "Collection", privilege, "granted")
    admin.close()
    with heron.Client(auth_server.uri, token="alice:alice-pw") as alice:
        assert len(alice.query("granted", ids=[1, 2], output_fields=["id"])) == 2
        with pytest.raises(heron.PermissionDeniedError):
            alice.insert("granted", [{"id": 99, "v": [0.0] * 4}])
        with pytest.raises(heron.PermissionDeniedError):
            alice.query("other", ids=[1])
        with pytest.raises(heron.PermissionDeniedError):
            alice.drop_collection("granted")
    with heron.Client(auth_server.uri, token=f"root:{PASSWORD}") as root:
        assert root.query("granted", ids=[99]) == []
        assert root.has_collection("granted")


def test_auth_without_root_password_refuses_to_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HERON_ROOT_PASSWORD"}
    res = subprocess.run(
        [sys.executable, "-m", "heron", "serve", "--data", str(tmp_path / "d"), "--auth", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and "root password" in res.stderr
