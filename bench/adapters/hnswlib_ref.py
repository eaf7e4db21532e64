"""hnswlib: the fastest graph index reachable from Python on this workload, as a second reference.

Same graph parameters as ``faiss`` (M, efConstruction) and the same
numpy-side scalar columns. A filter is handed to hnswlib as its ``filter``
callable (a Python function called per candidate label, which is what the
library offers), and below 5% of the rows an exact scan of the kept rows is
used instead, as for faiss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench._datasets import FilterSpec
from bench.adapters.faiss_ref import EXACT_BELOW, FaissHNSW, _key, _Table


class _Graph:
    """An hnswlib index that grows as rows arrive (hnswlib needs a capacity up front)."""

    def __init__(self, space: str, dim: int, m: int, ef_construction: int) -> None:
        import hnswlib

        self.index = hnswlib.Index(space=space, dim=dim)
        self.index.init_index(max_elements=1024, M=m, ef_construction=ef_construction)
        self.index.set_num_threads(1)

    @property
    def ntotal(self) -> int:
        return int(self.index.get_current_count())

    def add(self, vectors: np.ndarray) -> None:
        start, need = self.ntotal, self.ntotal + len(vectors)
        if need > self.index.get_max_elements():
            self.index.resize_index(max(need, 2 * self.index.get_max_elements()))
        self.index.add_items(vectors, np.arange(start, need))


class HnswlibHNSW(FaissHNSW):
    """hnswlib's HNSW with numpy-side filtering."""

    name = "hnswlib"

    @staticmethod
    def version() -> str:
        from importlib.metadata import version

        return version("hnswlib")

    def _new_index(self) -> Any:
        space = "ip" if self.config.metric == "COSINE" else "l2"
        return _Graph(space, self.config.dim, self.config.hnsw_m, self.config.ef_construction)

    def search(
        self, name: str, queries: np.ndarray, k: int, ef: int, flt: FilterSpec | None = None
    ) -> list[list[int]]:
        table: _Table = self._tables[name]
        q = self._prep(np.atleast_2d(queries))
        graph: _Graph = table.index
        graph.index.set_ef(max(ef, k))
        kk = min(k, graph.ntotal)
        if flt is None:
            labels, _ = graph.index.knn_query(q, k=kk)
            return [[int(i) for i in row] for row in labels]
        mask = flt.mask(table.column(_key(flt)))
        if mask.mean() < EXACT_BELOW:
            return self._exact_subset(table, q, k, np.flatnonzero(mask))
        kept = mask.tolist()
        labels, _ = graph.index.knn_query(q, k=min(kk, int(mask.sum())), filter=lambda i: kept[i])
        return [[int(i) for i in row] for row in labels]
