"""Generated cases: every scalar data type, plain, nullable and with a default value, times every operation.

Each field has two shared collections of its own: ``types_<field>`` (read
only) and ``types_<field>_w`` (each writing case works in a primary-key block
of its own), so that a bug in one field leaves the others' cases readable.
The field named ``t`` holds the values ``ALL[t][2](i)`` in row ``i``; ``n_t`` is
nullable and null on every third row; ``d_t`` has a default value and is left
out of every fourth row and given ``None`` in the next one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.compat._harness import Ctx, case, hits, rows, setup

DIM = 8
ROWS = 60

# type -> (DataType name, add_field keyword arguments, value of row i)
SCALARS: dict[str, tuple[str, dict[str, Any], Callable[[int], Any]]] = {
    "bool": ("BOOL", {}, lambda i: i % 2 == 0),
    "int8": ("INT8", {}, lambda i: (i * 7) % 50 - 25),
    "int16": ("INT16", {}, lambda i: i * 300 - 5000),
    "int32": ("INT32", {}, lambda i: (i * 37) % 1000 - 500),
    "int64": ("INT64", {}, lambda i: i * 10**10 - 3 * 10**11),
    "float": ("FLOAT", {}, lambda i: i * 0.5 - 7.25),
    "double": ("DOUBLE", {}, lambda i: i * 1.25 - 20.0),
    "varchar": ("VARCHAR", {"max_length": 32}, lambda i: f"{'abc'[i % 3]}{i:03d}"),
}
COMPOUND: dict[str, tuple[str, dict[str, Any], Callable[[int], Any]]] = {
    "json": (
        "JSON",
        {},
        lambda i: (
            {"k": i % 7, "tag": f"t{i % 3}", "arr": [i % 4, i % 5], "nested": {"x": i}}
            | ({"opt": i} if i % 2 else {})
        ),
    ),
    "array_int": (
        "ARRAY",
        {"element_type": "INT64", "max_capacity": 8},
        lambda i: list(range(i % 4)) + [i % 5],
    ),
    "array_str": (
        "ARRAY",
        {"element_type": "VARCHAR", "max_capacity": 4, "max_length": 16},
        lambda i: [f"s{i % 3}", f"s{i % 5}"],
    ),
    "array_double": (
        "ARRAY",
        {"element_type": "DOUBLE", "max_capacity": 4},
        lambda i: [i * 0.25, -i * 0.5][: 1 + i % 2],
    ),
    # ISO-8601 text in several zones (the same instant reads back in UTC); WKT in the normal form both give back
    "timestamptz": (
        "TIMESTAMPTZ",
        {},
        lambda i: f"2025-{1 + i % 12:02d}-{1 + i % 27:02d}T{i % 24:02d}:{i % 60:02d}:00{['Z', '+08:00', '-05:30'][i % 3]}",
    ),
    "geometry": (
        "GEOMETRY",
        {},
        lambda i: f"POINT ({i % 10} {i // 10})" if i % 4 else f"POLYGON (({i % 10} 0, {i % 10 + 2} 0, {i % 10} 2, {i % 10} 0))",
    ),
}
ALL = {**SCALARS, **COMPOUND}
DEFAULTS = {
    "bool": True,
    "int8": 7,
    "int16": -7,
    "int32": 77,
    "int64": 7 * 10**12,
    "float": 1.5,
    "double": -2.25,
    "varchar": "dflt",
}


def value(field: str, i: int) -> Any:
    """The value row ``i`` gives ``field``: ``None`` on every third row of a nullable one."""
    if field.startswith("n_"):
        return None if i % 3 == 0 else ALL[field[2:]][2](i)
    return ALL[field[2:] if field.startswith("d_") else field][2](i)


def fields(t: str) -> list[str]:
    """The fields of type ``t``: plain, nullable and (scalars only) with a default value."""
    return [t, f"n_{t}", *([f"d_{t}"] if t in SCALARS else [])]


def vector(i: int) -> list[float]:
    rng = np.random.default_rng(i)
    return [round(float(x), 3) for x in rng.random(DIM)]


def row(f: str, i: int, pk: int | None = None) -> dict[str, Any]:
    """Row ``i`` of the collection of field ``f``, with primary key ``pk`` (``i`` when not given)."""
    r: dict[str, Any] = {"id": i if pk is None else pk, "vec": vector(i)}
    if f.startswith("d_") and i % 4 == 0:
        return r  # left out: the default applies
    r[f] = None if f.startswith("d_") and i % 4 == 1 else value(f, i)
    return r


def schema(ctx: Ctx, f: str) -> Any:
    """``id``, ``vec`` and the field ``f``: one field per collection, so a bug in one leaves the others readable."""
    s = ctx.c.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", ctx.api.DataType.INT64, is_primary=True)
    s.add_field("vec", ctx.api.DataType.FLOAT_VECTOR, dim=DIM)
    t = f[2:] if f[:2] in ("n_", "d_") else f
    dtype, kwargs, _ = ALL[t]
    kw = dict(kwargs)
    if "element_type" in kw:
        kw["element_type"] = getattr(ctx.api.DataType, kw["element_type"])
    if f.startswith("n_"):
        kw["nullable"] = True
    if f.startswith("d_"):
        kw["default_value"] = DEFAULTS[t]
    s.add_field(f, getattr(ctx.api.DataType, dtype), **kw)
    return s


async def make_typed(ctx: Ctx, name: str, f: str, n: int) -> None:
    idx = ctx.c.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    await ctx.c.create_collection(name, schema=schema(ctx, f), index_params=idx)
    if n:
        await ctx.c.insert(name, [row(f, i) for i in range(n)])


def _setups(f: str) -> None:
    async def read(ctx: Ctx, name: str) -> None:
        await make_typed(ctx, name, f, ROWS)

    async def write(ctx: Ctx, name: str) -> None:
        await make_typed(ctx, name, f, 0)

    setup(f"types_{f}")(read)
    setup(f"types_{f}_w")(write)


def deleted(res: Any) -> int:
    """How many rows a delete removed.

    Milvus answers ``{"delete_count": n}``; Milvus Lite fills the result's ids, which pymilvus
    then returns as a list of the keys asked for (`delete.result_shape` compares the shape).
    """
    return len(res) if isinstance(res, list) else int(res["delete_count"])


def lit(v: Any) -> str:
    """``v`` written in the filter language."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def filters(f: str, t: str) -> dict[str, str]:
    """The filters each field is read with: operation name -> expression."""
    v = [value(t, i) for i in (5, 11, 23)]
    out: dict[str, str] = {}
    if t in SCALARS:
        out |= {
            "eq": f"{f} == {lit(v[0])}",
            "ne": f"{f} != {lit(v[0])}",
            "in": f"{f} in [{lit(v[0])}, {lit(v[1])}]",
            "not_in": f"{f} not in [{lit(v[0])}, {lit(v[1])}]",
        }
        if t != "bool":
            lo, hi = sorted((v[0], v[2]))
            out["range"] = f"{f} > {lit(lo)} and {f} <= {lit(hi)}"
            out["ge_or_lt"] = f"{f} >= {lit(hi)} or {f} < {lit(lo)}"
            out["not"] = f"not ({f} > {lit(lo)})"
    if t == "varchar":
        out |= {
            "like_prefix": f'{f} like "a%"',
            "like_suffix": f'{f} like "%1"',
            "like_infix": f'{f} like "%00%"',
        }
    if t in ("int8", "int16", "int32", "int64"):
        out["arith"] = f"{f} % 3 == 1"
    if t == "json":
        out |= {
            "path_eq": f'{f}["k"] == 3',
            "path_in": f'{f}["k"] in [1, 2]',
            "path_range": f'{f}["nested"]["x"] > 40',
            "path_str": f'{f}["tag"] == "t1"',
            "path_like": f'{f}["tag"] like "t2%"',
            "path_index": f'{f}["arr"][0] == 2',
            "contains": f'json_contains({f}["arr"], 3)',
            "contains_any": f'json_contains_any({f}["arr"], [1, 4])',
            "contains_all": f'json_contains_all({f}["arr"], [1, 1])',
            "exists": f'exists {f}["opt"]',
            "missing_key": f'{f}["nope"] == 1',
        }
    if t.startswith("array_"):
        e = 2 if t == "array_int" else ('"s1"' if t == "array_str" else 0.25)
        e2 = 3 if t == "array_int" else ('"s4"' if t == "array_str" else -0.5)
        out |= {
            "contains": f"array_contains({f}, {e})",
            "contains_all": f"array_contains_all({f}, [{e}, {e2}])",
            "contains_any": f"array_contains_any({f}, [{e}, {e2}])",
            "length": f"array_length({f}) == 2",
            "index": f"{f}[0] == {e}",
        }
    if t == "timestamptz":
        out |= {
            "iso_gt": f"{f} > ISO '2025-06-15T00:00:00Z'",
            "iso_eq": f"{f} == ISO '{v[0]}'",
            "iso_range": f"{f} >= ISO '2025-03-01T00:00:00+08:00' and {f} < ISO '2025-09-01T00:00:00-05:00'",
            "interval": f"{f} + INTERVAL 'P10DT12H' > ISO '2025-07-01T00:00:00Z'",
            "iso_in": f"{f} in [ISO '{v[0]}', ISO '{v[1]}']",
        }
    if t == "geometry":
        out |= {
            # no row on the edges: Lite counts a point on the boundary as within, Milvus (OGC) does not
            "within": f"ST_WITHIN({f}, 'POLYGON ((-0.5 -0.5, 5.5 -0.5, 5.5 2.5, -0.5 2.5, -0.5 -0.5))')",
            "contains": f"ST_CONTAINS({f}, 'POINT (1 0.5)')",
            "intersects": f"ST_INTERSECTS({f}, 'POLYGON ((2 2, 6 2, 6 4, 2 4, 2 2))')",
        }
    if f.startswith("n_"):
        out |= {"is_null": f"{f} is null", "is_not_null": f"{f} is not null"}
    return out


def _read_cases(f: str, t: str) -> None:
    for op, expr in filters(f, t).items():

        async def query(ctx: Ctx, expr: str = expr, f: str = f) -> Any:
            name = await ctx.shared(f"types_{f}")
            return {"expr": expr, "rows": rows(await ctx.c.query(name, filter=expr, output_fields=[f]))}

        case(f"types.{f}.query_{op}", query, sync_only=op not in ("eq", "in", "is_null"))

    expr = next(iter(filters(f, t).values()))

    async def count(ctx: Ctx, expr: str = expr) -> Any:
        name = await ctx.shared(f"types_{f}")
        return await ctx.c.query(name, filter=expr, output_fields=["count(*)"])

    async def get(ctx: Ctx, f: str = f) -> Any:
        name = await ctx.shared(f"types_{f}")
        return rows(await ctx.c.get(name, ids=[0, 1, 2, 3, 4, 7, 999], output_fields=[f]))

    async def search(ctx: Ctx, expr: str = expr, f: str = f) -> Any:
        name = await ctx.shared(f"types_{f}")
        res = await ctx.c.search(
            name, [vector(100)], limit=5, filter=expr, output_fields=[f], anns_field="vec"
        )
        return hits(res)

    case(f"types.{f}.count", count, sync_only=True)
    case(f"types.{f}.get", get, sync_only=not f.startswith("n_"))
    case(f"types.{f}.search_filter", search, sync_only=True)


_blocks = iter(range(1, 10**6))


def _write_cases(f: str, t: str) -> None:
    block = next(_blocks) * 1000

    def base(ctx: Ctx) -> int:
        return block + (0 if ctx.variant == "sync" else 500)

    async def insert(ctx: Ctx, f: str = f) -> Any:
        name, b = await ctx.shared(f"types_{f}_w"), base(ctx)
        res = await ctx.c.insert(name, [row(f, i, b + i) for i in range(8)])
        got = await ctx.c.get(name, ids=[b + i for i in range(8)], output_fields=[f])
        return {"insert": res["insert_count"], "ids": [i - b for i in res["ids"]], "rows": rows(got)}

    async def upsert(ctx: Ctx, f: str = f) -> Any:
        name, b = await ctx.shared(f"types_{f}_w"), base(ctx) + 100
        await ctx.c.insert(name, [row(f, i, b + i) for i in range(6)])
        res = await ctx.c.upsert(name, [row(f, i + 20, b + i) for i in range(0, 6, 2)])
        got = await ctx.c.query(name, filter=f"id >= {b} and id < {b + 6}", output_fields=[f])
        return {"upsert": res["upsert_count"], "rows": rows(got)}

    expr = next(iter(filters(f, t).values()))

    async def delete(ctx: Ctx, expr: str = expr, f: str = f) -> Any:
        name, b = await ctx.shared(f"types_{f}_w"), base(ctx) + 200
        await ctx.c.insert(name, [row(f, i, b + i) for i in range(30)])
        scope = f"id >= {b} and id < {b + 30}"
        res = await ctx.c.delete(name, filter=f"({expr}) and {scope}")
        left = await ctx.c.query(name, filter=scope, output_fields=["id"])
        return {"deleted": deleted(res), "left": sorted(r["id"] - b for r in left)}

    case(f"types.{f}.insert_get", insert, sync_only=t not in ("int64", "varchar", "json"))
    case(f"types.{f}.upsert", upsert, sync_only=t not in ("bool", "int64"))
    case(f"types.{f}.delete_filter", delete, sync_only=True)


for _t in ALL:
    for _f in fields(_t):
        _setups(_f)
        _read_cases(_f, _t)
        _write_cases(_f, _t)
