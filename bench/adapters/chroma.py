"""Chroma, embedded: ``chromadb.PersistentClient(path=...)``.

Chroma metadata values must be scalars, so JSON fields are not stored and
JSON filters are n/a. Its local client has no asyncio variant (threads are
used). ``ef_search`` is changed with ``collection.modify`` when the curve
moves to a new ef.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np

from bench._datasets import FilterSpec
from bench.adapters._base import Adapter, Unsupported


class Chroma(Adapter):
    """Chroma's persistent local client."""

    name = "chroma"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        import chromadb

        self.client = chromadb.PersistentClient(path=str(config.workdir / "chroma"))
        self._collections: dict[str, Any] = {}
        self._ef: dict[str, int] = {}
        self._max_batch = int(self.client.get_max_batch_size())

    @staticmethod
    def version() -> str:
        return importlib.metadata.version("chromadb")

    def create(self, name: str) -> None:
        space = "cosine" if self.config.metric == "COSINE" else "l2"
        hnsw = {
            "space": space,
            "max_neighbors": self.config.hnsw_m,
            "ef_construction": self.config.ef_construction,
        }
        self._collections[name] = self.client.create_collection(
            _name(name), configuration={"hnsw": hnsw}, embedding_function=None
        )

    def drop(self, name: str) -> None:
        self.client.delete_collection(_name(name))
        self._collections.pop(name, None)

    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        kinds = self.field_kinds()
        ids = [str(r["id"]) for r in rows]
        vectors = np.stack([r["vector"] for r in rows])
        metas = [{k: _plain(v) for k, v in r.items() if kinds.get(k) in ("int", "varchar")} for r in rows]
        self._add(name, ids, vectors, metas)

    def insert_columns(self, name: str, columns: dict[str, Any]) -> None:
        keys = [k for k, kind in self.field_kinds().items() if kind in ("int", "varchar")]
        n = len(columns["id"])
        metas = [{k: _plain(columns[k][i]) for k in keys} for i in range(n)]
        self._add(name, [str(i) for i in columns["id"]], columns["vector"], metas)

    def _add(self, name: str, ids: list[str], vectors: np.ndarray, metas: list[dict[str, Any]]) -> None:
        col = self._collections[name]
        for s in range(0, len(ids), self._max_batch):
            e = s + self._max_batch
            col.add(ids=ids[s:e], embeddings=vectors[s:e], metadatas=metas[s:e])

    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        col = self._collections[name]
        if self._ef.get(name) != ef:
            col.modify(configuration={"hnsw": {"ef_search": max(ef, k)}})
            self._ef[name] = ef
        res = col.query(query_embeddings=np.atleast_2d(queries), n_results=k, where=_where(flt), include=[])
        return [[int(i) for i in ids] for ids in res["ids"]]

    def get(self, name: str, ids: list[int]) -> int:
        return len(self._collections[name].get(ids=[str(i) for i in ids], include=["metadatas"])["ids"])

    def count(self, name: str, flt: FilterSpec | None = None) -> int:
        col = self._collections[name]
        if flt is None:
            return int(col.count())
        return len(col.get(where=_where(flt), include=[])["ids"])


def _name(name: str) -> str:
    return f"bench-{name}"


def _where(flt: FilterSpec | None) -> dict[str, Any] | None:
    if flt is None:
        return None
    if flt.kind == "json":
        raise Unsupported("metadata values must be scalars (no JSON fields)")
    op = {"==": "$eq", "<": "$lt", "in": "$in"}[flt.op]
    return {flt.field: {op: list(flt.value) if flt.op == "in" else flt.value}}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
