"""Search aggregation (pymilvus 3's ``search(search_aggregation=...)``): buckets of a search's hits.

The search's best hits form the pool (``limit`` is ignored, as in Milvus: the
pool is the best `POOL` hits of each query, the most one Milvus search returns).
Each level groups its hits by the values of ``fields`` (a composite key, nulls a
key of their own), keeps per bucket its ``count`` and ``metrics`` (count, sum,
avg, min, max of a field or of ``_score``), orders the buckets (``order``: metric
aliases, ``_count``, ``_key``; without it, by their best hit), keeps ``size`` of
them, their ``top_hits`` (best first, or by ``sort``) and, within each, the
``sub_aggregation``'s buckets. The work is vectorised per level: bucket codes
from pyarrow's dictionary encoding, metrics by `numpy.bincount` and ufunc ``at``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _requests as rq
from .._errors import ParamError

if TYPE_CHECKING:
    from ._engine import Engine
    from ._reads import Reader

#: Hits per query the buckets are made from (Milvus's largest topk).
POOL = 16384
_OPS = {"count", "sum", "avg", "min", "max"}
SCORE = "_score"


class AggregatedHits(list):  # type: ignore[type-arg]
    """A search's (empty) hit lists, with ``agg_buckets``: per query, its top-level buckets."""

    agg_buckets: list[list[dict[str, Any]]]


def aggregating(engine: Engine, reads: Reader, search: Callable[[rq.Search], Any]) -> Callable[[rq.Search], Any]:
    """``search``; with an ``aggregation``, its pool of hits grouped into buckets instead of hits."""

    def run(r: rq.Search) -> Any:
        if r.aggregation is None:
            return search(r)
        if r.group_by_field:
            raise ParamError("search_aggregation and group_by_field cannot be used together")
        coll = engine.collection(r.db_name, r.collection_name)
        spec = r.aggregation
        names = check_spec(coll.schema, spec)
        pool = search(dataclasses.replace(r, aggregation=None, limit=POOL, offset=0, output_fields=()))
        pk = coll.schema.primary_field.name
        keys = list(dict.fromkeys(h["id"] for q in pool for h in q))
        want = [n for n in dict.fromkeys([*names, *(r.output_fields or ())]) if n != pk]
        rows = {row[pk]: row for row in reads.op_query(rq.Query(r.db_name, r.collection_name, "", (pk, *want), keys))} \
            if keys else {}
        out = AggregatedHits([[] for _ in pool])
        out.agg_buckets = []
        for q in pool:
            ids = [h["id"] for h in q]
            cols = {n: pa.array([rows.get(k, {}).get(n) for k in ids]) for n in want}  # row dicts to columns, once
            cols[SCORE] = pa.array([h["distance"] for h in q], pa.float64())
            shown = [n for n in (r.output_fields or ()) if n != pk]
            out.agg_buckets.append(_level(spec, ids, cols, np.arange(len(ids)), shown))
        return out

    run.__wrapped__ = search  # type: ignore[attr-defined]  # the search it wraps (inspect.unwrap)
    return run


def check_spec(schema: Any, spec: dict[str, Any]) -> list[str]:
    """The fields a spec reads; `ParamError` for an unknown field or a bad metric, order or sort."""
    names: list[str] = []
    level: dict[str, Any] | None = spec
    depth = 0
    while level is not None:
        depth += 1
        for f in level["fields"]:
            fs = schema.field(f)
            if fs is None or fs.dtype.is_vector:
                raise ParamError(f"search_aggregation.fields: {f!r} is not a scalar field of the collection")
            names.append(f)
        for alias, m in level["metrics"].items():
            if m["op"] not in _OPS:
                raise ParamError(f"search_aggregation.metrics[{alias!r}]: op {m['op']!r}; expected one of {sorted(_OPS)}")
            if m["field"] not in ("*", SCORE):
                if schema.field(m["field"]) is None:
                    raise ParamError(f"search_aggregation.metrics[{alias!r}]: no field {m['field']!r}")
                names.append(m["field"])
        for o in level["order"]:
            if o["key"] not in ("_count", "_key", *level["metrics"]):
                raise ParamError(f"search_aggregation.order: key {o['key']!r}; expected a metric alias, _count or _key")
        for s in (level["top_hits"] or {}).get("sort", []):
            if s["field"] != SCORE:
                if schema.field(s["field"]) is None:
                    raise ParamError(f"search_aggregation.top_hits.sort: no field {s['field']!r}")
                names.append(s["field"])
        level = level.get("sub")
    if depth > 4:
        raise ParamError(f"search_aggregation: {depth} levels; at most 4")
    return list(dict.fromkeys(names))


def _codes(values: pa.Array) -> tuple[np.ndarray, list[Any]]:
    """Per value, the code of its distinct value (nulls one code of their own), and the distinct values."""
    enc = values.dictionary_encode()
    idx = enc.indices.to_numpy(zero_copy_only=False)
    uniq = enc.dictionary.to_pylist()
    if enc.null_count:
        idx = np.where(enc.indices.is_null().to_numpy(zero_copy_only=False), len(uniq), idx)
        uniq = [*uniq, None]
    return np.asarray(idx, dtype=np.int64), uniq


def _level(spec: dict[str, Any], ids: list[Any], cols: dict[str, pa.Array], rows: np.ndarray,
           shown: list[str]) -> list[dict[str, Any]]:
    """The buckets of one level over the pool positions ``rows`` (best first)."""
    if not len(rows):
        return []
    per_field = [_codes(cols[f].take(rows)) for f in spec["fields"]]
    stacked = np.stack([c for c, _ in per_field], axis=1)
    keys, inv = np.unique(stacked, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    nb = len(keys)
    count = np.bincount(inv, minlength=nb)
    first = np.full(nb, len(rows), dtype=np.int64)
    np.minimum.at(first, inv, np.arange(len(rows)))
    metrics = {alias: _metric(m, cols, rows, inv, nb) for alias, m in spec["metrics"].items()}
    order_keys: list[np.ndarray] = []
    for o in spec["order"]:
        if o["key"] == "_count":
            v = count.astype(np.float64)
        elif o["key"] == "_key":  # by the key values in field order: ranks of the sorted distinct values
            v = np.zeros(nb)
            for j, (_, uniq) in enumerate(per_field):  # a level's distinct values, not its rows
                by_value = sorted(range(len(uniq)), key=_null_last(uniq))
                rank = np.empty(len(uniq), dtype=np.float64)
                rank[by_value] = np.arange(len(uniq))
                v = v * (len(uniq) + 1) + rank[keys[:, j]]
        else:
            v = np.array(metrics[o["key"]], dtype=np.float64)  # None (an empty bucket's metric) is nan
        order_keys.append(-v if o["direction"] == "desc" else v)
    order = np.lexsort([first, *reversed(order_keys)]) if order_keys else np.argsort(first, kind="stable")
    order = order[: spec["size"]]
    out = []
    for b in order:
        members = rows[inv == b]  # best first: pool order is score order
        bucket: dict[str, Any] = {
            "key": [{"field_name": f, "value": per_field[j][1][keys[b, j]]} for j, f in enumerate(spec["fields"])],
            "count": int(count[b]),
            "metrics": {alias: vals[b] for alias, vals in metrics.items()},
            "hits": _top_hits(spec["top_hits"], ids, cols, members, shown),
            "sub_groups": _level(spec["sub"], ids, cols, members, shown) if spec.get("sub") else [],
        }
        out.append(bucket)
    return out


def _null_last(values: list[Any]) -> Callable[[int], tuple[bool, Any]]:
    """A sort key over positions of ``values``: by value, nulls last."""
    return lambda i: (values[i] is None, values[i] if values[i] is not None else 0)


def _metric(m: dict[str, str], cols: dict[str, pa.Array], rows: np.ndarray, inv: np.ndarray, nb: int) -> list[Any]:
    if m["field"] == "*":
        return np.bincount(inv, minlength=nb).tolist()
    col = cols[m["field"]].take(rows)
    present = col.is_valid().to_numpy(zero_copy_only=False)
    grp = inv[present]
    n = np.bincount(grp, minlength=nb)
    if m["op"] == "count":
        return n.tolist()
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_null(col.type)):
        raise ParamError(f"search_aggregation: {m['op']} over {m['field']!r}, a {col.type} field; expected a number")
    vals = col.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
    if m["op"] in ("sum", "avg"):
        s = np.bincount(grp, weights=vals, minlength=nb)
        res = s if m["op"] == "sum" else np.divide(s, n, out=np.full(nb, np.nan), where=n > 0)
    else:
        res = np.full(nb, np.inf if m["op"] == "min" else -np.inf)
        (np.minimum if m["op"] == "min" else np.maximum).at(res, grp, vals)
    integral = m["op"] in ("sum", "min", "max") and pa.types.is_integer(col.type)
    return [None if k == 0 else (int(x) if integral else float(x)) for x, k in zip(res.tolist(), n.tolist())]


def _top_hits(th: dict[str, Any] | None, ids: list[Any], cols: dict[str, pa.Array], members: np.ndarray,
              shown: list[str]) -> list[dict[str, Any]]:
    if not th:
        return []
    pick = members
    sorts = th.get("sort") or []
    if sorts:
        keys = []
        for srt in reversed(sorts):  # dense ranks: any comparable type, nulls last
            order = "descending" if srt["direction"] == "desc" else "ascending"
            keys.append(pc.rank(cols[srt["field"]].take(members), sort_keys=order, tiebreaker="dense")
                        .to_numpy(zero_copy_only=False))
        pick = members[np.lexsort([np.arange(len(members)), *keys])]
    pick = pick[: th["size"]]
    scores = cols[SCORE].take(pick).to_pylist()
    fields = {f: cols[f].take(pick).to_pylist() for f in shown}
    return [{"pk": ids[i], "score": float(scores[j]), "fields": {f: fields[f][j] for f in shown}}
            for j, i in enumerate(pick)]
