"""The web console (``heron serve --http-port 0 --console``) in a real browser: headless Chromium over CDP.

The test loads ``/``, waits for the collections the server holds, runs a
query and a search through the playground's form (typing and clicking as
a user does) and checks the rows the page shows against the data; it then
writes more rows and waits for the collection's count on the page to
follow. A screenshot is taken each time; ``HERON_CONSOLE_SCREENSHOT=PATH``
keeps it (the README's ``docs/console.png`` is made so). Without Chromium
the test skips, and fails under CI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tests.conftest import require_module
from tests.server.cdp import Browser, chromium
from tests.server.http_helpers import get, http_url

require_module("starlette")
require_module("uvicorn")
require_module("prometheus_client")

N = 240
DIM = 4
TITLES = ("heron", "river", "lake", "marsh", "reed", "tide")


def _rows(start: int, n: int, rng: np.random.Generator) -> list[dict]:
    vectors = rng.random((n, DIM), dtype=np.float32)
    return [{"id": i, "title": f"{TITLES[i % len(TITLES)]} {i}", "year": 1990 + i % 35, "vector": vectors[k].tolist()}
            for k, i in enumerate(range(start, start + n))]


def _load(uri: str) -> tuple[object, list[dict]]:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(uri)
    schema = client.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("year", DataType.INT32)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = client.prepare_index_params()
    index.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_collection("books", schema=schema, index_params=index)
    rows = _rows(0, N, np.random.default_rng(7))
    client.insert("books", rows)
    client.flush("books")
    client.create_collection("notes", dimension=8)
    client.insert("notes", [{"id": i, "vector": [float(i)] * 8, "topic": "ops"} for i in range(12)])
    return client, rows


def _table(browser: Browser) -> list[list[str]]:
    return browser.eval("Array.from(document.querySelectorAll('#result table.result tbody tr'))"
                        ".map(tr => Array.from(tr.cells).map(td => td.textContent))")


def _headers(browser: Browser) -> list[str]:
    return browser.eval("Array.from(document.querySelectorAll('#result table.result th')).map(th => th.textContent)")


def _run(browser: Browser) -> None:
    browser.eval("document.getElementById('result').innerHTML = ''")
    browser.click("#run")
    browser.wait("document.querySelector('#result .summary, #result .error')")


def test_console_query_and_search_in_chromium(start_server, tmp_path):
    chromium()
    require_module("pymilvus")
    server = start_server("--http-port", "0", "--console")
    url = http_url(server)
    status, page = get(f"{url}/")
    assert status == 200 and 'id="playground"' in page
    client, rows = _load(server.uri)

    browser = Browser()
    try:
        browser.navigate(f"{url}/")
        # The collections the server holds, with their row counts and index, as the page shows them.
        browser.wait("document.querySelectorAll('#collection option').length === 2")
        cards = browser.eval("Array.from(document.querySelectorAll('#overview .collection'))"
                             ".map(s => [s.dataset.collection, s.querySelector('.rows').textContent])")
        assert cards == [["books", f"{N:,}"], ["notes", "12"]]
        assert "FLAT" in browser.eval("document.querySelector('[data-collection=books] table.indexes').textContent")

        # A query through the form.
        browser.select("#collection", "default/books")
        browser.select("#mode", "query")
        browser.type("#filter", "year >= 2020 and id < 100")
        browser.type("#output_fields", "id, title, year")
        browser.type("#limit", "50")
        _run(browser)
        assert browser.eval("document.querySelector('#result .error')") is None, browser.eval(
            "document.getElementById('result').textContent")
        expected = sorted((r["id"], r["title"], r["year"]) for r in rows if r["year"] >= 2020 and r["id"] < 100)
        assert _headers(browser) == ["id", "title", "year"]
        shown = sorted((int(a), b, int(c)) for a, b, c in _table(browser))
        assert shown == expected and len(shown) > 5

        # A search through the form: a pasted vector, a filter, the nearest rows first.
        browser.select("#mode", "search")
        browser.wait("!document.getElementById('search-inputs').hidden")
        query = [0.5, 0.25, 0.75, 0.1]
        browser.type("#filter", "year < 2005")
        browser.type("#output_fields", "title")
        browser.type("#limit", "5")
        browser.type("#data", json.dumps(query))
        _run(browser)
        vectors = np.array([r["vector"] for r in rows], dtype=np.float32)
        d = ((vectors - np.array(query, dtype=np.float32)) ** 2).sum(axis=1)
        d[np.array([r["year"] >= 2005 for r in rows])] = np.inf
        nearest = np.argsort(d, kind="stable")[:5]
        assert _headers(browser) == ["id", "distance", "title"]
        table = _table(browser)
        assert [int(r[0]) for r in table] == [rows[i]["id"] for i in nearest]
        assert [r[2] for r in table] == [rows[i]["title"] for i in nearest]
        np.testing.assert_allclose([float(r[1]) for r in table], d[nearest], rtol=1e-4)

        # A bad filter: the error is shown, naming the problem.
        browser.select("#mode", "query")
        browser.type("#filter", "year >>> 3")
        _run(browser)
        assert "year" in browser.eval("document.querySelector('#result .error').textContent")

        # The overview follows writes while the page is open; the metrics charts fill.
        client.insert("books", _rows(N, 60, np.random.default_rng(8)))
        browser.wait(f"document.querySelector('[data-collection=books] .rows').textContent === '{N + 60:,}'")
        browser.wait("document.querySelectorAll('#charts .chart').length === 7")

        browser.select("#mode", "search")
        browser.type("#filter", "year < 2005")
        _run(browser)
        shot = tmp_path / "console.png"
        browser.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        keep = os.environ.get("HERON_CONSOLE_SCREENSHOT")
        if keep:
            Path(keep).write_bytes(shot.read_bytes())
    finally:
        browser.close()
        client.close()  # type: ignore[attr-defined]
