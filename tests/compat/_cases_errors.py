"""Refusals (a missing collection for every call, bad rows, bad index parameters) and dynamic fields."""

from __future__ import annotations

from typing import Any

from tests.compat._cases_catalog import DIM, plain, program, vec
from tests.compat._harness import Ctx, case, error_outcome, hits, rows

# -- every call on a collection that does not exist ------------------------------------------------------

MISSING_CALLS: dict[str, Any] = {
    "describe_collection": lambda c, n: c.describe_collection(n),
    "insert": lambda c, n: c.insert(n, [{"id": 1, "v": vec(1)}]),
    "upsert": lambda c, n: c.upsert(n, [{"id": 1, "v": vec(1)}]),
    "delete": lambda c, n: c.delete(n, ids=[1]),
    "query": lambda c, n: c.query(n, filter="id > 0"),
    "get": lambda c, n: c.get(n, ids=[1]),
    "search": lambda c, n: c.search(n, [vec(1)], limit=3),
    "load_collection": lambda c, n: c.load_collection(n),
    "release_collection": lambda c, n: c.release_collection(n),
    "get_load_state": lambda c, n: c.get_load_state(n),
    "get_collection_stats": lambda c, n: c.get_collection_stats(n),
    "describe_index": lambda c, n: c.describe_index(n, "v"),
    "list_indexes": lambda c, n: c.list_indexes(n),
    "create_partition": lambda c, n: c.create_partition(n, "p"),
    "list_partitions": lambda c, n: c.list_partitions(n),
    "has_partition": lambda c, n: c.has_partition(n, "p"),
    "rename_collection": lambda c, n: c.rename_collection(n, n + "_x"),
    "has_collection": lambda c, n: c.has_collection(n),
}


def _missing(call: str) -> None:
    async def run(ctx: Ctx) -> Any:
        return await MISSING_CALLS[call](ctx.c, ctx.name())

    case(
        f"missing_collection.{call}",
        run,
        sync_only=call not in ("query", "search", "insert", "describe_collection"),
    )


for _call in MISSING_CALLS:
    _missing(_call)


# -- bad rows: each batch must fail whole, writing nothing ---------------------------------------------

BAD_ROWS: dict[str, list[dict[str, Any]]] = {
    "wrong_dim": [{"id": 1, "v": [1.0] * (DIM + 1), "s": "a", "n": 1}],
    "missing_vector": [{"id": 1, "s": "a", "n": 1}],
    "missing_scalar": [{"id": 1, "v": vec(1), "s": "a"}],
    "missing_pk": [{"v": vec(1), "s": "a", "n": 1}],
    "wrong_type_int": [{"id": 1, "v": vec(1), "s": "a", "n": "x"}],
    "wrong_type_str": [{"id": 1, "v": vec(1), "s": 5, "n": 1}],
    "too_long": [{"id": 1, "v": vec(1), "s": "x" * 40, "n": 1}],
    "unknown_field": [{"id": 1, "v": vec(1), "s": "a", "n": 1, "extra": 2}],
    "second_row_bad": [{"id": 1, "v": vec(1), "s": "a", "n": 1}, {"id": 2, "v": vec(2), "s": "a", "n": "x"}],
    "null_not_nullable": [{"id": 1, "v": vec(1), "s": None, "n": 1}],
    "repeated_pk": [{"id": 1, "v": vec(1), "s": "a", "n": 1}, {"id": 1, "v": vec(2), "s": "b", "n": 2}],
    "empty": [],
}


def _bad(kind: str, op: str) -> None:
    async def run(ctx: Ctx) -> Any:
        name = await plain(ctx, rows_=0)
        try:
            res: Any = await getattr(ctx.c, op)(name, BAD_ROWS[kind])
            res = {"count": res.get(f"{op}_count")}
        except Exception as exc:  # the refusal is the outcome; what follows shows nothing was written
            res = error_outcome(exc)
        return {
            "result": res,
            "stored": rows(await ctx.c.query(name, filter="id >= 0", output_fields=["s", "n"])),
        }

    case(f"bad_rows.{op}.{kind}", run, sync_only=op == "upsert" or kind not in ("wrong_dim", "too_long"))


for _kind in BAD_ROWS:
    for _op in ("insert", "upsert"):
        _bad(_kind, _op)


# -- bad index parameters ------------------------------------------------------------------------------

BAD_INDEXES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "unknown_type": ("v", "NOPE", {}),
    "unknown_metric": ("v", "FLAT", {"metric_type": "NOPE"}),
    "hnsw_bad_m": ("v", "HNSW", {"metric_type": "L2", "params": {"M": 0, "efConstruction": 8}}),
    "ivf_bad_nlist": ("v", "IVF_FLAT", {"metric_type": "L2", "params": {"nlist": 0}}),
    "unknown_field": ("nope", "FLAT", {"metric_type": "L2"}),
    "binary_metric_on_float": ("v", "FLAT", {"metric_type": "HAMMING"}),
    "vector_index_on_scalar": ("n", "HNSW", {"metric_type": "L2"}),
}


def _bad_index(kind: str) -> None:
    async def run(ctx: Ctx) -> Any:
        name = await plain(ctx, rows_=0, index=False)
        field, index_type, kw = BAD_INDEXES[kind]
        idx = ctx.c.prepare_index_params()
        idx.add_index(field, index_type=index_type, **kw)
        await ctx.c.create_index(name, idx)
        return await ctx.c.list_indexes(name)

    case(f"bad_index.{kind}", run, sync_only=True)


for _kind in BAD_INDEXES:
    _bad_index(_kind)


@program("bad_index.load_without_index", sync_only=True)
async def _load_no_index(ctx: Ctx) -> Any:
    name = await plain(ctx, rows_=0, index=False)
    return await ctx.c.load_collection(name)


@program("bad_schema.no_vector", sync_only=True)
async def _no_vector(ctx: Ctx) -> Any:
    s = ctx.c.create_schema()
    s.add_field("id", ctx.api.DataType.INT64, is_primary=True)
    return await ctx.c.create_collection(ctx.name(), schema=s)


@program("bad_schema.no_primary", sync_only=True)
async def _no_primary(ctx: Ctx) -> Any:
    s = ctx.c.create_schema()
    s.add_field("id", ctx.api.DataType.INT64)
    s.add_field("v", ctx.api.DataType.FLOAT_VECTOR, dim=DIM)
    return await ctx.c.create_collection(ctx.name(), schema=s)


@program("bad_schema.varchar_no_length", sync_only=True)
async def _no_length(ctx: Ctx) -> Any:
    s = ctx.c.create_schema()
    s.add_field("id", ctx.api.DataType.INT64, is_primary=True)
    s.add_field("v", ctx.api.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("s", ctx.api.DataType.VARCHAR)
    return await ctx.c.create_collection(ctx.name(), schema=s)


@program("bad_schema.bad_name", sync_only=True)
async def _bad_name(ctx: Ctx) -> Any:
    return await ctx.c.create_collection("1 bad name", dimension=DIM)


# -- dynamic fields -------------------------------------------------------------------------------------


async def dynamic(ctx: Ctx) -> str:
    name = await plain(ctx, rows_=0, enable_dynamic_field=True)
    await ctx.c.insert(
        name,
        [
            {
                "id": i,
                "v": vec(i),
                "s": f"s{i}",
                "n": i % 4,
                "color": ["red", "blue"][i % 2],
                "score": i * 1.5,
            }
            for i in range(10)
        ]
        + [{"id": 10, "v": vec(10), "s": "s10", "n": 0, "extra": {"deep": 1}}],
    )
    return name


def _dyn(name: str, body: Any, sync_only: bool = True) -> None:
    async def run(ctx: Ctx) -> Any:
        return await body(ctx, await dynamic(ctx))

    case(f"dynamic.{name}", run, sync_only=sync_only)


_dyn(
    "query_key",
    lambda ctx, n: _rows(ctx.c.query(n, filter='color == "red"', output_fields=["color", "score"])),
    False,
)
_dyn("query_star", lambda ctx, n: _rows(ctx.c.query(n, filter="id in [1, 10]", output_fields=["*"])))
_dyn("query_meta", lambda ctx, n: _rows(ctx.c.query(n, filter="id in [2, 10]", output_fields=["$meta"])))
_dyn("filter_range", lambda ctx, n: _rows(ctx.c.query(n, filter="score > 6", output_fields=["score"])), False)
_dyn("filter_missing_key", lambda ctx, n: _rows(ctx.c.query(n, filter="nokey == 1", output_fields=["id"])))
_dyn(
    "filter_nested",
    lambda ctx, n: _rows(ctx.c.query(n, filter='extra["deep"] == 1', output_fields=["extra"])),
)
_dyn(
    "filter_exists", lambda ctx, n: _rows(ctx.c.query(n, filter='exists extra["deep"]', output_fields=["id"]))
)
_dyn(
    "meta_path",
    lambda ctx, n: _rows(ctx.c.query(n, filter='$meta["color"] == "blue"', output_fields=["color"])),
)
_dyn(
    "search_output", lambda ctx, n: _hits(ctx.c.search(n, [vec(3)], limit=3, output_fields=["color"])), False
)
_dyn("get", lambda ctx, n: _rows(ctx.c.get(n, ids=[0, 10], output_fields=["color", "extra"])))
_dyn("upsert", lambda ctx, n: _upsert_dyn(ctx, n))
_dyn("describe", lambda ctx, n: _describe_dyn(ctx, n), False)
_dyn("count", lambda ctx, n: ctx.c.query(n, filter='color == "blue"', output_fields=["count(*)"]))


async def _rows(aw: Any) -> Any:
    return rows(await aw)


async def _hits(aw: Any) -> Any:
    return hits(await aw)


async def _upsert_dyn(ctx: Ctx, name: str) -> Any:
    await ctx.c.upsert(name, [{"id": 1, "v": vec(1), "s": "u", "n": 1, "color": "green", "new": True}])
    return rows(await ctx.c.query(name, filter="id == 1", output_fields=["*"]))


async def _describe_dyn(ctx: Ctx, name: str) -> Any:
    d = await ctx.c.describe_collection(name)
    return {"fields": [f["name"] for f in d["fields"]], "dynamic": d["enable_dynamic_field"]}


@program("dynamic.quick_setup_insert")
async def _quick_dyn(ctx: Ctx) -> Any:
    name = ctx.name()
    await ctx.c.create_collection(name, dimension=DIM)
    res = await ctx.c.insert(name, [{"id": i, "vector": vec(i), "tag": f"t{i % 2}"} for i in range(6)])
    got = await ctx.c.query(name, filter='tag == "t1"', output_fields=["tag"])
    return {"count": res["insert_count"], "rows": rows(got)}


@program("dynamic.quick_setup_search", sync_only=True)
async def _quick_dyn_search(ctx: Ctx) -> Any:
    name = ctx.name()
    await ctx.c.create_collection(name, dimension=DIM, metric_type="L2")
    await ctx.c.insert(name, [{"id": i, "vector": vec(i), "tag": i} for i in range(6)])
    return hits(await ctx.c.search(name, [vec(4)], limit=3, filter="tag > 1", output_fields=["tag"]))
