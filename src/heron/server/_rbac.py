"""The user and role RPCs of MilvusService, which privilege each RPC needs, and what listings show.

Each handler takes the `AuthStore`, the request message and the calling
user, and returns the reply message. They run in the worker pool.

As in Milvus (2.4 to 2.6), a user sees only what it may use: listing
collections shows those its roles hold some privilege on (all of them with
a grant on every collection of the database, or the global ``All``),
listing databases those its roles hold grants in; listing or describing
aliases, databases, users, roles and grants needs the global privilege
Milvus names for it (``ListAliases``, ``DescribeAlias``,
``DescribeDatabase``, ``SelectOwnership``, ``SelectUser``), except that a
user may always describe itself and its own roles with their grants. ``root``
and the ``admin`` role see everything. Unlike Milvus, every user holds the
``public`` role, so what is granted to ``public`` is visible to all.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from .._errors import PermissionDeniedError
from ._auth import AuthStore

#: RPC → (object type, Milvus privilege name). RPCs not listed need only a valid login.
PRIVILEGES: dict[str, tuple[str, str]] = {
    "CreateCollection": ("Global", "CreateCollection"),
    "DropCollection": ("Global", "DropCollection"),
    "RenameCollection": ("Global", "RenameCollection"),
    "CreateDatabase": ("Global", "CreateDatabase"),
    "DropDatabase": ("Global", "DropDatabase"),
    "CreateAlias": ("Global", "CreateAlias"),
    "DropAlias": ("Global", "DropAlias"),
    "AlterAlias": ("Global", "CreateAlias"),
    "DescribeCollection": ("Collection", "DescribeCollection"),
    "HasCollection": ("Collection", "DescribeCollection"),
    "GetCollectionStatistics": ("Collection", "GetStatistics"),
    "GetPartitionStatistics": ("Collection", "GetStatistics"),
    "TruncateCollection": ("Collection", "Delete"),
    "AlterCollection": ("Collection", "Load"),
    "CreatePartition": ("Collection", "CreatePartition"),
    "DropPartition": ("Collection", "DropPartition"),
    "HasPartition": ("Collection", "HasPartition"),
    "ShowPartitions": ("Collection", "ShowPartitions"),
    "LoadCollection": ("Collection", "Load"),
    "ReleaseCollection": ("Collection", "Release"),
    "LoadPartitions": ("Collection", "Load"),
    "ReleasePartitions": ("Collection", "Release"),
    "GetLoadState": ("Collection", "GetLoadState"),
    "GetLoadingProgress": ("Collection", "GetLoadingProgress"),
    "CreateIndex": ("Collection", "CreateIndex"),
    "DropIndex": ("Collection", "DropIndex"),
    "DescribeIndex": ("Collection", "IndexDetail"),
    "GetIndexState": ("Collection", "IndexDetail"),
    "GetIndexBuildProgress": ("Collection", "IndexDetail"),
    "Insert": ("Collection", "Insert"),
    "Upsert": ("Collection", "Upsert"),
    "Delete": ("Collection", "Delete"),
    "Query": ("Collection", "Query"),
    "Search": ("Collection", "Search"),
    "HybridSearch": ("Collection", "Search"),
    "Flush": ("Collection", "Flush"),
    "ManualCompaction": ("Collection", "Compaction"),
    "DescribeDatabase": ("Global", "DescribeDatabase"),
    "ListAliases": ("Global", "ListAliases"),
    "DescribeAlias": ("Global", "DescribeAlias"),
    "ListCredUsers": ("Global", "SelectOwnership"),
    "SelectRole": ("Global", "SelectOwnership"),
    "SelectGrant": ("Global", "SelectOwnership"),
    "SelectUser": ("User", "SelectUser"),
    # a file resource is a file of the server's machine copied into its data directory
    "AddFileResource": ("Global", "AddFileResource"),
    "RemoveFileResource": ("Global", "RemoveFileResource"),
    # schema evolution, index properties, snapshots, flushing everything
    "AddCollectionField": ("Collection", "AddCollectionField"),
    "AlterCollectionSchema": ("Collection", "AddCollectionField"),
    "AlterCollectionField": ("Collection", "AddCollectionField"),
    "AlterIndex": ("Collection", "CreateIndex"),
    "CreateSnapshot": ("Collection", "CreateSnapshot"),
    "DropSnapshot": ("Collection", "DropSnapshot"),
    "DescribeSnapshot": ("Collection", "DescribeSnapshot"),
    "ListSnapshots": ("Collection", "ListSnapshots"),
    "PinSnapshotData": ("Collection", "PinSnapshotData"),
    "RestoreSnapshot": ("Global", "RestoreSnapshot"),  # it creates a collection
    "FlushAll": ("Global", "FlushAll"),
}

#: RBAC RPCs that change users, roles or grants: administrators only.
ADMIN_ONLY = frozenset(
    {
        "CreateCredential",
        "DeleteCredential",
        "CreateRole",
        "DropRole",
        "OperateUserRole",
        "OperatePrivilege",
        "OperatePrivilegeV2",
    }
)


def check_privilege(store: AuthStore, user: str, rpc: str, msg: Any, db: str) -> None:
    """Raise `PermissionDeniedError` unless ``user`` may make this call."""
    if rpc in ADMIN_ONLY and not store.is_admin(user):
        raise PermissionDeniedError(f"user {user!r} may not call {rpc}: it needs the admin role")
    need = PRIVILEGES.get(rpc)
    if need is None or _about_oneself(store, user, rpc, msg):
        return
    obj, privilege = need
    if rpc == "Flush":
        names = list(getattr(msg, "collection_names", []) or [])
    elif rpc == "SelectUser":
        names = [(msg.user.name if msg.HasField("user") else "") or "*"]
    else:
        names = [getattr(msg, "collection_name", "") or getattr(msg, "oldName", "") or "*"]
    for name in names:
        if not store.allowed(user, obj, name if obj in ("Collection", "User") else "*", db, privilege):
            raise PermissionDeniedError(
                f"user {user!r} lacks privilege {privilege} on {obj.lower()} {name!r} in database {db!r}"
            )


def _about_oneself(store: AuthStore, user: str, rpc: str, msg: Any) -> bool:
    """Whether the call describes the caller itself, or one of its roles (always allowed)."""
    if rpc == "SelectUser":
        return msg.HasField("user") and msg.user.name == user
    if rpc == "SelectGrant":
        return msg.entity.role.name in store.roles_of(user)
    if rpc == "SelectRole":
        return msg.HasField("role") and msg.role.name in store.roles_of(user)
    return False


def visible(store: AuthStore, user: str, rpc: str, result: Any, db: str) -> Any:
    """``result`` of a listing, reduced to what ``user`` may see (see the module docstring)."""
    if rpc == "ShowCollections":
        names = store.visible_collections(user, db)
    elif rpc == "ListDatabases":
        names = store.visible_databases(user)
    else:
        return result
    return result if names is None else [n for n in result if n in names]


def _password(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        return base64.b64decode(data, validate=True).decode()
    except ValueError:
        return data.decode()


def _select_user(store: AuthStore, m: Any, user: str) -> milvus_pb2.SelectUserResponse:
    names = [m.user.name] if m.HasField("user") and m.user.name else store.users()
    results = []
    for n in names:
        roles = [milvus_pb2.RoleEntity(name=r) for r in store.roles_of(n)] if m.include_role_info else []
        results.append(milvus_pb2.UserResult(user=milvus_pb2.UserEntity(name=n), roles=roles))
    return milvus_pb2.SelectUserResponse(results=results)


def _select_role(store: AuthStore, m: Any, user: str) -> milvus_pb2.SelectRoleResponse:
    names = [m.role.name] if m.HasField("role") and m.role.name else store.roles()
    results = []
    for n in names:
        users = [milvus_pb2.UserEntity(name=u) for u in store.users_of(n)] if m.include_user_info else []
        results.append(milvus_pb2.RoleResult(role=milvus_pb2.RoleEntity(name=n), users=users))
    return milvus_pb2.SelectRoleResponse(results=results)


def _operate_privilege(store: AuthStore, m: Any, user: str) -> common_pb2.Status:
    e = m.entity
    store.set_grant(
        e.role.name,
        e.object.name,
        e.object_name,
        e.db_name,
        e.grantor.privilege.name,
        m.type == milvus_pb2.Grant,
    )
    return common_pb2.Status()


def _operate_privilege_v2(store: AuthStore, m: Any, user: str) -> common_pb2.Status:
    obj = "Global" if m.collection_name in ("", "*") else "Collection"
    store.set_grant(
        m.role.name,
        obj,
        m.collection_name or "*",
        m.db_name or "default",
        m.grantor.privilege.name,
        m.type == milvus_pb2.Grant,
    )
    return common_pb2.Status()


def _select_grant(store: AuthStore, m: Any, user: str) -> milvus_pb2.SelectGrantResponse:
    e = m.entity
    rows = store.grants(e.role.name, e.object.name, e.object_name, e.db_name)
    ents = [
        milvus_pb2.GrantEntity(
            role=milvus_pb2.RoleEntity(name=r),
            object=milvus_pb2.ObjectEntity(name=o),
            object_name=n,
            db_name=d,
            grantor=milvus_pb2.GrantorEntity(
                user=milvus_pb2.UserEntity(name="root"), privilege=milvus_pb2.PrivilegeEntity(name=p)
            ),
        )
        for r, o, n, d, p in rows
    ]
    return milvus_pb2.SelectGrantResponse(entities=ents)


def _status(fn: Callable[[AuthStore, Any, str], Any]) -> Callable[[AuthStore, Any, str], common_pb2.Status]:
    def run(store: AuthStore, m: Any, user: str) -> common_pb2.Status:
        fn(store, m, user)
        return common_pb2.Status()

    return run


HANDLERS: dict[str, Callable[[AuthStore, Any, str], Any]] = {
    # CreateCredentialRequest.description is newer than the oldest protocol modules Heron runs on.
    "CreateCredential": _status(
        lambda s, m, u: s.create_user(m.username, _password(m.password), getattr(m, "description", ""))
    ),
    "UpdateCredential": _status(
        lambda s, m, u: s.update_password(m.username, _password(m.oldPassword), _password(m.newPassword), u)
    ),
    "DeleteCredential": _status(lambda s, m, u: s.delete_user(m.username)),
    "ListCredUsers": lambda s, m, u: milvus_pb2.ListCredUsersResponse(usernames=s.users()),
    "CreateRole": _status(lambda s, m, u: s.create_role(m.entity.name)),
    "DropRole": _status(lambda s, m, u: s.drop_role(m.role_name, m.force_drop)),
    "OperateUserRole": _status(
        lambda s, m, u: s.set_user_role(m.username, m.role_name, m.type == milvus_pb2.AddUserToRole)
    ),
    "SelectUser": _select_user,
    "SelectRole": _select_role,
    "OperatePrivilege": _operate_privilege,
    "OperatePrivilegeV2": _operate_privilege_v2,
    "SelectGrant": _select_grant,
}
