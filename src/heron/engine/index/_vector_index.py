"""Vector indexes for one segment: build, search, save, load; and the exact scan.

This layer knows nothing of storage or catalogs: it is handed a segment's
vectors (rows ``0..n-1``) and answers with row numbers. The engine merges
top-k across segments itself.

Vector representations:

- FLOAT_VECTOR ``float32 [n, dim]``, FLOAT16_VECTOR ``float16 [n, dim]``,
  BFLOAT16_VECTOR ``uint16 [n, dim]`` (raw bfloat16 bits), INT8_VECTOR
  ``int8 [n, dim]``: indexed by faiss in float32 (FLAT, IVF_FLAT, IVF_SQ8,
  IVF_PQ, IVF_RABITQ, HNSW, HNSW_SQ, HNSW_PQ) with L2, IP or COSINE; the
  quantised ones optionally re-rank with a refine copy (`_quantized`).
- BINARY_VECTOR ``uint8 [n, dim // 8]`` (packed bits): BIN_FLAT,
  BIN_IVF_FLAT with HAMMING or JACCARD.
- SPARSE_FLOAT_VECTOR ``scipy.sparse.csr_matrix [n, D]`` (D up to 2**32-1):
  SPARSE_INVERTED_INDEX, SPARSE_WAND with IP, both exact; with BM25 over term
  counts (``_bm25``, scored with the collection's statistics by the engine).

Results are ``(scores float32 [nq, k], rows int64 [nq, k])`` best first, with
row -1 and the worst score in unfilled slots. A filter is a boolean array
`allow` of length n; rows it rejects are never returned. When it keeps few
rows the planner scans exactly those rows instead of the ANN index (the
cross-over points are `FILTER_CROSSOVER`, measured by ``bench/crossover.py``);
otherwise faiss gets the filter as an ``IDSelectorBitmap``, and HNSW's ``ef``
and IVF's ``nprobe`` are raised as the filter grows tighter so recall holds
up (recall@10 >= 0.95 at 1% and 10% selectivity on real embeddings).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._errors import ParamError
from ..._types import DataType
from ._base import IndexFileError, VectorIndex
from ._bm25 import BM25Index
from ._dense import EXACT_SCAN_BUDGET, FILTER_CROSSOVER, DenseIndex
from ._exact import exact_range_search, exact_search
from ._faiss import SINGLE_THREAD_BELOW_NQ
from ._mapped import MappedBlob, map_index_file
from ._other import BinaryIndex, SparseIndex
from ._params import INDEX_TYPES, normalize_index_params, normalize_search_params

_FAMILIES: dict[str, Any] = {
    "dense": DenseIndex, "binary": BinaryIndex, "sparse": SparseIndex, "bm25": BM25Index,
}


def build_index(
    dtype: DataType,
    dim: int,
    index_type: str,
    metric: str,
    params: dict[str, Any],
    vectors: Any,
    cancelled: Callable[[], bool] | None = None,
    busy: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VectorIndex:
    """Build an index over one segment's `vectors`.

    The definition is validated again (as `normalize_index_params` does), so
    a bad one raises `ParamError` before any work is done. Building takes
    time proportional to the segment; the result is immutable and safe to
    search from many threads. A faiss index is filled in slices, and
    `cancelled` (if given) is asked between them: when it answers True the
    build stops with `BuildCancelled` (a dropped collection frees its CPU).
    `busy` (if given) is asked too: while it answers True the slice is added
    on at most ``cpu_count - 1`` threads (`build_threads`), leaving a core to
    the callers' requests.
    `progress(rows_added, rows)` (if given) is called after each slice.
    """
    dtype = DataType(dtype)
    index_type, metric, params = normalize_index_params(dtype, index_type, metric, params)
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        if metric == "BM25":
            return BM25Index.build(index_type, params, vectors)
        return SparseIndex.build(index_type, params, vectors)
    if dtype is DataType.BINARY_VECTOR:
        return BinaryIndex.build(dim, index_type, metric, params, vectors)
    if dim <= 0:
        raise ParamError(f"dim must be a positive integer, got {dim!r}")
    return DenseIndex.build(dtype, dim, index_type, metric, params, vectors, cancelled, busy, progress)


def load_index(path: str) -> VectorIndex:
    """Load an index written by `VectorIndex.save`; a dense one is searched in place (`_mapped`).

    Raises `IndexFileError` when the file is missing, truncated, damaged or
    of an unknown format; the caller rebuilds the index from its segment.
    """
    header, arrays = map_index_file(path)
    family = _FAMILIES.get(header.get("family", ""))
    if family is not DenseIndex:  # only dense indexes are searched in place; the others get their own copies
        arrays = {k: v.read(mapped=False) if isinstance(v, MappedBlob) else np.array(v) for k, v in arrays.items()}
    if family is None:
        raise IndexFileError(f"index file {path!r} holds an unknown index family {header.get('family')!r}")
    try:
        idx: VectorIndex = family.from_arrays(header, arrays)
    except Exception as exc:
        raise IndexFileError(f"index file {path!r} is damaged: {exc}") from exc
    if idx.ntotal != header.get("ntotal"):
        raise IndexFileError(
            f"index file {path!r} is damaged: {idx.ntotal} rows, header says {header.get('ntotal')}"
        )
    return idx


__all__ = [
    "EXACT_SCAN_BUDGET",
    "FILTER_CROSSOVER",
    "INDEX_TYPES",
    "SINGLE_THREAD_BELOW_NQ",
    "IndexFileError",
    "VectorIndex",
    "build_index",
    "exact_range_search",
    "exact_search",
    "load_index",
    "normalize_index_params",
    "normalize_search_params",
]
