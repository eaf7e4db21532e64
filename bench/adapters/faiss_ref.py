"""Raw faiss: the reference every other system is compared against.

``faiss`` is IndexHNSWFlat (M=16, efConstruction=200); ``faiss-flat`` is an
exact IndexFlat. Scalar fields live in numpy columns beside the index. A
filter becomes a bitmap handed to faiss as an IDSelectorBitmap; when it
keeps under 5% of the rows, an exact scan of the kept rows is used instead
(faster and exact), which is what a careful user of faiss would write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench._datasets import FilterSpec
from bench._exact import normalized
from bench.adapters._base import Adapter

EXACT_BELOW = 0.05


@dataclass
class _Table:
    index: Any
    vectors: list[np.ndarray] = field(default_factory=list)
    columns: dict[str, list[Any]] = field(default_factory=dict)
    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def matrix(self) -> np.ndarray:
        if "vectors" not in self._cache:
            self._cache["vectors"] = (
                np.concatenate(self.vectors) if self.vectors else np.zeros((0, 0), np.float32)
            )
        return self._cache["vectors"]

    def column(self, key: str) -> np.ndarray:
        if key not in self._cache:
            self._cache[key] = np.concatenate([np.asarray(c) for c in self.columns[key]])
        return self._cache[key]

    def append(self, vectors: np.ndarray, cols: dict[str, Any]) -> None:
        self.vectors.append(vectors)
        for key, vals in cols.items():
            self.columns.setdefault(key, []).append(vals)
        self._cache.clear()


class FaissHNSW(Adapter):
    """faiss IndexHNSWFlat with numpy-side filtering."""

    name = "faiss"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._tables: dict[str, _Table] = {}

    @staticmethod
    def version() -> str:
        import faiss

        return str(faiss.__version__)

    def _metric(self) -> int:
        import faiss

        return faiss.METRIC_INNER_PRODUCT if self.config.metric == "COSINE" else faiss.METRIC_L2

    def _new_index(self) -> Any:
        import faiss

        index = faiss.IndexHNSWFlat(self.config.dim, self.config.hnsw_m, self._metric())
        index.hnsw.efConstruction = self.config.ef_construction
        return index

    def _prep(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return normalized(x) if self.config.metric == "COSINE" else np.ascontiguousarray(x)

    def create(self, name: str) -> None:
        self._tables[name] = _Table(self._new_index())

    def drop(self, name: str) -> None:
        self._tables.pop(name, None)

    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        vectors = self._prep(np.stack([r["vector"] for r in rows]))
        cols = {key: [r[key] for r in rows] for key in rows[0] if key != "vector"}
        self._add(name, vectors, _flatten_json(cols, self.field_kinds()))

    def insert_columns(self, name: str, columns: dict[str, Any]) -> None:
        cols = {k: v for k, v in columns.items() if k != "vector"}
        self._add(name, self._prep(columns["vector"]), _flatten_json(cols, self.field_kinds()))

    def _add(self, name: str, vectors: np.ndarray, cols: dict[str, Any]) -> None:
        table = self._tables[name]
        table.index.add(vectors)
        table.append(vectors, cols)

    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        import faiss

        table = self._tables[name]
        q = self._prep(np.atleast_2d(queries))
        if flt is None:
            params = self._params(ef, None)
            _, ids = table.index.search(q, k, params=params)
            return [[int(i) for i in row if i >= 0] for row in ids]
        mask = flt.mask(table.column(_key(flt)))
        if mask.mean() < EXACT_BELOW:
            return self._exact_subset(table, q, k, np.flatnonzero(mask))
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        _, ids = table.index.search(q, k, params=self._params(ef, sel))
        del bits
        return [[int(i) for i in row if i >= 0] for row in ids]

    def _params(self, ef: int, sel: Any) -> Any:
        import faiss

        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef, 1)
        if sel is not None:
            params.sel = sel
        return params

    def _exact_subset(self, table: _Table, q: np.ndarray, k: int, kept: np.ndarray) -> list[list[int]]:
        sub = table.matrix()[kept]
        if self.config.metric == "COSINE":
            scores = -(q @ sub.T)
        else:
            scores = (sub * sub).sum(1)[None, :] - 2 * q @ sub.T
        kk = min(k, len(kept))
        if kk == 0:
            return [[] for _ in range(len(q))]
        part = np.argpartition(scores, kk - 1, axis=1)[:, :kk]
        order = np.take_along_axis(scores, part, 1).argsort(1)
        return [[int(kept[j]) for j in row] for row in np.take_along_axis(part, order, 1)]

    def get(self, name: str, ids: list[int]) -> int:
        table = self._tables[name]
        idx = np.asarray(ids, dtype=np.int64)
        idx = idx[(idx >= 0) & (idx < table.index.ntotal)]
        rows = [{"id": int(i), "vector": table.matrix()[i]} for i in idx]
        for key in table.columns:
            col = table.column(key)
            for row, i in zip(rows, idx):
                row[key] = col[i]
        return len(rows)

    def count(self, name: str, flt: FilterSpec | None = None) -> int:
        table = self._tables[name]
        if flt is None:
            return int(table.index.ntotal)
        return int(flt.mask(table.column(_key(flt))).sum())


class FaissFlat(FaissHNSW):
    """faiss IndexFlat: exact search, no search-time knob."""

    name = "faiss-flat"
    knob = ""

    def _new_index(self) -> Any:
        import faiss

        return faiss.IndexFlat(self.config.dim, self._metric())

    def _params(self, ef: int, sel: Any) -> Any:
        import faiss

        params = faiss.SearchParameters()
        if sel is not None:
            params.sel = sel
        return params


def _key(flt: FilterSpec) -> str:
    return f"{flt.field}.{flt.key}" if flt.kind == "json" else flt.field


def _flatten_json(cols: dict[str, Any], kinds: dict[str, str]) -> dict[str, Any]:
    """JSON fields are kept as one numpy column per key (``meta.group``) so filters stay vectorised."""
    out: dict[str, Any] = {}
    for key, vals in cols.items():
        if kinds.get(key) == "json":
            for sub in vals[0]:
                out[f"{key}.{sub}"] = np.asarray([v[sub] for v in vals])
        else:
            out[key] = vals
    return out
