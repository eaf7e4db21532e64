"""Function rankers applied to search hits: ``(score, view, row)`` lists, reranked in numpy.

A single search hands its candidates (the best hits by vector score, as many
as `candidate_counts` says) to `rerank_search`; a hybrid search hands every
sub-search's hits to `decay_hybrid`. Each step gathers what it needs per
segment view in one vectorised read (the boost filter's mask, a field's
values) and sorts once; see `heron.engine._rerank` for the formulas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._errors import ParamError
from .._types import larger_is_better
from ._rerank import (
    Boost,
    Decay,
    RerankPlan,
    apply_boost,
    combine_boosts,
    greater_is_better,
    is_function_score,
    murmur_random,
    parse_function_score,
)

Hit = tuple[float, Any, int]


def candidate_counts(plan: RerankPlan, limit: int, offset: int, group_size: int) -> tuple[int, int | None]:
    """How many hits to rank (``k``) and, with boosts before a decay, how many boosted ones the decay sees.

    Milvus Lite's counts: a decay ranks ``max(limit + offset, 10 x limit)`` hits (``3 x limit x group_size``
    and more when grouping); boosts rank ten times what comes after them (``10 x (limit + offset)`` alone).
    """
    want = limit + offset
    if plan.decay is None:
        return max(want * max(1, group_size) * 3 if group_size else want, want * 10), None
    n = max(want, limit * max(1, group_size) * 3 if group_size else want, limit * 10)
    return (n * 10, n) if plan.boosts else (n, None)


def rerank_search(coll: Any, plan: RerankPlan, metric: str, hits: list[Hit], keep: int | None = None,
                  keys_of: Callable[[list[Hit]], list[Any]] | None = None) -> list[Hit]:
    """One query's hits reranked by ``plan``, best first: boosts on raw scores, then the decay over the best
    ``keep`` boosted hits (all without ``keep``). Equal scores: the smaller key (``keys_of``) first."""
    if not hits:
        return hits
    scores, views, rows = _arrays(hits)
    groups = _by_view(views, rows)
    desc = larger_is_better(metric)
    if plan.boosts:
        values = [_boost_values(coll, b, groups, len(hits)) for b in plan.boosts]
        scores = apply_boost(scores, combine_boosts(values, plan.function_mode), plan.boost_mode)
        if plan.decay is not None and keep is not None and keep < len(hits):
            top = np.argsort(-scores if desc else scores, kind="stable")[:keep]
            scores, views, rows = scores[top], views[top], rows[top]
            groups = _by_view(views, rows)
    if plan.decay is not None:
        scores = greater_is_better(scores, metric) * plan.decay.factors(_field_values(plan.decay, groups, len(rows)))
        desc = True
    primary = -scores if desc else scores
    if keys_of is not None and len(np.unique(scores)) < len(scores):  # ties: the keys decide, as in Milvus
        keys = np.asarray(keys_of(list(zip(scores.tolist(), views.tolist(), rows.tolist()))))
        order = np.lexsort((keys, primary))
    else:
        order = np.argsort(primary, kind="stable")
    return list(zip(scores[order].tolist(), views[order].tolist(), rows[order].tolist()))


def decay_hybrid(decay: Decay, runs: list[tuple[str, list[Hit]]], keys_of: Callable[[list[Hit]], list[Any]]) -> list[Hit]:
    """One query's hybrid hits: per key the best larger-is-better score of any sub-search, times its decay."""
    all_hits = [h for _, hits in runs for h in hits]
    if not all_hits:
        return []
    scores = np.concatenate([greater_is_better(_arrays(hits)[0], m) for m, hits in runs if hits])
    _, views, rows = _arrays(all_hits)
    keys = np.asarray(keys_of(all_hits))
    uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, inv.ravel(), scores)
    views, rows = views[first], rows[first]
    final = best * decay.factors(_field_values(decay, _by_view(views, rows), len(rows)))
    order = np.lexsort((uniq, -final))  # ties: the smaller key first
    return list(zip(final[order].tolist(), views[order].tolist(), rows[order].tolist()))


def _arrays(hits: list[Hit]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hits as arrays: scores (float64), segment views (object) and rows (int64)."""
    scores, views, rows = zip(*hits)
    return (np.array(scores, dtype=np.float64), np.fromiter(views, dtype=object, count=len(hits)),
            np.array(rows, dtype=np.int64))


def _by_view(views: np.ndarray, rows: np.ndarray) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Per segment view: (view, positions in the hits, rows)."""
    ids = np.fromiter(map(id, views), dtype=np.int64, count=len(views))
    _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(inv.ravel(), kind="stable")
    bounds = np.searchsorted(inv.ravel()[order], np.arange(len(first) + 1))
    return [(views[f], order[a:b], rows[order[a:b]]) for f, a, b in zip(first.tolist(), bounds[:-1], bounds[1:])]


def _boost_values(coll: Any, boost: Boost, groups, n: int) -> np.ndarray:
    """The boost's value per hit; NaN where its filter does not match."""
    out = np.full(n, np.nan)
    flt = coll.filter_plan(boost.filter, None) if boost.filter else None
    for view, pos, rows in groups:
        hit = np.ones(len(rows), dtype=bool) if flt is None else view.segment.filter_result(flt, view)[rows]
        value = np.full(len(rows), boost.weight)
        if boost.seed is not None:
            if boost.random_field:
                vals, valid = _column(view, boost.random_field, rows)
                key = np.zeros(len(rows), np.int64) if vals is None else vals.astype(np.int64)
                if valid is not None:
                    key = np.where(valid, key, 0)
            else:
                key = rows + view.segment.id
            value = value * murmur_random(key, boost.seed)
        out[pos[hit]] = value[hit]
    return out


def _field_values(decay: Decay, groups, n: int) -> np.ndarray:
    """The decay field's values per hit as float64; a null (or a field the segment predates) reads as infinitely far."""
    out = np.empty(n)
    for view, pos, rows in groups:
        vals, valid = _column(view, decay.field, rows)
        if vals is None:
            out[pos] = np.inf
            continue
        vals = vals.astype(np.float64)
        out[pos] = vals if valid is None else np.where(valid, vals, np.inf)
    return out


def _column(view: Any, name: str, rows: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Field ``name`` at ``rows`` and its validity (None: all valid); (None, None) when the segment predates it."""
    try:
        col = view.column(name)
    except KeyError:
        return None, None
    vals = np.asarray(col.values)[rows]
    return vals, (None if col.valid is None else np.asarray(col.valid)[rows])


def search_plan(coll: Any, ranker: dict[str, Any] | None) -> RerankPlan | None:
    """The validated plan of a single search's ranker (None without one); boost filters compiled up front."""
    if not ranker:
        return None
    plan = parse_function_score(ranker, coll.schema)
    for b in plan.boosts:
        if b.filter:
            coll.filter_plan(b.filter, None)  # a bad filter fails here, before any search work
    return plan


def hybrid_ranker(coll: Any, ranker: dict[str, Any]) -> tuple[dict[str, Any], Decay | None]:
    """A hybrid search's ranker as the strategy form the engine fuses with, or the decay that replaces fusion."""
    if not is_function_score(ranker):
        return ranker, None
    plan = parse_function_score(ranker, coll.schema, hybrid=True)
    if plan.fusion is not None:
        return {"strategy": plan.fusion.strategy, "params": plan.fusion.params}, None
    return {}, plan.decay


#: Metrics whose larger scores are better (Milvus's "positively related" metrics).
_POSITIVE = frozenset({"IP", "COSINE", "BM25", "MHJACCARD", "MAX_SIM", "MAX_SIM_IP", "MAX_SIM_COSINE"})


def _normalized(scores: np.ndarray, metric: str) -> np.ndarray:
    """Milvus's ``norm_score``: each metric's scores mapped into [0, 1], larger better."""
    m = metric.upper()
    if m == "COSINE":
        return (1.0 + scores) * 0.5
    if m == "BM25":
        return 2.0 * np.arctan(scores) / np.pi
    if m in _POSITIVE:
        return 0.5 + np.arctan(scores) / np.pi
    return 1.0 - 2.0 * np.arctan(scores) / np.pi


def fuse(ranker: dict[str, Any], runs: list[tuple[str, list[Hit]]],
         keys_of: Callable[[list[Hit]], list[Any]]) -> list[Hit]:
    """One query's hybrid hits fused by an ``rrf`` or ``weighted`` ranker, as Milvus fuses them.

    rrf: ``sum 1 / (k + rank)`` (ranks from 1). weighted: ``sum weight x score``, each score
    normalised with ``norm_score``; without it, distances become ``1 - 2·atan(d)/π`` when the
    sub-searches mix larger- and smaller-is-better metrics, and scores stay as they are otherwise
    (then smaller is better when every metric is a distance). Equal scores: the smaller key first.
    """
    strategy = str(ranker.get("strategy") or "rrf").lower()
    params = ranker.get("params") or {}
    all_hits = [h for _, hits in runs for h in hits]
    if strategy == "weighted":
        weights = [float(w) for w in params.get("weights") or []]
        if len(weights) != len(runs):
            raise ParamError(f"WeightedRanker has {len(weights)} weights for {len(runs)} requests")
    if not all_hits:
        return []
    _, views, rows = _arrays(all_hits)
    uniq, first, inv = np.unique(np.asarray(keys_of(all_hits)), return_index=True, return_inverse=True)
    inv = inv.ravel()
    total = np.zeros(len(uniq))
    positive = [m.upper() in _POSITIVE for m, _ in runs]
    mixed = any(positive) and not all(positive)
    desc = True
    start = 0
    for i, (metric, hits) in enumerate(runs):
        n = len(hits)
        if not n:
            continue
        if strategy == "rrf":
            part = 1.0 / (float(params.get("k", 60)) + np.arange(1, n + 1))
        else:
            s = _arrays(hits)[0]
            if params.get("norm_score", False):
                s = _normalized(s, metric)
            elif mixed and not positive[i]:
                s = 1.0 - 2.0 * np.arctan(s) / np.pi
            part = weights[i] * s
        np.add.at(total, inv[start:start + n], part)
        start += n
    if strategy == "weighted" and not params.get("norm_score", False) and not mixed:
        desc = all(positive)
    order = np.lexsort((uniq, -total if desc else total))
    return list(zip(total[order].tolist(), views[first][order].tolist(), rows[first][order].tolist()))
