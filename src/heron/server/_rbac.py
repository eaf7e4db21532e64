"""Which privilege each RPC of MilvusService needs, and what listings show.

The user, role and privilege RPCs themselves are answered on the
`AuthStore` by `heron.engine._access.run` (their messages: `heron.wire._access`).

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

from typing import Any

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
    "Import": ("Collection", "Import"),
    "Upsert": ("Collection", "Upsert"),
    "Delete": ("Collection", "Delete"),
    "Query": ("Collection", "Query"),
    "Search": ("Collection", "Search"),
    "HybridSearch": ("Collection", "Search"),
    "Flush": ("Collection", "Flush"),
    "ManualCompaction": ("Collection", "Compaction"),
    "DescribeDatabase": ("Global", "DescribeDatabase"),
    "AlterDatabase": ("Global", "AlterDatabase"),
    "ListPrivilegeGroups": ("Global", "ListPrivilegeGroups"),
    "CreateResourceGroup": ("Global", "CreateResourceGroup"),
    "DropResourceGroup": ("Global", "DropResourceGroup"),
    "UpdateResourceGroups": ("Global", "UpdateResourceGroups"),
    "DescribeResourceGroup": ("Global", "DescribeResourceGroup"),
    "ListResourceGroups": ("Global", "ListResourceGroups"),
    "TransferReplica": ("Global", "TransferReplica"),
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
    "AddCollectionStructField": ("Collection", "AddCollectionField"),
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
        "AlterRole",
        "CreatePrivilegeGroup",
        "DropPrivilegeGroup",
        "OperatePrivilegeGroup",
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

