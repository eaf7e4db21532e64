"""The rest of MilvusClient's surface: maintenance calls, properties, users and roles, and writes
whose reads have gone wrong before (iterators after upserts, partial updates, repeated keys)."""

from __future__ import annotations

from typing import Any

from tests.compat._cases_catalog import plain, program, vec
from tests.compat._harness import Ctx, rows


@program("method.truncate_collection", sync_only=True)
async def _truncate(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=6)
    await ctx.c.truncate_collection(name)
    return await ctx.c.query(name, filter="", output_fields=["count(*)"])


@program("method.compact", sync_only=True)
async def _compact(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=6)
    await ctx.c.delete(name, ids=[1, 2])
    job = await ctx.c.compact(name)
    return {
        "job_is_int": isinstance(job, int),
        "count": await ctx.c.query(name, filter="", output_fields=["count(*)"]),
    }


@program("method.refresh_load", sync_only=True)
async def _refresh(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=3)
    await ctx.c.refresh_load(name, timeout=5)
    return await ctx.c.get_load_state(name)


@program("method.drop_collection_properties", sync_only=True)
async def _drop_props(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.alter_collection_properties(name, {"collection.ttl.seconds": 60})
    await ctx.c.drop_collection_properties(name, ["collection.ttl.seconds"])
    return (await ctx.c.describe_collection(name)).get("properties")


@program("method.alter_index_properties", sync_only=True)
async def _index_props(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.release_collection(name)
    await ctx.c.alter_index_properties(name, "v", {"mmap.enabled": True})
    return await ctx.c.describe_index(name, "v")


@program("method.list_users", sync_only=True)
async def _users(ctx: Ctx) -> Any:
    return "root" in await ctx.c.list_users()


@program("method.list_roles", sync_only=True)
async def _roles(ctx: Ctx) -> Any:
    return sorted(r for r in await ctx.c.list_roles() if r in ("admin", "public"))


@program("method.describe_replica", sync_only=True)
async def _replica(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=1)
    return len(await ctx.c.describe_replica(name))


@program("method.list_collections_in_order", sync_only=True)
async def _list_order(ctx: Ctx) -> Any:
    names = [await plain(ctx, tag, rows_=0) for tag in ("b", "a", "c")]
    listed = await ctx.c.list_collections()
    return [n for n in listed if n in names] == sorted(names) or [n for n in listed if n in names]


# -- reads after writes ----------------------------------------------------------------------------------


@program("iterator.query_after_upserts", sync_only=True)
async def _iter_upserts(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=60)
    for round_ in range(2):
        await ctx.c.upsert(
            name, [{"id": i, "v": vec(i), "s": f"u{round_}", "n": i % 4} for i in range(0, 60, 7)]
        )
    it = await ctx.c.query_iterator(name, batch_size=7, filter="id >= 0", output_fields=["s"])
    got: list[Any] = []
    while batch := it.next():
        got.extend(batch)
    it.close()
    ids = [r["id"] for r in got]
    return {"rows": len(ids), "distinct": len(set(ids)), "sorted": ids == sorted(ids), "s": rows(got)[:9]}


@program("upsert.partial_update", sync_only=True)
async def _partial(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=4)
    res = await ctx.c.upsert(name, [{"id": 1, "n": 42}, {"id": 2, "n": 43}], partial_update=True)
    return {
        "upsert": res["upsert_count"],
        "rows": rows(await ctx.c.query(name, filter="id >= 0", output_fields=["s", "n"])),
    }


@program("insert.existing_key_again")
async def _insert_again(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=4)
    await ctx.c.insert(name, [{"id": 1, "v": vec(9), "s": "again", "n": 3}])
    return {
        "get": rows(await ctx.c.get(name, ids=[1], output_fields=["s"])),
        "count": await ctx.c.query(name, filter="", output_fields=["count(*)"]),
    }


@program("upsert.nullable_bool_omitted", sync_only=True)
async def _nullable_bool(ctx: Ctx) -> Any:
    name = ctx.name()
    s = ctx.c.create_schema()
    s.add_field("id", ctx.api.DataType.INT64, is_primary=True)
    s.add_field("v", ctx.api.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("active", ctx.api.DataType.BOOL, nullable=True)
    idx = ctx.c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    await ctx.admin.create_collection(name, schema=s, index_params=idx)
    await ctx.c.upsert(name, [{"id": 1, "v": vec(1)}, {"id": 2, "v": vec(2), "active": True}])
    return rows(await ctx.c.query(name, filter="id >= 0", output_fields=["active"]))
