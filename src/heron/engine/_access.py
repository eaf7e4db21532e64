"""Users, roles, privileges and privilege groups: the requests, answered on an auth store.

`run` answers one request of `heron._requests` (`CreateUser` ...
`OperatePrivilegeGroup`) on a store: the server's `AuthStore` (``heron
serve --auth``, which enforces what is granted), or `NO_AUTH`.

`NO_AUTH` answers where nobody logs in: an embedded client, and a server
started without ``--auth``. It lists what a fresh Milvus lists (the user
``root``; the roles ``admin`` and ``public``; no grants, no privilege
groups) and refuses every change with `ParamError`: grants that nothing
enforces would only mislead. Milvus Lite does not implement these calls at
all (it answers UNIMPLEMENTED, "Method not implemented!"); Heron answers
the listings so that code which reads them runs unchanged, and names
``heron serve --auth`` where a change needs it.

Result shapes are those of pymilvus's ``MilvusClient``: user and role
descriptions as dicts, grants as the dicts of pymilvus's ``GrantItem``,
privilege groups as ``{"privilege_group", "privileges"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _requests as rq
from .._errors import ParamError

ROOT = "root"
BUILTIN_ROLES = ("admin", "public")
#: The requests `run` answers.
ACCESS_REQUESTS: tuple[type, ...] = (
    rq.CreateUser, rq.DropUser, rq.UpdatePassword, rq.UpdateUser, rq.ListUsers, rq.DescribeUser,
    rq.CreateRole, rq.DropRole, rq.AlterRole, rq.OperateUserRole, rq.DescribeRole, rq.ListGrants,
    rq.OperatePrivilege, rq.CreatePrivilegeGroup, rq.DropPrivilegeGroup, rq.ListPrivilegeGroups,
    rq.OperatePrivilegeGroup,
)


class NoAuth:
    """The store where nobody logs in: what a fresh Milvus lists; every change refused (see the module)."""

    def users(self) -> list[str]:
        return [ROOT]

    def user_description(self, user: str) -> str:
        return ""

    def roles(self) -> list[str]:
        return sorted(BUILTIN_ROLES)

    def role_description(self, role: str) -> str:
        return ""

    def roles_of(self, user: str) -> list[str]:
        return []

    def users_of(self, role: str) -> list[str]:
        return []

    def grants(self, role: str, obj: str = "", name: str = "", db: str = "") -> list[tuple[str, ...]]:
        return []

    def privilege_groups(self) -> dict[str, list[str]]:
        return {}

    def __getattr__(self, name: str) -> Any:
        raise ParamError(
            "users, roles and privileges can be changed only on a server started with --auth "
            "(heron serve --auth): without logins nothing would enforce them"
        )


NO_AUTH = NoAuth()


def _describe_user(store: Any, r: rq.DescribeUser, caller: str) -> list[dict[str, Any]]:
    names = [r.user_name] if r.user_name else store.users()
    known = set(store.users())
    return [
        {"user_name": n, "roles": tuple(store.roles_of(n)), "description": store.user_description(n)}
        for n in names
        if n in known
    ]


def _describe_role(store: Any, r: rq.DescribeRole, caller: str) -> list[dict[str, Any]]:
    names = [r.role_name] if r.role_name else store.roles()
    known = set(store.roles())
    return [
        {
            "role": n,
            "description": store.role_description(n),
            "users": tuple(store.users_of(n)) if r.include_users else (),
        }
        for n in names
        if n in known
    ]


def _grants(store: Any, r: rq.ListGrants, caller: str) -> list[dict[str, Any]]:
    out = []
    for role, obj, name, db, privilege in store.grants(r.role_name, r.object_type, r.object_name, r.db_name):
        out.append({"object_type": obj, "object_name": name, "db_name": db, "role_name": role,
                    "privilege": privilege, "grantor_name": ROOT})
    return out


def _privilege_groups(store: Any, r: rq.ListPrivilegeGroups, caller: str) -> list[dict[str, Any]]:
    return [{"privilege_group": g, "privileges": tuple(p)} for g, p in sorted(store.privilege_groups().items())]


def _operate_privilege(store: Any, r: rq.OperatePrivilege, caller: str) -> None:
    if r.v2:
        obj = "Global" if r.object_name in ("", "*") else "Collection"
        store.set_grant(r.role_name, obj, r.object_name or "*", r.db_name or "default", r.privilege, r.grant,
                        v2=True)
    else:
        store.set_grant(r.role_name, r.object_type, r.object_name, r.db_name, r.privilege, r.grant)


_RUN: dict[type, Callable[[Any, Any, str], Any]] = {
    rq.CreateUser: lambda s, r, c: s.create_user(r.user_name, r.password, r.description),
    rq.DropUser: lambda s, r, c: s.delete_user(r.user_name),
    rq.UpdatePassword: lambda s, r, c: s.update_password(r.user_name, r.old_password, r.new_password, c),
    rq.UpdateUser: lambda s, r, c: s.update_user(r.user_name, r.description, c),
    rq.ListUsers: lambda s, r, c: s.users(),
    rq.DescribeUser: _describe_user,
    rq.CreateRole: lambda s, r, c: s.create_role(r.role_name, r.description),
    rq.DropRole: lambda s, r, c: s.drop_role(r.role_name, r.force_drop),
    rq.AlterRole: lambda s, r, c: s.alter_role(r.role_name, r.description),
    rq.OperateUserRole: lambda s, r, c: s.set_user_role(r.user_name, r.role_name, r.grant),
    rq.DescribeRole: _describe_role,
    rq.ListGrants: _grants,
    rq.OperatePrivilege: _operate_privilege,
    rq.CreatePrivilegeGroup: lambda s, r, c: s.create_privilege_group(r.group_name),
    rq.DropPrivilegeGroup: lambda s, r, c: s.drop_privilege_group(r.group_name),
    rq.ListPrivilegeGroups: _privilege_groups,
    rq.OperatePrivilegeGroup: lambda s, r, c: s.set_group_privileges(r.group_name, r.privileges, r.add),
}


def run(store: Any, request: Any, caller: str = "") -> Any:
    """Answer one access request on ``store`` for the user ``caller`` ("" where nobody logs in)."""
    return _RUN[type(request)](store, request, caller)
