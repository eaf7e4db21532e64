"""Requests for users, roles, privileges and resource groups.

Part of `heron._requests`, which re-exports every class; see that module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# -- users, roles and privileges ---------------------------------------------------
# Answered by the server's auth store (`heron serve --auth`); embedded, and by a server
# without authentication, as a fresh Milvus lists them, changes refused (heron.engine._access).


@dataclass(frozen=True)
class CreateUser:
    user_name: str
    password: str
    description: str = ""


@dataclass(frozen=True)
class DropUser:
    user_name: str


@dataclass(frozen=True)
class UpdatePassword:
    user_name: str
    old_password: str
    new_password: str


@dataclass(frozen=True)
class UpdateUser:
    """Set a user's description (pymilvus 3's ``update_user``)."""

    user_name: str
    description: str


@dataclass(frozen=True)
class ListUsers:
    pass


@dataclass(frozen=True)
class DescribeUser:
    """The user named (every user for ""), with roles and description; an unknown user gives []."""

    user_name: str
    include_roles: bool = True


@dataclass(frozen=True)
class CreateRole:
    role_name: str
    description: str = ""


@dataclass(frozen=True)
class DropRole:
    role_name: str
    force_drop: bool = False


@dataclass(frozen=True)
class AlterRole:
    role_name: str
    description: str


@dataclass(frozen=True)
class OperateUserRole:
    """Grant (``grant``) or revoke a role to or from a user."""

    user_name: str
    role_name: str
    grant: bool


@dataclass(frozen=True)
class DescribeRole:
    """The role named (every role for ""), with description and, if ``include_users``, users; unknown: []."""

    role_name: str
    include_users: bool = False


@dataclass(frozen=True)
class ListGrants:
    """The grants of a role, narrowed to an object type, object name and database where given."""

    role_name: str
    object_type: str = ""
    object_name: str = ""
    db_name: str = ""


@dataclass(frozen=True)
class OperatePrivilege:
    """Grant or revoke ``privilege`` on ``object_type``/``object_name`` in ``db_name`` ("" is ``default``).

    ``v2`` marks grant_privilege_v2 (no object type: a collection, or ``*`` for all).
    """

    role_name: str
    object_type: str
    privilege: str
    object_name: str
    db_name: str
    grant: bool
    v2: bool = False


@dataclass(frozen=True)
class CreatePrivilegeGroup:
    group_name: str


@dataclass(frozen=True)
class DropPrivilegeGroup:
    group_name: str


@dataclass(frozen=True)
class ListPrivilegeGroups:
    pass


@dataclass(frozen=True)
class OperatePrivilegeGroup:
    """Add (``add``) or remove ``privileges`` to or from a privilege group."""

    group_name: str
    privileges: tuple[str, ...]
    add: bool


# -- resource groups (Heron is one node: see heron.engine._resource_groups) -------------


@dataclass(frozen=True)
class CreateResourceGroup:
    """``config``: a resource group config as a dict (``requests``, ``limits``, ``transfer_from``, ...)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DropResourceGroup:
    name: str


@dataclass(frozen=True)
class UpdateResourceGroups:
    configs: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class DescribeResourceGroup:
    name: str


@dataclass(frozen=True)
class ListResourceGroups:
    pass


@dataclass(frozen=True)
class TransferReplica:
    db_name: str
    source_group: str
    target_group: str
    collection_name: str
    num_replicas: int


Request = Any
