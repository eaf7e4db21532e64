"""Congruence: one scenario through embedded and remote transports, sync and async, gives equal results."""

from __future__ import annotations

import asyncio
import inspect
import math
from typing import Any

import numpy as np
import pytest

import heron
from heron import DataType

NAME = "congruence"


async def _call(client: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    out = getattr(client, method)(*args, **kwargs)
    return await out if inspect.isawaitable(out) else out


def _rows(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    rows = []
    for i in range(n):
        row = {
            "id": i,
            "title": f"doc {i}",
            "score": float(i) / 3,
            "flag": i % 2 == 0,
            "meta": {"k": i, "tags": ["a", "b"][: i % 3]},
            "nums": list(range(i % 4)),
            "maybe": None if i % 5 == 0 else i,
            "vec": rng.random(8).tolist(),
            "sparse": {int(j): float(rng.random()) for j in rng.choice(50, 3, replace=False)},
        }
        if i % 2:
            row["extra"] = f"x{i}"
        rows.append(row)
    return rows


async def scenario(client: Any) -> dict[str, Any]:
    """Every step's answer, keyed by step name."""
    out: dict[str, Any] = {}
    schema = client.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("score", DataType.DOUBLE)
    schema.add_field("flag", DataType.BOOL)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    schema.add_field("maybe", DataType.INT32, nullable=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=8)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    idx.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    if await _call(client, "has_collection", NAME):
        await _call(client, "drop_collection", NAME)
    await _call(client, "create_collection", NAME, schema=schema, index_params=idx)
    rows = _rows(120)
    out["insert"] = await _call(client, "insert", NAME, rows)
    desc = await _call(client, "describe_collection", NAME)
    out["describe"] = {
        k: desc[k] for k in ("collection_name", "auto_id", "enable_dynamic_field", "num_partitions")
    }
    out["describe_fields"] = [(f["name"], int(f["type"]), f.get("params")) for f in desc["fields"]]
    out["load_state"] = str((await _call(client, "get_load_state", NAME))["state"])
    out["indexes"] = sorted(await _call(client, "list_indexes", NAME))
    d = await _call(client, "describe_index", NAME, "vec")
    out["describe_index"] = {k: d[k] for k in ("index_type", "metric_type", "field_name", "index_name")}
    out["stats"] = await _call(client, "get_collection_stats", NAME)
    out["get"] = await _call(client, "get", NAME, ids=[3, 4, 5, 999], output_fields=["*"])
    out["query"] = await _call(
        client, "query", NAME, filter="id >= 100", output_fields=["title", "meta", "extra"]
    )
    out["count"] = await _call(client, "query", NAME, filter="id >= 0", output_fields=["count(*)"])
    q = np.random.default_rng(1).random((2, 8)).tolist()
    out["search"] = await _call(
        client,
        "search",
        NAME,
        data=q,
        anns_field="vec",
        limit=5,
        output_fields=["title", "maybe", "extra", "vec"],
    )
    out["search_sparse"] = await _call(
        client, "search", NAME, data=[{1: 0.5, 7: 0.2}], anns_field="sparse", limit=4
    )
    reqs = [
        heron.AnnSearchRequest(q, "vec", {"metric_type": "L2"}, 10),
        heron.AnnSearchRequest([{1: 0.5}, {2: 0.1}], "sparse", {"metric_type": "IP"}, 10),
    ]
    out["hybrid"] = await _call(
        client, "hybrid_search", NAME, reqs, heron.RRFRanker(), limit=5, output_fields=["title"]
    )
    out["delete"] = await _call(client, "delete", NAME, ids=[3, 4])
    out["upsert"] = await _call(client, "upsert", NAME, [dict(rows[5], title="changed")])
    out["after"] = await _call(client, "get", NAME, ids=[3, 5], output_fields=["title"])
    await _call(client, "create_partition", NAME, "p1")
    out["partitions"] = await _call(client, "list_partitions", NAME)
    await _call(client, "create_alias", NAME, "cong_alias")
    out["aliases"] = await _call(client, "list_aliases", NAME)
    await _call(client, "drop_alias", "cong_alias")
    await _call(client, "drop_collection", NAME)
    out["dropped"] = await _call(client, "has_collection", NAME)
    return out


def assert_same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, float) or isinstance(b, float):
        assert math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-5), f"{path}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _run(uri: str, mode: str) -> dict[str, Any]:
    if mode == "sync":
        client = heron.Client(uri)
        try:
            return asyncio.run(scenario(client))
        finally:
            client.close()

    async def go() -> dict[str, Any]:
        async with heron.AsyncClient(uri) as client:
            return await scenario(client)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> dict[str, Any]:
    return _run(str(tmp_path_factory.mktemp("emb") / "db"), "sync")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_remote_matches_embedded_field_by_field(server, embedded, mode):
    assert_same(embedded, _run(server.uri, mode))


def test_async_embedded_matches_sync_embedded(tmp_path, embedded):
    assert_same(embedded, _run(str(tmp_path / "db"), "async"))


def test_concurrent_remote_async_searches_are_batched_and_answered_as_alone(server):
    """Many coroutines searching at once through one remote AsyncClient: batched RPCs, same answers."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2000, 8)).astype(np.float32)
    qs = rng.standard_normal((48, 8)).astype(np.float32)
    with heron.Client(server.uri) as c:
        c.create_collection("batched", dimension=8, metric_type="L2")
        c.insert("batched", [{"id": i, "vector": x[i], "g": i % 4} for i in range(2000)])
        want = [c.search("batched", data=[q], limit=4, filter="g > 0", output_fields=["g"])[0] for q in qs]

    async def go():
        async with heron.AsyncClient(server.uri) as ac:
            return await asyncio.gather(
                *[ac.search("batched", data=[q], limit=4, filter="g > 0", output_fields=["g"]) for q in qs]
            )

    got = asyncio.run(go())
    for g, w in zip(got, want):
        assert [h["id"] for h in g[0]] == [h["id"] for h in w]
        assert [h["entity"]["g"] for h in g[0]] == [h["entity"]["g"] for h in w]
        assert np.allclose([h["distance"] for h in g[0]], [h["distance"] for h in w], rtol=1e-5, atol=1e-5)
