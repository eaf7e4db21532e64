"""The FastAPI example, driven in-process over ASGI with many concurrent requests."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

import heron
from tests.conftest import require_module

httpx = require_module("httpx")
require_module("fastapi")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi_app.py"


@pytest.fixture(autouse=True)
def _remove_data_dirs(tmp_path):
    """Data directories are large; remove them when the test ends instead of keeping them around."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("heron_fastapi_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(k: int, part: str) -> str:
    # Words unique to each document, so no two documents share a toy embedding.
    return f"note {k} {part} w{k}x{part} q{k * 7919 % 1000}{part} about herons"


@pytest.fixture
def example(tmp_path, monkeypatch) -> ModuleType:
    monkeypatch.setenv("HERON_URI", str(tmp_path / "demo.db"))
    return _load_example()


def test_embedding_stand_in_is_deterministic_and_unit_length(example):
    a, b = example.embed("Grey herons fish"), example.embed("grey  HERONS fish!")
    assert a == b and len(a) == example.DIM
    assert sum(x * x for x in a) == pytest.approx(1.0, rel=1e-5)
    assert example.embed("something else entirely") != a


def test_200_concurrent_requests_insert_search_and_count_correctly(example, tmp_path):
    app = example.app

    async def main() -> set[int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
                # Round 1: 100 inserts of 2 documents each, with 100 reads mixed in.
                posts = [
                    http.post("/documents", json={"texts": [_text(k, "a"), _text(k, "b")]})
                    for k in range(100)
                ]
                reads = [http.get("/count") for _ in range(50)] + [
                    http.get("/search", params={"q": "herons", "limit": 3}) for _ in range(50)
                ]
                answers = await asyncio.gather(*posts, *reads)
                assert all(r.status_code == 200 for r in answers), [
                    r.text for r in answers if r.status_code != 200
                ]
                ids_of = {k: r.json()["ids"] for k, r in enumerate(answers[:100])}
                assert all(r.json()["insert_count"] == 2 for r in answers[:100])
                all_ids = [i for ids in ids_of.values() for i in ids]
                assert len(set(all_ids)) == 200, "ids were reused"
                counts = [r.json()["count"] for r in answers[100:150]]
                assert all(0 <= c <= 200 and c % 2 == 0 for c in counts), (
                    f"a count saw half a batch: {counts}"
                )

                assert (await http.get("/count")).json() == {"count": 200}

                # Round 2: 200 searches at once, by text and by vector; each finds its own document first.
                ks = list(range(100))
                by_text = [http.get("/search", params={"q": _text(k, "a"), "limit": 2}) for k in ks]
                by_vector = [http.post("/search", json={"vector": example.embed(_text(k, "b"))}) for k in ks]
                answers = await asyncio.gather(*by_text, *by_vector)
                assert all(r.status_code == 200 for r in answers)
                for k, r in zip(ks, answers[:100]):
                    top = r.json()["hits"][0]
                    assert (top["id"], top["text"]) == (ids_of[k][0], _text(k, "a"))
                    assert top["score"] == pytest.approx(1.0, abs=1e-5)
                    assert len(r.json()["hits"]) == 2
                for k, r in zip(ks, answers[100:]):
                    hits = r.json()["hits"]
                    assert len(hits) == 5 and (hits[0]["id"], hits[0]["text"]) == (
                        ids_of[k][1],
                        _text(k, "b"),
                    )

                # Bad input is the caller's error, not the server's.
                assert (await http.post("/documents", json={"texts": []})).status_code == 422
                assert (await http.get("/search", params={"q": ""})).status_code == 422
                assert (await http.post("/search", json={"vector": [1.0, 2.0]})).status_code == 422
            client = app.state.heron
        # Shutdown closed the client.
        with pytest.raises(heron.ClientClosedError):
            await client.list_collections()
        return set(all_ids)

    ids = asyncio.run(main())
    # The data outlives the app, and the directory is free for the next opener.
    with heron.Client(str(tmp_path / "demo.db")) as client:
        rows = client.query(example.COLLECTION, filter="id >= 0", output_fields=["text"])
        assert {r["id"] for r in rows} == ids
        assert client.query(example.COLLECTION, filter="", output_fields=["count(*)"])[0]["count(*)"] == 200


def test_restarted_app_keeps_its_collection_and_documents(example):
    app = example.app

    async def run_once(texts: list[str]) -> int:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
                if texts:
                    assert (await http.post("/documents", json={"texts": texts})).status_code == 200
                return (await http.get("/count")).json()["count"]

    assert asyncio.run(run_once(["first start"])) == 1
    assert asyncio.run(run_once(["second start", "and more"])) == 3
    assert asyncio.run(run_once([])) == 3
