"""Result shapes as pymilvus returns them: hits that are dicts, lists with ``extra``."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any


class Hit(dict):
    """One search hit as pymilvus 3 gives it: ``{<primary key field>: key, "distance", "entity"}``.

    The primary key is keyed by its field's name (``hit["pk"]`` for a field
    called ``pk``); ``hit.id`` and ``hit.pk`` give it whatever the name, and
    ``hit["field"]`` falls through to the entity's output fields.
    """

    def __init__(self, data: Any = (), pk_name: str = "id") -> None:
        super().__init__(data)
        self._pk_name = pk_name

    def __missing__(self, key: str) -> Any:
        entity = dict.get(self, "entity") or {}
        if key in entity:
            return entity[key]
        raise KeyError(key)

    @property
    def id(self) -> Any:
        """The hit's primary key."""
        return dict.get(self, self._pk_name)

    @property
    def pk(self) -> Any:
        """The hit's primary key (the same as `id`)."""
        return self.id

    @property
    def distance(self) -> float:
        """The hit's distance or similarity under the search's metric."""
        return self["distance"]

    @property
    def score(self) -> float:
        """The same as `distance`."""
        return self["distance"]

    @property
    def entity(self) -> dict[str, Any]:
        """The requested output fields of the hit, by name."""
        return self["entity"]

    @property
    def fields(self) -> dict[str, Any]:
        """The same as `entity`."""
        return self["entity"]

    def get(self, key: str, default: Any = None) -> Any:
        """``hit[key]`` (falling through to the entity), or ``default`` if neither has ``key``."""
        try:
            return self[key]
        except KeyError:
            return default


class Hits(list):
    """The hits of one query, best first."""

    @property
    def ids(self) -> list[Any]:
        """The primary keys of the hits, best first."""
        return [h.id for h in self]

    @property
    def distances(self) -> list[float]:
        """The distances of the hits, best first."""
        return [h["distance"] for h in self]


class SearchResult(list):
    """One `Hits` list per query vector, in the order of the query vectors."""

    extra: dict[str, Any] = {"cost": 0}
    #: With ``search_aggregation``: per query, its buckets (dicts: key, count, metrics, hits, sub_groups).
    agg_buckets: list[list[dict[str, Any]]] = []

    def __str__(self) -> str:
        return f"data: {list(map(list, self[:10]))}"


class QueryResult(list):
    """Rows returned by query / get: one dict per row, field name to value."""

    extra: dict[str, Any] = {"cost": 0}


def shape_search(raw: list[list[dict[str, Any]]], pk_name: str = "id") -> SearchResult:
    """Per-query ``{"id", "distance", "entity"}`` hits as pymilvus shapes them, the key under ``pk_name``."""
    # Each `Hit` is made as `Hit(data, pk_name)` would make it, less a Python-level __init__ per hit
    # (a tenth of a single-query search's own time went to shaping ten hits).
    out = SearchResult()
    by_id = pk_name == "id"
    new, fill = Hit.__new__, dict.update
    for q in raw:
        if by_id and set(map(next, map(iter, q), _NONE)) <= _ID_FIRST:  # the engine's own shape, key first:
            out.append(Hits(map(_HitById, q)))  # each hit a copy of its dict, in one C-level call per hit
            continue
        hits = Hits()
        for h in q:
            hit = new(Hit)
            fill(hit, _keyed(h, pk_name))
            hit._pk_name = pk_name
            hits.append(hit)
        out.append(hits)
    return out


class _HitById(Hit):
    """A `Hit` of a collection whose primary key field is called "id": the engine's hit dict as it is.

    Made by dict's own constructor (no Python frame per hit, where shaping hits costs most).
    """

    _pk_name = "id"
    __init__ = dict.__init__  # type: ignore[assignment]


_NONE = itertools.repeat(None)
_ID_FIRST = frozenset({"id"})
_USUAL_HIT = ("id", "distance", "entity")


def _keyed(hit: dict[str, Any], pk_name: str) -> dict[str, Any]:
    if len(hit) == 3 and tuple(hit) == _USUAL_HIT:  # the common shape: no generic copy
        return {pk_name: hit["id"], "distance": hit["distance"], "entity": hit["entity"]}
    out = {pk_name: hit["id"]}
    out.update((k, v) for k, v in hit.items() if k != "id")
    return out


@dataclass(frozen=True)
class Shard:
    """One shard of a replica, as pymilvus's ``Shard`` describes it."""

    channel_name: str
    shard_nodes: frozenset[int]
    shard_leader: int


@dataclass(frozen=True)
class ReplicaInfo:
    """One in-memory replica of a loaded collection, as pymilvus's ``ReplicaInfo`` describes it."""

    id: int
    shards: list[Shard]
    group_nodes: tuple[int, ...]
    resource_group: str = "__default_resource_group"
    num_outbound_node: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeInfo:
    """A node of a resource group, as pymilvus's ``NodeInfo`` describes it."""

    node_id: int
    address: str
    hostname: str


@dataclass(frozen=True)
class ResourceGroupInfo:
    """A resource group, with the attributes of pymilvus's ``ResourceGroupInfo``.

    ``config`` is the group's config as a dict (``requests``, ``limits``, ...).
    """

    name: str
    capacity: int
    num_available_node: int
    num_loaded_replica: dict[str, int]
    num_outgoing_node: dict[str, int]
    num_incoming_node: dict[str, int]
    config: dict[str, Any]
    nodes: list[NodeInfo]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResourceGroupInfo:
        """The group from the engine's answer (a dict of the same keys)."""
        return cls(**{**d, "nodes": [NodeInfo(**n) for n in d["nodes"]]})
