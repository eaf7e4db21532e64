"""The quick lane of a plain search: one dense query over indexed segments and fresh ones their interim indexes hold.

Most searches a service sends look alike: one query vector, a limit, maybe
``ef`` or ``nprobe``, a filter and the fields to return. Once a collection's
rows are sealed and indexed, such a search is the index's own search plus a
gather of the hits' keys and fields, yet the general path
(`Reader.search_hits`) walks every branch it needs for the rest: filters and
their masks, fresh segments and their interim indexes, rankers, grouping,
paging. That walk is about as long as an HNSW search of 100k rows.

Fresh segments (no index of their own yet) whose interim index holds every
row of the search's snapshot are read through it, as the general path reads
them (`_interim_one.search_fresh`), so a search right after a load takes the
lane too; a fresh segment with rows its interim index has not reached sends
the search the general way, which scans those rows exactly.

A filter is evaluated per sealed segment through the result the segment
remembers (`Segment.filter_result`, read-only) and handed to the segment's
index as the rows it may return, as the general path hands it; a filtered
search over fresh segments goes the general way.

`quick_search` answers the plain case directly, from the same snapshot and
the same index calls, and returns None, having changed nothing, whenever a
request or the collection's state is anything else (the general path then
answers, and raises whatever error applies). Hits with output fields or
rounded distances are shaped by the general path's own step. Its answers are
those of the general path, hit for hit: tests run both on the same states and
compare.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._types import DataType, larger_is_better
from ._interim import interim_first, interim_wanted
from ._interim_one import search_fresh
from .index._base import IndexChanged
from .index._params import shared_search_params
from .index._subset_cache import mask_facts

if TYPE_CHECKING:
    from .. import _requests as rq
    from .._schema import CollectionSchema
    from ._collection import Collection

#: ``values_at(schema, view, field, rows)``: a field's values at rows of a view, as users get them (`_reads`).
ValuesAt = Callable[["CollectionSchema", Any, str, np.ndarray], list[Any]]
#: ``shape(hits)``: per query, hits as ``(score, view, row)`` made into the hit dicts of `r`, output fields and
#: rounding included, as the general path makes them (`Reader.shape_search_hits`).
Shape = Callable[[list[list[tuple[float, Any, int]]]], list[list[dict[str, Any]]]]

_F32 = np.dtype(np.float32)
#: More queries than this go the general way (faiss may then spread them over threads).
QUICK_MAX_QUERIES = 1
#: False sends every search the general way (``bench/single_query.py --lanes`` compares the two).
ENABLED = True


def quick_search(coll: Collection, r: rq.Search, max_topk: int, values_at: ValuesAt,
                 shape: Shape) -> list[list[dict[str, Any]]] | None:
    """The hits of `r` as `Reader.op_search` shapes them, or None where the general path must answer.

    Hits with output fields or rounded distances are made by ``shape``, the general path's own step.
    """
    data = r.data
    if (not ENABLED or type(data) is not np.ndarray or data.dtype != _F32 or data.ndim != 2 or data.shape[0] > QUICK_MAX_QUERIES
            or r.offset or r.partition_names or r.group_by_field
            or r.ranker is not None or r.timezone or r.time_fields or r.ids is not None
            or r.highlighter is not None or r.aggregation is not None or not 1 <= r.limit <= max_topk):
        return None
    vecs = coll.schema.vector_fields
    if len(vecs) != 1 or r.anns_field not in ("", vecs[0].name):
        return None
    f = vecs[0]
    if f.dtype is not DataType.FLOAT_VECTOR or data.shape[1] != f.dim or not data.flags.c_contiguous:
        return None
    d = coll.index_for(f.name)
    if d is None or (r.metric_type and r.metric_type.upper() != d.metric_type):
        return None
    params = r.params
    if params and "radius" in params:
        return None
    params = shared_search_params(d.index_type, params)  # checked as the general path checks them
    if not math.isfinite(np.dot(data[0], data[0])):  # a NaN or an infinity anywhere (or an overflow)
        return None  # the general path names the bad query
    parts = [p for p in coll.partitions.values() if p.loaded]
    if not parts:
        return None
    plan = None
    if r.filter:
        try:
            plan = coll.filter_plan(r.filter, r.filter_params)
        except Exception:  # noqa: BLE001 - the general path raises it, in its order of checks
            return None
        if plan.matches_all:
            plan = None
    snap = coll.snapshot(parts)
    found = []
    filtered: list[tuple[Any, Any, np.ndarray | None, int]] = []  # (view, index, allow, rows kept)
    fresh: list[tuple[Any, Any]] = []
    for i, (_, view) in enumerate(snap.views):
        if view.n == 0:
            continue
        seg = view.segment
        if snap.hidden[i] is not None or not view.all_visible(snap.seq):
            return None
        vi = seg.vindex.get(f.name) if seg.sealed else None
        if vi is not None and vi[0] == d.signature:
            if plan is None:
                found.append((view, vi[1]))
                continue
            mask = seg.filter_result(plan, view)  # read-only, remembered by the sealed segment
            kept = mask_facts(mask).count
            if kept:
                filtered.append((view, vi[1], None if kept == view.n else mask, kept))
            continue
        if plan is not None:  # a filter over fresh rows: the general path scans them
            return None
        have = seg.interim.get(f.name)  # fresh rows: all of them in the segment's interim index, or no lane
        if have is None or have[0] != d.signature or have[1].ntotal < view.n or (fresh and have[1].lists is not
                                                                                 fresh[0][1].lists):
            return None
        fresh.append((view, have[1]))
    if fresh and found:
        found, fresh = _interim_first(snap, found, fresh, f.name, d.signature)
    k = r.limit
    try:  # per source of hits: (views, scores, rows, owners): the hits' view is views[owner]
        runs = [([view], *index.search_one(data, min(k, view.n), params, view.n), None) for view, index in found]
        runs += [([view], *index.search_one_allowed(data, min(k, kept), allow, r.params, view.n), None)
                 for view, index, allow, kept in filtered]
    except IndexChanged:  # merged into another segment meanwhile
        return None
    if fresh:
        if not interim_wanted(r.params or {}):
            return None
        got = search_fresh([(ivf, view.vectors(f.name), view.n) for view, ivf in fresh], data,
                           min(k, sum(view.n for view, _ in fresh)))
        if got is None:  # too few candidates: the general path scans
            return None
        runs.append(([view for view, _ in fresh], got[0], got[2], got[1][0]))
    if not runs:
        return [[]]
    shaped = bool(r.output_fields) or r.round_decimal != -1
    if len(runs) == 1 and len(runs[0][0]) == 1:
        (view,), scores, rows, _ = runs[0]
        scores, rows = scores[0], rows[0]
        if rows[-1] < 0:  # unfilled slots, at the end
            keep = rows >= 0
            scores, rows = scores[keep], rows[keep]
        if shaped:
            return shape([[(s, view, row) for s, row in zip(scores.tolist(), rows.tolist())]])
        return [_hits(coll.schema, view, rows, scores, values_at)]
    views: list[Any] = []
    owners = []
    for vs, _, rr, o in runs:  # owners as indexes into `views`
        owners.append(np.full(len(rr[0]), len(views)) if o is None else o + len(views))
        views.extend(vs)
    scores = np.concatenate([s[0] for _, s, _, _ in runs])
    rows = np.concatenate([rr[0] for _, _, rr, _ in runs])
    owner = np.concatenate(owners)
    keep = rows >= 0
    scores, rows, owner = scores[keep], rows[keep], owner[keep]
    order = np.argsort(-scores if larger_is_better(d.metric_type) else scores, kind="stable")[:k]
    scores, rows, owner = scores[order], rows[order], owner[order]
    if shaped:
        return shape([[(s, views[o], row) for s, o, row in zip(scores.tolist(), owner.tolist(), rows.tolist())]])
    return [_hits_of_views(coll.schema, views, owner, rows, scores, values_at)]


def _hits(schema: CollectionSchema, view: Any, rows: np.ndarray, scores: np.ndarray,
          values_at: ValuesAt) -> list[dict[str, Any]]:
    """``{"id", "distance", "entity"}`` of `rows` of `view`, in their order."""
    pk = view.segment.pk_name
    col = view.column(pk)
    ids = col.values[rows].tolist() if type(col.values) is np.ndarray and col.valid is None else \
        values_at(schema, view, pk, rows)
    return [{"id": id_, "distance": s, "entity": {}} for id_, s in zip(ids, scores.tolist())]


def _hits_of_views(schema: CollectionSchema, views: list[Any], owner: np.ndarray, rows: np.ndarray,
                   scores: np.ndarray, values_at: ValuesAt) -> list[dict[str, Any]]:
    """`_hits` of hits from several views: hit ``i`` is row ``rows[i]`` of ``views[owner[i]]``.

    A hit at a time (a few dozen at most, from up to as many views): each view's key column is looked up once.
    """
    pk = views[0].segment.pk_name
    keys: dict[int, np.ndarray | None] = {}  # per view: its plain key array, or None (read through values_at)
    out = []
    for o, row, s in zip(owner.tolist(), rows.tolist(), scores.tolist()):
        if o not in keys:
            col = views[o].column(pk)
            keys[o] = col.values if type(col.values) is np.ndarray and col.valid is None else None
        values = keys[o]
        id_ = values.item(row) if values is not None else values_at(schema, views[o], pk, np.array([row]))[0]
        out.append({"id": id_, "distance": s, "entity": {}})
    return out


def _interim_first(snap: Any, found: list[tuple[Any, Any]], fresh: list[tuple[Any, Any]], name: str,
                   sig: Any) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """`found` and `fresh` with the indexed segments `interim_first` reads through their interim indexes moved over.

    As the general path's `FreshSegments` decides it; `fresh` stays in the snapshot's order.
    """
    lists = fresh[0][1].lists
    taken: list[tuple[Any, Any, Any]] = [(view, ivf, None) for view, ivf in fresh]
    keep = []
    for view, index in found:
        have = view.segment.interim.get(name)
        if have is not None and have[0] == sig and have[1].lists is lists and have[1].ntotal >= view.n:
            taken.append((view, have[1], index))
        else:
            keep.append((view, index))
    if len(taken) == len(fresh):
        return found, fresh
    at = {id(view): i for i, (_, view) in enumerate(snap.views)}
    taken.sort(key=lambda t: at[id(t[0])])
    read, owned = interim_first(taken)
    return keep + owned, read
