"""TEXTEMBEDDING with provider ``openai`` against a real OpenAI-compatible endpoint on 127.0.0.1.

The endpoint is `tests/engine/_openai_stub.py`, a separate process; its model
names choose how it answers (well, failing mid-batch, with a wrong dimension,
rate-limited, ...), and ``/stats`` says what it was asked.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from heron import DataType, FieldSchema, HeronError
from heron._schema import CollectionSchema
from heron.engine.functions import _base
from tests.conftest import require_module
from tests.engine._openai_stub import KEY, vector

STUB = Path(__file__).with_name("_openai_stub.py")
DIM = 8


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, str(STUB)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stats(endpoint: str) -> dict:
    with urllib.request.urlopen(f"{endpoint}/stats", timeout=10) as r:
        return json.loads(r.read())


def build(address: str, model: str, field_dim: int = DIM, **params: object):
    schema = CollectionSchema([
        FieldSchema("id", DataType.INT64, is_primary=True),
        FieldSchema("text", DataType.VARCHAR, max_length=200),
        FieldSchema("vec", DataType.FLOAT_VECTOR, dim=field_dim),
    ])
    params = {"provider": "openai", "model_name": model, "url": address, "api_key": KEY, **params}
    return _base.build(_base.FunctionDef("emb", "TEXTEMBEDDING", ("text",), ("vec",), params), schema)


def texts(n: int) -> list[str]:
    return [f"document {i} about {'x' * i}" for i in range(n)]


def test_embeds_in_batches_in_order(endpoint):
    before = len(stats(endpoint)["batches"])
    fn = build(endpoint, "good", batch_size=3)
    batch = texts(7)
    out = fn.compute({"text": batch})["vec"]
    assert out.dtype == np.float32 and out.shape == (7, DIM)
    np.testing.assert_allclose(out, [vector(t, DIM) for t in batch], rtol=1e-6)  # despite reversed answers
    assert stats(endpoint)["batches"][before:] == [3, 3, 1]
    np.testing.assert_allclose(fn.query(["a query"]), [vector("a query", DIM)], rtol=1e-6)


@pytest.mark.parametrize(("key", "url"), [
    ("url", "{e}"), ("url", "{e}/"), ("url", "{e}/v1"), ("url", "{e}/v1/embeddings"), ("endpoint", "{e}"),
    ("base_url", "{e}/v1"), ("base_url", "{e}/v1/"), ("base_url", "{e}/v1/embeddings"),
])
def test_the_url_may_be_the_address_the_sdk_base_or_the_full_endpoint(endpoint, key, url):
    params = {"url": "", key: url.format(e=endpoint)}
    fn = build(endpoint, "good", **params)
    assert fn.query(["t"]).shape == (1, DIM)


def test_dim_is_sent_as_dimensions_and_user_passes_through(endpoint):
    before = len(stats(endpoint)["batches"])
    fn = build(endpoint, "good", field_dim=5, dim="5", user="u-7")
    assert fn.query(["t"]).shape == (1, 5)
    s = stats(endpoint)
    assert s["dimensions"][before:] == [5] and s["users"][before:] == ["u-7"]


def test_the_key_comes_from_the_environment(endpoint, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("MY_EMBED_KEY", KEY)
    schema_params = {"api_key": ""}
    assert build(endpoint, "good", **schema_params).query(["t"]).shape == (1, DIM)
    assert build(endpoint, "good", api_key="", credential="MY_EMBED_KEY").query(["t"]).shape == (1, DIM)
    with pytest.raises(HeronError, match="credential 'UNSET_VAR' names an environment variable that is not set"):
        build(endpoint, "good", api_key="", credential="UNSET_VAR").query(["t"])


def test_a_bad_key_is_refused_naming_provider_and_status(endpoint):
    with pytest.raises(HeronError) as info:
        build(endpoint, "good", api_key="sk-bad").compute({"text": texts(2)})
    message = str(info.value)
    for word in ("'openai'", endpoint, "'good'", "HTTP 401", "Incorrect API key"):
        assert word in message, (word, message)


def test_a_failure_mid_batch_fails_the_whole_write(endpoint):
    fn = build(endpoint, "fail-second", batch_size=2, max_retries=0)
    with pytest.raises(HeronError, match="HTTP 500.*the model crashed"):
        fn.compute({"text": texts(6)})


def test_a_wrong_dimension_names_both(endpoint):
    with pytest.raises(HeronError, match=rf"'openai'.*dimension {DIM + 1}.*'vec' has dim {DIM}"):
        build(endpoint, "wrong-dim").compute({"text": texts(2)})


def test_a_short_answer_is_refused(endpoint):
    with pytest.raises(HeronError, match="sent 3 texts, got 2 embeddings back"):
        build(endpoint, "short").compute({"text": texts(3)})


def test_rate_limits_are_retried_up_to_the_bound(endpoint):
    # A fresh endpoint process, so that its stats hold only these requests.
    proc = subprocess.Popen([sys.executable, str(STUB)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        fresh = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        assert build(fresh, "limited-once").query(["t"]).shape == (1, DIM)
        assert stats(fresh)["batches"] == [1, 1]
        with pytest.raises(HeronError, match="rate limited after 3 attempts: HTTP 429"):
            build(fresh, "limited", max_retries="2").query(["t"])
        assert stats(fresh)["batches"] == [1, 1, 1, 1, 1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_endpoint_that_does_not_answer_in_time_is_named(endpoint):
    with pytest.raises(HeronError, match=r"'openai'.*no answer within 0.5 s \(param 'timeout'\)"):
        build(endpoint, "slow", timeout="0.5").query(["t"])


def test_an_endpoint_that_is_down_is_named():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HeronError, match=rf"'openai' \(http://127.0.0.1:{port}/v1/embeddings.*cannot reach"):
        build(f"http://127.0.0.1:{port}", "good", timeout="5").compute({"text": texts(1)})


def test_the_same_params_give_the_same_vectors_as_milvus_lite(endpoint, tmp_path):
    pm = require_module("pymilvus")
    require_module("milvus_lite")
    from tests.server.test_milvus_lite_interop import start_milvus_lite

    params = {"provider": "openai", "model_name": "good", "base_url": f"{endpoint}/v1", "api_key": KEY,
              "dimensions": DIM}
    rows = texts(5)
    lite = start_milvus_lite(str(tmp_path / "lite"))
    try:
        client = pm.MilvusClient(uri=f"http://127.0.0.1:{lite.port}")
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", pm.DataType.INT64, is_primary=True)
        schema.add_field("text", pm.DataType.VARCHAR, max_length=200)
        schema.add_field("vec", pm.DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_function(pm.Function("emb", pm.FunctionType.TEXTEMBEDDING, input_field_names=["text"],
                                        output_field_names=["vec"], params=params))
        index = client.prepare_index_params()
        index.add_index("vec", index_type="FLAT", metric_type="COSINE")
        client.create_collection("docs", schema=schema, index_params=index)
        client.insert("docs", [{"id": i, "text": t} for i, t in enumerate(rows)])
        stored = client.query("docs", filter="id >= 0", output_fields=["vec"])
        client.close()
    finally:
        lite.proc.terminate()
        lite.proc.wait(timeout=30)
    lite_vectors = np.array([r["vec"] for r in sorted(stored, key=lambda r: r["id"])], dtype=np.float32)
    ours = build(endpoint, "good", **{**params, "url": ""}).compute({"text": rows})["vec"]
    np.testing.assert_allclose(ours, lite_vectors, rtol=1e-6)
