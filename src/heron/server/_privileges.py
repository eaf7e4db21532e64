"""Milvus's privilege vocabulary: object types, privilege names and the built-in privilege groups.

Names come from the protocol's enums (``ObjectType``, ``ObjectPrivilege``)
as Milvus's API spells them: without the ``Privilege`` / ``PrivilegeGroup``
prefix (``Search``, ``CollectionReadOnly``). The built-in groups grant what
Milvus (2.5 and later) puts in them by default, each level including the
one below it.
"""

from __future__ import annotations

from pymilvus.grpc_gen import common_pb2

#: The object types of grants, and the privilege names Milvus knows (its protocol's names, without
#: the ``Privilege`` / ``PrivilegeGroup`` prefix: ``Search``, ``CollectionReadOnly``, ...).
OBJECT_TYPES = frozenset(common_pb2.ObjectType.keys())
_PROTOCOL_NAMES = frozenset(
    n.removeprefix("PrivilegeGroup") if n.startswith("PrivilegeGroup") else n.removeprefix("Privilege")
    for n in common_pb2.ObjectPrivilege.keys()
)

def _levels(*levels: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Each level's privileges with those of the levels below it (read-only ⊂ read-write ⊂ admin)."""
    out: list[tuple[str, ...]] = []
    for level in levels:
        out.append((*(out[-1] if out else ()), *level))
    return out


_COLL = _levels(
    ("Query", "Search", "IndexDetail", "GetFlushState", "GetLoadState", "GetLoadingProgress", "HasPartition",
     "ShowPartitions", "DescribeCollection", "DescribeAlias", "GetStatistics", "ListAliases"),
    ("Load", "Release", "Insert", "Delete", "Upsert", "Import", "Flush", "Compaction", "LoadBalance",
     "CreateIndex", "DropIndex", "CreatePartition", "DropPartition"),
    ("CreateAlias", "DropAlias"),
)
_DB = _levels(("ShowCollections", "DescribeDatabase"), ("AlterDatabase",), ("CreateCollection", "DropCollection"))
_CLUSTER = _levels(
    ("ListDatabases", "SelectOwnership", "SelectUser", "DescribeResourceGroup", "ListResourceGroups",
     "ListPrivilegeGroups"),
    ("FlushAll", "TransferNode", "TransferReplica", "UpdateResourceGroups"),
    ("BackupRBAC", "RestoreRBAC", "CreateDatabase", "DropDatabase", "CreateOwnership", "DropOwnership",
     "ManageOwnership", "CreateResourceGroup", "DropResourceGroup", "UpdateUser", "RenameCollection",
     "CreatePrivilegeGroup", "DropPrivilegeGroup", "OperatePrivilegeGroup"),
)
#: Milvus's built-in privilege groups (its defaults, 2.5 and later) and the privileges each grants.
BUILTIN_GROUPS: dict[str, frozenset[str]] = {
    f"{scope}{level}": frozenset(privileges)
    for scope, levels in (("Collection", _COLL), ("Database", _DB), ("Cluster", _CLUSTER))
    for level, privileges in zip(("ReadOnly", "ReadWrite", "Admin"), levels, strict=True)
}
#: Every privilege name a grant may use: the protocol's, and the built-in groups with their privileges
#: (older protocol modules lack some of those names; the server knows them all the same).
PRIVILEGE_NAMES = _PROTOCOL_NAMES | set(BUILTIN_GROUPS) | {p for g in BUILTIN_GROUPS.values() for p in g}
