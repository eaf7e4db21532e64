"""The protocol modules of every supported pymilvus: what Heron asks of them, and how it degrades.

These run on whichever pymilvus is installed (CI runs them with the newest
and with the oldest supported release, `scripts/check-pymilvus`).
"""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

import heron
from heron import wire
from heron.wire import _compat as compat
from heron.wire._placeholders import vectors_from_placeholder, vectors_to_placeholder


def test_field_checks_follow_the_descriptor():
    assert compat.has_field(milvus_pb2.SearchRequest, "placeholder_group")
    assert compat.has_field(milvus_pb2.SearchRequest(), "collection_name")
    assert not compat.has_field(milvus_pb2.SearchRequest, "no_such_field")
    msg = milvus_pb2.SearchRequest(collection_name="c")
    assert compat.field_set(msg, "collection_name")
    assert not compat.field_set(msg, "dsl")
    assert not compat.field_set(msg, "no_such_field")
    assert not compat.field_set(msg, "ids")  # absent before pymilvus 2.6.6, unset after
    with_schema = milvus_pb2.DescribeCollectionResponse(schema=schema_pb2.CollectionSchema(name="c"))
    assert compat.field_set(with_schema, "schema")
    assert not compat.field_set(milvus_pb2.DescribeCollectionResponse(), "schema")


def test_a_missing_rpc_is_refused_naming_it_and_the_installed_pymilvus():
    assert compat.has_rpc("Search") and wire.has_rpc("Insert")
    assert not compat.has_rpc("NoSuchRpc")
    with pytest.raises(heron.ParamError, match=rf"NoSuchRpc.*pymilvus {metadata.version('pymilvus')}"):
        compat.require_rpc("NoSuchRpc")
    with pytest.raises(heron.ParamError, match=r"SearchRequest\.no_such_field.*expected pymilvus>=2\.6"):
        compat.require_field(milvus_pb2.SearchRequest, "no_such_field", "something")


def test_int8_query_vectors_travel_by_number_with_any_protocol_modules():
    assert compat.INT8_VECTOR_PLACEHOLDER == 105
    if "Int8Vector" in common_pb2.PlaceholderType.keys():
        assert common_pb2.Int8Vector == compat.INT8_VECTOR_PLACEHOLDER
    q = np.array([[1, -2, 3, 127], [-128, 0, 5, 6]], dtype=np.int8)
    raw = vectors_to_placeholder(q)
    assert common_pb2.PlaceholderGroup.FromString(raw).placeholders[0].type == 105
    back = vectors_from_placeholder(raw)
    assert back.dtype == np.int8 and np.array_equal(back, q)


def test_the_server_serves_every_rpc_its_protocol_modules_define():
    from heron.server._service import RPCS

    served = set(RPCS)
    assert {"Search", "Insert", "Query", "HybridSearch", "CreateCredential"} <= served
    assert ("TruncateCollection" in served) == compat.has_rpc("TruncateCollection")


def test_truncate_travels_where_the_modules_define_it_and_is_refused_clearly_elsewhere():
    from heron import _requests as rq

    request = rq.TruncateCollection("default", "c")
    if compat.has_rpc("TruncateCollection"):
        [(rpc, msg)] = wire.client_messages(request, lambda name: None)  # type: ignore[arg-type,return-value]
        assert rpc == "TruncateCollection" and msg.collection_name == "c"
    else:
        with pytest.raises(heron.ParamError, match="TruncateCollection RPC is not in the protocol modules"):
            wire.client_messages(request, lambda name: None)  # type: ignore[arg-type,return-value]


def test_run_analyzer_travels_where_the_modules_define_it_and_is_refused_clearly_elsewhere():
    from heron import _requests as rq

    request = rq.RunAnalyzer("default", ("Some text",), {"type": "english"}, with_detail=True)
    if compat.has_rpc("RunAnalyzer"):
        [(rpc, msg)] = wire.client_messages(request, lambda name: None)  # type: ignore[arg-type,return-value]
        assert rpc == "RunAnalyzer" and list(msg.placeholder) == [b"Some text"] and msg.with_detail
    else:
        with pytest.raises(heron.ParamError, match="RunAnalyzer RPC is not in the protocol modules"):
            wire.client_messages(request, lambda name: None)  # type: ignore[arg-type,return-value]
    from heron.server._service import RPCS

    assert ("RunAnalyzer" in RPCS) == compat.has_rpc("RunAnalyzer")
