"""Quantised dense indexes with a refine step, and IVF_RABITQ, as Milvus names them.

A quantised index (HNSW_SQ, HNSW_PQ, IVF_PQ, IVF_RABITQ) built with
``refine=True`` keeps a second, more precise copy of each vector, coded as
``refine_type`` (SQ6, SQ8, FP16, BF16 or FP32; FP32 keeps the float vectors
as they are). A search asks the quantised index for ``k * refine_k``
candidates and re-ranks them by their distance to the refine copy, so the
scores returned are those of the refine codec (exact for FP32). Without
``refine_type`` the refine copy keeps the field's own precision (FP32 for
FLOAT_VECTOR, FP16 for FLOAT16 and INT8, BF16 for BFLOAT16).

The pair is one ``faiss.IndexRefine`` and is saved, checked and memory-mapped
as one faiss index, like every other dense index.

Milvus documents refine for HNSW_SQ, HNSW_PQ and IVF_RABITQ; Heron also
honours it on IVF_PQ, where Milvus keeps the keys but builds without refine.
"""

from __future__ import annotations

import math
from typing import Any

from ..._types import DataType
from ._faiss import faiss

_REFINE_CODECS = {
    "SQ6": faiss.ScalarQuantizer.QT_6bit,
    "SQ8": faiss.ScalarQuantizer.QT_8bit,
    "FP16": faiss.ScalarQuantizer.QT_fp16,
    "BF16": faiss.ScalarQuantizer.QT_bf16,
}
_NATIVE_REFINE = {
    DataType.FLOAT16_VECTOR: "FP16",
    DataType.BFLOAT16_VECTOR: "BF16",
    DataType.INT8_VECTOR: "FP16",  # every int8 value is exact in FP16
}


def refine_type_for(dtype: DataType, params: dict[str, Any]) -> str | None:
    """The refine codec a definition asks for, or None when it does not refine."""
    if not params.get("refine"):
        return None
    return str(params.get("refine_type") or _NATIVE_REFINE.get(dtype, "FP32"))


def with_refine(base: Any, dim: int, metric: Any, refine_type: str) -> Any:
    """``base`` paired with a refine copy coded as `refine_type`; the pair owns both."""
    if refine_type == "FP32":
        refine = faiss.IndexFlat(dim, metric)
    else:
        refine = faiss.IndexScalarQuantizer(dim, _REFINE_CODECS[refine_type], metric)
    idx = faiss.IndexRefine(base, refine)
    idx.own_fields = True
    idx.own_refine_index = True
    base.this.disown()
    refine.this.disown()
    return idx


def make_rabitq(quantizer: Any, dim: int, nlist: int, metric: Any) -> Any:
    """An empty IVF_RABITQ index (1-bit RaBitQ codes of each vector's residual to its list's centroid)."""
    return faiss.IndexIVFRaBitQ(quantizer, dim, nlist, metric)


def base_of(index: Any) -> Any:
    """The quantised index inside a refine pair, or `index` itself."""
    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.base_index)
    return index


def refine_of(index: Any) -> Any | None:
    """The refine copy of a refine pair, or None."""
    if isinstance(index, faiss.IndexRefine):
        return faiss.downcast_index(index.refine_index)
    return None


def candidates(k: int, params: dict[str, Any], refined: bool) -> int:
    """How many candidates the quantised index is asked for: ``ceil(k * refine_k)`` when refining."""
    return int(math.ceil(k * float(params.get("refine_k", 1.0)))) if refined else k


def ivf_params(index_type: str, nprobe: int, sel: Any, params: dict[str, Any]) -> Any:
    """faiss search parameters of an IVF index: RaBitQ's carry the query's bits (``rbq_query_bits``)."""
    if index_type == "IVF_RABITQ":
        out = faiss.IVFRaBitQSearchParameters(nprobe=nprobe, sel=sel)
        out.qb = int(params.get("rbq_query_bits", 0))
        return out
    return faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)


def refine_params(base_params: Any, k_factor: float) -> Any:
    """Search parameters of a refine pair, wrapping the quantised index's own (kept alive with them)."""
    out = faiss.IndexRefineSearchParameters(k_factor=float(k_factor), base_index_params=base_params)
    out.base_ref = base_params
    return out
