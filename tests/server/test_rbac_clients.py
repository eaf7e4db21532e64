"""Users, roles, privileges and privilege groups through pymilvus and both Heron clients, against ``heron serve --auth``.

One server for the module; each client works on names of its own, so the
three run the same scenario side by side and must give the same answers.
The same calls embedded, and against a server without ``--auth``, answer
the listings as a fresh Milvus does and refuse changes; Milvus Lite does
not implement them at all (checked here, so a change there shows up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import heron
from heron import DataType
from tests.conftest import Server, launch_server, require_module

pm = require_module("pymilvus")
PASSWORD = "s3cret-Root"
ROOT_TOKEN = f"root:{PASSWORD}"
KINDS = ("pymilvus", "sync", "async")


class _Blocking:
    """An `AsyncClient` called like a blocking one: each call runs in a loop of its own."""

    def __init__(self, client: heron.AsyncClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        return lambda *a, **k: asyncio.run(method(*a, **k))


def _client(kind: str, uri: str, token: str = ROOT_TOKEN) -> Any:
    if kind == "pymilvus":
        return pm.MilvusClient(uri, token=token)
    if kind == "sync":
        return heron.Client(uri, token=token)
    return _Blocking(heron.AsyncClient(uri, token=token))


def _code(call: Any) -> tuple[int, str]:
    """The error code and message ``call()`` raises (it must raise)."""
    with pytest.raises(Exception) as info:
        call()
    exc = info.value
    return int(getattr(exc, "code", -1)), str(getattr(exc, "message", "") or exc)


def _grants(c: Any, role: str) -> set[tuple[str, str, str, str]]:
    return {(g["object_type"], g["object_name"], g.get("db_name", ""), g["privilege"])
            for g in c.describe_role(role)["privileges"]}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = launch_server(str(tmp_path_factory.mktemp("rbac") / "data"), "--auth", "--root-password", PASSWORD)
    yield server
    server.stop()


@pytest.fixture(params=KINDS)
def admin(request: pytest.FixtureRequest, auth_server: Server) -> Iterator[tuple[str, Any]]:
    c = _client(request.param, auth_server.uri)
    yield request.param, c
    c.close()


def test_users_and_roles(admin):
    kind, c = admin
    user, role = f"u_{kind}", f"r_{kind}"
    c.create_user(user, "pw-123456")
    assert user in c.list_users() and "root" in c.list_users()
    described = c.describe_user(user)
    assert (described["user_name"], tuple(described["roles"])) == (user, ())
    assert c.describe_user(f"nobody_{kind}") == {}
    c.create_role(role)
    assert {role, "admin", "public"} <= set(c.list_roles())
    c.grant_role(user, role)
    assert tuple(c.describe_user(user)["roles"]) == (role,)
    assert c.describe_role(role)["privileges"] == []
    code, message = _code(lambda: c.create_user(user, "pw-other1"))
    assert code == 65535 and user in message
    code, _ = _code(lambda: c.drop_role(role))  # still granted to the user
    assert code != 0 and role in c.list_roles()
    c.revoke_role(user, role)
    assert tuple(c.describe_user(user)["roles"]) == ()
    c.drop_role(role)
    c.drop_user(user)
    assert role not in c.list_roles() and user not in c.list_users()


def test_user_and_role_descriptions(admin):
    """pymilvus 3's descriptions (the protocol modules of pymilvus>=2.6 carry them)."""
    kind, c = admin
    user, role = f"du_{kind}", f"dr_{kind}"
    c.create_user(user, "pw-123456", description="first")
    assert c.describe_user(user) == {"user_name": user, "roles": (), "description": "first"}
    c.create_role(role, description="readers")
    assert c.describe_role(role) == {"role": role, "description": "readers", "privileges": []}
    c.alter_role(role, "changed")
    c.update_user(user, "second")
    assert c.describe_role(role)["description"] == "changed"
    assert c.describe_user(user)["description"] == "second"
    c.drop_role(role)
    c.drop_user(user)


def test_privileges_granted_revoked_and_refused(admin):
    kind, c = admin
    role = f"p_{kind}"
    c.create_role(role)
    c.grant_privilege(role, "Collection", "Search", "c1")
    c.grant_privilege(role, "Global", "DescribeDatabase", "*", db_name="default")
    c.grant_privilege_v2(role, "Query", "c2", db_name="default")
    expected = {("Collection", "c1", "default", "Search"), ("Global", "*", "default", "DescribeDatabase"),
                ("Collection", "c2", "default", "Query")}
    assert _grants(c, role) == expected
    # Unknown privileges and object types: Milvus's code and phrase, and nothing granted.
    code, message = _code(lambda: c.grant_privilege(role, "Collection", "Teleport", "c1"))
    assert (code, "not found the privilege name[Teleport]" in message) == (65535, True)
    code, message = _code(lambda: c.grant_privilege_v2(role, "Teleport", "c1"))
    assert (code, "not found the privilege name" in message) == (65535, True)
    code, message = _code(lambda: c.grant_privilege(role, "Planet", "Search", "c1"))
    assert (code, "the object entity in the request is nil or invalid" in message) == (65535, True)
    code, _ = _code(lambda: c.grant_privilege(f"nobody_{kind}", "Collection", "Search", "c1"))
    assert code == 65535
    assert _grants(c, role) == expected
    c.revoke_privilege(role, "Collection", "Search", "c1")
    c.revoke_privilege_v2(role, "Query", "c2", db_name="default")
    assert _grants(c, role) == {("Global", "*", "default", "DescribeDatabase")}
    c.drop_role(role)


def test_privilege_groups(admin):
    kind, c = admin
    group, role = f"g_{kind}", f"gr_{kind}"
    c.create_privilege_group(group)
    c.add_privileges_to_group(group, ["Search", "Query"])
    listed = {g["privilege_group"]: tuple(g["privileges"]) for g in c.list_privilege_groups()}
    assert listed[group] == ("Query", "Search")
    code, message = _code(lambda: c.add_privileges_to_group(group, ["Insert", "Teleport"]))
    assert code == 65535 and "Teleport" in message
    code, message = _code(lambda: c.create_privilege_group("CollectionReadOnly"))
    assert code == 65535 and "built in" in message
    code, _ = _code(lambda: c.create_privilege_group(group))
    assert code == 65535
    c.remove_privileges_from_group(group, ["Search"])
    listed = {g["privilege_group"]: tuple(g["privileges"]) for g in c.list_privilege_groups()}
    assert listed[group] == ("Query",)  # and not Insert: the failed call added nothing
    c.create_role(role)
    c.grant_privilege_v2(role, group, "c3")
    code, message = _code(lambda: c.drop_privilege_group(group))
    assert code == 65535 and "revoke" in message.lower()
    c.revoke_privilege_v2(role, group, "c3")
    c.drop_privilege_group(group)
    assert group not in {g["privilege_group"] for g in c.list_privilege_groups()}
    c.drop_role(role)


def _collection(c: heron.Client, name: str) -> None:
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=idx)
    c.insert(name, [{"id": i, "v": [float(i), 0.0]} for i in range(5)])


@pytest.mark.parametrize("kind", KINDS)
def test_a_group_grants_its_privileges_and_passwords_change(auth_server, kind):
    user, group, role, coll = f"gu_{kind}", f"gq_{kind}", f"gqr_{kind}", f"gc_{kind}"
    with heron.Client(auth_server.uri, token=ROOT_TOKEN) as root:
        _collection(root, coll)
    c = _client(kind, auth_server.uri)
    c.create_user(user, "pw-123456")
    c.create_role(role)
    c.create_privilege_group(group)
    c.add_privileges_to_group(group, ["Query", "DescribeCollection"])  # a Heron client describes, then queries
    c.grant_privilege_v2(role, group, coll)
    c.grant_role(user, role)
    with heron.Client(auth_server.uri, token=f"{user}:pw-123456") as u:
        assert len(u.query(coll, ids=[1, 2], output_fields=["id"])) == 2
        with pytest.raises(heron.PermissionDeniedError):
            u.insert(coll, [{"id": 9, "v": [0.0, 0.0]}])
    c.update_password(user, "pw-123456", "pw-654321")
    with heron.Client(auth_server.uri, token=f"{user}:pw-123456") as old, pytest.raises(heron.AuthenticationError):
        old.list_collections()
    with heron.Client(auth_server.uri, token=f"{user}:pw-654321") as new:
        assert new.query(coll, ids=[3], output_fields=["id"]) == [{"id": 3}]
    c.close()


def test_a_user_changes_its_own_password_and_resets_its_connection(auth_server):
    with heron.Client(auth_server.uri, token=ROOT_TOKEN) as root:
        root.create_user("selfie", "pw-123456")
    with heron.Client(auth_server.uri, token="selfie:pw-123456") as me:
        with pytest.raises(heron.PermissionDeniedError):
            me.update_password("root", PASSWORD, "taken-over")
        me.update_password("selfie", "pw-123456", "pw-777777", reset_connection=True)
        assert me.describe_user("selfie")["user_name"] == "selfie"  # logged in with the new password
        with pytest.raises(heron.PermissionDeniedError):
            me.create_user("another", "pw-123456")


# -- where nobody logs in ---------------------------------------------------------------------
FRESH = {"users": ["root"], "roles": ["admin", "public"], "groups": []}


def _fresh_answers(c: Any) -> dict[str, Any]:
    return {"users": c.list_users(), "roles": sorted(c.list_roles()), "groups": c.list_privilege_groups()}


@pytest.mark.parametrize("kind", ["embedded-sync", "embedded-async", "pymilvus-no-auth", "sync-no-auth"])
def test_without_logins_listings_answer_as_a_fresh_milvus_and_changes_are_refused(tmp_path, start_server, kind):
    if kind.endswith("no-auth"):
        c = _client(kind.split("-")[0], start_server().uri, token="")
    elif kind == "embedded-sync":
        c = heron.Client(str(tmp_path / "db"))
    else:
        c = _Blocking(heron.AsyncClient(str(tmp_path / "db")))
    assert _fresh_answers(c) == FRESH
    assert c.describe_role("admin")["privileges"] == []
    assert c.describe_user("root")["user_name"] == "root"
    for change in (lambda: c.create_user("x", "pw-123456"), lambda: c.create_role("r"),
                   lambda: c.grant_privilege("admin", "Collection", "Search", "*"),
                   lambda: c.create_privilege_group("g"), lambda: c.drop_user("root")):
        code, message = _code(change)
        assert code == 1100 and "--auth" in message
    assert _fresh_answers(c) == FRESH
    c.close()


def test_milvus_lite_does_not_implement_users_and_roles(tmp_path):
    """Milvus Lite answers UNIMPLEMENTED to these calls; Heron's embedded answers are its own (see above)."""
    require_module("milvus_lite")
    lite = pm.MilvusClient(str(tmp_path / "lite.db"))
    try:
        for call in (lite.list_users, lite.list_roles, lambda: lite.create_user("x", "pw-123456")):
            with pytest.raises(Exception, match="UNIMPLEMENTED|not implemented"):
                call()
    finally:
        lite.close()


def test_a_built_in_privilege_group_grants_what_milvus_puts_in_it(auth_server):
    """CollectionReadOnly lets a user describe, query and search a collection, not write to it."""
    with heron.Client(auth_server.uri, token=ROOT_TOKEN) as root:
        _collection(root, "ro_c")
        _collection(root, "ro_other")
        root.create_user("reader", "pw-123456")
        root.create_role("ro")
        root.grant_privilege_v2("ro", "CollectionReadOnly", "ro_c")
        root.grant_role("reader", "ro")
    with heron.Client(auth_server.uri, token="reader:pw-123456") as u:
        assert u.query("ro_c", ids=[1], output_fields=["id"]) == [{"id": 1}]
        assert len(u.search("ro_c", [[1.0, 0.0]], limit=2)[0]) == 2
        with pytest.raises(heron.PermissionDeniedError):
            u.insert("ro_c", [{"id": 9, "v": [0.0, 0.0]}])
        with pytest.raises(heron.PermissionDeniedError):
            u.query("ro_other", ids=[1])


def test_pymilvus_async_client_manages_users_roles_and_groups(auth_server):
    """pymilvus's AsyncMilvusClient, one event loop for the whole scenario."""

    async def scenario() -> None:
        c = pm.AsyncMilvusClient(auth_server.uri, token=ROOT_TOKEN)
        try:
            await c.create_user("au", "pw-123456")
            await c.create_role("ar")
            await c.grant_role("au", "ar")
            await c.create_privilege_group("ag")
            await c.add_privileges_to_group("ag", ["Search"])
            await c.grant_privilege_v2("ar", "ag", "c9", db_name="default")
            assert "au" in await c.list_users() and "ar" in await c.list_roles()
            assert tuple((await c.describe_user("au"))["roles"]) == ("ar",)
            grants = (await c.describe_role("ar"))["privileges"]
            assert [(g["object_name"], g["privilege"]) for g in grants] == [("c9", "ag")]
            groups = {g["privilege_group"]: tuple(g["privileges"]) for g in await c.list_privilege_groups()}
            assert groups["ag"] == ("Search",)
            await c.revoke_privilege_v2("ar", "ag", "c9", db_name="default")
            await c.drop_privilege_group("ag")
            await c.drop_role("ar", force_drop=True)
            await c.drop_user("au")
            assert "au" not in await c.list_users()
        finally:
            await c.close()

    asyncio.run(scenario())
