"""Listings and descriptions show a user only what its privileges cover, as Milvus does (through pymilvus)."""

from __future__ import annotations

import pytest
from pymilvus import MilvusClient, MilvusException

PASSWORD = "s3cret-Root"


@pytest.fixture
def setup(start_server):
    server = start_server("--auth", "--root-password", PASSWORD)
    root = MilvusClient(server.uri, token=f"root:{PASSWORD}")
    for name in ("granted", "other"):
        root.create_collection(name, dimension=4)
    root.create_alias("other", "other_alias")
    root.create_database("hidden_db")
    for user in ("nobody", "alice", "auditor"):
        root.create_user(user, f"{user}-pw")
    root.create_role("reader")
    root.grant_role("alice", "reader")
    root.grant_privilege("reader", "Collection", "Query", "granted")
    root.create_role("audit")
    root.grant_role("auditor", "audit")
    for privilege in ("SelectOwnership", "SelectUser", "ListAliases", "DescribeAlias"):
        root.grant_privilege("audit", "Global", privilege, "*")
    clients = {u: MilvusClient(server.uri, token=f"{u}:{u}-pw") for u in ("nobody", "alice", "auditor")}
    clients["root"] = root
    yield clients
    for c in clients.values():
        c.close()


def _denied(fn, *args):
    with pytest.raises(MilvusException) as info:
        fn(*args)
    assert "lacks privilege" in str(info.value) or "permission" in str(info.value).lower(), info.value


def test_a_user_without_privileges_sees_nothing_and_cannot_describe_others(setup):
    nobody = setup["nobody"]
    assert nobody.list_collections() == []
    assert nobody.list_databases() == []
    _denied(nobody.list_users)
    _denied(nobody.list_roles)
    _denied(nobody.describe_user, "root")
    _denied(nobody.describe_role, "admin")
    _denied(nobody.list_aliases)
    _denied(nobody.describe_alias, "other_alias")
    assert nobody.describe_user("nobody")["user_name"] == "nobody"  # itself: always


def test_a_user_sees_the_collections_and_databases_its_roles_hold_grants_on(setup):
    alice = setup["alice"]
    assert alice.list_collections() == ["granted"]
    assert alice.list_databases() == ["default"]
    assert alice.describe_user("alice")["roles"] == ("reader",)
    assert alice.describe_role("reader")["privileges"][0]["privilege"] == "Query"  # its own role
    _denied(alice.describe_role, "audit")
    _denied(alice.describe_user, "root")


def test_root_and_holders_of_the_global_privileges_see_everything(setup):
    root, auditor = setup["root"], setup["auditor"]
    assert sorted(root.list_collections()) == ["granted", "other"]
    assert sorted(root.list_databases()) == ["default", "hidden_db"]
    assert {"root", "nobody", "alice", "auditor"} <= set(auditor.list_users())
    assert {"admin", "public", "reader", "audit"} <= set(auditor.list_roles())
    assert auditor.describe_user("root")["user_name"] == "root"
    assert auditor.list_aliases()["aliases"] == ["other_alias"]
    assert auditor.describe_alias("other_alias")["collection_name"] == "other"
    # a global privilege other than All does not make collections visible
    assert auditor.list_collections() == []
    root.grant_privilege("audit", "Collection", "*", "*")
    assert sorted(auditor.list_collections()) == ["granted", "other"]
