"""The user, role and privilege RPCs, and AlterDatabase, as pure translation (no store, no I/O).

`ACCESS` holds, per Milvus RPC, how the server decodes its message into a
request of `heron._requests` and encodes the answer of
`heron.engine._access.run`. `CLIENT` holds, per request type, the RPC a
Heron client sends it as, the message, and how the reply becomes the
answer the embedded client gives. Passwords travel base64-encoded, as
pymilvus sends them. ``AlterDatabase`` runs on the engine, so it joins the
codec table (`CODECS`) instead.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from .. import _requests as rq
from . import _compat as compat
from . import _schema as ws
from ._codecs import CODECS, Codec

M = milvus_pb2


@dataclass(frozen=True)
class AccessRpc:
    """decode(msg, db) → request (server); encode(result, request) → reply (server)."""

    decode: Callable[[Any, str], Any]
    encode: Callable[[Any, Any], Any]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _password(raw: bytes | str) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        return base64.b64decode(data, validate=True).decode()
    except ValueError:
        return data.decode()


def _ok(result: Any, r: Any) -> common_pb2.Status:
    return common_pb2.Status()


def _described(m: Any) -> str:
    return str(getattr(m, "description", "") or "")


def _update_credential(m: Any, db: str) -> Any:
    if not m.oldPassword and not m.newPassword and compat.has_field(m, "description"):
        return rq.UpdateUser(m.username, m.description)  # pymilvus 3's update_user
    return rq.UpdatePassword(m.username, _password(m.oldPassword), _password(m.newPassword))


def _users_reply(result: list[dict[str, Any]], r: Any) -> Any:
    out = []
    for u in result:
        roles = [M.RoleEntity(name=n) for n in u["roles"]] if r.include_roles else []
        res = M.UserResult(user=M.UserEntity(name=u["user_name"]), roles=roles)
        if compat.has_field(res, "description"):
            res.description = u["description"]
        out.append(res)
    return M.SelectUserResponse(results=out)


def _role_entity(name: str, description: str = "") -> Any:
    role = M.RoleEntity(name=name)
    if description and compat.has_field(role, "description"):
        role.description = description
    return role


def _roles_reply(result: list[dict[str, Any]], r: Any) -> Any:
    return M.SelectRoleResponse(results=[
        M.RoleResult(role=_role_entity(x["role"], x["description"]), users=[M.UserEntity(name=u) for u in x["users"]])
        for x in result
    ])


def _grants_reply(result: list[dict[str, Any]], r: Any) -> Any:
    return M.SelectGrantResponse(entities=[
        M.GrantEntity(
            role=M.RoleEntity(name=g["role_name"]),
            object=M.ObjectEntity(name=g["object_type"]),
            object_name=g["object_name"],
            db_name=g["db_name"],
            grantor=M.GrantorEntity(user=M.UserEntity(name=g["grantor_name"]),
                                    privilege=M.PrivilegeEntity(name=g["privilege"])),
        )
        for g in result
    ])


def _groups_reply(result: list[dict[str, Any]], r: Any) -> Any:
    return M.ListPrivilegeGroupsResponse(privilege_groups=[
        M.PrivilegeGroupInfo(group_name=g["privilege_group"],
                             privileges=[M.PrivilegeEntity(name=p) for p in g["privileges"]])
        for g in result
    ])


def _select_user(m: Any, db: str) -> rq.DescribeUser:
    return rq.DescribeUser(m.user.name if m.HasField("user") else "", bool(m.include_role_info))


def _select_role(m: Any, db: str) -> rq.DescribeRole:
    return rq.DescribeRole(m.role.name if m.HasField("role") else "", bool(m.include_user_info))


def _select_grant(m: Any, db: str) -> rq.ListGrants:
    e = m.entity
    return rq.ListGrants(e.role.name, e.object.name, e.object_name, e.db_name)


def _operate_privilege(m: Any, db: str) -> rq.OperatePrivilege:
    e = m.entity
    # No database named: the caller's current one, as Milvus's proxy fills it in.
    return rq.OperatePrivilege(e.role.name, e.object.name, e.grantor.privilege.name, e.object_name,
                               e.db_name or db, m.type == M.Grant)


def _operate_privilege_v2(m: Any, db: str) -> rq.OperatePrivilege:
    return rq.OperatePrivilege(m.role.name, "", m.grantor.privilege.name, m.collection_name, m.db_name or db,
                               m.type == M.Grant, v2=True)


_ADD_TO_GROUP = 0  # OperatePrivilegeGroupType.AddPrivilegesToGroup
_REMOVE_FROM_GROUP = 1

#: The access RPCs the server answers on its auth store (`heron.engine._access.run`).
ACCESS: dict[str, AccessRpc] = {
    "CreateCredential": AccessRpc(
        lambda m, db: rq.CreateUser(m.username, _password(m.password), _described(m)), _ok),
    "UpdateCredential": AccessRpc(_update_credential, _ok),
    "DeleteCredential": AccessRpc(lambda m, db: rq.DropUser(m.username), _ok),
    "ListCredUsers": AccessRpc(lambda m, db: rq.ListUsers(),
                               lambda res, r: M.ListCredUsersResponse(usernames=res)),
    "SelectUser": AccessRpc(_select_user, _users_reply),
    "CreateRole": AccessRpc(lambda m, db: rq.CreateRole(m.entity.name, _described(m.entity)), _ok),
    "DropRole": AccessRpc(lambda m, db: rq.DropRole(m.role_name, m.force_drop), _ok),
    "AlterRole": AccessRpc(lambda m, db: rq.AlterRole(m.role_name, m.description), _ok),
    "OperateUserRole": AccessRpc(
        lambda m, db: rq.OperateUserRole(m.username, m.role_name, m.type == M.AddUserToRole), _ok),
    "SelectRole": AccessRpc(_select_role, _roles_reply),
    "SelectGrant": AccessRpc(_select_grant, _grants_reply),
    "OperatePrivilege": AccessRpc(_operate_privilege, _ok),
    "OperatePrivilegeV2": AccessRpc(_operate_privilege_v2, _ok),
    "CreatePrivilegeGroup": AccessRpc(lambda m, db: rq.CreatePrivilegeGroup(m.group_name), _ok),
    "DropPrivilegeGroup": AccessRpc(lambda m, db: rq.DropPrivilegeGroup(m.group_name), _ok),
    "ListPrivilegeGroups": AccessRpc(lambda m, db: rq.ListPrivilegeGroups(), _groups_reply),
    "OperatePrivilegeGroup": AccessRpc(
        lambda m, db: rq.OperatePrivilegeGroup(m.group_name, tuple(p.name for p in m.privileges),
                                               m.type == _ADD_TO_GROUP),
        _ok),
}


# -- the client side ----------------------------------------------------------------------------
def _user_msg(r: rq.DescribeUser) -> Any:
    user = M.UserEntity(name=r.user_name) if r.user_name else None
    return M.SelectUserRequest(user=user, include_role_info=r.include_roles)


def _users_from(reply: Any, r: Any) -> list[dict[str, Any]]:
    return [{"user_name": u.user.name, "roles": tuple(x.name for x in u.roles),
             "description": str(getattr(u, "description", ""))} for u in reply.results]


def _roles_from(reply: Any, r: Any) -> list[dict[str, Any]]:
    return [{"role": x.role.name, "description": str(getattr(x.role, "description", "")),
             "users": tuple(u.name for u in x.users)} for x in reply.results]


def _grants_from(reply: Any, r: Any) -> list[dict[str, Any]]:
    return [{"object_type": g.object.name, "object_name": g.object_name, "db_name": g.db_name,
             "role_name": g.role.name, "privilege": g.grantor.privilege.name, "grantor_name": g.grantor.user.name}
            for g in reply.entities]


def _groups_from(reply: Any, r: Any) -> list[dict[str, Any]]:
    return [{"privilege_group": g.group_name, "privileges": tuple(p.name for p in g.privileges)}
            for g in reply.privilege_groups]


def _create_user_msg(r: rq.CreateUser) -> Any:
    msg = M.CreateCredentialRequest(username=r.user_name, password=_b64(r.password))
    if r.description:
        compat.require_field(msg, "description", "a user's description")
        msg.description = r.description
    return msg


def _update_user_msg(r: rq.UpdateUser) -> Any:
    msg = M.UpdateCredentialRequest(username=r.user_name)
    compat.require_field(msg, "description", "a user's description")
    msg.description = r.description
    return msg


def _create_role_msg(r: rq.CreateRole) -> Any:
    if r.description:
        compat.require_field(M.RoleEntity, "description", "a role's description")
    return M.CreateRoleRequest(entity=_role_entity(r.role_name, r.description))


def _alter_role_msg(r: rq.AlterRole) -> Any:
    compat.require_rpc("AlterRole")  # pymilvus>=2.6's modules
    return M.AlterRoleRequest(role_name=r.role_name, description=r.description)


def _privilege_msg(r: rq.OperatePrivilege) -> tuple[str, Any]:
    kind = M.Grant if r.grant else M.Revoke
    grantor = M.GrantorEntity(privilege=M.PrivilegeEntity(name=r.privilege))
    if r.v2:
        return "OperatePrivilegeV2", M.OperatePrivilegeV2Request(
            role=M.RoleEntity(name=r.role_name), grantor=grantor, type=kind, db_name=r.db_name,
            collection_name=r.object_name)
    entity = M.GrantEntity(role=M.RoleEntity(name=r.role_name), object=M.ObjectEntity(name=r.object_type),
                           object_name=r.object_name, db_name=r.db_name, grantor=grantor)
    return "OperatePrivilege", M.OperatePrivilegeRequest(entity=entity, type=kind)


def _none(reply: Any, r: Any) -> None:
    return None


#: Request type → (the RPC and message it travels as, and its answer from the reply).
CLIENT: dict[type, tuple[Callable[[Any], tuple[str, Any]], Callable[[Any, Any], Any]]] = {
    rq.CreateUser: (lambda r: ("CreateCredential", _create_user_msg(r)), _none),
    rq.DropUser: (lambda r: ("DeleteCredential", M.DeleteCredentialRequest(username=r.user_name)), _none),
    rq.UpdatePassword: (lambda r: ("UpdateCredential", M.UpdateCredentialRequest(
        username=r.user_name, oldPassword=_b64(r.old_password), newPassword=_b64(r.new_password))), _none),
    rq.UpdateUser: (lambda r: ("UpdateCredential", _update_user_msg(r)), _none),
    rq.ListUsers: (lambda r: ("ListCredUsers", M.ListCredUsersRequest()), lambda rep, r: list(rep.usernames)),
    rq.DescribeUser: (lambda r: ("SelectUser", _user_msg(r)), _users_from),
    rq.CreateRole: (lambda r: ("CreateRole", _create_role_msg(r)), _none),
    rq.DropRole: (lambda r: ("DropRole", M.DropRoleRequest(role_name=r.role_name, force_drop=r.force_drop)), _none),
    rq.AlterRole: (lambda r: ("AlterRole", _alter_role_msg(r)), _none),
    rq.OperateUserRole: (lambda r: ("OperateUserRole", M.OperateUserRoleRequest(
        username=r.user_name, role_name=r.role_name,
        type=M.AddUserToRole if r.grant else M.RemoveUserFromRole)), _none),
    rq.DescribeRole: (lambda r: ("SelectRole", M.SelectRoleRequest(
        role=M.RoleEntity(name=r.role_name) if r.role_name else None, include_user_info=r.include_users)),
        _roles_from),
    rq.ListGrants: (lambda r: ("SelectGrant", M.SelectGrantRequest(entity=M.GrantEntity(
        role=M.RoleEntity(name=r.role_name), object=M.ObjectEntity(name=r.object_type) if r.object_type else None,
        object_name=r.object_name, db_name=r.db_name))), _grants_from),
    rq.OperatePrivilege: (_privilege_msg, _none),
    rq.CreatePrivilegeGroup: (lambda r: ("CreatePrivilegeGroup", M.CreatePrivilegeGroupRequest(
        group_name=r.group_name)), _none),
    rq.DropPrivilegeGroup: (lambda r: ("DropPrivilegeGroup", M.DropPrivilegeGroupRequest(
        group_name=r.group_name)), _none),
    rq.ListPrivilegeGroups: (lambda r: ("ListPrivilegeGroups", M.ListPrivilegeGroupsRequest()), _groups_from),
    rq.OperatePrivilegeGroup: (lambda r: ("OperatePrivilegeGroup", M.OperatePrivilegeGroupRequest(
        group_name=r.group_name, privileges=[M.PrivilegeEntity(name=p) for p in r.privileges],
        type=_ADD_TO_GROUP if r.add else _REMOVE_FROM_GROUP)), _none),
}

# AlterDatabase runs on the engine: one more entry of the codec table.
CODECS["AlterDatabase"] = Codec(
    "AlterDatabase",
    rq.AlterDatabase,
    lambda m, db, s: rq.AlterDatabase(m.db_name or db, ws.kv_dict(m.properties), tuple(m.delete_keys)),
    lambda res, r, s: common_pb2.Status(),
    lambda r, s: M.AlterDatabaseRequest(db_name=r.db_name, properties=ws.kv_pairs(r.properties),
                                        delete_keys=list(r.delete_keys)),
    lambda reply, r: None,
)
