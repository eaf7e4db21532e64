"""Search of a struct's vector sub-field with embedding lists (the MAX_SIM metrics), exactly.

Each row's elements hold one vector each in the sub-field; a query is a
list of vectors. A row scores, for MAX_SIM_IP and MAX_SIM_COSINE (and
MAX_SIM, which is MAX_SIM_COSINE), the sum over the query's vectors of the
best similarity to any of the row's vectors; for MAX_SIM_L2 the sum of the
smallest squared L2 distances (smaller is better). Rows whose struct list
is null or empty never match. The scores of one segment come from one
matrix product per query and a segmented max (``np.maximum.reduceat``).
"""

from __future__ import annotations

import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._errors import ParamError
from .._schema import StructFieldSchema
from .._types import DataType
from ..data._emb_lists import EmbeddingLists

if TYPE_CHECKING:
    from ._collection import Collection
    from ._reads import Reader

#: The metrics of embedding-list search; MAX_SIM is MAX_SIM_COSINE.
MAX_SIM_METRICS = ("MAX_SIM", "MAX_SIM_COSINE", "MAX_SIM_IP", "MAX_SIM_L2")
_PATH = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[([A-Za-z_][A-Za-z0-9_]*)\]$")


def sub_vector_field(coll: Collection, anns_field: str) -> tuple[StructFieldSchema, Any]:
    """The struct field and its vector sub-field named by ``struct[sub]``; `ParamError` otherwise."""
    m = _PATH.match(anns_field or "")
    f = coll.schema.field(m.group(1)) if m else None
    s = f.field(m.group(2)) if m and isinstance(f, StructFieldSchema) else None
    if s is None or s.dtype is not DataType.FLOAT_VECTOR:
        subs = [f"{st.name}[{x.name}]" for st in coll.schema.struct_fields for x in st.fields if x.dtype.is_vector]
        raise ParamError(f"anns_field {anns_field!r}: embedding lists search a struct's vector sub-field, "
                         f"written as struct[sub]; {coll.name!r} has {subs or 'none'}")
    assert isinstance(f, StructFieldSchema)
    return f, s


def emb_list_metric(coll: Collection, r: rq.Search) -> str:
    """The search's metric: its own, else its index's, else MAX_SIM_COSINE; `ParamError` if not a MAX_SIM one."""
    d = coll.index_for(r.anns_field)
    metric = (r.metric_type or (d.metric_type if d else "") or "MAX_SIM_COSINE").upper()
    if metric not in MAX_SIM_METRICS:
        raise ParamError(f"metric_type {metric!r}: a search with embedding lists on {r.anns_field!r} takes one "
                         f"of {', '.join(MAX_SIM_METRICS)}")
    if d is not None and r.metric_type and d.metric_type.upper() != metric:
        raise ParamError(f"metric_type {r.metric_type!r} does not match the index on {r.anns_field!r}, "
                         f"which uses {d.metric_type}")
    return metric


def emb_list_hits(reads: Reader, coll: Collection, r: rq.Search) -> list[list[tuple[float, Any, int]]]:
    """Per query, the best (score, view, row) hits, best first, after offset."""
    f, s = sub_vector_field(coll, r.anns_field)
    metric = emb_list_metric(coll, r)
    if r.group_by_field or r.ranker:
        raise ParamError("a search with embedding lists takes no group_by_field or ranker")
    if not isinstance(r.data, EmbeddingLists):
        raise ParamError(f"data: {r.anns_field!r} is searched with embedding lists; expected EmbeddingList "
                         "queries (each a list of vectors)")
    queries = r.data.shaped(s.dim or 0)
    cosine = metric != "MAX_SIM_IP" and metric != "MAX_SIM_L2"
    if cosine:
        queries = [_unit(q) for q in queries]
    want = r.limit + r.offset
    per_q: list[list[tuple[float, Any, int]]] = [[] for _ in queries]
    for view, mask in reads._masks(coll, reads._parts(coll, r.partition_names), r.filter, r.filter_params,
                                   allow_none=True, shared=True):
        rows, flat, starts = _elements(view, f, s.name, mask)
        if not len(rows):
            continue
        if cosine:
            flat = _unit(flat)
        for qi, q in enumerate(queries):
            scores = _scores(q, flat, starts, metric)
            k = min(want, len(rows))
            top = np.argpartition(-scores if metric != "MAX_SIM_L2" else scores, k - 1)[:k]
            per_q[qi].extend((float(scores[i]), view, int(rows[i])) for i in top)
    best_first = metric != "MAX_SIM_L2"
    return [sorted(q, key=lambda h: h[0], reverse=best_first)[r.offset:want] for q in per_q]


def _unit(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norms == 0, 1, norms)


#: Per sealed segment, its rows' element vectors laid out once: (field, added_seq, sub-field, rows) →
#: (lengths, vectors). ``added_seq`` tells a field dropped and added again under its name from the old one.
_LAID_OUT: weakref.WeakKeyDictionary[Any, dict[tuple[str, int, str, int], tuple[np.ndarray, np.ndarray]]] = \
    weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _layout(view: Any, f: StructFieldSchema, sub: str) -> tuple[np.ndarray, np.ndarray]:
    """Each row's element count and all element vectors end to end, remembered while the segment is sealed."""
    name = f.name
    seg, key = view.segment, (name, f.added_seq, sub, view.n)
    if seg.sealed:
        with _LOCK:
            hit = _LAID_OUT.get(seg, {}).get(key)
        if hit is not None:
            return hit
    values = view.column(name).values[: view.n]
    lens = np.fromiter((len(v) if v else 0 for v in values), dtype=np.int64, count=len(values))
    flat = np.asarray([e[sub] for v in values if v for e in v], dtype=np.float32)
    out = (lens, flat)
    if seg.sealed:
        with _LOCK:
            _LAID_OUT.setdefault(seg, {})[key] = out
    return out


def _elements(view: Any, f: StructFieldSchema, sub: str,
              mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows with elements, their sub-field vectors end to end, and where each row's begin."""
    lens, flat = _layout(view, f, sub)
    ok = lens > 0 if mask is None else (lens > 0) & mask[: view.n]
    rows = np.flatnonzero(ok)
    if not len(rows):
        return rows, flat[:0], rows
    ends = np.cumsum(lens)
    sel = lens[rows]
    starts = np.concatenate(([0], np.cumsum(sel)[:-1]))
    if len(rows) < len(lens):  # the kept rows' elements: each row's range of the whole layout
        first = ends[rows] - sel
        flat = flat[np.repeat(first - starts, sel) + np.arange(int(sel.sum()))]
    return rows, flat, starts


def _scores(q: np.ndarray, flat: np.ndarray, starts: np.ndarray, metric: str) -> np.ndarray:
    if metric == "MAX_SIM_L2":
        d = (q * q).sum(1)[:, None] - 2 * (q @ flat.T) + (flat * flat).sum(1)[None, :]
        return np.minimum.reduceat(np.maximum(d, 0), starts, axis=1).sum(0)
    return np.maximum.reduceat(q @ flat.T, starts, axis=1).sum(0)
