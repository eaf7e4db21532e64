"""`AsyncClient` methods for users, roles, privileges, database properties and resource groups.

A mixin of `AsyncClient`; `scripts/unasync.py` generates the blocking
version from this file. Methods follow pymilvus's `AsyncMilvusClient` and
`MilvusClient` (3.0): the same names, parameters and result shapes.

Users, roles and privileges live on a server started with ``heron serve
--auth``, which enforces them. Embedded (and on a server without
``--auth``) nobody logs in: the listings answer as a fresh Milvus does
(``root``; ``admin`` and ``public``) and changes raise `ParamError` naming
``--auth`` (Milvus Lite does not implement these calls at all).

Resource groups answer as a one-node Milvus does: the one node is in the
default group with every replica; other groups can be made but get no
node (see `heron.engine._resource_groups`).
"""

from __future__ import annotations

from typing import Any

from .. import _requests as rq
from .._errors import ParamError
from ._base import ClientBase, property_keys_of
from ._results import ResourceGroupInfo


def _names(what: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ParamError(f"{what}: got {value!r}, expected a list of privilege names")
    return tuple(value)


def _group_config(config: Any) -> dict[str, Any]:
    """A resource group config: pymilvus's ``ResourceGroupConfig`` message or a dict of its fields."""
    if config is None:
        return {}
    if isinstance(config, dict):
        return dict(config)
    if hasattr(config, "DESCRIPTOR"):
        from google.protobuf import json_format

        return json_format.MessageToDict(config, preserving_proto_field_name=True,
                                          always_print_fields_with_no_presence=True)
    raise ParamError(f"config: got {config!r}, expected a ResourceGroupConfig or a dict of its fields")


class AsyncAdminMixin(ClientBase):
    """Users, roles, privileges, database properties and resource groups."""

    async def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    # -- users -------------------------------------------------------------------------
    async def create_user(self, user_name: str, password: str, timeout: float | None = None,
                          description: str | None = None, **kwargs: Any) -> None:
        """Create a user; `AlreadyExistsError` if it exists."""
        await self._call(rq.CreateUser(user_name, password, description or ""), timeout)

    async def drop_user(self, user_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop a user with its role memberships; ``root`` cannot be dropped."""
        await self._call(rq.DropUser(user_name), timeout)

    async def update_password(self, user_name: str, old_password: str, new_password: str,
                              reset_connection: bool | None = False, timeout: float | None = None,
                              description: str | None = None, **kwargs: Any) -> None:
        """Change a user's password (the user itself, knowing the old one, or an administrator).

        With ``reset_connection`` this client logs in with the new password from then on.
        """
        await self._call(rq.UpdatePassword(user_name, old_password, new_password), timeout)
        if description is not None:
            await self._call(rq.UpdateUser(user_name, description), timeout)
        if reset_connection:
            self._token = f"{user_name}:{new_password}"
            set_token = getattr(getattr(self, "_transport", None), "set_token", None)
            if set_token is not None:
                set_token(self._token)

    async def update_user(self, user_name: str, description: str, timeout: float | None = None,
                          **kwargs: Any) -> None:
        """Set a user's description (the user itself or an administrator)."""
        await self._call(rq.UpdateUser(user_name, description), timeout)

    async def list_users(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The names of the users."""
        return list(await self._call(rq.ListUsers(), timeout))

    async def describe_user(self, user_name: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``{"user_name", "roles", "description"}`` of a user; ``{}`` for one that does not exist."""
        found = await self._call(rq.DescribeUser(user_name), timeout)
        return dict(found[0]) if found else {}

    # -- roles ---------------------------------------------------------------------------
    async def create_role(self, role_name: str, timeout: float | None = None, description: str = "",
                          **kwargs: Any) -> None:
        """Create a role; `AlreadyExistsError` if it exists."""
        await self._call(rq.CreateRole(role_name, description or ""), timeout)

    async def alter_role(self, role_name: str, description: str, timeout: float | None = None,
                         **kwargs: Any) -> None:
        """Set a role's description."""
        await self._call(rq.AlterRole(role_name, description), timeout)

    async def drop_role(self, role_name: str, force_drop: bool = False, timeout: float | None = None,
                        **kwargs: Any) -> None:
        """Drop a role and its grants; one still granted to users needs ``force_drop=True``."""
        await self._call(rq.DropRole(role_name, force_drop), timeout)

    async def grant_role(self, user_name: str, role_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Give a user a role."""
        await self._call(rq.OperateUserRole(user_name, role_name, True), timeout)

    async def revoke_role(self, user_name: str, role_name: str, timeout: float | None = None,
                          **kwargs: Any) -> None:
        """Take a role from a user."""
        await self._call(rq.OperateUserRole(user_name, role_name, False), timeout)

    async def describe_role(self, role_name: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``{"role", "description", "privileges"}``: the role's grants (in ``db_name=`` only, if given).

        Each grant is a dict as pymilvus gives it: ``object_type``, ``object_name``,
        ``db_name``, ``role_name``, ``privilege``, ``grantor_name``.
        """
        found = await self._call(rq.DescribeRole(role_name), timeout)
        grants = await self._call(rq.ListGrants(role_name, db_name=kwargs.get("db_name") or ""), timeout)
        return {
            "role": role_name,
            "description": found[0]["description"] if found else "",
            "privileges": [dict(g) for g in grants],
        }

    async def list_roles(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The names of the roles (``admin`` and ``public`` always among them)."""
        return [r["role"] for r in await self._call(rq.DescribeRole(""), timeout)]

    # -- privileges ----------------------------------------------------------------------
    async def grant_privilege(self, role_name: str, object_type: str, privilege: str, object_name: str,
                              db_name: str | None = "", timeout: float | None = None, **kwargs: Any) -> None:
        """Grant ``privilege`` on ``object_type`` (Collection, Global, User) ``object_name`` (``*``: all).

        An unknown object type or privilege raises `ParamError` (code 65535, as in Milvus) and grants nothing.
        """
        await self._call(rq.OperatePrivilege(role_name, object_type, privilege, object_name, db_name or "", True),
                         timeout)

    async def revoke_privilege(self, role_name: str, object_type: str, privilege: str, object_name: str,
                               db_name: str | None = "", timeout: float | None = None, **kwargs: Any) -> None:
        """Revoke a privilege `grant_privilege` granted; one not granted is not an error."""
        await self._call(rq.OperatePrivilege(role_name, object_type, privilege, object_name, db_name or "", False),
                         timeout)

    async def grant_privilege_v2(self, role_name: str, privilege: str, collection_name: str,
                                 db_name: str | None = None, timeout: float | None = None, **kwargs: Any) -> None:
        """Grant a privilege or privilege group on a collection (``*``: every collection of the database)."""
        await self._call(rq.OperatePrivilege(role_name, "", privilege, collection_name, db_name or "", True, v2=True),
                         timeout)

    async def revoke_privilege_v2(self, role_name: str, privilege: str, collection_name: str,
                                  db_name: str | None = None, timeout: float | None = None, **kwargs: Any) -> None:
        """Revoke a privilege `grant_privilege_v2` granted."""
        await self._call(
            rq.OperatePrivilege(role_name, "", privilege, collection_name, db_name or "", False, v2=True), timeout)

    # -- privilege groups ----------------------------------------------------------------
    async def create_privilege_group(self, group_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Create an empty privilege group; a name Milvus uses for a privilege or built-in group is refused."""
        await self._call(rq.CreatePrivilegeGroup(group_name), timeout)

    async def drop_privilege_group(self, group_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop a privilege group; one still granted to a role is refused (revoke it first)."""
        await self._call(rq.DropPrivilegeGroup(group_name), timeout)

    async def list_privilege_groups(self, timeout: float | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        """``[{"privilege_group", "privileges"}]``: the privilege groups created, with their privileges."""
        return list(await self._call(rq.ListPrivilegeGroups(), timeout))

    async def add_privileges_to_group(self, group_name: str, privileges: list[str], timeout: float | None = None,
                                      **kwargs: Any) -> None:
        """Add privileges to a group; an unknown privilege name raises `ParamError` and adds none."""
        await self._call(rq.OperatePrivilegeGroup(group_name, _names("privileges", privileges), True), timeout)

    async def remove_privileges_from_group(self, group_name: str, privileges: list[str],
                                           timeout: float | None = None, **kwargs: Any) -> None:
        """Remove privileges from a group."""
        await self._call(rq.OperatePrivilegeGroup(group_name, _names("privileges", privileges), False), timeout)

    # -- database properties -------------------------------------------------------------
    async def alter_database_properties(self, db_name: str, properties: dict[str, Any],
                                        timeout: float | None = None, **kwargs: Any) -> None:
        """Merge ``properties`` into the database's, kept as the strings pymilvus sends (``str(value)``)."""
        if not isinstance(properties, dict):
            raise ParamError(f"properties: got {properties!r}, expected a dict")
        props = {str(k): v if isinstance(v, str) else str(v) for k, v in properties.items()}
        await self._call(rq.AlterDatabase(db_name, props), timeout)

    async def drop_database_properties(self, db_name: str, property_keys: list[str],
                                       timeout: float | None = None, **kwargs: Any) -> None:
        """Remove the named properties from the database; a key it does not have is ignored."""
        await self._call(rq.AlterDatabase(db_name, {}, property_keys_of(property_keys)), timeout)

    # -- resource groups and the server ----------------------------------------------------
    async def create_resource_group(self, name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Create a resource group (``config=`` a ``ResourceGroupConfig`` or dict); one that exists is kept."""
        await self._call(rq.CreateResourceGroup(name, _group_config(kwargs.get("config"))), timeout)

    async def update_resource_groups(self, configs: dict[str, Any], timeout: float | None = None,
                                     **kwargs: Any) -> None:
        """Change the configs of existing groups (all or none: an unknown group raises, code 300)."""
        if not isinstance(configs, dict):
            raise ParamError(f"configs: got {configs!r}, expected a dict of group name to config")
        await self._call(rq.UpdateResourceGroups({str(k): _group_config(v) for k, v in configs.items()}), timeout)

    async def drop_resource_group(self, name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop a resource group; the default one cannot be dropped, a missing one is not an error."""
        await self._call(rq.DropResourceGroup(name), timeout)

    async def describe_resource_group(self, name: str, timeout: float | None = None,
                                      **kwargs: Any) -> ResourceGroupInfo:
        """The group's nodes, replicas and config; `NotFoundError` (code 300) if there is none."""
        return ResourceGroupInfo.from_dict(await self._call(rq.DescribeResourceGroup(name), timeout))

    async def list_resource_groups(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The names of the resource groups, the default one first."""
        return list(await self._call(rq.ListResourceGroups(), timeout))

    async def transfer_replica(self, source_group: str = "", target_group: str = "", collection_name: str = "",
                               num_replicas: int = 0, timeout: float | None = None, *, source: str = "",
                               target: str = "", num_replica: int = 0, **kwargs: Any) -> None:
        """Move replicas between groups: on one node there is no other node to move them to, so it raises.

        Takes pymilvus's ``MilvusClient`` names, or its ``AsyncMilvusClient`` ones
        (``source``, ``target``, ``num_replica``) as keywords.
        """
        req = rq.TransferReplica(self._dbn(kwargs), source_group or source, target_group or target,
                                 collection_name, num_replicas or num_replica)
        await self._call(req, timeout)

    def get_server_type(self) -> str:
        """``"milvus"``: what pymilvus answers for a server that is not Zilliz Cloud, Heron's included."""
        return "milvus"
