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
        return self["id"]

    @property
    def pk(self) -> Any:
        return self["id"]

    @property
    def distance(self) -> float:
        return self["distance"]

    @property
    def score(self) -> float:
        return self["distance"]

    @property
    def entity(self) -> dict[str, Any]:
        return self["entity"]

    @property
    def fields(self) -> dict[str, Any]:
        return self["entity"]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class Hits(list):
    """The hits of one query, best first."""

    @property
    def ids(self) -> list[Any]:
        return [h["id"] for h in self]

    @property
    def distances(self) -> list[float]:
        return [h["distance"] for h in self]


class SearchResult(list):
    """One `Hits` list per query vector."""

    extra: dict[str, Any] = {"cost": 0}

    def __str__(self) -> str:
        return f"data: {list(map(list, self[:10]))}"


class QueryResult(list):
    """Rows returned by query / get."""

    extra: dict[str, Any] = {"cost": 0}


def shape_search(raw: list[list[dict[str, Any]]]) -> SearchResult:
    return SearchResult([Hits(map(Hit, q)) for q in raw])
