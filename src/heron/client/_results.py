"""Result shapes as pymilvus returns them: hits that are dicts, lists with ``extra``."""

from __future__ import annotations

from typing import Any


class Hit(dict):
    """One search hit: ``{"id", "distance", "entity"}``; ``hit["field"]`` falls through to the entity."""

    def __missing__(self, key: str) -> Any:
        entity = dict.get(self, "entity") or {}
        if key in entity:
            return entity[key]
        raise KeyError(key)

    @property
    def id(self) -> Any:
        """The hit's primary key."""
        return self["id"]

    @property
    def pk(self) -> Any:
        """The hit's primary key (the same as `id`)."""
        return self["id"]

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
        return [h["id"] for h in self]

    @property
    def distances(self) -> list[float]:
        """The distances of the hits, best first."""
        return [h["distance"] for h in self]


class SearchResult(list):
    """One `Hits` list per query vector, in the order of the query vectors."""

    extra: dict[str, Any] = {"cost": 0}

    def __str__(self) -> str:
        return f"data: {list(map(list, self[:10]))}"


class QueryResult(list):
    """Rows returned by query / get: one dict per row, field name to value."""

    extra: dict[str, Any] = {"cost": 0}


def shape_search(raw: list[list[dict[str, Any]]]) -> SearchResult:
    return SearchResult([Hits(map(Hit, q)) for q in raw])
