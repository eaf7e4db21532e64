"""Search: every vector type, index type and metric, the search parameters, hybrid search, iterators.

The data are tiny (100 rows) and fixed by seeds. Approximate indexes are
searched with parameters that make them exact on so few rows (``nprobe`` =
``nlist``, a wide ``ef``), so that ids and distances can be compared.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from tests.compat._harness import Ctx, case, hits, rows, setup

N = 100
DIM = 8
CATS = ("red", "green", "blue", "cyan", "gray")


def dense(i: int, dim: int = DIM, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed * 100_003 + i)
    return [round(float(x), 3) for x in rng.random(dim) * 2 - 1]


def queries(nq: int = 3, dim: int = DIM) -> list[list[float]]:
    return [dense(10_000 + q, dim) for q in range(nq)]


def binary(i: int, dim: int = 32) -> bytes:
    return np.random.default_rng(i).integers(0, 256, dim // 8, dtype=np.uint8).tobytes()


def sparse(i: int) -> dict[int, float]:
    rng = np.random.default_rng(i)
    keys = rng.choice(50, size=1 + i % 5, replace=False)
    return {int(k): round(float(rng.random()) + 0.1, 3) for k in keys}


def bf16(v: list[float]) -> bytes:
    return b"".join(struct.pack("<f", x)[2:] for x in v)


def meta(i: int) -> dict[str, Any]:
    return {"id": i, "cat": CATS[i % 5], "n": i, "tag": i % 3}


def _scalar_fields(s: Any, api: Any) -> None:
    s.add_field("id", api.DataType.INT64, is_primary=True)
    s.add_field("cat", api.DataType.VARCHAR, max_length=16)
    s.add_field("n", api.DataType.INT64)
    s.add_field("tag", api.DataType.INT64)


# kind -> (DataType, dim keyword, value of row i, query vector q)
VECTORS: dict[str, tuple[str, dict[str, Any], Any, Any]] = {
    "float": ("FLOAT_VECTOR", {"dim": DIM}, dense, lambda q: dense(10_000 + q)),
    "float16": (
        "FLOAT16_VECTOR",
        {"dim": DIM},
        lambda i: np.array(dense(i), dtype=np.float16),
        lambda q: np.array(dense(10_000 + q), dtype=np.float16),
    ),
    "bfloat16": (
        "BFLOAT16_VECTOR",
        {"dim": DIM},
        lambda i: bf16(dense(i)),
        lambda q: bf16(dense(10_000 + q)),
    ),
    "int8": (
        "INT8_VECTOR",
        {"dim": DIM},
        lambda i: np.array([int(x * 100) for x in dense(i)], dtype=np.int8),
        lambda q: np.array([int(x * 100) for x in dense(10_000 + q)], dtype=np.int8),
    ),
    "binary": ("BINARY_VECTOR", {"dim": 32}, binary, lambda q: binary(10_000 + q)),
    "sparse": ("SPARSE_FLOAT_VECTOR", {}, sparse, lambda q: sparse(10_000 + q)),
}

# (vector kind, index type, metric, index params, search params)
INDEXES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    *(
        ("float", index, metric, params, sp)
        for index, params, sp in (
            ("FLAT", {}, {}),
            ("IVF_FLAT", {"nlist": 4}, {"nprobe": 4}),
            ("HNSW", {"M": 8, "efConstruction": 64}, {"ef": 128}),
            ("AUTOINDEX", {}, {}),
        )
        for metric in ("L2", "IP", "COSINE")
    ),
    ("float16", "FLAT", "L2", {}, {}),
    ("float16", "HNSW", "COSINE", {"M": 8, "efConstruction": 64}, {"ef": 128}),
    ("bfloat16", "FLAT", "IP", {}, {}),
    ("int8", "HNSW", "L2", {"M": 8, "efConstruction": 64}, {"ef": 128}),
    ("binary", "BIN_FLAT", "HAMMING", {}, {}),
    ("binary", "BIN_FLAT", "JACCARD", {}, {}),
    ("binary", "BIN_IVF_FLAT", "HAMMING", {"nlist": 4}, {"nprobe": 4}),
    ("sparse", "SPARSE_INVERTED_INDEX", "IP", {}, {}),
]


def _index_setup(kind: str, index: str, metric: str, params: dict[str, Any]) -> str:
    key = f"vec_{kind}_{index}_{metric}"

    async def make(ctx: Ctx, name: str) -> None:
        dtype, dim, value, _ = VECTORS[kind]
        s = ctx.c.create_schema(auto_id=False, enable_dynamic_field=False)
        _scalar_fields(s, ctx.api)
        s.add_field("v", getattr(ctx.api.DataType, dtype), **dim)
        idx = ctx.c.prepare_index_params()
        idx.add_index("v", index_type=index, metric_type=metric, params=params)
        await ctx.c.create_collection(name, schema=s, index_params=idx)
        await ctx.c.insert(name, [{**meta(i), "v": value(i)} for i in range(N)])

    setup(key)(make)
    return key


for _kind, _index, _metric, _params, _sp in INDEXES:
    _key = _index_setup(_kind, _index, _metric, _params)
    _exact = _index in ("FLAT", "BIN_FLAT", "SPARSE_INVERTED_INDEX")

    async def _search(
        ctx: Ctx, key: str = _key, kind: str = _kind, sp: dict = _sp, metric: str = _metric
    ) -> Any:
        name = await ctx.shared(key)
        q = [VECTORS[kind][3](j) for j in range(2)]
        res = await ctx.c.search(
            name,
            q,
            limit=5,
            output_fields=["cat"],
            anns_field="v",
            search_params={"metric_type": metric, "params": sp},
        )
        return hits(res, ties=kind == "binary")  # Hamming distances are small integers: ties at the cut

    async def _filtered(ctx: Ctx, key: str = _key, kind: str = _kind, sp: dict = _sp) -> Any:
        name = await ctx.shared(key)
        res = await ctx.c.search(
            name,
            [VECTORS[kind][3](7)],
            limit=4,
            filter='cat in ["red", "blue"] and n > 20',
            output_fields=["n"],
            anns_field="v",
            search_params={"params": sp},
        )
        return hits(res, ties=kind == "binary")

    async def _describe(ctx: Ctx, key: str = _key) -> Any:
        name = await ctx.shared(key)
        return {"indexes": await ctx.c.list_indexes(name), "v": await ctx.c.describe_index(name, "v")}

    _tag = f"{_kind}.{_index}.{_metric}"
    case(f"index.{_tag}.search", _search, sync_only=not _exact)
    case(f"index.{_tag}.search_filter", _filtered, sync_only=True)
    case(f"index.{_tag}.describe_index", _describe, sync_only=True)


async def _sparse_no_anns(ctx: Ctx) -> Any:
    name = await ctx.shared("vec_sparse_SPARSE_INVERTED_INDEX_IP")
    return hits(await ctx.c.search(name, [sparse(10_001)], limit=3, output_fields=["n"]))


case("search.sparse_without_anns_field", _sparse_no_anns, sync_only=True)

MAIN = "vec_float_FLAT_L2"


def _main_case(name: str, sync_only: bool = False, **kwargs: Any) -> None:
    """A search on the FLAT/L2 collection with the keyword arguments ``kwargs``."""

    async def run(ctx: Ctx) -> Any:
        coll = await ctx.shared(MAIN)
        kw = {"output_fields": ["n"], **kwargs}  # Milvus Lite returns every field when none are named
        data = kw.pop("data", queries(2))
        res = await ctx.c.search(coll, data, **kw)
        return hits(res)

    case(f"search.{name}", run, sync_only=sync_only)


for _limit in (1, 3, 10, 100):
    _main_case(f"limit_{_limit}", sync_only=_limit != 3, limit=_limit)
for _offset in (0, 2, 7):
    _main_case(f"offset_{_offset}", sync_only=True, limit=4, offset=_offset)
_main_case("offset_in_params", sync_only=True, limit=3, search_params={"offset": 3})
_main_case("nq_1", data=queries(1), limit=3)
_main_case("output_fields_default", sync_only=True, limit=3, output_fields=None)
_main_case("nq_5", sync_only=True, data=queries(5), limit=2)
for _i, _fields in enumerate(([], ["*"], ["cat"], ["n", "cat", "tag"], ["v"], ["id"])):
    _main_case(f"output_fields_{_i}", sync_only=_i > 2, limit=3, output_fields=_fields)
for _i, _expr in enumerate(
    (
        'cat == "green"',
        "n > 50",
        "n in [1, 5, 9, 13, 77]",
        "tag == 1 and n < 30",
        'cat like "g%" or n >= 95',
        "not (tag == 0)",
        "id in [3, 4, 5]",
        "n > 1000",
    )
):
    _main_case(f"filter_{_i}", sync_only=_i % 3 != 0, limit=5, filter=_expr, output_fields=["n"])
_main_case("group_by", limit=3, group_by_field="cat", output_fields=["cat"])
_main_case(
    "group_by_size",
    sync_only=True,
    limit=2,
    group_by_field="cat",
    group_size=2,
    strict_group_size=True,
    output_fields=["cat"],
)
_main_case("group_by_tag", sync_only=True, limit=5, group_by_field="tag", output_fields=["tag"])
_main_case("range_radius", limit=10, search_params={"params": {"radius": 1.2}})
_main_case(
    "range_radius_filter",
    sync_only=True,
    limit=10,
    search_params={"params": {"radius": 1.5, "range_filter": 0.8}},
)
_main_case("round_decimal", sync_only=True, limit=3, round_decimal=2)
_main_case("consistency_strong", sync_only=True, limit=3, consistency_level="Strong")
_main_case("anns_field", sync_only=True, limit=3, anns_field="v")
_main_case("metric_in_params", sync_only=True, limit=3, search_params={"metric_type": "L2"})
_main_case("wrong_metric", sync_only=True, limit=3, search_params={"metric_type": "IP"})
_main_case("limit_0", sync_only=True, limit=0)
_main_case("limit_negative", sync_only=True, limit=-1)
_main_case("limit_too_big", sync_only=True, limit=16385)
_main_case("bad_filter", sync_only=True, limit=3, filter="n >")
_main_case("unknown_field_filter", sync_only=True, limit=3, filter="nope == 1")
_main_case("unknown_output_field", sync_only=True, limit=3, output_fields=["nope"])
_main_case("wrong_dim", sync_only=True, data=[[0.1] * (DIM + 1)], limit=3)
_main_case("unknown_anns_field", sync_only=True, limit=3, anns_field="nope")
_main_case("empty_data", sync_only=True, data=[], limit=3)


async def _partition_search(ctx: Ctx) -> Any:
    coll = await ctx.shared(MAIN)
    return hits(await ctx.c.search(coll, queries(1), limit=3, partition_names=["_default"]))


case("search.partition_default", _partition_search)


# -- query on the same collection -----------------------------------------------------------------------


def _query_case(name: str, sync_only: bool = True, ordered: bool = False, **kwargs: Any) -> None:
    async def run(ctx: Ctx) -> Any:
        coll = await ctx.shared(MAIN)
        res = await ctx.c.query(coll, **kwargs)
        return [dict(r) for r in res] if ordered else rows(res)

    case(f"query.{name}", run, sync_only=sync_only)


_query_case("filter_limit", sync_only=False, filter="n >= 0", limit=5, output_fields=["n"], ordered=False)
_query_case("filter_all", filter="tag == 2", output_fields=["n", "cat"])
_query_case("ids", sync_only=False, ids=[1, 2, 3, 1000], output_fields=["cat"])
_query_case("ids_str_filter", filter="id in [5, 6]", output_fields=["*"])
_query_case("count", sync_only=False, filter="", output_fields=["count(*)"])
_query_case("count_filter", filter='cat == "red"', output_fields=["count(*)"])
_query_case("no_filter_no_limit", filter="")
_query_case("no_filter_limit", filter="", limit=4, output_fields=["n"])
_query_case("limit_offset", filter="n < 50", limit=5, offset=5, output_fields=["n"])
_query_case("output_vector", filter="id < 3", output_fields=["v"])
_query_case("output_star", filter="id < 2", output_fields=["*"])
_query_case("output_none", filter="id < 2")
_query_case("unknown_output", filter="id < 2", output_fields=["nope"])
_query_case("bad_filter", filter="id <")
_query_case("empty_result", filter="id > 100000", output_fields=["n"])
_query_case("in_empty", filter="id in []", output_fields=["n"])
_query_case("like_infix", filter='cat like "%ee%"', output_fields=["cat"])
_query_case("nested_logic", filter="(tag == 0 or tag == 2) and not (n >= 10 and n < 90)", output_fields=["n"])
_query_case("between", filter="10 < n < 15", output_fields=["n"])
_query_case("float_compare", filter="n > 97.5", output_fields=["n"])


async def _get(ctx: Ctx) -> Any:
    coll = await ctx.shared(MAIN)
    return rows(await ctx.c.get(coll, ids=[4, 2, 99, 12345], output_fields=["cat", "n"]))


async def _get_one(ctx: Ctx) -> Any:
    coll = await ctx.shared(MAIN)
    return rows(await ctx.c.get(coll, ids=7))


case("get.ids", _get)
case("get.single_id", _get_one, sync_only=True)


# -- hybrid search ------------------------------------------------------------------------------------


@setup("hybrid")
async def _hybrid(ctx: Ctx, name: str) -> None:
    s = ctx.c.create_schema(auto_id=False, enable_dynamic_field=False)
    _scalar_fields(s, ctx.api)
    s.add_field("a", ctx.api.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("b", ctx.api.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("sp", ctx.api.DataType.SPARSE_FLOAT_VECTOR)
    idx = ctx.c.prepare_index_params()
    idx.add_index("a", index_type="FLAT", metric_type="L2")
    idx.add_index("b", index_type="FLAT", metric_type="IP")
    idx.add_index("sp", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    await ctx.c.create_collection(name, schema=s, index_params=idx)
    await ctx.c.insert(
        name, [{**meta(i), "a": dense(i), "b": dense(i, 4, 1), "sp": sparse(i)} for i in range(N)]
    )


def _hybrid_case(name: str, ranker: str, sync_only: bool = False, **kwargs: Any) -> None:
    async def run(ctx: Ctx) -> Any:
        coll = await ctx.shared("hybrid")
        api, kw = ctx.api, {"output_fields": ["n"], **kwargs}
        expr = kw.pop("req_filter", "")
        reqs = [
            api.AnnSearchRequest([dense(500)], "a", {"metric_type": "L2"}, limit=10, expr=expr),
            api.AnnSearchRequest([dense(501, 4, 1)], "b", {"metric_type": "IP"}, limit=10),
        ]
        if kw.pop("with_sparse", False):
            reqs.append(api.AnnSearchRequest([sparse(502)], "sp", {"metric_type": "IP"}, limit=10))
        rk = {
            "rrf": lambda: api.RRFRanker(),
            "rrf10": lambda: api.RRFRanker(10),
            "weighted": lambda: api.WeightedRanker(*([0.3, 0.7] + [0.5] * (len(reqs) - 2))),
            "weighted_bad": lambda: api.WeightedRanker(0.5),
        }[ranker]()
        return hits(await ctx.c.hybrid_search(coll, reqs, rk, **kw), ties=True)

    case(f"hybrid.{name}", run, sync_only=sync_only)


_hybrid_case("rrf", "rrf", limit=5)
_hybrid_case("rrf_k10", "rrf10", sync_only=True, limit=5, output_fields=["cat"])
_hybrid_case("weighted", "weighted", limit=5, output_fields=["n"])
_hybrid_case("weighted_sparse", "weighted", sync_only=True, limit=5, with_sparse=True)
_hybrid_case("rrf_sparse", "rrf", sync_only=True, limit=6, with_sparse=True)
_hybrid_case("rrf_filter", "rrf", sync_only=True, limit=5, req_filter="n > 50", output_fields=["n"])
_hybrid_case("weighted_count_mismatch", "weighted_bad", sync_only=True, limit=5)
_hybrid_case("limit_1", "rrf", sync_only=True, limit=1)


# -- iterators (MilvusClient only: AsyncMilvusClient has none) -----------------------------------------


def _query_iter_case(name: str, **kwargs: Any) -> None:
    async def run(ctx: Ctx) -> Any:
        coll = await ctx.shared(MAIN)
        it = await ctx.c.query_iterator(coll, **kwargs)
        batches = []
        while True:
            batch = it.next()
            if not batch:
                break
            batches.append(len(batch))
            if len(batches) > 50:
                break
        it.close()
        return {"batches": len(batches) > 0, "rows": sum(batches)}

    case(f"iterator.query_{name}", run, sync_only=True)


_query_iter_case("all", batch_size=7, output_fields=["n"])
_query_iter_case("filter", batch_size=5, filter="tag == 1", output_fields=["n"])
_query_iter_case("limit", batch_size=4, limit=10)


async def _query_iter_rows(ctx: Ctx) -> Any:
    coll = await ctx.shared(MAIN)
    it = await ctx.c.query_iterator(coll, batch_size=9, filter="n < 40", output_fields=["n"])
    out: list[Any] = []
    while batch := it.next():
        out.extend(batch)
    it.close()
    return rows(out)


case("iterator.query_rows", _query_iter_rows, sync_only=True)


def _search_iter_case(name: str, **kwargs: Any) -> None:
    async def run(ctx: Ctx) -> Any:
        coll = await ctx.shared(MAIN)
        it = await ctx.c.search_iterator(coll, queries(1), **kwargs)
        got: list[Any] = []
        while True:
            batch = it.next()
            if not batch or len(got) > 200:
                break
            got.extend(h["id"] for h in batch)
        it.close()
        return {"n": len(got), "distinct": len(set(got)), "first": got[:3]}

    case(f"iterator.search_{name}", run, sync_only=True)


_search_iter_case("limit", batch_size=5, limit=20)
_search_iter_case("filter", batch_size=4, limit=12, filter="tag == 0")
