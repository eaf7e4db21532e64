"""A call past a gRPC server's own concurrency limit is a ServerBusyError, as Heron's own limit is.

grpcio<=1.67 (all pymilvus 2.5 accepts) refuses calls past ``maximum_concurrent_rpcs`` with
RESOURCE_EXHAUSTED before the service sees them; the client must report that as "server busy",
and a message over the size limit (the same status code) as what it is.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures

import grpc
import pytest
from pymilvus.grpc_gen import milvus_pb2

import heron


@pytest.fixture
def one_call_server():
    """A MilvusService whose ShowCollections takes a while, with room for one call at a time."""
    entered = threading.Event()
    names = ["slow"]  # a test may make the answer longer than the server sends

    def show(request, context):
        entered.set()
        time.sleep(0.5)
        return milvus_pb2.ShowCollectionsResponse(collection_names=names)

    handler = grpc.method_handlers_generic_handler(
        "milvus.proto.milvus.MilvusService",
        {
            "ShowCollections": grpc.unary_unary_rpc_method_handler(
                show,
                request_deserializer=milvus_pb2.ShowCollectionsRequest.FromString,
                response_serializer=milvus_pb2.ShowCollectionsResponse.SerializeToString,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), maximum_concurrent_rpcs=1,
                         options=[("grpc.max_send_message_length", 1024)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", entered, names
    finally:
        server.stop(None)


def test_a_call_refused_by_grpcs_concurrency_limit_is_server_busy(one_call_server):
    uri, entered, _ = one_call_server
    with heron.Client(uri) as first, heron.Client(uri) as second:
        got: list = []
        t = threading.Thread(target=lambda: got.append(first.list_collections()))
        t.start()
        assert entered.wait(10)
        with pytest.raises(heron.ServerBusyError, match="server busy: .*Concurrent RPC limit exceeded.*; retry") as e:
            second.list_collections()
        assert e.value.code == heron.ServerBusyError.code
        t.join(10)
    assert got == [["slow"]]


def test_a_message_over_the_size_limit_is_not_server_busy(one_call_server):
    uri, _, names = one_call_server
    names[:] = ["x" * 100] * 50  # past the server's 1 KiB send limit
    with heron.Client(uri) as c:
        with pytest.raises(heron.HeronError, match="RESOURCE_EXHAUSTED") as e:
            c.list_collections()
        assert not isinstance(e.value, heron.ServerBusyError)
