"""Collections, indexes, partitions, aliases, databases and dynamic fields: their lifecycles and shapes.

Each case makes its own collections (``ctx.name(tag)``), so the order cases
run in does not matter; what a case made is dropped after it.
"""

from __future__ import annotations

from typing import Any

from tests.compat._harness import Ctx, case, hits, normalise, rows

DIM = 4


def vec(i: int) -> list[float]:
    return [float(i % 7), float(i % 3), 1.0, float(i) / 10]


async def plain(ctx: Ctx, tag: str = "", rows_: int = 20, index: bool = True, **schema_kw: Any) -> str:
    """A collection ``id INT64, v FLOAT_VECTOR(4), s VARCHAR, n INT64``, with a FLAT/L2 index, filled with ``rows_`` rows."""
    name = ctx.name(tag)
    s = ctx.c.create_schema(auto_id=schema_kw.pop("auto_id", False), **schema_kw)
    s.add_field("id", ctx.api.DataType.INT64, is_primary=True)
    s.add_field("v", ctx.api.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("s", ctx.api.DataType.VARCHAR, max_length=32)
    s.add_field("n", ctx.api.DataType.INT64)
    idx = None
    if index:
        idx = ctx.c.prepare_index_params()
        idx.add_index("v", index_type="FLAT", metric_type="L2")
    await ctx.admin.create_collection(name, schema=s, index_params=idx)
    if rows_:
        await ctx.c.insert(name, [{"id": i, "v": vec(i), "s": f"s{i}", "n": i % 4} for i in range(rows_)])
    return name


def program(name: str, sync_only: bool = False) -> Any:
    """Register the decorated ``async def (ctx)`` as case ``name``."""

    def register(fn: Any) -> Any:
        case(name, fn, sync_only=sync_only)
        return fn

    return register


# -- collections ----------------------------------------------------------------------------------------


@program("collection.quick_setup_describe")
async def _quick(ctx: Ctx) -> Any:
    name = ctx.name()
    await ctx.c.create_collection(name, dimension=DIM)
    d = await ctx.c.describe_collection(name)
    return {
        k: d.get(k)
        for k in ("collection_name", "auto_id", "fields", "enable_dynamic_field", "num_partitions")
    }


@program("collection.quick_setup_options", sync_only=True)
async def _quick_opts(ctx: Ctx) -> Any:
    name = ctx.name()
    await ctx.c.create_collection(
        name,
        dimension=DIM,
        primary_field_name="pk",
        id_type="string",
        vector_field_name="emb",
        metric_type="L2",
        max_length=64,
    )
    d = await ctx.c.describe_collection(name)
    return {"fields": d["fields"], "index": await ctx.c.describe_index(name, "emb")}


@program("collection.describe_schema")
async def _describe(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0, description="about")
    d = await ctx.c.describe_collection(name)
    return {
        k: d.get(k)
        for k in (
            "collection_name",
            "description",
            "auto_id",
            "fields",
            "enable_dynamic_field",
            "consistency_level",
        )
    }


@program("collection.has_list_drop")
async def _has_list_drop(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    before = (await ctx.c.has_collection(name), name in await ctx.c.list_collections())
    await ctx.c.drop_collection(name)
    after = (await ctx.c.has_collection(name), name in await ctx.c.list_collections())
    return {"before": before, "after": after}


@program("collection.drop_missing", sync_only=True)
async def _drop_missing(ctx: Ctx) -> Any:
    return await ctx.c.drop_collection(ctx.name())


@program("collection.create_twice_same", sync_only=True)
async def _twice_same(ctx: Ctx) -> Any:
    name = ctx.name()
    await ctx.c.create_collection(name, dimension=DIM)
    return await ctx.c.create_collection(name, dimension=DIM)


@program("collection.create_twice_different")
async def _twice_diff(ctx: Ctx) -> Any:
    name = ctx.name()
    await ctx.c.create_collection(name, dimension=DIM)
    return await ctx.c.create_collection(name, dimension=DIM + 4)


@program("collection.rename")
async def _rename(ctx: Ctx) -> Any:
    name = await plain(ctx, "a", rows_=5)
    new = ctx.name("b")
    await ctx.c.rename_collection(name, new)
    return {
        "old": await ctx.c.has_collection(name),
        "new": await ctx.c.has_collection(new),
        "rows": await ctx.c.query(new, filter="", output_fields=["count(*)"]),
    }


@program("collection.stats")
async def _stats(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=13)
    return await ctx.c.get_collection_stats(name)


@program("collection.stats_after_delete", sync_only=True)
async def _stats_delete(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=13)
    await ctx.c.delete(name, ids=[1, 2])
    return {"count": await ctx.c.query(name, filter="", output_fields=["count(*)"])}


@program("collection.load_state")
async def _load_state(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=5)
    loaded = await ctx.c.get_load_state(name)
    await ctx.c.release_collection(name)
    released = await ctx.c.get_load_state(name)
    await ctx.c.load_collection(name)
    return [loaded, released, await ctx.c.get_load_state(name)]


@program("collection.query_released", sync_only=True)
async def _query_released(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=5)
    await ctx.c.release_collection(name)
    return rows(await ctx.c.query(name, filter="id < 3"))


@program("collection.search_released", sync_only=True)
async def _search_released(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=5)
    await ctx.c.release_collection(name)
    return hits(await ctx.c.search(name, [vec(1)], limit=2, output_fields=["n"]))


@program("collection.no_index_insert_query", sync_only=True)
async def _no_index(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=5, index=False)
    return rows(await ctx.c.query(name, filter="id < 3", output_fields=["n"]))


@program("collection.no_index_load_state", sync_only=True)
async def _no_index_state(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0, index=False)
    return await ctx.c.get_load_state(name)


@program("collection.create_index_then_load")
async def _index_then_load(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=6, index=False)
    idx = ctx.c.prepare_index_params()
    idx.add_index("v", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 32})
    await ctx.c.create_index(name, idx)
    await ctx.c.load_collection(name)
    res = await ctx.c.search(name, [vec(3)], limit=3, output_fields=["n"])
    return {"indexes": await ctx.c.list_indexes(name), "hits": hits(res)}


@program("collection.drop_index")
async def _drop_index(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=3)
    await ctx.c.release_collection(name)
    await ctx.c.drop_index(name, "v")
    return {"indexes": await ctx.c.list_indexes(name), "state": await ctx.c.get_load_state(name)}


@program("collection.drop_index_loaded", sync_only=True)
async def _drop_index_loaded(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=3)
    return await ctx.c.drop_index(name, "v")


@program("collection.scalar_index", sync_only=True)
async def _scalar_index(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=10)
    idx = ctx.c.prepare_index_params()
    idx.add_index("n", index_type="INVERTED", index_name="n_idx")
    await ctx.c.create_index(name, idx)
    return {
        "indexes": sorted(await ctx.c.list_indexes(name)),
        "rows": rows(await ctx.c.query(name, filter="n == 2", output_fields=["n"])),
    }


@program("collection.auto_id")
async def _auto_id(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0, auto_id=True)
    res = await ctx.c.insert(name, [{"v": vec(i), "s": f"s{i}", "n": i} for i in range(4)])
    got = await ctx.c.query(name, filter="n >= 0", output_fields=["n"])
    return {"count": res["insert_count"], "ids": len(set(res["ids"])), "ns": sorted(r["n"] for r in got)}


@program("collection.varchar_pk")
async def _varchar_pk(ctx: Ctx) -> Any:
    name = ctx.name()
    s = ctx.c.create_schema()
    s.add_field("pk", ctx.api.DataType.VARCHAR, is_primary=True, max_length=16)
    s.add_field("v", ctx.api.DataType.FLOAT_VECTOR, dim=DIM)
    idx = ctx.c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="COSINE")
    await ctx.c.create_collection(name, schema=s, index_params=idx)
    await ctx.c.insert(name, [{"pk": f"k{i}", "v": vec(i)} for i in range(8)])
    await ctx.c.delete(name, ids=["k1", "k2"])
    return {
        "get": rows(await ctx.c.get(name, ids=["k0", "k1", "k7"]), "pk"),
        "query": rows(await ctx.c.query(name, filter='pk in ["k3", "k4"]'), "pk"),
        "search": hits(await ctx.c.search(name, [vec(5)], limit=2, output_fields=["pk"]), "pk"),
    }


@program("collection.upsert_counts")
async def _upsert(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=5)
    res = await ctx.c.upsert(name, [{"id": i, "v": vec(i), "s": f"u{i}", "n": 9} for i in range(3, 8)])
    got = await ctx.c.query(name, filter="id >= 0", output_fields=["s", "n"])
    return {"upsert": res["upsert_count"], "rows": rows(got)}


@program("collection.delete_by_ids", sync_only=True)
async def _delete_ids(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=10)
    await ctx.c.delete(name, ids=[1, 3, 100])
    return sorted(r["id"] for r in await ctx.c.query(name, filter="id >= 0"))


@program("delete.result_shape", sync_only=True)
async def _delete_shape(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=10)
    return {
        "ids": await ctx.c.delete(name, ids=[1, 3, 100]),
        "filter": await ctx.c.delete(name, filter="n == 2"),
    }


@program("collection.insert_result_shape", sync_only=True)
async def _insert_shape(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    res = await ctx.c.insert(name, {"id": 1, "v": vec(1), "s": "a", "n": 1})
    return {k: res[k] for k in ("insert_count", "ids")}


@program("collection.flush_compact", sync_only=True)
async def _flush(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=5)
    await ctx.c.flush(name)
    return await ctx.c.query(name, filter="", output_fields=["count(*)"])


@program("collection.properties", sync_only=True)
async def _properties(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.alter_collection_properties(name, {"collection.ttl.seconds": 3600})
    d = await ctx.c.describe_collection(name)
    return d.get("properties")


# -- partitions -----------------------------------------------------------------------------------------


@program("partition.lifecycle")
async def _partitions(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.create_partition(name, "p1")
    await ctx.c.create_partition(name, "p2")
    listed = sorted(await ctx.c.list_partitions(name))
    has = [await ctx.c.has_partition(name, p) for p in ("p1", "nope")]
    await ctx.c.release_partitions(name, ["p2"])
    await ctx.c.drop_partition(name, "p2")
    return {"listed": listed, "has": has, "after": sorted(await ctx.c.list_partitions(name))}


@program("partition.insert_query_search")
async def _partition_rw(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.create_partition(name, "p1")
    await ctx.c.insert(
        name, [{"id": i, "v": vec(i), "s": "a", "n": i} for i in range(5)], partition_name="p1"
    )
    await ctx.c.insert(name, [{"id": i, "v": vec(i), "s": "b", "n": i} for i in range(5, 10)])
    await ctx.c.load_partitions(name, ["p1"])
    return {
        "p1": sorted(r["id"] for r in await ctx.c.query(name, filter="id >= 0", partition_names=["p1"])),
        "default": sorted(
            r["id"] for r in await ctx.c.query(name, filter="id >= 0", partition_names=["_default"])
        ),
        "search": hits(
            await ctx.c.search(name, [vec(2)], limit=3, partition_names=["p1"], output_fields=["s"])
        ),
        "stats": await ctx.c.get_partition_stats(name, "p1"),
    }


@program("partition.upsert_delete", sync_only=True)
async def _partition_ud(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.create_partition(name, "p1")
    await ctx.c.insert(
        name, [{"id": i, "v": vec(i), "s": "a", "n": i} for i in range(6)], partition_name="p1"
    )
    await ctx.c.upsert(name, [{"id": 1, "v": vec(1), "s": "z", "n": 1}], partition_name="p1")
    await ctx.c.delete(name, ids=[2], partition_name="p1")
    return rows(await ctx.c.query(name, filter="id >= 0", output_fields=["s"], partition_names=["p1"]))


@program("partition.drop_loaded", sync_only=True)
async def _drop_loaded(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.create_partition(name, "p1")
    return await ctx.c.drop_partition(name, "p1")


@program("partition.create_twice", sync_only=True)
async def _partition_twice(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.create_partition(name, "p1")
    return await ctx.c.create_partition(name, "p1")


@program("partition.missing", sync_only=True)
async def _partition_missing(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=3)
    return await ctx.c.query(name, filter="id >= 0", partition_names=["nope"])


@program("partition.drop_default", sync_only=True)
async def _drop_default(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    return await ctx.c.drop_partition(name, "_default")


@program("partition.load_state")
async def _partition_state(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0)
    await ctx.c.create_partition(name, "p1")
    await ctx.c.release_collection(name)
    await ctx.c.load_partitions(name, ["p1"])
    return {
        "p1": await ctx.c.get_load_state(name, partition_name="p1"),
        "default": await ctx.c.get_load_state(name, partition_name="_default"),
    }


def aliases(listed: Any) -> Any:
    """The alias names of a list_aliases answer: MilvusClient gives a dict, AsyncMilvusClient the bare list."""
    return listed.get("aliases") if isinstance(listed, dict) else normalise(listed)


# -- aliases --------------------------------------------------------------------------------------------


@program("alias.lifecycle")
async def _aliases(ctx: Ctx) -> Any:
    a = await plain(ctx, "a", rows_=3)
    b = await plain(ctx, "b", rows_=5)
    alias = f"{a}_alias"
    await ctx.c.create_alias(a, alias)
    described = await ctx.c.describe_alias(alias)
    listed = await ctx.c.list_aliases(a)
    via = await ctx.c.query(alias, filter="", output_fields=["count(*)"])
    await ctx.c.alter_alias(b, alias)
    via_b = await ctx.c.query(alias, filter="", output_fields=["count(*)"])
    await ctx.c.drop_alias(alias)
    return {
        "described": {k: described.get(k) for k in ("alias", "collection_name")},
        "listed": aliases(listed),
        "via": via,
        "via_b": via_b,
        "after": aliases(await ctx.c.list_aliases(a)),
    }


@program("alias.missing_collection", sync_only=True)
async def _alias_missing(ctx: Ctx) -> Any:
    return await ctx.c.create_alias(ctx.name(), "al_missing_target")


@program("alias.drop_missing", sync_only=True)
async def _alias_drop_missing(ctx: Ctx) -> Any:
    return await ctx.c.drop_alias("al_never_made")


@program("alias.describe_missing", sync_only=True)
async def _alias_describe_missing(ctx: Ctx) -> Any:
    return await ctx.c.describe_alias("al_never_made")


@program("alias.duplicate", sync_only=True)
async def _alias_dup(ctx: Ctx) -> Any:
    a = await plain(ctx, "a", rows_=0)
    b = await plain(ctx, "b", rows_=0)
    await ctx.c.create_alias(a, f"{a}_x")
    return await ctx.c.create_alias(b, f"{a}_x")


@program("alias.drop_collection_with_alias", sync_only=True)
async def _alias_drop_coll(ctx: Ctx) -> Any:
    a = await plain(ctx, "a", rows_=0)
    await ctx.c.create_alias(a, f"{a}_y")
    try:
        return await ctx.c.drop_collection(a)
    finally:
        try:
            await ctx.c.drop_alias(f"{a}_y")
        except Exception:  # the drop went through with the alias
            pass


# -- databases ------------------------------------------------------------------------------------------


async def _in_db(ctx: Ctx, body: Any) -> Any:
    db = ctx.name("db")[-60:].strip("_")
    await ctx.c.create_database(db)
    try:
        return await body(db)
    finally:
        await ctx.c.use_database("default")


@program("database.lifecycle", sync_only=True)
async def _db(ctx: Ctx) -> Any:
    async def body(db: str) -> Any:
        listed = db in await ctx.c.list_databases()
        await ctx.c.use_database(db)
        name = await plain(ctx, "in_db", rows_=4)
        inside = await ctx.c.list_collections()
        count = await ctx.c.query(name, filter="", output_fields=["count(*)"])
        await ctx.c.drop_collection(name)
        await ctx.c.use_database("default")
        await ctx.c.drop_database(db)
        return {
            "listed": listed,
            "inside": inside == [name],
            "count": count,
            "gone": db in await ctx.c.list_databases(),
        }

    return await _in_db(ctx, body)


@program("database.describe", sync_only=True)
async def _db_describe(ctx: Ctx) -> Any:
    async def body(db: str) -> Any:
        d = await ctx.c.describe_database(db)
        await ctx.c.drop_database(db)
        return {"name": d.get("name") == db}

    return await _in_db(ctx, body)


@program("database.drop_non_empty", sync_only=True)
async def _db_non_empty(ctx: Ctx) -> Any:
    async def body(db: str) -> Any:
        await ctx.c.use_database(db)
        name = await plain(ctx, "x", rows_=0)
        await ctx.c.use_database("default")
        try:
            return await ctx.c.drop_database(db)
        finally:
            await ctx.c.use_database(db)
            await ctx.c.drop_collection(name)
            await ctx.c.use_database("default")
            await ctx.c.drop_database(db)

    return await _in_db(ctx, body)


@program("database.use_missing", sync_only=True)
async def _db_missing(ctx: Ctx) -> Any:
    try:
        return await ctx.c.use_database("db_never_made")
    finally:
        await ctx.c.use_database("default")


@program("database.create_twice", sync_only=True)
async def _db_twice(ctx: Ctx) -> Any:
    async def body(db: str) -> Any:
        try:
            return await ctx.c.create_database(db)
        finally:
            await ctx.c.drop_database(db)

    return await _in_db(ctx, body)


@program("database.drop_default", sync_only=True)
async def _db_drop_default(ctx: Ctx) -> Any:
    return await ctx.c.drop_database("default")
