"""ManualCompaction requests: Milvus's majorCompaction (clustering), l0Compaction and target_size (MB)."""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from .. import _requests as rq
from .._errors import ParamError
from . import _compat as compat


def compact_from_pb(msg: milvus_pb2.ManualCompactionRequest, db: str, schema: Any = None) -> rq.Compact:
    """A ManualCompaction as `Compact` (fields the installed modules lack read as unset)."""
    size = int(getattr(msg, "target_size", 0) or 0) if compat.field_set(msg, "target_size") else 0
    return rq.Compact(db, msg.collection_name, bool(msg.majorCompaction),
                      bool(getattr(msg, "l0Compaction", False)), max(size, 0))


def compact_to_pb(r: rq.Compact, schema: Any = None) -> milvus_pb2.ManualCompactionRequest:
    """`Compact` as a ManualCompaction; options the installed modules cannot carry are refused, not dropped."""
    msg = milvus_pb2.ManualCompactionRequest(db_name=r.db_name, collection_name=r.collection_name,
                                             majorCompaction=r.is_clustering)
    fields = msg.DESCRIPTOR.fields_by_name
    for name, value, attr in (("is_l0", r.is_l0, "l0Compaction"), ("target_size", r.target_size_mb, "target_size")):
        if not value:
            continue
        if attr not in fields:
            raise ParamError(f"{name}: this pymilvus's protocol modules cannot send it; a newer pymilvus can")
        setattr(msg, attr, value)
    return msg
