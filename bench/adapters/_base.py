"""The one interface every benchmarked system is driven through.

An adapter wraps one system's public client API the way its own docs show
it being used; it does no measuring itself. The worker (`bench._worker`)
times calls to these methods. Rows carry an integer ``id`` (0..n-1 in insert
order), a float32 ``vector`` and the dataset's scalar fields.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bench._datasets import FilterSpec, Metric, ScalarField


class Unsupported(Exception):
    """The system has no way to do this; the figure is reported as n/a with this reason."""


@dataclass(frozen=True)
class AdapterConfig:
    """What an adapter needs to know about the workload and where it may write."""

    workdir: Path
    dim: int
    metric: Metric
    fields: list[ScalarField]
    hnsw_m: int = 16
    ef_construction: int = 200
    server_uri: str = ""
    options: dict[str, Any] = field(default_factory=dict)


class AsyncSearcher(ABC):
    """A system's asyncio client, opened inside the running event loop."""

    @abstractmethod
    async def search(self, name: str, query: np.ndarray, k: int, ef: int) -> list[int]:
        """Ids of the ``k`` nearest rows to one query vector."""

    @abstractmethod
    async def close(self) -> None:
        """Release the client."""


class Adapter(ABC):
    """A benchmarked system. Subclasses set ``name`` and implement the abstract methods.

    ``knob`` names the search-time parameter swept for the QPS-recall curve
    (``ef``, ``nprobe``), or is empty when search is exact and the sweep is
    meaningless.
    """

    name: ClassVar[str]
    knob: ClassVar[str] = "ef"

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config

    @staticmethod
    @abstractmethod
    def version() -> str:
        """The installed version of the system's package."""

    @abstractmethod
    def create(self, name: str) -> None:
        """Create an empty collection with an HNSW index (M, efConstruction from the config)."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Drop a collection and its data."""

    @abstractmethod
    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Insert row dicts, doing whatever a user holding row dicts would have to do."""

    def insert_columns(self, name: str, columns: dict[str, Any]) -> None:
        """Insert a batch given as columns (``id`` and ``vector`` arrays, lists for the rest)."""
        raise Unsupported("no columnar insert")

    def wait_indexed(self, name: str, seconds: float) -> bool:
        """Return once every row is covered by the vector index (True), or False after ``seconds``."""
        return True

    @abstractmethod
    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        """Ids of the ``k`` nearest rows for each query (a 2-d array), best first."""

    @abstractmethod
    def get(self, name: str, ids: list[int]) -> int:
        """Fetch rows by id with their scalar fields; return how many were found."""

    @abstractmethod
    def count(self, name: str, flt: FilterSpec | None = None) -> int:
        """Number of rows, or of rows passing ``flt``."""

    async def open_async(self) -> AsyncSearcher | None:
        """The system's asyncio client, or None when it has none (threads are used instead)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and stop anything the adapter started."""

    def metric_lower(self) -> str:
        return self.config.metric.lower()

    def field_kinds(self) -> dict[str, str]:
        return {f.name: f.kind for f in self.config.fields}
