"""The text-search FastAPI example, driven in-process over ASGI: documents in as text, hybrid search by words.

The collection's BM25 function is Heron's; its embedding function runs the
test provider of `tests.functions._factories` (hashed words), so the test
needs no model download and its answers can be worked out by hand.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import require_module
from tests.functions._factories import installed

httpx = require_module("httpx")
require_module("fastapi")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_text_search.py"
DOCS = [
    "Grey herons wade in shallow water to catch fish",
    "The stock market fell sharply on Monday",
    "A recipe for lemon cake with a crisp sugar crust",
    "Herons and egrets nest together in tall trees",
    "Interest rates and the bond market",
]


@pytest.fixture
def example(tmp_path, monkeypatch) -> ModuleType:
    monkeypatch.setenv("HERON_URI", str(tmp_path / "text.db"))
    monkeypatch.setenv("HERON_EMBEDDING", json.dumps({"provider": "hashed"}))
    monkeypatch.setenv("HERON_EMBEDDING_DIM", "32")
    spec = importlib.util.spec_from_file_location("heron_text_search_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with installed(bm25=False):
        yield module


def test_documents_go_in_as_text_and_come_back_by_words(example):
    app = example.app

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
                added = await http.post("/documents", json={"texts": DOCS})
                assert added.status_code == 200 and added.json()["insert_count"] == len(DOCS)
                ids = added.json()["ids"]
                assert (await http.get("/count")).json() == {"count": len(DOCS)}
                answers = await asyncio.gather(*[
                    http.get("/search", params={"query": q, "limit": 2})
                    for q in ("herons", "market", "lemon cake recipe")
                ])
                assert all(r.status_code == 200 for r in answers)
                tops = [{h["id"] for h in r.json()["hits"]} for r in answers]
                assert tops[0] == {ids[0], ids[3]}
                assert tops[1] == {ids[1], ids[4]}
                assert answers[2].json()["hits"][0]["text"] == DOCS[2]
                assert (await http.get("/search", params={"query": ""})).status_code == 422
                assert (await http.post("/documents", json={"texts": ["x" * 9000]})).status_code == 400
                assert (await http.get("/count")).json() == {"count": len(DOCS)}

    asyncio.run(main())
