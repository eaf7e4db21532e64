"""The read path: query, get, search and hybrid search over a snapshot.

Per segment: bitmap (visible ∧ filter) → vector index or exact scan →
top-k; then merge across segments, apply offset, grouping and range
limits, and only then gather the requested output fields for the final
hits. Readers never take a collection's write lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import _requests as rq
from .._errors import CollectionNotLoadedError, ParamError
from .._schema import META_FIELD, CollectionSchema
from .._types import DataType, larger_is_better
from ..data import _sparse as sp
from ..data._batch import normalize_pks
from ..data._emb_lists import EmbeddingLists
from ..data._pa import from_numpy, values_at_rows
from ..data._typed import PRESENTED, present
from ..data._vectors import bfloat16_bits_to_float32, float32_to_bfloat16_bits
from ._bm25_search import prepare as bm25_prepare
from ._collection import Collection, Partition
from ._emb_list_search import emb_list_hits, emb_list_metric
from ._functions_apply import text_queries
from ._interim import FreshSegments, interim_search
from ._lite_habits import note_implicit_anns_field, note_unindexed
from ._point_get import PointGets, select_keys
from ._quick_search import quick_search
from ._rerank_hits import candidate_counts, decay_hybrid, fuse, hybrid_ranker, rerank_search, search_plan
from ._segment import SegmentView
from ._zones import read_zone, rezone_hits, rezone_rows
from .index._base import IndexChanged
from .index._bm25 import QueryRows
from .index._params import BINARY_METRICS, FLOAT_METRICS, SPARSE_METRICS, shared_search_params
from .index._subset_cache import mask_facts
from .index._vector_index import exact_range_search, exact_search

if TYPE_CHECKING:
    from ._engine import Engine

COUNT = "count(*)"
_F32 = np.dtype(np.float32)
MAX_TOPK = 16384


#: The metrics an exact search over a field without an index computes, by the field's type (others: dense).
_UNINDEXED_METRICS = {DataType.SPARSE_FLOAT_VECTOR: SPARSE_METRICS, DataType.BINARY_VECTOR: BINARY_METRICS}


def _default_metric(dtype: DataType) -> str:
    if dtype is DataType.SPARSE_FLOAT_VECTOR:
        return "IP"
    if dtype is DataType.BINARY_VECTOR:
        return "HAMMING"
    return "COSINE"


class Reader:
    """The read requests of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.points = PointGets(self, values_at)

    # -- helpers ----------------------------------------------------------------------
    def _parts(self, coll: Collection, names: tuple[str, ...] | list[str]) -> list[Partition]:
        note_unindexed(coll, "a search or query")
        if names:
            parts = [coll.partition(n) for n in names]
            for p in parts:
                if not p.loaded:
                    raise CollectionNotLoadedError(
                        f"collection not loaded[collection={coll.name}][partition={p.name}]: partition "
                        f"{p.name!r} is released; call load_partitions({coll.name!r}, [{p.name!r}]) first")
            return parts
        loaded = [p for p in coll.partitions.values() if p.loaded]
        if not loaded:
            raise CollectionNotLoadedError(
                f"collection not loaded[collection={coll.name}]: call load_collection({coll.name!r}) first")
        return loaded

    def _masks(self, coll: Collection, parts: list[Partition], expr: str, params: dict[str, Any] | None,
               allow_none: bool = False, shared: bool = False):
        """Per segment view, the rows that are visible and match ``expr``.

        With ``allow_none``, a view whose rows all qualify yields None instead of an all-true mask.
        With ``shared``, a mask may be a read-only array the segment remembers (the caller only reads it).
        """
        plan = coll.filter_plan(expr, params)
        snap = coll.snapshot(parts)
        for i, (_, view) in enumerate(snap.views):
            if view.n == 0:
                continue
            # no deletes, nothing newer, no key written again: skip the visibility scan
            every = snap.hidden[i] is None and view.all_visible(snap.seq)
            if plan.matches_all:
                yield view, (None if allow_none else np.ones(view.n, dtype=bool)) if every else snap.live(i)
                continue
            if every:
                mask = view.segment.filter_result(plan, view)
                if not shared:
                    mask = mask.copy()  # callers may change it
            else:
                mask = snap.live(i)
                if mask.any():
                    mask &= view.segment.filter_result(plan, view)
            yield view, mask

    def matching_pks(self, coll: Collection, parts: list[Partition], expr: str, params: dict[str, Any]) -> np.ndarray:
        """Keys of visible rows that match ``expr`` (for delete by filter)."""
        if not (expr or "").strip():
            raise ParamError("delete needs ids or a non-empty filter; to remove every row use truncate_collection")
        out: list[Any] = []
        is_str = coll.schema.primary_field.dtype is DataType.VARCHAR
        for view, mask in self._masks(coll, parts, expr, params):
            rows = np.flatnonzero(mask)
            keys = view.column(coll.schema.primary_field.name).values
            out.extend(keys.take(from_numpy(rows, pa.int64())).to_pylist() if is_str else keys[rows].tolist())
        return np.asarray(out, dtype=object if is_str else np.int64)

    # -- query / get ------------------------------------------------------------------
    def op_query(self, r: rq.Query) -> list[dict[str, Any]]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        parts = self._parts(coll, r.partition_names)
        if r.ids is not None and (few := self.points.get(coll, parts, r)) is not None:
            return few
        fields = list(r.output_fields or [])
        if r.ids is not None and (r.filter or "").strip():
            raise ParamError("query takes either ids or filter, not both")
        check_page(r.offset, r.limit)
        if COUNT in [f.strip().lower() for f in fields]:
            if len(fields) > 1:
                raise ParamError("count(*) cannot be combined with other output fields")
            if r.ids is None:
                total = sum(int(np.count_nonzero(m)) for _, m in self._masks(coll, parts, r.filter, r.filter_params))
            else:
                total = sum(len(rows) for _, rows in self._select(coll, parts, r))
            return [{COUNT: total}]
        if r.ids is None and not (r.filter or "").strip() and r.limit is None:
            raise ParamError("query with an empty filter needs a limit (or output_fields=['count(*)'])")
        names = self._output_names(coll.schema, fields or ["*"])
        runs = self._select(coll, parts, r)
        if r.order_by_pk:
            need = None if r.limit is None or r.limit < 0 else max(0, r.offset or 0) + r.limit
            runs = key_ordered(coll.schema, runs, r.after_pk, need)
        pages = list(self._page(runs, r.offset, r.limit))
        return rezone_rows(coll.schema, self._gather_rows(coll.schema, pages, names),
                           read_zone(self.engine, coll, r.timezone), r.time_fields)

    def _select(self, coll: Collection, parts: list[Partition], r: rq.Query):
        """Per segment view, the positions of the selected rows (by filter or by primary key)."""
        if r.ids is None:
            for view, mask in self._masks(coll, parts, r.filter, r.filter_params):
                yield view, np.flatnonzero(mask)
            return
        yield from select_keys(coll, parts, normalize_pks(coll.schema.primary_field, r.ids))

    @staticmethod
    def _page(selected, offset: int, limit: int | None):
        skip = max(0, offset or 0)
        left = limit if limit is not None and limit >= 0 else None
        for view, rows in selected:
            if skip:
                take = min(skip, len(rows))
                rows, skip = rows[take:], skip - take
            if left is not None:
                rows = rows[:left]
                left -= len(rows)
            if len(rows):
                yield view, rows
            if left == 0:
                return

    def _output_names(self, schema: CollectionSchema, fields: list[str]) -> list[str]:
        names: list[str] = [schema.primary_field.name]
        for f in fields:
            if f == "*":
                names.extend(x.name for x in schema.fields)
                if schema.enable_dynamic_field:
                    names.append(META_FIELD)
            elif schema.field(f) is not None:
                names.append(f)
            elif f == META_FIELD and schema.enable_dynamic_field:
                names.append(META_FIELD)
            elif schema.enable_dynamic_field:
                names.append(META_FIELD + "." + f)
            else:
                raise ParamError(f"output field {f!r} does not exist; fields are {schema.field_names()}")
        return list(dict.fromkeys(names))

    def _gather_rows(self, schema: CollectionSchema, pages, names: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for view, rows in pages:
            out.extend(self._rows_of(schema, view, rows, names))
        return out

    def _rows_of(self, schema: CollectionSchema, view: SegmentView, rows: np.ndarray, names: list[str]):
        plain = [n for n in names if not n.startswith(META_FIELD)]
        cols = [values_at(schema, view, n, rows) for n in plain]
        result = [dict(zip(plain, vals)) for vals in zip(*cols)] if plain else [{} for _ in rows]
        dyn = [n for n in names if n.startswith(META_FIELD)]
        if dyn:
            metas = view.column(META_FIELD).values[rows]
            whole = META_FIELD in dyn
            keys = [n[len(META_FIELD) + 1:] for n in dyn if n != META_FIELD]
            for row, meta in zip(result, metas):
                meta = meta or {}
                if whole:
                    row.update(meta)
                else:
                    row.update({k: meta[k] for k in keys if k in meta})
        return result

    # -- search ---------------------------------------------------------------------
    def op_search(self, r: rq.Search) -> list[list[dict[str, Any]]]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        quick = quick_search(coll, r, MAX_TOPK, values_at, lambda hits: self.shape_search_hits(coll, r, hits))
        if quick is not None:
            return quick
        return self.shape_search_hits(coll, r, self.search_hits(coll, r))

    def shape_search_hits(self, coll: Collection, r: rq.Search, hits) -> list[list[dict[str, Any]]]:
        """Hits as (score, view, row) made into `r`'s hit dicts: its output fields, rounding and time zone."""
        names = self._entity_names(coll.schema, r.output_fields)
        return rezone_hits(coll.schema, self._shape_hits(coll.schema, hits, names, r.round_decimal),
                           read_zone(self.engine, coll, r.timezone), r.time_fields)

    def _field(self, coll: Collection, anns_field: str):
        f = coll.anns_fields.get(anns_field)  # the schema is fixed for the collection's life
        if f is None:
            f = coll.anns_fields[anns_field] = self._find_field(coll, anns_field)
        return f

    def _find_field(self, coll: Collection, anns_field: str):
        if anns_field:
            f = coll.schema.field(anns_field)
            if f is None or not f.dtype.is_vector:
                raise ParamError(f"anns_field {anns_field!r} is not a vector field of {coll.name!r}; "
                                 f"vector fields are {[v.name for v in coll.schema.vector_fields]}")
            return f
        vecs = coll.schema.vector_fields
        if len(vecs) > 1:
            note_implicit_anns_field(coll, vecs[0].name, [v.name for v in vecs])
        return vecs[0]

    def search_hits(self, coll: Collection, r: rq.Search) -> list[list[tuple[float, SegmentView, int]]]:
        """Per query, the best hits as (score, view, row), best first, after offset and grouping."""
        if "[" in r.anns_field or isinstance(r.data, EmbeddingLists):
            return emb_list_hits(self, coll, r)
        f = self._field(coll, r.anns_field)
        d = coll.index_for(f.name)
        metric = (r.metric_type or (d.metric_type if d else "") or _default_metric(f.dtype)).upper()
        if d is not None and r.metric_type and d.metric_type != metric:
            raise ParamError(f"metric_type {r.metric_type!r} does not match the index on {f.name!r}, "
                             f"which uses {d.metric_type}")
        if d is None and metric not in _UNINDEXED_METRICS.get(f.dtype, FLOAT_METRICS):
            raise ParamError(f"metric_type {r.metric_type!r}: field {f.name!r} is {f.dtype.name}, searched "
                             f"exactly; expected one of {', '.join(_UNINDEXED_METRICS.get(f.dtype, FLOAT_METRICS))}")
        check_hits_page(r.limit, r.offset, r.round_decimal)
        plan = search_plan(coll, r.ranker)
        if r.params:
            shared_search_params(d.index_type if d is not None else "FLAT", r.params)
        queries = self._queries(f, text_queries(coll.schema, f, r.data, metric == "BM25"))
        parts = self._parts(coll, r.partition_names)
        want = r.limit + r.offset
        grouped = bool(r.group_by_field)
        k = want * max(1, r.group_size) * 4 if grouped else want
        if plan is not None:  # a ranker may lift hits from further down
            k, keep = candidate_counts(plan, r.limit, r.offset, r.group_size if grouped else 0)
        cand = self._candidates(coll, f, d, metric, queries, k, r, parts)
        if plan is not None:
            keys = lambda hs: self._pk_at(coll.schema, hs)  # noqa: E731
            cand = [rerank_search(coll, plan, metric, q, keep, keys) for q in cand]
        out = []
        for q in cand:
            if grouped:
                q = self._group(coll.schema, q, r)
            out.append(q[r.offset: r.offset + r.limit] if not grouped else q)
        return out

    def _queries(self, f, data: Any) -> Any:
        if type(data) is QueryRows:  # a BM25 function's term counts (see text_queries)
            return data
        if f.dtype is DataType.SPARSE_FLOAT_VECTOR:
            if not sp.issparse(data):
                raise ParamError(f"data: field {f.name!r} is SPARSE_FLOAT_VECTOR; expected sparse query vectors")
            # read only from here on: a CSR float32 matrix is used as it is
            m = data if type(data) is sp.csr_matrix and data.dtype == _F32 else sp.csr_matrix(data, dtype=np.float32)
            if m.nnz and not np.isfinite(m.data).all():
                bad = int(np.searchsorted(m.indptr, np.flatnonzero(~np.isfinite(m.data))[0], side="right") - 1)
                raise ParamError(f"data: query vector {bad} holds NaN or infinity; expected finite numbers")
            return m
        if (type(data) is np.ndarray and data.dtype == _F32 and f.dtype is DataType.FLOAT_VECTOR
                and data.ndim == 2 and data.shape[1] == f.dim and data.flags.c_contiguous):
            check_finite_queries(data)
            return data  # the common case, already as the index wants it
        if type(data) is not np.ndarray and sp.issparse(data):
            raise ParamError(f"data: field {f.name!r} is {f.dtype.name}; got sparse query vectors")
        arr = np.asarray(data)
        width = (f.dim or 0) // 8 if f.dtype is DataType.BINARY_VECTOR else f.dim
        if arr.ndim != 2 or arr.shape[1] != width:
            raise ParamError(f"data: query vectors have shape {arr.shape}; field {f.name!r} expects dim={f.dim}")
        if f.dtype is DataType.BINARY_VECTOR:
            return np.ascontiguousarray(arr, dtype=np.uint8)
        check_finite_queries(arr)
        if f.dtype is DataType.FLOAT16_VECTOR:
            return arr.astype(np.float16)
        if f.dtype is DataType.BFLOAT16_VECTOR:
            return float32_to_bfloat16_bits(arr.astype(np.float32))
        if f.dtype is DataType.INT8_VECTOR:
            return arr.astype(np.int8)
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _candidates(self, coll, f, d, metric, queries, k, r, parts):
        params = r.params or {}  # read, never changed
        ranged = "radius" in params
        nq = queries.shape[0]
        per_q: list[list[tuple[float, SegmentView, int]]] = [[] for _ in range(nq)]
        segments = 0
        bm = bm25_prepare(coll, f.name, d, queries, params) if metric == "BM25" else None
        fresh_views = FreshSegments(f, d, metric, queries, k, params)
        for view, mask in self._masks(coll, parts, r.filter, r.filter_params, allow_none=True, shared=True):
            live = view.n if mask is None else mask_facts(mask).count
            if live == 0:
                continue
            allow = None if live == view.n else mask
            if bm is not None:  # global statistics: see _bm25_search
                segments += bm.collect(per_q, view, allow, min(k, live), params if ranged else None)
                continue
            vi = view.segment.vindex.get(f.name) if view.segment.sealed else None
            use = vi[1] if vi is not None and d is not None and vi[0] == d.signature else None
            vecs = view.vectors(f.name) if use is None else None  # a mapped segment's vectors: read if used
            if ranged:
                kw = {"radius": params["radius"], "range_filter": params.get("range_filter"), "allow": allow}
                try:
                    res = use.range_search(queries, params=params, rows=view.n, **kw) if use is not None else \
                        exact_range_search(f.dtype, metric, vecs, queries, **kw)
                except IndexChanged:  # merged into another segment meanwhile
                    res = exact_range_search(f.dtype, metric, view.vectors(f.name), queries, **kw)
                for qi, (scores, rows) in enumerate(res):
                    per_q[qi].extend((float(s), view, int(i)) for s, i in zip(scores, rows))
                continue
            if allow is None and (use is None or view.segment.interim) and fresh_views.take(view, use):
                continue  # searched with the others through their interim indexes (or its own), below
            kk = min(k, live)
            if use is not None:
                try:
                    scores, rows = use.search(queries, kk, allow=allow, params=params, rows=view.n)
                except IndexChanged:  # merged into another segment meanwhile
                    use = None
            fresh = None if use is not None else interim_search(view, f, d, metric, queries, kk, allow, params)
            if fresh is not None:
                scores, rows = fresh
            elif use is None:
                scores, rows = exact_search(f.dtype, metric, view.vectors(f.name), queries, kk, allow=allow,
                                            sq_norms=view.sq_norms(f.name))
            segments += 1
            for qi, (srow, rrow) in enumerate(zip(scores.tolist(), rows.tolist())):
                per_q[qi].extend([(s, view, i) for s, i in zip(srow, rrow) if i >= 0])
        segments += fresh_views.collect(per_q)
        cap = k if not ranged else min(k, MAX_TOPK)
        if segments <= 1 and not ranged:  # one segment's hits come best first already
            return [q[:cap] for q in per_q]
        rev = larger_is_better(metric)
        return [sorted(q, key=lambda h: h[0], reverse=rev)[:cap] for q in per_q]

    def _group(self, schema: CollectionSchema, hits, r: rq.Search | rq.HybridSearch):
        f = schema.field(r.group_by_field)
        if f is None or f.dtype.is_vector or f.dtype is DataType.JSON:
            raise ParamError(f"group_by_field {r.group_by_field!r} must be a scalar field of the collection")
        groups: dict[Any, list] = {}
        order: list[Any] = []
        for h in hits:
            key = values_at(schema, h[1], f.name, np.array([h[2]]))[0]
            g = groups.setdefault(key, [])
            if not g:
                order.append(key)
            if len(g) < r.group_size:
                g.append(h)
        keys = order[r.offset: r.offset + r.limit]
        if r.strict_group_size:
            keys = [k for k in keys if len(groups[k]) >= r.group_size]
        return [h for k in keys for h in groups[k]]

    def _shape_hits(self, schema: CollectionSchema, hits, names: list[str], round_decimal: int):
        out = []
        for q in hits:
            ids = self._pk_at(schema, q)
            ents = self._bulk(schema, q, names) if names else [{} for _ in q]
            if round_decimal is not None and round_decimal >= 0:
                out.append([{"id": id_, "distance": round(h[0], round_decimal), "entity": ent}
                            for h, id_, ent in zip(q, ids, ents)])
            else:
                out.append([{"id": id_, "distance": h[0], "entity": ent} for h, id_, ent in zip(q, ids, ents)])
        return out

    def _entity_names(self, schema: CollectionSchema, fields: tuple[str, ...] | None) -> list[str]:
        if not fields:
            return []
        names = self._output_names(schema, list(fields))
        pk = schema.primary_field.name
        if pk not in fields and "*" not in fields:
            names.remove(pk)
        return names

    def _pk_at(self, schema: CollectionSchema, hits) -> list[Any]:
        if hits:
            view = hits[0][1]
            rows = [h[2] for h in hits if h[1] is view]
            if len(rows) == len(hits):  # one segment: one gather, no grouping
                col = view.column(view.segment.pk_name)
                if type(col.values) is np.ndarray and col.valid is None:  # INT64 keys
                    return col.values[rows].tolist()
                return values_at(schema, view, view.segment.pk_name, np.array(rows))
        return self._bulk(schema, hits, [schema.primary_field.name], pk_only=True)

    def _bulk(self, schema: CollectionSchema, hits, names: list[str], pk_only: bool = False) -> list[Any]:
        """Values for hits, gathered per segment in one vectorised step each."""
        if hits:
            view: SegmentView = hits[0][1]
            rows_1 = np.asarray([h[2] for h in hits if h[1] is view])
            if len(rows_1) == len(hits):  # one segment (the usual case): its values in hit order
                return values_at(schema, view, names[0], rows_1) if pk_only else self._rows_of(schema, view, rows_1, names)
        out: list[Any] = [None] * len(hits)
        by_view: dict[int, tuple[SegmentView, list[int], list[int]]] = {}
        for i, (_, view, row) in enumerate(hits):
            entry = by_view.setdefault(id(view), (view, [], []))
            entry[1].append(i)
            entry[2].append(row)
        for view, idxs, rows in by_view.values():
            if pk_only:
                vals = values_at(schema, view, names[0], np.asarray(rows))
                for i, v in zip(idxs, vals):
                    out[i] = v
            else:
                ents = self._rows_of(schema, view, np.asarray(rows), names)
                for i, e in zip(idxs, ents):
                    out[i] = e
        return out

    # -- hybrid -------------------------------------------------------------------------
    def op_hybrid_search(self, r: rq.HybridSearch) -> list[list[dict[str, Any]]]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        if not r.reqs:
            raise ParamError("hybrid_search needs at least one AnnSearchRequest")
        check_hits_page(r.limit, r.offset, r.round_decimal)
        ranker, decay = hybrid_ranker(coll, r.ranker)
        runs = []
        for sub in r.reqs:
            sub_r = rq.Search(**{**sub.__dict__, "partition_names": sub.partition_names or r.partition_names,
                                  "output_fields": None, "offset": 0, "group_by_field": "",
                                  "limit": max(sub.limit, r.limit * r.group_size * 3 if r.group_by_field else 0)})
            if "[" in sub.anns_field:
                metric = emb_list_metric(coll, sub)
            else:
                f = self._field(coll, sub.anns_field)
                d = coll.index_for(f.name)
                metric = (sub.metric_type or (d.metric_type if d else "") or _default_metric(f.dtype)).upper()
            runs.append((metric, self.search_hits(coll, sub_r)))
        nq = len(runs[0][1])
        if any(len(h) != nq for _, h in runs):
            raise ParamError("every AnnSearchRequest of a hybrid search needs the same number of query vectors")
        keys = lambda hs: self._pk_at(coll.schema, hs)  # noqa: E731
        fused = [decay_hybrid(decay, [(m, h[qi]) for m, h in runs], keys) if decay is not None
                 else fuse(ranker, [(m, h[qi]) for m, h in runs], keys) for qi in range(nq)]
        fused = [self._group(coll.schema, q, r) if r.group_by_field else q[r.offset: r.offset + r.limit] for q in fused]
        names = self._entity_names(coll.schema, r.output_fields)
        return rezone_hits(coll.schema, self._shape_hits(coll.schema, fused, names, r.round_decimal),
                           read_zone(self.engine, coll, r.timezone), r.time_fields)


def values_at(schema: CollectionSchema, view: SegmentView, name: str, rows: np.ndarray) -> list[Any]:
    """Python values of field ``name`` at ``rows`` of a segment view, as users get them back."""
    seg = view.segment
    dtype = seg.dtypes[name]
    if dtype.is_vector:
        v = view.vectors(name)
        if dtype is DataType.SPARSE_FLOAT_VECTOR:
            m = v[rows]
            return [dict(zip(m.indices[m.indptr[i]:m.indptr[i + 1]].tolist(),
                             m.data[m.indptr[i]:m.indptr[i + 1]].tolist())) for i in range(m.shape[0])]
        sel = v[rows]
        if dtype is DataType.BINARY_VECTOR:
            return [bytes(x) for x in sel]
        if dtype is DataType.BFLOAT16_VECTOR:
            sel = bfloat16_bits_to_float32(sel)
        return sel.tolist()
    col = view.column(name)
    if dtype in PRESENTED:
        return present(col, rows)
    if isinstance(col.values, (pa.Array, pa.ChunkedArray)):
        return values_at_rows(col.values, rows)
    vals = col.values[rows]
    out = vals.tolist()
    if col.valid is not None:
        valid = col.valid[rows]
        out = [v if ok else None for v, ok in zip(out, valid)]
    return out


def key_ordered(schema: CollectionSchema, runs, after: Any, need: int | None):
    """The first ``need`` (all with None) selected rows with a key above ``after``, in primary-key order.

    Yields runs per segment view, as the selection does. Only the keys of the selected rows are read,
    and only the first ``need`` of them are fully sorted, so a page costs one pass over the selection.
    """
    pk = schema.primary_field.name
    views: list[SegmentView] = []
    keys: list[Any] = []
    positions: list[np.ndarray] = []
    for view, rows in runs:
        if len(rows):
            values = view.column(pk).values
            if isinstance(values, (pa.Array, pa.ChunkedArray)):
                taken = values.take(from_numpy(rows, pa.int64()))
                if isinstance(taken, pa.ChunkedArray):
                    taken = taken.combine_chunks()
                keys.append(taken.cast(pa.large_string()))
            else:
                keys.append(np.asarray(values)[rows])
            views.append(view)
            positions.append(np.asarray(rows, dtype=np.int64))
    if not views or need == 0:
        return
    owner = np.repeat(np.arange(len(views)), [len(p) for p in positions])
    rows = np.concatenate(positions)
    if isinstance(keys[0], np.ndarray):
        order = _ordered_prefix(np.concatenate(keys), after, need)
    else:
        order = _ordered_prefix_str(pa.concat_arrays(keys), after, need)
    if not len(order):
        return
    owner, rows = owner[order], rows[order]
    cuts = np.flatnonzero(np.diff(owner)) + 1
    for start, end in zip(np.r_[0, cuts], np.r_[cuts, len(order)]):
        yield views[owner[start]], rows[start:end]


def _ordered_prefix(keys: np.ndarray, after: Any, need: int | None) -> np.ndarray:
    """Positions of the ``need`` smallest keys above ``after``, smallest first (ties in input order)."""
    cand = np.arange(len(keys)) if after is None else np.flatnonzero(keys > after)
    if need is not None and need < len(cand):
        cand = cand[np.argpartition(keys[cand], need - 1)[:need]]
        cand.sort()  # ties in input order, as a stable sort of the whole selection keeps them
    return cand[np.argsort(keys[cand], kind="stable")]


def _ordered_prefix_str(keys: pa.Array, after: Any, need: int | None) -> np.ndarray:
    """As ``_ordered_prefix``, for string keys (UTF-8 byte order is code-point order, as Python compares)."""
    cand = np.arange(len(keys))
    if after is not None:
        cand = np.flatnonzero(pc.greater(keys, pa.scalar(str(after), pa.large_string())).to_numpy(zero_copy_only=False))
        keys = keys.take(from_numpy(cand, pa.int64()))
    if need is not None and need < len(cand):
        top = np.sort(pc.select_k_unstable(keys, need, sort_keys=[("", "ascending")]).to_numpy())
        cand, keys = cand[top], keys.take(from_numpy(top, pa.int64()))
    return cand[pc.sort_indices(keys).to_numpy()]


# -- argument checks ----------------------------------------------------------------------


def check_page(offset: Any, limit: Any) -> None:
    """Refuse a negative query offset, and a limit that is neither positive nor absent."""
    if isinstance(offset, bool) or not isinstance(offset, (int, np.integer)) or offset < 0:
        raise ParamError(f"offset: got {offset!r}, expected an integer >= 0")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ParamError(f"limit: got {limit!r}, expected a positive integer (or none, for every row)")


def check_finite_queries(arr: np.ndarray) -> None:
    """Refuse query vectors holding NaN or infinity (they match nothing and would answer ``[[]]``)."""
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=-1).reshape(-1))[0])
        raise ParamError(f"data: query vector {i} holds NaN or infinity; expected finite numbers")


def check_hits_page(limit: int, offset: int, round_decimal: Any) -> None:
    """Refuse a page of hits out of range (search and hybrid search) before any work.

    The index's own search params (``ef``, ``nprobe``, ``radius``...) are
    checked by `shared_search_params` for the index the field has.
    """
    if limit < 1 or offset < 0 or limit + offset > MAX_TOPK:
        raise ParamError(f"limit {limit} and offset {offset}: expected limit >= 1, offset >= 0 and "
                         f"limit + offset <= {MAX_TOPK}")
    rd = round_decimal
    if isinstance(rd, bool) or not isinstance(rd, int) or not -1 <= rd <= 6:
        raise ParamError(f"round_decimal: got {rd!r}, expected an integer in -1..6 (-1 keeps distances as they are)")

