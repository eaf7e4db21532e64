"""Binary (BIN_FLAT, BIN_IVF_FLAT) and sparse (SPARSE_INVERTED_INDEX, SPARSE_WAND) indexes.

Binary indexes keep the packed codes: BIN_FLAT and every JACCARD or filtered
search scan them exactly (a popcount per row); BIN_IVF_FLAT with HAMMING and
no filter goes through faiss's ``IndexBinaryIVF`` (faiss offers no ID
selector for it).

Sparse indexes are exact: an inverted index (one posting list per dimension
present in the segment) answers a query by touching only the posting lists of
the query's non-zero dimensions. SPARSE_WAND is served by the same structure.
Only rows with a non-zero inner product are returned, as an exact scan does.
``drop_ratio_build`` drops the smallest-magnitude share of all stored values
before indexing; ``drop_ratio_search`` drops that share of each query's values.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._errors import ParamError
from ..._types import DataType
from ...data import _sparse as sp
from ._base import VectorIndex
from ._exact import (
    as_csr,
    compact_columns,
    drop_small,
    exact_range_search,
    exact_search,
    sort_hits,
    sparse_range,
    sparse_topk,
)
from ._faiss import faiss


class BinaryIndex(VectorIndex):
    """Packed-bit vectors; exact scans plus an optional faiss IVF for HAMMING."""

    family = "binary"

    def __init__(
        self,
        dim: int,
        index_type: str,
        metric: str,
        params: dict[str, Any],
        codes: np.ndarray,
        ivf: Any = None,
    ) -> None:
        super().__init__(DataType.BINARY_VECTOR, dim, index_type, metric, params, codes.shape[0])
        self._codes = codes
        self._ivf = ivf

    @classmethod
    def build(
        cls, dim: int, index_type: str, metric: str, params: dict[str, Any], vectors: Any
    ) -> BinaryIndex:
        if dim <= 0 or dim % 8:
            raise ParamError(f"dim of a BINARY_VECTOR must be a positive multiple of 8, got {dim}")
        codes = np.ascontiguousarray(vectors, dtype=np.uint8)
        if codes.ndim != 2 or codes.shape[1] != dim // 8:
            raise ParamError(f"vectors must have shape [n, {dim // 8}] (packed bits), got {codes.shape}")
        ivf = None
        n = codes.shape[0]
        if index_type == "BIN_IVF_FLAT" and metric == "HAMMING" and n > 0:
            nlist = max(1, min(int(params.get("nlist", 128)), n // 39))
            quantizer = faiss.IndexBinaryFlat(dim)
            ivf = faiss.IndexBinaryIVF(quantizer, dim, nlist)
            ivf.own_fields = True
            quantizer.this.disown()
            ivf.train(codes)
            ivf.add(codes)
        return cls(dim, index_type, metric, params, codes, ivf)

    def _queries(self, queries: Any) -> np.ndarray:
        q = np.ascontiguousarray(queries, dtype=np.uint8)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        if q.shape[1] != self.dim // 8:
            raise ParamError(f"queries must have shape [nq, {self.dim // 8}] (packed bits), got {q.shape}")
        return q

    def _search(
        self, queries: Any, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        q = self._queries(queries)
        if self._ivf is None or allow is not None:
            return exact_search(self.dtype, self.metric, self._codes, q, k, allow=allow)
        nprobe = min(int(params.get("nprobe", 16)), self._ivf.nlist)
        dist, rows = self._ivf.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        dist = dist.astype(np.float32)
        dist[rows < 0] = float("inf")
        return dist, rows.astype(np.int64, copy=False)

    def _range(
        self,
        queries: Any,
        radius: float,
        range_filter: float | None,
        allow: np.ndarray | None,
        kept: int,
        params: dict[str, Any],
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        q = self._queries(queries)
        return exact_range_search(
            self.dtype, self.metric, self._codes, q, radius=radius, range_filter=range_filter, allow=allow
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {"codes": self._codes}
        if self._ivf is not None:
            out["ivf"] = faiss.serialize_index_binary(self._ivf)
        return out

    @classmethod
    def from_arrays(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> BinaryIndex:
        ivf = faiss.deserialize_index_binary(arrays["ivf"]) if "ivf" in arrays else None
        codes = np.ascontiguousarray(arrays["codes"], dtype=np.uint8)
        return cls(header["dim"], header["index_type"], header["metric"], header["params"], codes, ivf)


class SparseIndex(VectorIndex):
    """An exact inverted index over sparse float vectors (inner product)."""

    family = "sparse"

    def __init__(
        self, index_type: str, params: dict[str, Any], vocab: np.ndarray, postings: sp.csr_matrix, ntotal: int
    ) -> None:
        super().__init__(DataType.SPARSE_FLOAT_VECTOR, 0, index_type, "IP", params, ntotal)
        self._vocab = vocab
        self._postings = postings

    @classmethod
    def build(cls, index_type: str, params: dict[str, Any], vectors: Any) -> SparseIndex:
        x = as_csr(vectors)
        ratio = float(params.get("drop_ratio_build", 0.0) or 0.0)
        if ratio > 0 and x.nnz:
            x = x.copy()
            x.data[np.abs(x.data) < np.quantile(np.abs(x.data), ratio)] = 0
            x.eliminate_zeros()
        vocab = np.unique(x.indices).astype(np.int64)
        postings = compact_columns(x, vocab).T.tocsr()
        postings.sort_indices()
        return cls(index_type, params, vocab, postings, x.shape[0])

    def _scores(self, queries: Any, params: dict[str, Any], allow: np.ndarray | None) -> sp.csr_matrix:
        q = drop_small(as_csr(queries), float(params.get("drop_ratio_search", 0.0)))
        scores = sp.csr_matrix(compact_columns(q, self._vocab) @ self._postings)
        if allow is not None:
            scores.data[~allow[scores.indices]] = 0
            scores.eliminate_zeros()
        return scores

    def _search(
        self, queries: Any, k: int, allow: np.ndarray | None, kept: int, params: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        return sparse_topk(self._scores(queries, params, allow), k)

    def _range(
        self,
        queries: Any,
        radius: float,
        range_filter: float | None,
        allow: np.ndarray | None,
        kept: int,
        params: dict[str, Any],
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        res = sparse_range(self._scores(queries, params, allow), radius, range_filter)
        return [sort_hits(s, r, "IP") for s, r in res]

    def _arrays(self) -> dict[str, np.ndarray]:
        p = self._postings
        return {"vocab": self._vocab, "data": p.data, "indices": p.indices, "indptr": p.indptr}

    @classmethod
    def from_arrays(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> SparseIndex:
        vocab = arrays["vocab"]
        n = int(header["ntotal"])
        postings = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(len(vocab), n))
        return cls(header["index_type"], header["params"], vocab, postings, n)
