"""The codec of AddCollectionStructField (pymilvus 3's ``add_collection_struct_field``).

Importing this module adds it to `heron.wire._codecs.CODECS`; `heron.wire._client`
imports it before anything reads the table. The RPC is only served and sent
where the installed protocol modules define it.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from .. import _requests as rq
from . import _schema as ws
from ._codecs import CODECS, Codec, SchemaFn


def _decode(m: Any, db: str, s: SchemaFn) -> rq.AddCollectionStructField:
    return rq.AddCollectionStructField(db, m.collection_name, ws.struct_from_pb(m.struct_array_field_schema))


def _request(r: rq.AddCollectionStructField, s: SchemaFn) -> Any:
    return milvus_pb2.AddCollectionStructFieldRequest(
        db_name=r.db_name, collection_name=r.collection_name, struct_array_field_schema=ws.struct_to_pb(r.field))


CODECS["AddCollectionStructField"] = Codec(
    "AddCollectionStructField",
    rq.AddCollectionStructField,
    _decode,
    lambda res, r, s: common_pb2.Status(),
    _request,
    lambda reply, r: None,
)
