"""The entity endpoints of the Milvus RESTful API v2: insert, upsert, delete, query, get, search, hybrid_search.

Rows arrive as JSON objects and become a `heron.data` batch for the
collection's schema, as the gRPC codec builds one from field data; reads
answer rows as JSON objects, search hits flat (``[{pk, "distance", ...}]``)
with ``topks`` giving how many belong to each query vector, as Milvus does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._errors import ParamError
from ..data._batch import build_batch
from ..data._vectors import query_vectors
from ._rest import Call, envelope

if TYPE_CHECKING:
    from .._schema import CollectionSchema

#: Milvus's REST search limit when the body names none.
DEFAULT_LIMIT = 100


async def _schema(c: Call, name: str) -> CollectionSchema:
    service = c.state.service
    assert service is not None
    return await service.pool.submit(lambda: service.engine.collection(c.db, name).schema)


def _rows(c: Call) -> list[dict[str, Any]]:
    data = c.body.get("data")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise ParamError(f"data: got {str(data)[:200]}, expected a list of row objects (field name to value)")
    return data


async def _write(c: Call, upsert: bool) -> dict[str, Any]:
    name = c.name()
    rows = _rows(c)
    schema = await _schema(c, name)
    service = c.state.service
    assert service is not None
    batch = await service.pool.submit(lambda: build_batch(schema, rows, for_upsert=upsert))
    req = rq.Insert(c.db, name, batch, c.name("partitionName", False), upsert)
    out = await c.run("Upsert" if upsert else "Insert", req, name)
    word = "upsert" if upsert else "insert"
    return {f"{word}Count": int(out.get(f"{word}_count", out.get("insert_count", 0))), f"{word}Ids": list(out["ids"])}


async def insert(c: Call) -> dict[str, Any]:
    return await _write(c, False)


async def upsert(c: Call) -> dict[str, Any]:
    return await _write(c, True)


async def delete(c: Call) -> dict[str, Any]:
    name = c.name()
    flt = _string(c, "filter")
    if not flt:
        raise ParamError("filter: missing; delete needs a filter such as \"id in [1, 2]\"")
    req = rq.Delete(c.db, name, None, flt, _params(c), c.name("partitionName", False))
    await c.run("Delete", req, name)
    return {}


def _string(c: Call, key: str) -> str:
    value = c.body.get(key) or ""
    if not isinstance(value, str):
        raise ParamError(f"{key}: got {value!r}, expected a string")
    return value


def _int(c: Call, key: str, default: int | None) -> int | None:
    value = c.body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamError(f"{key}: got {value!r}, expected an integer >= 0")
    return value


def _params(c: Call) -> dict[str, Any]:
    value = c.body.get("exprParams") or c.body.get("filterParams") or {}
    if not isinstance(value, dict):
        raise ParamError(f"exprParams: got {value!r}, expected an object")
    return dict(value)


def _fields(c: Call) -> tuple[str, ...] | None:
    value = c.body.get("outputFields")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParamError(f"outputFields: got {value!r}, expected a list of field names")
    return tuple(value)


async def query(c: Call) -> list[dict[str, Any]]:
    name = c.name()
    limit = _int(c, "limit", None)
    req = rq.Query(c.db, name, _string(c, "filter"), _fields(c), None, c.names("partitionNames"),
                   limit or None, _int(c, "offset", 0) or 0, _params(c), _string(c, "consistencyLevel"))
    return list(await c.run("Query", req, name))


async def get(c: Call) -> list[dict[str, Any]]:
    name = c.name()
    ids = c.body.get("id")
    if ids is None:
        raise ParamError("id: missing; get needs \"id\": a primary key or a list of them")
    ids = ids if isinstance(ids, list) else [ids]
    req = rq.Query(c.db, name, "", _fields(c), ids, c.names("partitionNames"))
    return list(await c.run("Query", req, name))


def _search_params(sp: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(sp, dict):
        raise ParamError(f"searchParams: got {sp!r}, expected an object with metricType and params")
    sp = dict(sp)
    params = dict(sp.pop("params", None) or {})
    metric = str(sp.pop("metricType", "") or sp.pop("metric_type", "") or "")
    params.update(sp)
    return metric.upper(), params


def _search(c: Call, name: str, body: dict[str, Any], limit: int, offset: int, out: tuple[str, ...] | None) -> rq.Search:
    data = body.get("data")
    if not isinstance(data, list) or not data:
        raise ParamError(f"data: got {str(data)[:200]}, expected a list of query vectors")
    metric, params = _search_params(body.get("searchParams") or {})
    metric = str(body.get("metricType") or metric).upper()
    params.update(body.get("params") or {})
    flt = body.get("filter") or ""
    if not isinstance(flt, str):
        raise ParamError(f"filter: got {flt!r}, expected a string")
    return rq.Search(
        c.db, name, _queries(data), str(body.get("annsField") or ""), flt, limit, offset, out, metric,
        params, c.names("partitionNames"), _params(c), str(body.get("groupingField") or ""),
        int(body.get("groupSize") or 1), bool(body.get("strictGroupSize", False)), -1,
        str(body.get("consistencyLevel") or ""),
    )


def _queries(data: list[Any]) -> Any:
    """Query vectors, or texts (a 1-d array of strings) for a field a function fills from text (BM25)."""
    if all(isinstance(t, str) for t in data):
        return np.array(data, dtype=object)
    return query_vectors(data)


async def _pk(c: Call, name: str) -> str:
    return (await _schema(c, name)).primary_field.name


def _flat(raw: list[list[dict[str, Any]]], pk: str) -> Any:
    rows = []
    for hits in raw:
        for h in hits:
            row = {pk: h["id"], "distance": h["distance"]}
            row.update(h.get("entity") or {})
            rows.append(row)
    return envelope(data=rows, topks=[len(hits) for hits in raw])


async def search(c: Call) -> Any:
    name = c.name()
    limit = _int(c, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    req = _search(c, name, c.body, limit, _int(c, "offset", 0) or 0, _fields(c))
    raw = await c.run("Search", req, name)
    return _flat(raw, await _pk(c, name))


async def hybrid_search(c: Call) -> Any:
    name = c.name()
    subs = c.body.get("search")
    if not isinstance(subs, list) or not subs or not all(isinstance(s, dict) for s in subs):
        raise ParamError(f"search: got {str(subs)[:200]}, expected a list of searches (data, annsField, limit)")
    reqs = tuple(_search(c, name, s, int(s.get("limit") or DEFAULT_LIMIT), 0, None) for s in subs)
    rerank = c.body.get("rerank")
    if not isinstance(rerank, dict) or not isinstance(rerank.get("strategy"), str):
        raise ParamError(f"rerank: got {rerank!r}, expected {{\"strategy\": \"rrf\" or \"weighted\", \"params\": ...}}")
    ranker = {"strategy": rerank["strategy"].lower(), "params": dict(rerank.get("params") or {})}
    limit = _int(c, "limit", DEFAULT_LIMIT) or DEFAULT_LIMIT
    req = rq.HybridSearch(c.db, name, reqs, ranker, limit, _int(c, "offset", 0) or 0, _fields(c),
                          c.names("partitionNames"))
    raw = await c.run("HybridSearch", req, name)
    return _flat(raw, await _pk(c, name))


ENTITY_ENDPOINTS = {
    "insert": insert, "upsert": upsert, "delete": delete, "query": query, "get": get,
    "search": search, "hybrid_search": hybrid_search,
}
