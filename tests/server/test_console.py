"""The web console's routes without a browser: login, errors, the metrics series, ``heron console DIR``.

(`test_console_browser.py` drives the page in headless Chromium.)
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from tests.conftest import HERON_SRC, ROOT, require_module
from tests.server.http_helpers import get, http_url, post

require_module("starlette")
require_module("uvicorn")
require_module("prometheus_client")
pymilvus = require_module("pymilvus")

PASSWORD = "s3cret!"


def _request(url: str, body: dict | None = None, token: str = "") -> tuple[int, str]:
    """(status, body) of a GET (``body`` None) or a JSON POST, with ``Bearer token`` when given."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, headers, method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _cells(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1] if "<tbody>" in html else ""
    return [re.findall(r"<td>(.*?)</td>", tr) for tr in re.findall(r"<tr>(.*?)</tr>", body)]


def _books(uri: str, token: str = "") -> list[dict]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri, token=token)
    client.create_collection("books", dimension=4, metric_type="L2")
    rng = np.random.default_rng(3)
    rows = [{"id": i, "vector": rng.random(4).tolist(), "year": 2000 + i % 10} for i in range(40)]
    client.insert("books", rows)
    client.close()
    return rows


def test_console_needs_the_servers_login(start_server):
    server = start_server("--http-port", "0", "--console", "--auth", "--root-password", PASSWORD)
    url = http_url(server)
    _books(server.uri, f"root:{PASSWORD}")
    status, page = get(f"{url}/")
    assert status == 200 and "requires a login" in page and "books" not in page
    status, body = _request(f"{url}/console/overview")
    assert status == 401 and "authentication required" in body
    status, body = _request(f"{url}/console/overview", token="root:wrong")
    assert status == 401
    status, body = _request(f"{url}/console/overview", token=f"root:{PASSWORD}")
    assert status == 200 and 'data-collection="books"' in body and '<b class="rows">40</b>' in body
    form = {"collection": "books", "mode": "query", "filter": "year == 2003", "output_fields": "id, year"}
    assert _request(f"{url}/console/run", form)[0] == 401
    status, body = _request(f"{url}/console/run", form, token=f"root:{PASSWORD}")
    assert status == 200 and sorted(int(r[0]) for r in _cells(body)) == [3, 13, 23, 33]
    assert _request(f"{url}/console/metrics")[0] == 401


def test_console_errors_and_metrics_series(start_server):
    server = start_server("--http-port", "0", "--console")
    url = http_url(server)
    rows = _books(server.uri)
    cases = [
        ({"collection": "nope", "mode": "query", "filter": "id > 1"}, "nope"),
        ({"collection": "books", "mode": "search", "data": ""}, "data: empty"),
        ({"collection": "books", "mode": "search", "data": "[0.1, 0.2"}, "not a JSON vector"),
        ({"collection": "books", "mode": "search", "data": "[0.1, 0.2]"}, "dim"),
        ({"collection": "books", "mode": "query", "filter": "id > 1", "limit": "ten"}, "limit: got 'ten'"),
        ({"mode": "query"}, "collection: missing"),
    ]
    for form, words in cases:
        status, body = _request(f"{url}/console/run", form)
        assert status == 400 and 'class="error"' in body and words in html.unescape(body), (form, body)
    # An unfiltered query without a limit shows the first rows, as far as the default limit.
    status, body = _request(f"{url}/console/run", {"collection": "books", "mode": "query"})
    assert status == 200 and len(_cells(body)) == 10
    # A search of several pasted vectors: each one's hits, nearest first.
    queries = [rows[5]["vector"], rows[9]["vector"]]
    form = {"collection": "books", "mode": "search", "data": json.dumps(queries), "limit": "2"}
    status, body = _request(f"{url}/console/run", form)
    assert status == 200 and 'data-count="4"' in body
    ids = [int(r[0]) for r in _cells(body)]
    assert ids[0] == 5 and ids[2] == 9

    first = json.loads(_request(f"{url}/console/metrics")[1])
    assert set(first) == {"t", "calls", "failed", "inflight", "rows", "segments", "backlog", "rss"}
    assert first["rows"][-1] == 40 and first["rss"][-1] > 0
    calls = first["calls"][-1]
    from pymilvus import MilvusClient

    client = MilvusClient(server.uri)
    for _ in range(5):
        client.query("books", filter="id < 3")
    client.close()
    time.sleep(1.1)  # one sample a second at most
    later = json.loads(_request(f"{url}/console/metrics")[1])
    assert len(later["t"]) == len(first["t"]) + 1
    assert later["calls"][-1] >= calls + 5


def test_rest_search_with_text_for_a_bm25_field(start_server):
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    server = start_server("--http-port", "0")
    url = http_url(server)
    assert get(f"{url}/")[0] == 404 and get(f"{url}/console/overview")[0] == 404  # no console unless asked
    client = MilvusClient(server.uri)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sparse"]))
    index = client.prepare_index_params()
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection("docs", schema=schema, index_params=index)
    texts = ["the heron stands in the river", "a lake at night", "herons and egrets by the lake",
             "vector search in a database", "the river meets the sea"]
    client.insert("docs", [{"id": i, "text": t} for i, t in enumerate(texts)])
    over_grpc = client.search("docs", ["heron river"], anns_field="sparse", limit=3, output_fields=["text"])
    client.close()
    answer = post(f"{url}/v2/vectordb/entities/search", {
        "collectionName": "docs", "data": ["heron river"], "annsField": "sparse", "limit": 3, "outputFields": ["text"],
    })
    assert answer["code"] == 0, answer
    assert [(h["id"], h["text"]) for h in answer["data"]] == [(h["id"], h["entity"]["text"]) for h in over_grpc[0]]
    np.testing.assert_allclose([h["distance"] for h in answer["data"]], [h["distance"] for h in over_grpc[0]],
                               rtol=1e-6)
    assert answer["topks"] == [len(over_grpc[0])] and answer["data"][0]["id"] == 0


def test_heron_console_opens_a_directory(tmp_path: Path):
    data = tmp_path / "console.db"
    import heron

    with heron.Client(str(data)) as client:
        client.create_collection("notes", dimension=3)
        client.insert("notes", [{"id": i, "vector": [i, 1.0, 0.0]} for i in range(7)])
    log = tmp_path / "console.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (HERON_SRC, os.environ.get("PYTHONPATH", "")) if p)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "heron", "console", str(data), "--port", "0"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        end = time.monotonic() + 60
        m = None
        while m is None and time.monotonic() < end and proc.poll() is None:
            m = re.search(r"console at (http://127\.0\.0\.1:\d+)/", log.read_text())
            time.sleep(0.05)
        assert m, log.read_text()
        url = m.group(1)
        end = time.monotonic() + 60
        while get(f"{url}/readyz")[0] != 200 and time.monotonic() < end:
            time.sleep(0.05)
        status, page = get(f"{url}/")
        assert status == 200 and 'data-collection="notes"' in page and '<b class="rows">7</b>' in page
        # A second console on the same directory names the server that holds it.
        again = subprocess.run([sys.executable, "-m", "heron", "console", str(data), "--port", "0"],
                               cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
        assert again.returncode == 1 and "--console" in again.stderr and len(again.stderr.splitlines()) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
