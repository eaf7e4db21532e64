"""The codecs of the schema-function RPCs: AddCollectionFunction, AlterCollectionFunction, DropCollectionFunction.

Pure translation, as in `_codecs` (whose table these join): the function
travels as a protobuf FunctionSchema, the form `heron.wire._schema` gives it
inside a collection schema.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from .. import _requests as rq
from . import _schema as ws
from ._codecs import CODECS, Codec, SchemaFn


def _ok(result: Any, r: Any, schema: SchemaFn) -> common_pb2.Status:
    return common_pb2.Status()


def _none(reply: Any, r: Any) -> None:
    return None


FUNCTION_CODECS: dict[str, Codec] = {
    c.rpc: c
    for c in [
        Codec(
            "AddCollectionFunction",
            rq.AddCollectionFunction,
            lambda m, db, s: rq.AddCollectionFunction(db, m.collection_name, ws.function_from_pb(m.functionSchema)),
            _ok,
            lambda r, s: milvus_pb2.AddCollectionFunctionRequest(
                db_name=r.db_name, collection_name=r.collection_name, functionSchema=ws.function_to_pb(r.function)
            ),
            _none,
        ),
        Codec(
            "AlterCollectionFunction",
            rq.AlterCollectionFunction,
            lambda m, db, s: rq.AlterCollectionFunction(
                db, m.collection_name, m.function_name, ws.function_from_pb(m.functionSchema)
            ),
            _ok,
            lambda r, s: milvus_pb2.AlterCollectionFunctionRequest(
                db_name=r.db_name, collection_name=r.collection_name, function_name=r.function_name,
                functionSchema=ws.function_to_pb(r.function),
            ),
            _none,
        ),
        Codec(
            "DropCollectionFunction",
            rq.DropCollectionFunction,
            lambda m, db, s: rq.DropCollectionFunction(db, m.collection_name, m.function_name),
            _ok,
            lambda r, s: milvus_pb2.DropCollectionFunctionRequest(
                db_name=r.db_name, collection_name=r.collection_name, function_name=r.function_name
            ),
            _none,
        ),
    ]
}
CODECS.update(FUNCTION_CODECS)
