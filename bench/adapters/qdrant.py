"""Qdrant's local mode: ``QdrantClient(path=...)``, no server.

Local mode keeps points in memory and searches them exactly (it builds no
HNSW graph), so its curve has one point. Its asyncio client
(``AsyncQdrantClient(path=...)``) cannot share the folder with an open sync
client, so the sync client is closed while the async one runs.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np

from bench._datasets import FilterSpec
from bench.adapters._base import Adapter, AsyncSearcher


class QdrantLocal(Adapter):
    """Qdrant local mode through qdrant-client."""

    name = "qdrant"
    knob = ""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.path = str(config.workdir / "qdrant")
        self.client = self._open()

    def _open(self) -> Any:
        from qdrant_client import QdrantClient

        return QdrantClient(path=self.path)

    @staticmethod
    def version() -> str:
        return importlib.metadata.version("qdrant-client")

    def create(self, name: str) -> None:
        from qdrant_client import models

        distance = models.Distance.COSINE if self.config.metric == "COSINE" else models.Distance.EUCLID
        if self.client.collection_exists(name):
            self.client.delete_collection(name)
        self.client.create_collection(
            name,
            vectors_config=models.VectorParams(size=self.config.dim, distance=distance),
            hnsw_config=models.HnswConfigDiff(m=self.config.hnsw_m, ef_construct=self.config.ef_construction),
        )

    def drop(self, name: str) -> None:
        self.client.delete_collection(name)

    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=r["id"],
                vector=r["vector"].tolist(),
                payload={k: v for k, v in r.items() if k not in ("id", "vector")},
            )
            for r in rows
        ]
        self.client.upsert(name, points=points, wait=True)

    def insert_columns(self, name: str, columns: dict[str, Any]) -> None:
        from qdrant_client import models

        keys = [k for k in columns if k not in ("id", "vector")]
        n = len(columns["id"])
        payloads = [{k: _plain(columns[k][i]) for k in keys} for i in range(n)]
        batch = models.Batch(
            ids=columns["id"].tolist(), vectors=columns["vector"].tolist(), payloads=payloads
        )
        self.client.upsert(name, points=batch, wait=True)

    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        from qdrant_client import models

        params = models.SearchParams(hnsw_ef=max(ef, k))
        qfilter = _filter(flt)
        queries = np.atleast_2d(queries)
        if len(queries) == 1:
            res = self.client.query_points(
                name, query=queries[0], limit=k, query_filter=qfilter, search_params=params
            )
            return [[int(p.id) for p in res.points]]
        reqs = [
            models.QueryRequest(query=q.tolist(), limit=k, filter=qfilter, params=params) for q in queries
        ]
        return [[int(p.id) for p in r.points] for r in self.client.query_batch_points(name, requests=reqs)]

    def get(self, name: str, ids: list[int]) -> int:
        return len(self.client.retrieve(name, ids=ids, with_payload=True))

    def count(self, name: str, flt: FilterSpec | None = None) -> int:
        return int(self.client.count(name, count_filter=_filter(flt), exact=True).count)

    async def open_async(self) -> AsyncSearcher | None:
        from qdrant_client import AsyncQdrantClient

        self.client.close()
        return _QdrantAsync(self, AsyncQdrantClient(path=self.path))

    def close(self) -> None:
        self.client.close()


class _QdrantAsync(AsyncSearcher):
    def __init__(self, owner: QdrantLocal, client: Any) -> None:
        self.owner = owner
        self.client = client

    async def search(self, name: str, query: np.ndarray, k: int, ef: int) -> list[int]:
        res = await self.client.query_points(name, query=query, limit=k)
        return [int(p.id) for p in res.points]

    async def close(self) -> None:
        await self.client.close()
        self.owner.client = self.owner._open()


def _filter(flt: FilterSpec | None) -> Any:
    """A FilterSpec as a Qdrant payload filter (JSON members as dotted keys)."""
    if flt is None:
        return None
    from qdrant_client import models

    key = f"{flt.field}.{flt.key}" if flt.kind == "json" else flt.field
    if flt.op == "<":
        cond = models.FieldCondition(key=key, range=models.Range(lt=flt.value))
    elif flt.op == "in":
        cond = models.FieldCondition(key=key, match=models.MatchAny(any=list(flt.value)))
    else:
        cond = models.FieldCondition(key=key, match=models.MatchValue(value=flt.value))
    return models.Filter(must=[cond])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
