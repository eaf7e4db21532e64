"""LanceDB, embedded: ``lancedb.connect(<dir>)``.

A Lance table has no index until ``create_index`` is called; rows not yet
covered are scanned exactly. The index here is IVF_HNSW_FLAT with one
partition (a plain HNSW graph, M=16, efConstruction=200) so the curve over
``ef`` is comparable; JSON fields are stored as structs (``meta.group``).
Its asyncio API (``lancedb.connect_async``) drives the concurrency figures.
"""

from __future__ import annotations

import importlib.metadata
from datetime import timedelta
from typing import Any

import numpy as np

from bench._datasets import FilterSpec
from bench.adapters._base import Adapter, AsyncSearcher


class Lance(Adapter):
    """LanceDB's local (embedded) connection."""

    name = "lancedb"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        import lancedb

        self.uri = str(config.workdir / "lance")
        self.db = lancedb.connect(self.uri)
        self._tables: dict[str, Any] = {}

    @staticmethod
    def version() -> str:
        return importlib.metadata.version("lancedb")

    def _schema(self) -> Any:
        import pyarrow as pa

        types = {"int": pa.int64(), "varchar": pa.string()}
        fields = [pa.field("id", pa.int64()), pa.field("vector", pa.list_(pa.float32(), self.config.dim))]
        for f in self.config.fields:
            t = pa.struct([pa.field(f.key, pa.int64())]) if f.kind == "json" else types[f.kind]
            fields.append(pa.field(f.name, t))
        return pa.schema(fields)

    def create(self, name: str) -> None:
        self._tables[name] = self.db.create_table(name, schema=self._schema(), mode="overwrite")

    def drop(self, name: str) -> None:
        self.db.drop_table(name)
        self._tables.pop(name, None)

    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        self._tables[name].add([{**r, "vector": r["vector"].tolist()} for r in rows])

    def insert_columns(self, name: str, columns: dict[str, Any]) -> None:
        import pyarrow as pa

        schema = self._schema()
        arrays = []
        for f in schema:
            vals = columns[f.name]
            if f.name == "vector":
                flat = pa.array(np.ascontiguousarray(vals, dtype=np.float32).ravel())
                arrays.append(pa.FixedSizeListArray.from_arrays(flat, self.config.dim))
            else:
                arrays.append(pa.array(vals, type=f.type))
        self._tables[name].add(pa.Table.from_arrays(arrays, schema=schema))

    def wait_indexed(self, name: str, seconds: float) -> bool:
        table = self._tables[name]
        table.create_index(
            metric=self.metric_lower(),
            index_type="IVF_HNSW_FLAT",
            num_partitions=1,
            m=self.config.hnsw_m,
            ef_construction=self.config.ef_construction,
            name="vector_idx",
            wait_timeout=timedelta(seconds=seconds),
        )
        return True

    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        table = self._tables[name]
        out = []
        for q in np.atleast_2d(queries):
            query = table.search(q).distance_type(self.metric_lower()).limit(k).ef(max(ef, k)).select(["id"])
            if flt is not None:
                query = query.where(_sql(flt), prefilter=True)
            out.append(query.to_arrow()["id"].to_pylist())
        return out

    def get(self, name: str, ids: list[int]) -> int:
        expr = f"id IN ({', '.join(str(int(i)) for i in ids)})"
        return len(self._tables[name].search().where(expr).limit(len(ids)).to_list())

    def count(self, name: str, flt: FilterSpec | None = None) -> int:
        return int(self._tables[name].count_rows(_sql(flt) if flt else None))

    async def open_async(self) -> AsyncSearcher | None:
        import lancedb

        return _LanceAsync(await lancedb.connect_async(self.uri), self.metric_lower())


class _LanceAsync(AsyncSearcher):
    def __init__(self, db: Any, metric: str) -> None:
        self.db = db
        self.metric = metric
        self._tables: dict[str, Any] = {}

    async def search(self, name: str, query: np.ndarray, k: int, ef: int) -> list[int]:
        if name not in self._tables:
            self._tables[name] = await self.db.open_table(name)
        q = (await self._tables[name].search(query)).distance_type(self.metric).limit(k).ef(max(ef, k))
        return (await q.select(["id"]).to_arrow())["id"].to_pylist()

    async def close(self) -> None:
        for t in self._tables.values():
            t.close()
        self.db.close()


def _sql(flt: FilterSpec) -> str:
    """A FilterSpec as a Lance SQL predicate."""
    col = f"{flt.field}.{flt.key}" if flt.kind == "json" else flt.field

    def lit(v: Any) -> str:
        return f"'{v}'" if isinstance(v, str) else str(v)

    if flt.op == "in":
        return f"{col} IN ({', '.join(lit(v) for v in flt.value)})"
    op = "=" if flt.op == "==" else flt.op
    return f"{col} {op} {lit(flt.value)}"
