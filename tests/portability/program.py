"""One program written only against `heron.AsyncClient`, run against any server and compared step by step.

`run_program` drives a collection through its life (schema with an HNSW
index, insert, load, filtered search, count, get, delete, upsert, iterators,
partitions, aliases, release, drop) and answers one comparable value per
step. Reads use Strong consistency: a Milvus server's default (Bounded) may
not yet show writes of the last seconds, where Heron always reads its own
writes. `run_features` tries what a server may lack (sparse vectors,
nullable fields, BM25, several vector fields) and answers, per feature,
``ok`` or the server's refusal. ``scripts/against-milvus`` runs both
against embedded Heron, ``heron serve`` and a Milvus server and prints the
table; ``tests/portability/test_against_milvus.py`` asserts that every step
agrees.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

import heron
from heron import DataType

NAME = "portability"
ALIAS = "portability_alias"
DIM = 8
ROWS = 1000
PART_ROWS = 200
COLORS = ("red", "green", "blue")
STRONG = {"consistency_level": "Strong"}
#: Milvus 2.3.5 wants HNSW's build parameters spelled out.
_HNSW = {"M": 16, "efConstruction": 64}

Step = tuple[str, Any]


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def _rows(ids: range, seed: int, partition_tag: str = "") -> list[dict[str, Any]]:
    vecs = _vectors(len(ids), seed)
    return [
        {"id": i, "vector": vecs[j].tolist(), "n": i, "color": COLORS[i % 3], "tag": partition_tag,
         "extra": i % 11}
        for j, i in enumerate(ids)
    ]


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as comparable values: sorted by key, vectors rounded, keys sorted."""
    out = []
    for r in sorted(rows, key=lambda r: r["id"]):
        out.append({k: (np.round(np.asarray(v, dtype=np.float64), 4).tolist() if k == "vector" else v)
                    for k, v in sorted(r.items())})
    return out


def _hits(result: Any) -> list[list[tuple[int, float]]]:
    return [[(int(h["id"]), round(float(h["distance"]), 3)) for h in hits] for hits in result]


async def run_program(c: heron.AsyncClient) -> list[Step]:
    """The steps and what each answered; a step that raises answers ``error: <class>: <message>``."""
    steps: list[Step] = []

    async def step(name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await fn()
        except Exception as exc:  # a step's failure is its answer, compared like any other
            value = f"error: {type(exc).__name__}: {str(exc)[:120]}"
        steps.append((name, value))
        return value

    await c.drop_alias(ALIAS)
    await c.drop_collection(NAME)
    schema = c.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("n", DataType.INT64)
    schema.add_field("color", DataType.VARCHAR, max_length=16)
    schema.add_field("tag", DataType.VARCHAR, max_length=16)
    index = c.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 16, "efConstruction": 128})

    async def create() -> Any:
        await c.create_collection(NAME, schema=schema, index_params=index, consistency_level="Strong")
        d = await c.describe_collection(NAME)
        return {"fields": [(f["name"], int(f["type"])) for f in d["fields"]],
                "dynamic": d["enable_dynamic_field"], "consistency": d["consistency_level"]}

    await step("create collection (schema + HNSW)", create)

    async def describe_index() -> Any:
        d = await c.describe_index(NAME, "vector")
        return {k: d[k] for k in ("index_type", "metric_type", "M", "efConstruction")}

    await step("describe_index keeps build params", describe_index)
    await step("insert 1000 rows", lambda: _count_of(c.insert(NAME, _rows(range(ROWS), 1)), "insert_count"))
    await step("create_partition + list", lambda: _then(c.create_partition(NAME, "p1"), c.list_partitions(NAME)))
    await step("insert 200 rows into p1",
               lambda: _count_of(c.insert(NAME, _rows(range(ROWS, ROWS + PART_ROWS), 2, "p1"), partition_name="p1"),
                                 "insert_count"))
    await step("load_collection, load state", lambda: _then(c.load_collection(NAME), _state(c)))
    await step("count(*)", lambda: _count(c))
    await step("count(*) in p1", lambda: _count(c, partition_names=["p1"]))
    await step("get 3 ids", lambda: _rows_of(c.get(NAME, ids=[3, 7, ROWS + 5],
                                                    output_fields=["n", "color", "vector", "extra"], **STRONG)))
    q = _vectors(2, 9)
    search = {"metric_type": "L2", "params": {"ef": 512}}
    await step("search top 5", lambda: _hits_of(c.search(NAME, q, limit=5, search_params=search, **STRONG)))
    await step("filtered search", lambda: _hits_of(c.search(
        NAME, q, limit=5, filter='color == "red" and n < 600', search_params=search, output_fields=["n"], **STRONG)))
    await step("search in partition p1", lambda: _hits_of(c.search(
        NAME, q[:1], limit=5, partition_names=["p1"], search_params=search, **STRONG)))
    await step("query on dynamic field", lambda: _rows_of(c.query(
        NAME, filter="extra == 7 and n < 100", output_fields=["n", "extra"], **STRONG)))
    await step("query with limit", lambda: _rows_of(c.query(
        NAME, filter='color in ["green", "blue"] and n >= 990', output_fields=["color"], limit=30, **STRONG)))
    await step("delete 10 ids", lambda: _then(c.delete(NAME, ids=list(range(10))), _count(c)))
    await step("delete by filter", lambda: _then(c.delete(NAME, filter="n >= 1190"), _count(c)))
    await step("get deleted ids", lambda: _rows_of(c.get(NAME, ids=[0, 5, 1195], **STRONG)))
    upserted = [{**r, "n": r["n"] + 10_000} for r in _rows(range(10, 15), 3)]
    await step("upsert 5 rows", lambda: _then(c.upsert(NAME, upserted), _rows_of(c.query(
        NAME, filter="id in [10, 11, 12, 13, 14]", output_fields=["n"], **STRONG))))
    await step("count after upsert", lambda: _count(c))
    await step("query_iterator (batch 300, filter)", lambda: _query_iteration(c))
    await step("search_iterator (batch 50, limit 200)", lambda: _search_iteration(c, q[0]))
    await step("query_iterator over text keys", lambda: _text_key_iteration(c))
    await step("create_alias, count through it", lambda: _then(c.create_alias(NAME, ALIAS), _count(c, name=ALIAS)))
    await step("describe_alias", lambda: _pick(c.describe_alias(ALIAS), "alias", "collection_name"))
    await step("list_aliases", lambda: _pick(c.list_aliases(NAME), "aliases"))
    await step("drop_alias", lambda: _then(c.drop_alias(ALIAS), _pick(c.list_aliases(NAME), "aliases")))
    await step("release, load state", lambda: _then(c.release_collection(NAME), _state(c)))
    await step("drop_partition p1", lambda: _then(c.drop_partition(NAME, "p1"), c.list_partitions(NAME)))
    await step("drop_collection, has_collection", lambda: _then(c.drop_collection(NAME), c.has_collection(NAME)))
    return steps


async def _then(first: Awaitable[Any], second: Awaitable[Any]) -> Any:
    await first
    return await second


async def _count_of(call: Awaitable[Any], key: str) -> int:
    return int((await call)[key])


async def _count(c: heron.AsyncClient, name: str = NAME, **kwargs: Any) -> int:
    rows = await c.query(name, filter="", output_fields=["count(*)"], **kwargs, **STRONG)
    return int(rows[0]["count(*)"])


async def _state(c: heron.AsyncClient) -> str:
    return (await c.get_load_state(NAME))["state"].name


async def _rows_of(call: Awaitable[Any]) -> list[dict[str, Any]]:
    return _plain(list(await call))


async def _hits_of(call: Awaitable[Any]) -> Any:
    return _hits(await call)


async def _pick(call: Awaitable[Any], *keys: str) -> dict[str, Any]:
    d = await call
    return {k: sorted(d[k]) if isinstance(d[k], list) else d[k] for k in keys}


async def _query_iteration(c: heron.AsyncClient) -> dict[str, Any]:
    it = c.query_iterator(NAME, batch_size=300, filter="n >= 100", output_fields=["n"], **STRONG)
    sizes, keys = [], []
    while batch := await it.next():
        sizes.append(len(batch))
        keys.extend(r["id"] for r in batch)
        if len(sizes) > 50:
            break  # a server that ignores the cursor would answer the first page for ever
    return {"batches": sizes, "rows": len(keys), "distinct": len(set(keys)), "in key order": keys == sorted(keys)}


async def _text_key_iteration(c: heron.AsyncClient) -> dict[str, Any]:
    """Text primary keys, some with quotes and backslashes, paged through by the key cursor."""
    name = f"{NAME}_text"
    await c.drop_collection(name)
    s = c.create_schema()
    s.add_field("key", DataType.VARCHAR, is_primary=True, max_length=32)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    index = c.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="L2", params=_HNSW)
    await c.create_collection(name, schema=s, index_params=index, consistency_level="Strong")
    keys = [f'k"{i}' if i % 7 == 0 else (f"k\\{i}" if i % 7 == 1 else f"k{i:03d}") for i in range(150)]
    vecs = _vectors(len(keys), 5)
    await c.insert(name, [{"key": k, "vector": vecs[i].tolist()} for i, k in enumerate(keys)])
    it = c.query_iterator(name, batch_size=40, output_fields=["key"], **STRONG)
    got: list[str] = []
    while batch := await it.next():
        got.extend(r["key"] for r in batch)
        if len(got) > 1000:
            break
    await c.drop_collection(name)
    return {"rows": len(got), "all keys once": sorted(got) == sorted(keys), "in key order": got == sorted(got)}


async def _search_iteration(c: heron.AsyncClient, q: np.ndarray) -> dict[str, Any]:
    it = c.search_iterator(NAME, [q.tolist()], batch_size=50, limit=200,
                           search_params={"metric_type": "L2", "params": {"ef": 512}}, **STRONG)
    ids: list[int] = []
    last = -1.0
    ordered = True
    while batch := await it.next():
        for h in batch:
            ordered &= float(h["distance"]) >= last - 1e-6
            last = float(h["distance"])
            ids.append(int(h["id"]))
        if len(ids) > 1000:
            break
    return {"hits": len(ids), "distinct": len(set(ids)), "best first": ordered, "first 10": ids[:10]}


# -- features a server may lack ------------------------------------------------------------------


def _feature_schemas(c: heron.AsyncClient) -> dict[str, tuple[Any, Any, list[dict[str, Any]]]]:
    """Feature name -> (schema, index params, rows), each a small collection that needs the feature."""
    out: dict[str, tuple[Any, Any, list[dict[str, Any]]]] = {}
    vecs = _vectors(20, 4)

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    ip = c.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    out["sparse vectors"] = (s, ip, [{"id": i, "sparse": {i: 1.0, 100 + i: 0.5}} for i in range(20)])

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("maybe", DataType.INT64, nullable=True)
    ip = c.prepare_index_params()
    ip.add_index("vector", index_type="HNSW", metric_type="L2", params=_HNSW)
    out["nullable fields"] = (s, ip, [{"id": i, "vector": vecs[i].tolist(), "maybe": None if i % 2 else i}
                                      for i in range(20)])

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(heron.Function(name="bm25", function_type=heron.FunctionType.BM25,
                                  input_field_names=["text"], output_field_names=["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    out["BM25 full text search"] = (s, ip, [{"id": i, "text": f"document {i} about color {COLORS[i % 3]}"}
                                            for i in range(20)])

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("b", DataType.FLOAT_VECTOR, dim=DIM)
    ip = c.prepare_index_params()
    ip.add_index("a", index_type="HNSW", metric_type="L2", params=_HNSW)
    ip.add_index("b", index_type="HNSW", metric_type="L2", params=_HNSW)
    out["several vector fields"] = (s, ip, [{"id": i, "a": vecs[i].tolist(), "b": vecs[19 - i].tolist()}
                                            for i in range(20)])
    return out


async def run_features(c: heron.AsyncClient) -> list[Step]:
    """Per feature: ``ok`` when a collection that needs it can be created, filled, loaded and counted,
    else ``unsupported: <the server's answer>``."""
    steps: list[Step] = []
    for i, (feature, (schema, index, rows)) in enumerate(_feature_schemas(c).items()):
        name = f"portability_feature_{i}"
        try:
            await c.drop_collection(name)
            await c.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
            await c.insert(name, rows)
            await c.load_collection(name)
            value: Any = "ok" if await _count(c, name) == len(rows) else "wrong count"
        except Exception as exc:  # the refusal is the answer
            value = f"unsupported: {type(exc).__name__}: {str(exc)[:90]}"
        finally:
            try:
                await c.drop_collection(name)
            except Exception:  # a server that could not create it may not drop it either
                pass
        steps.append((f"feature: {feature}", value))
    return steps
