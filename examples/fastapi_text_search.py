"""A FastAPI service that searches a text collection by words: keyword (BM25) and meaning (embeddings) at once.

    pip install "heron[embed]" fastapi uvicorn
    HERON_URI=./text_demo.db uvicorn examples.fastapi_text_search:app

Endpoints:

- ``POST /documents`` with ``{"texts": ["...", ...]}``: store them; returns their ids.
- ``GET /search?query=...&limit=5``: the documents that best match ``query``,
  ranked by fusing a BM25 keyword search and a dense semantic search (RRF).
- ``GET /count``: how many documents are stored.

The application never computes a vector. The collection's schema has two
functions: BM25 turns ``text`` into a sparse vector of its words, and
TEXTEMBEDDING turns it into a dense vector with an embedding model. Heron
runs both when documents are inserted and again on the query text when
searching, so the app stores and searches plain text. ``HERON_EMBEDDING``
sets the embedding function's params as JSON (default: the local
all-MiniLM-L6-v2 model, ``{"provider": "local"}``; an OpenAI-compatible
endpoint would be ``{"provider": "openai", "model_name": ..., "url": ...}``)
and ``HERON_EMBEDDING_DIM`` its dimension (384 for all-MiniLM-L6-v2).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

import heron

COLLECTION = "articles"


def embedding_params() -> dict[str, Any]:
    return dict(json.loads(os.environ.get("HERON_EMBEDDING", '{"provider": "local"}')))


def text_schema() -> heron.CollectionSchema:
    """An id, the text (analyzed, for BM25), and the two vector fields the functions fill from it."""
    dim = int(os.environ.get("HERON_EMBEDDING_DIM", "384"))
    schema = heron.CollectionSchema(auto_id=True)
    schema.add_field("id", heron.DataType.INT64, is_primary=True, auto_id=True)
    schema.add_field("text", heron.DataType.VARCHAR, max_length=8192, enable_analyzer=True)
    schema.add_field("words", heron.DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("meaning", heron.DataType.FLOAT_VECTOR, dim=dim)
    schema.add_function(heron.Function("bm25", heron.FunctionType.BM25, ["text"], ["words"]))
    schema.add_function(heron.Function("embed", heron.FunctionType.TEXTEMBEDDING, ["text"], ["meaning"],
                                       params=embedding_params()))
    return schema


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open one client for the app's lifetime, create the collection if missing, close it on shutdown."""
    client = heron.AsyncClient(os.environ.get("HERON_URI", "./text_demo.db"))
    try:
        if not await client.has_collection(COLLECTION):
            index = client.prepare_index_params()
            index.add_index("words", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
            index.add_index("meaning", index_type="AUTOINDEX", metric_type="COSINE")
            await client.create_collection(COLLECTION, schema=text_schema(), index_params=index,
                                           consistency_level="Strong")
        app.state.heron = client
        yield
    finally:
        await client.close()


app = FastAPI(title="Heron text search", lifespan=lifespan)


def heron_client(request: Request) -> heron.AsyncClient:
    return request.app.state.heron


Client = Annotated[heron.AsyncClient, Depends(heron_client)]


class Documents(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=1000)


@app.post("/documents")
async def add_documents(body: Documents, client: Client) -> dict[str, Any]:
    try:
        res = await client.insert(COLLECTION, [{"text": t} for t in body.texts])
    except heron.DataError as exc:  # a text too long, or the embedding provider refusing the batch
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return {"insert_count": res["insert_count"], "ids": list(res["ids"])}


@app.get("/search")
async def search(
    client: Client, query: Annotated[str, Query(min_length=1)], limit: Annotated[int, Query(ge=1, le=100)] = 5
) -> dict[str, Any]:
    """Keyword and semantic search by the same words, fused by rank (RRF): Weaviate's ``hybrid(query)``."""
    reqs = [
        heron.AnnSearchRequest([query], "words", {"metric_type": "BM25"}, limit * 2),
        heron.AnnSearchRequest([query], "meaning", {"metric_type": "COSINE"}, limit * 2),
    ]
    result = await client.hybrid_search(COLLECTION, reqs, heron.RRFRanker(), limit=limit, output_fields=["text"])
    hits = [{"id": h["id"], "score": h["distance"], "text": h["entity"]["text"]} for h in result[0]]
    return {"query": query, "hits": hits}


@app.get("/count")
async def count(client: Client) -> dict[str, int]:
    res = await client.query(COLLECTION, filter="", output_fields=["count(*)"])
    return {"count": res[0]["count(*)"]}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
