"""A FastAPI service on Heron: one `AsyncClient` for the whole app, opened and closed by the lifespan.

    pip install fastapi uvicorn
    HERON_URI=./fastapi_demo.db uvicorn examples.fastapi_app:app

Endpoints:

- ``POST /documents`` with ``{"texts": ["...", ...]}``: embed and store them; returns their ids.
- ``GET /search?q=...&limit=5``: the documents nearest to the text ``q``.
- ``POST /search`` with ``{"vector": [...], "limit": 5}``: the documents nearest to a vector.
- ``GET /count``: how many documents are stored.

The client runs the engine embedded in this process; handlers await it and
it works in a thread pool, so the event loop keeps serving other requests.
Point ``HERON_URI`` at ``http://host:19530`` to use a Heron server instead.

`embed` is a stand-in, not a language model: it hashes words into a fixed
number of buckets so the example runs anywhere and the same text always gets
the same vector. Swap in a real embedding model (and its dimension) to get
semantic search.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

import heron

COLLECTION = "documents"
DIM = 64


def embed(text: str) -> list[float]:
    """A toy embedding (stand-in for a model): signed word-hash buckets, normalised to unit length."""
    vec = np.zeros(DIM, dtype=np.float32)
    for word in re.findall(r"\w+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vec[h % DIM] += 1.0 if (h >> 32) & 1 else -1.0
    norm = float(np.linalg.norm(vec))
    if norm == 0.0:
        vec[0] = 1.0
        norm = 1.0
    return (vec / norm).tolist()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open one client for the app's lifetime, create the collection if missing, close it on shutdown."""
    client = heron.AsyncClient(os.environ.get("HERON_URI", "./fastapi_demo.db"))
    try:
        if not await client.has_collection(COLLECTION):
            # The quick form: an int64 "id" (assigned here), a "vector" field, dynamic fields for the text.
            await client.create_collection(
                COLLECTION, dimension=DIM, metric_type="COSINE", auto_id=True, consistency_level="Strong"
            )
        app.state.heron = client
        yield
    finally:
        await client.close()


app = FastAPI(title="Heron demo", lifespan=lifespan)


def heron_client(request: Request) -> heron.AsyncClient:
    return request.app.state.heron


Client = Annotated[heron.AsyncClient, Depends(heron_client)]


class Documents(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=1000)


class VectorQuery(BaseModel):
    vector: list[float] = Field(min_length=DIM, max_length=DIM)
    limit: int = Field(default=5, ge=1, le=100)


def _hits(result: Any) -> list[dict[str, Any]]:
    return [{"id": h["id"], "score": h["distance"], "text": h["entity"].get("text")} for h in result[0]]


@app.post("/documents")
async def add_documents(body: Documents, client: Client) -> dict[str, Any]:
    rows = [{"vector": embed(t), "text": t} for t in body.texts]
    res = await client.insert(COLLECTION, rows)
    return {"insert_count": res["insert_count"], "ids": list(res["ids"])}


@app.get("/search")
async def search_text(
    client: Client, q: Annotated[str, Query(min_length=1)], limit: Annotated[int, Query(ge=1, le=100)] = 5
) -> dict[str, Any]:
    result = await client.search(COLLECTION, data=[embed(q)], limit=limit, output_fields=["text"])
    return {"query": q, "hits": _hits(result)}


@app.post("/search")
async def search_vector(body: VectorQuery, client: Client) -> dict[str, Any]:
    try:
        result = await client.search(COLLECTION, data=[body.vector], limit=body.limit, output_fields=["text"])
    except heron.ParamError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return {"hits": _hits(result)}


@app.get("/count")
async def count(client: Client) -> dict[str, int]:
    res = await client.query(COLLECTION, filter="", output_fields=["count(*)"])
    return {"count": res[0]["count(*)"]}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
