"""Resource groups, as a one-node Milvus answers them.

Heron is one node, and that node is in the default resource group,
``__default_resource_group``, which holds every loaded collection's one
replica. Other groups may be created, configured, described and dropped
as in Milvus (they are kept in the catalog), but they never get a node:
Milvus gives nodes to the groups whose requests are unmet from the nodes
it has, and there is no second one. So moving a replica into one fails as
Milvus fails it ("nodes not enough"), and nothing moves.

Milvus's rules kept: creating a group that exists with the same config
succeeds; dropping one that does not exist succeeds; the default group
cannot be dropped; describing or configuring one that does not exist is
error 300 ("resource group not found").
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import NotFoundError, ParamError
from .._version import server_version

if TYPE_CHECKING:
    from ._engine import Engine

DEFAULT_GROUP = "__default_resource_group"
#: Milvus's limit of the default group's nodes (its ``defaultResourceGroupCapacity``).
DEFAULT_LIMIT = 1_000_000
MAX_GROUPS = 1024
#: The one node (the same id `describe_replica` names).
NODE_ID = 1
_META_KEY = "resource_groups"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def _config(requests: int, limits: int) -> dict[str, Any]:
    """A group config with every field, as the protocol's message shows it with its defaults."""
    return {"requests": {"node_num": requests}, "limits": {"node_num": limits}, "transfer_from": [],
            "transfer_to": []}


def _node_num(config: dict[str, Any], key: str) -> int:
    return int((config.get(key) or {}).get("node_num", 0))


class NotFoundGroup(NotFoundError):
    """A resource group that does not exist (Milvus's code 300)."""

    code = 300


class ResourceGroups:
    """The resource group requests of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _groups(self) -> dict[str, dict[str, Any]]:
        rows = self.engine.catalog.rows("SELECT value FROM meta WHERE key=?", (_META_KEY,))
        groups: dict[str, dict[str, Any]] = {DEFAULT_GROUP: _config(0, DEFAULT_LIMIT)}
        groups.update(json.loads(rows[0][0]) if rows else {})
        return groups

    def _store(self, groups: dict[str, dict[str, Any]]) -> None:
        self.engine.catalog.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                    (_META_KEY, json.dumps(groups, sort_keys=True)))

    def _existing(self, name: str) -> dict[str, Any]:
        config = self._groups().get(name)
        if config is None:
            raise NotFoundGroup(f"resource group not found[rg={name}]")
        return config

    def op_create(self, r: rq.CreateResourceGroup) -> None:
        if not isinstance(r.name, str) or not _NAME.match(r.name):
            raise ParamError(f"resource group name {r.name!r} is invalid: expected a letter or '_' then letters, "
                             "digits or '_'")
        config = {**_config(0, 0), **r.config}
        with self.engine.lock:
            groups = self._groups()
            if r.name in groups:
                if groups[r.name] != config and r.config:
                    raise ParamError(f"resource group {r.name!r} already exists with another config")
                return
            if len(groups) >= MAX_GROUPS:
                raise ParamError(f"resource group num reach limit {MAX_GROUPS}")
            groups[r.name] = config
            self._store(groups)

    def op_drop(self, r: rq.DropResourceGroup) -> None:
        if r.name == DEFAULT_GROUP:
            raise ParamError("delete default rg is not permitted")
        with self.engine.lock:
            groups = self._groups()
            if groups.pop(r.name, None) is not None:
                self._store(groups)

    def op_update(self, r: rq.UpdateResourceGroups) -> None:
        with self.engine.lock:
            groups = self._groups()
            for name, config in r.configs.items():  # every name checked before anything is written
                if name not in groups:
                    raise NotFoundGroup(f"resource group not found[rg={name}]")
                if _node_num(config, "requests") > _node_num(config, "limits") and config.get("limits"):
                    raise ParamError(f"resource group {name!r}: requests.node_num is greater than limits.node_num")
            for name, config in r.configs.items():
                groups[name] = {**_config(0, 0), **config}
            self._store(groups)

    def op_list(self, r: rq.ListResourceGroups) -> list[str]:
        return sorted(self._groups(), key=lambda n: (n != DEFAULT_GROUP, n))

    def op_describe(self, r: rq.DescribeResourceGroup) -> dict[str, Any]:
        config = self._existing(r.name)
        default = r.name == DEFAULT_GROUP
        loaded = {name: 1 for (_, name), coll in sorted(self.engine.collections.items()) if coll.loaded}
        return {
            "name": r.name,
            "capacity": _node_num(config, "requests"),
            "num_available_node": 1 if default else 0,
            "num_loaded_replica": loaded if default else {},
            "num_outgoing_node": {},
            "num_incoming_node": {},
            "config": config,
            "nodes": [{"node_id": NODE_ID, "address": "localhost", "hostname": "localhost"}] if default else [],
        }

    def op_transfer_replica(self, r: rq.TransferReplica) -> None:
        if r.source_group == r.target_group:
            raise ParamError("source resource group and target resource group should not be the same, "
                             f"resource group: {r.source_group}")
        if isinstance(r.num_replicas, bool) or not isinstance(r.num_replicas, int) or r.num_replicas <= 0:
            raise ParamError(f"num_replicas: got {r.num_replicas!r}, expected a positive integer")
        self._existing(r.source_group)
        self._existing(r.target_group)
        coll = self.engine.collection(r.db_name, r.collection_name)
        held = 1 if r.source_group == DEFAULT_GROUP and coll.loaded else 0
        if r.num_replicas > held:
            raise ParamError(f"only found [{held}] replicas of collection {r.collection_name!r} in source resource "
                             f"group[{r.source_group}], but {r.num_replicas} were asked to be transferred")
        raise ParamError(f"nodes not enough: resource group {r.target_group!r} has no node to hold a replica "
                         "(Heron is one node, and it serves the default resource group)")

    def op_server_version(self, r: rq.GetServerVersion) -> Any:
        """The node's version, as Milvus's GetVersion answers it (with ``detail``, the build's particulars)."""
        return server_version(r.detail)
