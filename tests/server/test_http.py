"""The HTTP port of ``heron serve --http-port``: health, readiness, Prometheus metrics, GetMetrics, auth."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from tests.conftest import require_module
from tests.server.http_helpers import get, http_url, post, samples

pymilvus = require_module("pymilvus")
require_module("starlette")
require_module("uvicorn")
require_module("prometheus_client")

from pymilvus import MilvusClient, MilvusException  # noqa: E402
from pymilvus.grpc_gen import milvus_pb2  # noqa: E402

DIM = 8


def _calls(s: dict, method: str, status: str) -> float:
    return s.get(("heron_rpc_calls_total", (("method", method), ("status", status))), 0.0)


def _latency_count(s: dict, method: str) -> float:
    return s.get(("heron_rpc_latency_seconds_count", (("method", method),)), 0.0)


def test_health_and_readiness(start_server):
    server = start_server("--http-port", "0")
    url = http_url(server)
    assert get(f"{url}/healthz") == (200, '{"status":"ok"}')
    status, body = get(f"{url}/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready"}
    assert get(f"{url}/nothing-here")[0] == 404
    assert server.stop() == 0 and "heron: stopped" in server.output()
    import urllib.error

    with pytest.raises(urllib.error.URLError):  # the HTTP port closed with the server
        get(f"{url}/healthz")


def test_not_ready_before_the_engine_is_open():
    """Before the data directory is open /readyz answers 503 and the REST API a Milvus error; /healthz 200."""
    from starlette.testclient import TestClient

    from heron.server._http import HttpState, make_app
    from heron.server._metrics import Metrics

    state = HttpState(Metrics(lambda: None, lambda: 0))
    client = TestClient(make_app(state))
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    answer = client.post("/v2/vectordb/collections/list", json={}).json()
    assert answer["code"] != 0 and "not open" in answer["message"]
    assert "heron_rpc_inflight 0.0" in client.get("/metrics").text


def test_no_http_port_by_default(server):
    assert "http at" not in server.output()


def test_metrics_count_the_calls_made(start_server):
    server = start_server("--http-port", "0")
    url = http_url(server)
    client = MilvusClient(server.uri)
    client.create_collection("m", dimension=DIM)
    before = samples(get(f"{url}/metrics")[1])
    rng = np.random.default_rng(3)
    inserts, searches, rows = 7, 11, 0
    for i in range(inserts):
        batch = [{"id": rows + j, "vector": rng.random(DIM).tolist()} for j in range(5 + i)]
        client.insert("m", batch)
        rows += len(batch)
    for _ in range(searches):
        client.search("m", [rng.random(DIM).tolist()], limit=3)
    failures = 3
    for _ in range(failures):
        with pytest.raises(MilvusException):
            client.describe_collection("no_such_collection")
    after = samples(get(f"{url}/metrics")[1])

    def delta(method: str, status: str) -> float:
        return _calls(after, method, status) - _calls(before, method, status)

    assert delta("Insert", "success") == inserts
    assert delta("Search", "success") == searches
    assert delta("Search", "fail") == 0
    assert delta("DescribeCollection", "fail") == failures
    assert _latency_count(after, "Search") - _latency_count(before, "Search") == searches
    assert after[("heron_collection_rows", (("collection", "m"), ("db", "default")))] == rows
    segments = sum(v for (name, labels), v in after.items()
                   if name == "heron_collection_segments" and ("collection", "m") in labels)
    assert segments >= 1
    assert after[("heron_rpc_inflight", ())] == 0
    assert after[("heron_rpc_refused_busy_total", ())] == 0
    assert after[("process_resident_memory_bytes", ())] > 0
    assert after[("heron_insert_log_bytes", ())] > 0


class _Context:
    def time_remaining(self) -> None:
        return None

    def invocation_metadata(self) -> tuple:
        return ()

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


def test_metrics_count_calls_refused_as_busy(tmp_path):
    """A call that finds every in-flight slot taken is refused as busy, over gRPC and REST, and counted."""
    import asyncio

    from starlette.testclient import TestClient

    from heron import wire
    from heron._workers import Workers
    from heron.engine._engine import open_engine, release_engine
    from heron.server._http import HttpState, make_app
    from heron.server._metrics import Metrics
    from heron.server._service import MilvusService

    engine = open_engine(str(tmp_path / "d"))
    pool = Workers(2, "test-busy")
    try:
        async def refused() -> tuple[MilvusService, object]:
            service = MilvusService(engine, pool, max_inflight=1, metrics=Metrics(lambda: engine, lambda: 1))
            service.inflight = 1  # one call in flight: the limit
            reply = await service._bind("ShowCollections")(wire.request_class("ShowCollections")(), _Context())
            return service, reply

        service, reply = asyncio.run(refused())
        assert reply.status.code == 8 and "busy" in reply.status.reason
        state = HttpState(service.metrics, engine, service, True)
        answer = TestClient(make_app(state)).post("/v2/vectordb/collections/list", json={}).json()
        assert answer["code"] == 8 and "busy" in answer["message"]
        s = samples(service.metrics.exposition().decode())
        assert s[("heron_rpc_refused_busy_total", ())] == 2
        assert _calls(s, "ShowCollections", "fail") == 1 and _calls(s, "ShowCollections", "success") == 0
        assert s[("heron_http_requests_total", (("code", "8"), ("path", "/v2/vectordb/collections/list")))] == 1
    finally:
        pool.shutdown(wait=True)
        release_engine(engine)


def _get_metrics(port: int, request: str, token: str = "") -> milvus_pb2.GetMetricsResponse:
    import base64

    md = (("authorization", base64.b64encode(token.encode()).decode()),) if token else ()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary(
            "/milvus.proto.milvus.MilvusService/GetMetrics",
            request_serializer=milvus_pb2.GetMetricsRequest.SerializeToString,
            response_deserializer=milvus_pb2.GetMetricsResponse.FromString,
        )
        return call(milvus_pb2.GetMetricsRequest(request=request), metadata=md, timeout=30)


def test_get_metrics_answers_system_info_as_json(start_server):
    server = start_server("--http-port", "0")
    client = MilvusClient(server.uri)
    client.create_collection("g", dimension=DIM)
    client.insert("g", [{"id": 1, "vector": [0.5] * DIM}])
    for _ in range(4):
        client.search("g", [[0.1] * DIM], limit=1)
    reply = _get_metrics(server.port, json.dumps({"metric_type": "system_info"}))
    assert reply.status.code == 0 and reply.component_name == "heron"
    body = json.loads(reply.response)
    info = body["nodes_info"][0]["infos"]
    assert info["has_error"] is False and info["hardware_infos"]["memory_usage"] > 0
    calls = {(s["labels"]["method"], s["labels"]["status"]): s["value"] for s in body["metrics"]["heron_rpc_calls_total"]}
    assert calls[("Search", "success")] == 4
    # the same numbers as /metrics
    scraped = samples(get(f"{http_url(server)}/metrics")[1])
    assert _calls(scraped, "Search", "success") == 4
    rows = {s["labels"]["collection"]: s["value"] for s in body["metrics"]["heron_collection_rows"]}
    assert rows == {"g": 1}
    bad = _get_metrics(server.port, '{"metric_type": "nonsense"}')
    assert bad.status.code == 1100 and "system_info" in bad.status.reason


def test_get_metrics_without_an_http_port(server):
    reply = _get_metrics(server.port, '{"metric_type": "system_info"}')
    assert reply.status.code == 0
    assert json.loads(reply.response)["nodes_info"][0]["infos"]["name"] == "heron"


def test_rest_uses_the_servers_auth(start_server):
    server = start_server("--http-port", "0", "--auth", "--root-password", "s3cret!")
    url = http_url(server)
    refused = post(f"{url}/v2/vectordb/collections/list", {})
    assert refused["code"] == 1800
    assert post(f"{url}/v2/vectordb/collections/list", {}, token="root:wrong")["code"] == 1800
    ok = post(f"{url}/v2/vectordb/collections/create", {"collectionName": "a", "dimension": 4}, token="root:s3cret!")
    assert ok == {"code": 0, "data": {}}
    # a user without privileges sees nothing and may create nothing, as over gRPC
    root = MilvusClient(server.uri, token="root:s3cret!")
    root.create_user("alice", "alice-pw1")
    assert post(f"{url}/v2/vectordb/collections/list", {}, token="alice:alice-pw1") == {"code": 0, "data": []}
    denied = post(f"{url}/v2/vectordb/collections/create", {"collectionName": "b", "dimension": 4},
                  token="alice:alice-pw1")
    assert denied["code"] != 0
    with pytest.raises(MilvusException) as grpc_denied:
        MilvusClient(server.uri, token="alice:alice-pw1").create_collection("b", dimension=4)
    assert denied["code"] == grpc_denied.value.code
    for path in ("collections/flush", "collections/describe", "entities/query"):
        answer = post(f"{url}/v2/vectordb/{path}", {"collectionName": "a", "filter": "id > 0"}, token="alice:alice-pw1")
        assert answer["code"] == grpc_denied.value.code and "privilege" in answer["message"], (path, answer)
    # health and metrics need no login
    assert get(f"{url}/healthz")[0] == 200 and get(f"{url}/metrics")[0] == 200


def test_a_busy_http_port_is_one_line_naming_the_port(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    from tests.conftest import HERON_SRC, ROOT

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "heron", "serve", "--data", str(tmp_path / "d"), "--port", "0",
             "--http-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": HERON_SRC},
        )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert f"--http-port {port}" in done.stderr and "cannot listen" in done.stderr
