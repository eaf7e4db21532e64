"""What a Milvus message asks for when that is not one engine request.

The server runs these through their ``run(execute)`` method instead of
handing them to the engine directly; ``execute`` runs one engine request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .. import _requests as rq
from .._types import DataType, larger_is_better


@dataclass(frozen=True)
class Const:
    """A request whose answer is known without the engine (version, health, timestamps)."""

    value: Any = None

    def run(self, execute: Callable[[Any], Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class DescribeIndexes:
    """Milvus's DescribeIndex with no index name: every index of a collection (optionally of one field)."""

    db_name: str
    collection_name: str
    field_name: str = ""

    def run(self, execute: Callable[[Any], Any]) -> list[dict[str, Any]]:
        names = execute(rq.ListIndexes(self.db_name, self.collection_name, self.field_name))
        return [execute(rq.DescribeIndex(self.db_name, self.collection_name, n)) for n in names]


@dataclass(frozen=True)
class Sequence:
    """Several engine requests run in order (Milvus sends some operations as one message)."""

    requests: tuple[Any, ...] = field(default_factory=tuple)

    def run(self, execute: Callable[[Any], Any]) -> list[Any]:
        return [execute(r) for r in self.requests]


def timestamp() -> int:
    """A hybrid timestamp in Milvus's layout (milliseconds << 18)."""
    return int(time.time() * 1000) << 18


@dataclass(frozen=True)
class IteratorPage:
    """One page of a search iterator: the hits, and the bound the next page starts beyond."""

    hits: list[list[dict[str, Any]]]
    last_bound: float


@dataclass(frozen=True)
class SearchIteratorPage:
    """A page of pymilvus's search iterator v2: the ``batch`` hits nearest the query beyond ``last_bound``.

    Milvus keeps such iterators on its query nodes; here each page is found
    afresh by range searches, so nothing is held between pages: the window
    past the last distance returned widens (from a guess at the width of a
    page) until it holds more than a page, so each search gathers about a
    page of hits, not every row beyond the bound. A page never ends inside
    a run of equal distances (it stops before the run, which the next page
    then starts with); a run longer than a page is returned whole.
    """

    search: rq.Search
    batch: int
    last_bound: float | None = None

    @property
    def collection_name(self) -> str:
        return self.search.collection_name

    @property
    def output_fields(self) -> tuple[str, ...] | None:
        return self.search.output_fields

    def run(self, execute: Callable[[Any], Any]) -> IteratorPage:
        s = self.search
        metric = (s.metric_type or self._index_metric(execute)).upper()
        s = replace(s, metric_type=metric, offset=0)
        nearest = execute(replace(s, limit=1))[0]
        if not nearest:
            return IteratorPage([[]], self.last_bound if self.last_bound is not None else 0.0)
        best = float(nearest[0]["distance"])
        start = best if self.last_bound is None else self.last_bound
        width = max(abs(start - best) / 4, abs(start) * 1e-3, 1e-6)
        larger = larger_is_better(metric)
        while True:  # every page comes from range searches: one way of computing distances for all of them
            far = width > _FAR / 8
            window = _window(metric, self.last_bound, None if far else start - width if larger else start + width)
            hits = execute(replace(s, limit=self.batch + 1, params={**s.params, **window}))[0]
            if len(hits) > self.batch or far:
                break
            width *= 8
        page = hits[: self.batch]
        if len(hits) > self.batch and hits[self.batch]["distance"] == page[-1]["distance"]:
            tied = page[-1]["distance"]
            cut = next((i for i in range(len(page) - 1, -1, -1) if page[i]["distance"] != tied), -1) + 1
            if cut:
                page = page[:cut]  # the run of equal distances starts the next page
            else:  # the page is one run longer than a page: all of it now, or the rest would be skipped
                page = execute(replace(s, limit=MAX_RUN, params={**s.params, **_at(metric, tied)}))[0]
        bound = float(page[-1]["distance"]) if page else (self.last_bound if self.last_bound is not None else 0.0)
        return IteratorPage([page], bound)

    def _index_metric(self, execute: Callable[[Any], Any]) -> str:
        s = self.search
        fields = execute(rq.DescribeCollection(s.db_name, s.collection_name))["fields"]
        vectors = {f["name"]: DataType(int(f["type"])) for f in fields if DataType(int(f["type"])).is_vector}
        name = s.anns_field or (next(iter(vectors)) if len(vectors) == 1 else "")
        for index in execute(rq.ListIndexes(s.db_name, s.collection_name, name)):
            d = execute(rq.DescribeIndex(s.db_name, s.collection_name, index))
            if d["field_name"] == name and d.get("metric_type"):
                return str(d["metric_type"]).upper()
        return _UNINDEXED_METRIC.get(vectors.get(name, DataType.FLOAT_VECTOR), "COSINE")


#: The metric a search uses on a vector field without an index, by the field's type (others: COSINE).
_UNINDEXED_METRIC = {DataType.SPARSE_FLOAT_VECTOR: "IP", DataType.BINARY_VECTOR: "HAMMING"}
_FAR = float(np.finfo(np.float32).max)
#: The most hits of one distance a page takes (Milvus's largest topk).
MAX_RUN = 16384


def _window(metric: str, bound: float | None, edge: float | None) -> dict[str, float]:
    """Range-search bounds under ``metric`` for the hits strictly worse than ``bound`` (every hit when None)
    and strictly better than ``edge`` (no limit when None)."""
    larger = larger_is_better(metric)
    out: dict[str, float] = {"radius": (-_FAR if larger else _FAR) if edge is None else float(edge)}
    if bound is not None:
        b = np.float32(bound)
        out["range_filter"] = float(np.nextafter(b, np.float32(-np.inf if larger else np.inf)))
    return out


def _at(metric: str, value: float) -> dict[str, float]:
    """Range-search bounds for the hits at exactly ``value`` under ``metric``."""
    v = np.float32(value)
    if larger_is_better(metric):
        return {"radius": float(np.nextafter(v, np.float32(-np.inf))), "range_filter": float(v)}
    return {"radius": float(np.nextafter(v, np.float32(np.inf))), "range_filter": float(v)}
