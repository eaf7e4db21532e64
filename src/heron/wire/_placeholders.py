"""Query vectors ⇄ Milvus PlaceholderGroups (dense, binary, sparse, embedding lists)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2

from .._errors import ParamError
from ..data import _sparse as sp
from ..data._emb_lists import EmbeddingLists
from ..data._vectors import bfloat16_bits_to_float32
from . import _compat as compat
from ._data import contents_to_sparse, sparse_to_contents

_PLACEHOLDER_DTYPES = {
    common_pb2.FloatVector: np.float32,
    common_pb2.Float16Vector: np.float16,
    common_pb2.BFloat16Vector: np.uint16,
    common_pb2.BinaryVector: np.uint8,
    compat.INT8_VECTOR_PLACEHOLDER: np.int8,
}


def vectors_from_placeholder(raw: bytes) -> Any:
    """A serialised PlaceholderGroup as query vectors: a 2-d array, or CSR for sparse queries."""
    group = common_pb2.PlaceholderGroup.FromString(raw)
    if len(group.placeholders) != 1:
        raise ParamError(f"expected one placeholder of query vectors, got {len(group.placeholders)}")
    ph = group.placeholders[0]
    if ph.type == compat.EMB_LIST_FLOAT_PLACEHOLDER:
        return EmbeddingLists(tuple(np.frombuffer(v, dtype=np.float32) for v in ph.values))
    if ph.type == common_pb2.SparseFloatVector:
        return contents_to_sparse(ph.values)
    np_type = _PLACEHOLDER_DTYPES.get(ph.type)
    if np_type is None:
        raise ParamError(
            f"query vectors of placeholder type {common_pb2.PlaceholderType.Name(ph.type)} "
            "are not supported (text queries need a BM25 function)"
        )
    if not ph.values:
        raise ParamError("data: got no query vectors")
    widths = {len(v) for v in ph.values}
    if len(widths) > 1:
        first = len(ph.values[0])
        i = next(i for i, v in enumerate(ph.values) if len(v) != first)
        raise ParamError(f"data: query vector {i} has {len(ph.values[i])} bytes where query vector 0 has {first}; "
                         "expected query vectors of one dimension")
    if next(iter(widths)) % np.dtype(np_type).itemsize:
        raise ParamError(f"data: query vectors of {next(iter(widths))} bytes do not hold whole "
                         f"{np.dtype(np_type).name} values")
    arr = np.vstack([np.frombuffer(v, dtype=np_type) for v in ph.values])
    return bfloat16_bits_to_float32(arr) if np_type is np.uint16 else arr


def vectors_to_placeholder(data: Any) -> bytes:
    """Query vectors (2-d array or CSR) as a serialised PlaceholderGroup."""
    if isinstance(data, EmbeddingLists):
        ph = common_pb2.PlaceholderValue(tag="$0", type=compat.EMB_LIST_FLOAT_PLACEHOLDER,
                                         values=[a.astype(np.float32).tobytes() for a in data.lists])
    elif sp.issparse(data):
        ph = common_pb2.PlaceholderValue(
            tag="$0", type=common_pb2.SparseFloatVector, values=sparse_to_contents(data)
        )
    else:
        arr = np.asarray(data)
        kinds = {
            np.dtype(np.float16): (common_pb2.Float16Vector, np.float16),
            np.dtype(np.uint8): (common_pb2.BinaryVector, np.uint8),
            np.dtype(np.int8): (compat.INT8_VECTOR_PLACEHOLDER, np.int8),
        }
        ptype, np_type = kinds.get(arr.dtype, (common_pb2.FloatVector, np.float32))
        ph = common_pb2.PlaceholderValue(
            tag="$0", type=ptype, values=[row.astype(np_type).tobytes() for row in arr]
        )
    return common_pb2.PlaceholderGroup(placeholders=[ph]).SerializeToString()


def num_queries(data: Any) -> int:
    return int(data.shape[0])
