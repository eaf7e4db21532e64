"""Milvus protobuf ⇄ Heron requests for the data operations: insert, delete, query, search, hybrid search.

Pure functions, no I/O. Server side, ``*_from_pb`` turn a Milvus request into
a `heron._requests` object and ``*_result_to_pb`` turn the engine's answer
into the Milvus reply; client side, ``*_to_pb`` and ``*_result_from_pb`` do
the reverse. ``schema`` arguments are the target collection's schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from .. import _requests as rq
from .._errors import ParamError
from .._partial import partial_schema
from .._schema import META_FIELD, CollectionSchema
from .._types import DataType
from . import _compat as compat
from ._aggregation import AggregatedHits, buckets_from_pb, buckets_to_pb, request_spec, set_request_spec
from ._composite import IteratorPage, SearchIteratorPage, timestamp
from ._data import (
    COUNT,
    batch_from_fields,
    batch_to_fields,
    fields_to_rows,
    hits_from_pb,
    hits_to_pb,
    result_names,
    rows_to_fields,
)
from ._highlight import highlighter_from_pb, highlighter_to_pb, highlights_from_pb, highlights_to_pb
from ._rerank import function_score_from_pb, function_score_to_pb
from ._schema import consistency_name, consistency_number, kv_dict, kv_pairs, loads_or_str
from ._text_queries import queries_from_placeholder, queries_to_placeholder

# -- expression template values ---------------------------------------------------------------


def _array_value(a: schema_pb2.TemplateArrayValue) -> list[Any]:
    which = a.WhichOneof("data")
    if which is None:
        return []
    if which == "array_data":
        return [_array_value(x) for x in a.array_data.data]
    if which == "json_data":
        return [json.loads(x) for x in a.json_data.data]
    return list(getattr(a, which).data)


def template_values(values: Any) -> dict[str, Any]:
    """``expr_template_values`` as a plain dict of Python values."""
    out: dict[str, Any] = {}
    for key, v in values.items():
        which = v.WhichOneof("val")
        out[key] = (
            _array_value(v.array_val) if which == "array_val" else (getattr(v, which) if which else None)
        )
    return out


def _template_array(values: list[Any]) -> schema_pb2.TemplateArrayValue:
    a = schema_pb2.TemplateArrayValue()
    if values and all(isinstance(x, bool) for x in values):
        a.bool_data.data.extend(values)
    elif values and all(isinstance(x, int) and not isinstance(x, bool) for x in values):
        a.long_data.data.extend(values)
    elif values and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values):
        a.double_data.data.extend(float(x) for x in values)
    elif values and all(isinstance(x, str) for x in values):
        a.string_data.data.extend(values)
    elif values and all(isinstance(x, (list, tuple)) for x in values):
        a.array_data.data.extend(_template_array(list(x)) for x in values)
    else:
        a.json_data.data.extend(json.dumps(x).encode() for x in values)
    return a


def template_to_pb(params: dict[str, Any]) -> dict[str, schema_pb2.TemplateValue]:
    out = {}
    for key, v in params.items():
        if isinstance(v, bool):
            out[key] = schema_pb2.TemplateValue(bool_val=v)
        elif isinstance(v, (int, np.integer)):
            out[key] = schema_pb2.TemplateValue(int64_val=int(v))
        elif isinstance(v, (float, np.floating)):
            out[key] = schema_pb2.TemplateValue(float_val=float(v))
        elif isinstance(v, str):
            out[key] = schema_pb2.TemplateValue(string_val=v)
        else:
            out[key] = schema_pb2.TemplateValue(array_val=_template_array(list(v)))
    return out


# -- primary keys in expressions ------------------------------------------------------------------

_PK_IN = re.compile(r"^\s*(\w+)\s+in\s+\[(.*)\]\s*$", re.S)
_ITEM = re.compile(r"""^\s*(?:(-?\d+)|'([^'\\]*)'|"([^"\\]*)")\s*$""")


def pks_of_expr(expr: str, schema: CollectionSchema) -> list[Any] | None:
    """The keys of ``pk in [k1, k2, ...]`` (what Milvus clients send for get and delete by ids), else None."""
    m = _PK_IN.match(expr or "")
    pk = schema.primary_field
    if m is None or m.group(1) != pk.name:
        return None
    inner = m.group(2)
    if not inner.strip():
        return []
    out: list[Any] = []
    for item in inner.split(","):
        im = _ITEM.match(item)
        if im is None:
            return None
        num, s1, s2 = im.groups()
        if (num is not None) != (pk.dtype is DataType.INT64):
            return None
        out.append(int(num) if num is not None else (s1 if s1 is not None else s2))
    return out


def pks_to_expr(pk_name: str, ids: list[Any]) -> str:
    """Keys as the ``pk in [...]`` expression Milvus clients send."""
    items = [json.dumps(k) if isinstance(k, str) else str(int(k)) for k in ids]
    return f"{pk_name} in [{', '.join(items)}]"


# -- insert / upsert / delete ------------------------------------------------------------------------


def insert_from_pb(msg: Any, db: str, schema: CollectionSchema, upsert: bool) -> rq.Insert:
    """An Insert or Upsert message as a Heron insert; a partial upsert's batch holds the fields it sends."""
    partial = upsert and bool(getattr(msg, "partial_update", False))
    _refuse_field_ops(msg)
    if partial:
        given = [fd.field_name for fd in msg.fields_data if not fd.is_dynamic and fd.field_name != META_FIELD]
        schema = partial_schema(schema, given)
    batch = batch_from_fields(schema, msg.fields_data, msg.num_rows, for_upsert=upsert)
    return rq.Insert(db, msg.collection_name, batch, msg.partition_name, upsert, partial)


def _refuse_field_ops(msg: Any) -> None:
    """Array operators in an upsert (pymilvus's ``field_ops``: ARRAY_APPEND, ARRAY_REMOVE) are not carried out."""
    if "field_ops" not in msg.DESCRIPTOR.fields_by_name:
        return
    for op in msg.field_ops:
        if op.op:  # 0 is REPLACE, what an upsert does anyway
            name = op.DESCRIPTOR.enum_types_by_name["OpType"].values_by_number[op.op].name
            raise ParamError(f"field_ops: got {name} for field {op.field_name!r}; expected REPLACE "
                             "(array operators in upserts are not supported)")


def insert_to_pb(r: rq.Insert, schema: CollectionSchema) -> Any:
    cls = milvus_pb2.UpsertRequest if r.upsert else milvus_pb2.InsertRequest
    msg = cls(
        db_name=r.db_name,
        collection_name=r.collection_name,
        partition_name=r.partition_name,
        fields_data=batch_to_fields(schema, r.batch),
        num_rows=r.batch.num_rows,
    )
    if r.partial_update:
        if "partial_update" not in msg.DESCRIPTOR.fields_by_name:
            raise ParamError("partial_update=True: the installed pymilvus protocol has no partial upsert "
                             "(it came with pymilvus 2.6); expected pymilvus >= 2.6")
        msg.partial_update = True
    return msg


def _ids_pb(ids: list[Any]) -> schema_pb2.IDs:
    if ids and isinstance(ids[0], str):
        return schema_pb2.IDs(str_id=schema_pb2.StringArray(data=ids))
    return schema_pb2.IDs(int_id=schema_pb2.LongArray(data=[int(i) for i in ids]))


def _ids_list(ids: schema_pb2.IDs) -> list[Any]:
    which = ids.WhichOneof("id_field")
    return list(getattr(ids, which).data) if which else []


def mutation_result_to_pb(result: dict[str, Any]) -> milvus_pb2.MutationResult:
    ids = list(result.get("ids", []))
    return milvus_pb2.MutationResult(
        IDs=_ids_pb(ids),
        insert_cnt=int(result.get("insert_count", 0)),
        upsert_cnt=int(result.get("upsert_count", 0)),
        delete_cnt=int(result.get("delete_count", 0)),
        succ_index=list(range(len(ids))),
    )


def insert_result_from_pb(resp: milvus_pb2.MutationResult, r: rq.Insert) -> dict[str, Any]:
    key, count = ("upsert_count", resp.upsert_cnt) if r.upsert else ("insert_count", resp.insert_cnt)
    return {key: int(count), "ids": _ids_list(resp.IDs)}


def delete_from_pb(msg: milvus_pb2.DeleteRequest, db: str, schema: CollectionSchema) -> rq.Delete:
    ids = pks_of_expr(msg.expr, schema)
    if ids is not None:
        return rq.Delete(db, msg.collection_name, ids, "", {}, msg.partition_name)
    return rq.Delete(
        db, msg.collection_name, None, msg.expr, template_values(msg.expr_template_values), msg.partition_name
    )


def delete_to_pb(r: rq.Delete, pk_name: str) -> milvus_pb2.DeleteRequest:
    expr = pks_to_expr(pk_name, list(r.ids)) if r.ids is not None else r.filter
    return milvus_pb2.DeleteRequest(
        db_name=r.db_name,
        collection_name=r.collection_name,
        partition_name=r.partition_name,
        expr=expr,
        expr_template_values=template_to_pb(r.filter_params),
    )


def delete_result_from_pb(resp: milvus_pb2.MutationResult, r: rq.Delete) -> dict[str, Any]:
    return {"delete_count": int(resp.delete_cnt)}


# -- query ----------------------------------------------------------------------------------------------

_ORDER_KEY = "heron.order_by_pk"
_AFTER_KEY = "heron.after_pk"
#: pymilvus's query iterator marks its pages (and its offset seeks, with "False") with this key; it
#: moves its cursor with ``pk > last`` and so needs every page in primary-key order, as Milvus gives it.
_ITERATOR_KEY = "iterator"


def query_from_pb(msg: milvus_pb2.QueryRequest, db: str, schema: CollectionSchema) -> rq.Query:
    params = kv_dict(msg.query_params)
    limit = _int_param(params, "limit") if params.get("limit") not in (None, "", "-1") else None
    ids = pks_of_expr(msg.expr, schema)
    after = loads_or_str(params[_AFTER_KEY]) if _AFTER_KEY in params else None
    return rq.Query(
        db,
        msg.collection_name,
        "" if ids is not None else msg.expr,
        tuple(msg.output_fields) or None,
        ids,
        tuple(msg.partition_names),
        limit,
        _int_param(params, "offset") if params.get("offset") else 0,
        template_values(msg.expr_template_values),
        consistency_name(msg.consistency_level) if not msg.use_default_consistency else "",
        params.get(_ORDER_KEY) == "true" or _ITERATOR_KEY in params,
        after,
        timezone=str(loads_or_str(params.get("timezone", "")) or ""),
        time_fields=str(loads_or_str(params.get("time_fields", "")) or ""),
    )


def query_to_pb(r: rq.Query, pk_name: str) -> milvus_pb2.QueryRequest:
    params: dict[str, Any] = {}
    if r.limit is not None:
        params["limit"] = str(r.limit)
    if r.offset:
        params["offset"] = str(r.offset)
    if r.order_by_pk:  # an iterator's page: in key order, as Milvus answers with these two
        params.update({_ITERATOR_KEY: "True", "reduce_stop_for_best": "True"})
        if r.after_pk is not None:
            params[_ORDER_KEY] = "true"
            params[_AFTER_KEY] = json.dumps(r.after_pk)
    if r.timezone:
        params["timezone"] = r.timezone
    if r.time_fields:
        params["time_fields"] = r.time_fields
    expr = pks_to_expr(pk_name, list(r.ids)) if r.ids is not None else r.filter
    return milvus_pb2.QueryRequest(
        db_name=r.db_name,
        collection_name=r.collection_name,
        expr=expr,
        output_fields=list(r.output_fields or []),
        partition_names=list(r.partition_names),
        query_params=kv_pairs(params),
        expr_template_values=template_to_pb(r.filter_params),
        consistency_level=consistency_number(r.consistency_level) if r.consistency_level else 0,
        use_default_consistency=not r.consistency_level,
        guarantee_timestamp=r.guarantee_timestamp,
    )


def query_result_to_pb(
    rows: list[dict[str, Any]], r: rq.Query, schema: CollectionSchema
) -> milvus_pb2.QueryResults:
    requested = list(r.output_fields or ["*"])
    names = result_names(schema, rows, requested)
    fields = rows_to_fields(schema, rows, names)
    reply = milvus_pb2.QueryResults(
        fields_data=fields,
        collection_name=r.collection_name,
        output_fields=[fd.field_name for fd in fields],
        primary_field_name=schema.primary_field.name,
    )
    if r.order_by_pk and "session_ts" in reply.DESCRIPTOR.fields_by_name:
        reply.session_ts = timestamp()  # an iterator's page, as Milvus answers one (pymilvus pins its reads to it)
    return reply


def query_result_from_pb(resp: milvus_pb2.QueryResults, r: rq.Query) -> list[dict[str, Any]]:
    rows = fields_to_rows(resp.fields_data)
    if len(rows) == 1 and set(rows[0]) == {COUNT}:
        return rows
    return rows


# -- search -------------------------------------------------------------------------------------------------

#: pymilvus's search iterator v2 (Milvus 2.5+): its marker, page size and the bound its next page starts beyond.
_ITER_V2_KEY = "search_iter_v2"
_ITER_BATCH_KEY = "search_iter_batch_size"
_ITER_BOUND_KEY = "search_iter_last_bound"
#: Pages hold no server state, so every iterator gets the same token (pymilvus only needs one that is not empty).
_ITER_TOKEN = "heron-stateless"

_SEARCH_KEYS = (
    "anns_field",
    "topk",
    "metric_type",
    "round_decimal",
    "offset",
    "ignore_growing",
    "params",
    "group_by_field",
    "group_size",
    "strict_group_size",
)


def _int_param(params: dict[str, Any], key: str) -> int:
    try:
        return int(params[key])
    except (TypeError, ValueError):
        raise ParamError(f"{key}: got {params[key]!r}, expected an integer") from None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def search_from_pb(msg: milvus_pb2.SearchRequest, db: str) -> rq.Search | SearchIteratorPage:
    """A Milvus search as a Heron search; a page of pymilvus's search iterator v2 as `SearchIteratorPage`."""
    search = _search_from_pb(msg, db)
    kv = kv_dict(msg.search_params)
    if str(kv.get(_ITER_V2_KEY, "")).lower() != "true":
        return search
    batch = _int(kv.get(_ITER_BATCH_KEY), search.limit)
    if batch < 1:
        raise ParamError(f"{_ITER_BATCH_KEY}: got {kv.get(_ITER_BATCH_KEY)!r}, expected a positive integer")
    if search.ids is not None:
        raise ParamError("search iterator: ids= (primary keys) cannot replace the query vector; pass data=")
    if search.data.shape[0] != 1:
        raise ParamError(f"search iterator: got {search.data.shape[0]} query vectors, expected one")
    bound = kv.get(_ITER_BOUND_KEY)
    try:
        last = float(bound) if bound not in (None, "") else None
    except ValueError:
        raise ParamError(f"{_ITER_BOUND_KEY}: got {bound!r}, expected a number") from None
    return SearchIteratorPage(search, batch, last)


def _search_from_pb(msg: milvus_pb2.SearchRequest, db: str) -> rq.Search:
    by_ids = compat.field_set(msg, "ids")
    if by_ids and msg.placeholder_group:
        raise ParamError("search takes either query vectors or ids (primary keys), not both")
    if not by_ids and not msg.placeholder_group:
        raise ParamError("search needs query vectors (placeholder_group) or ids (primary keys)")
    kv = kv_dict(msg.search_params)
    params = loads_or_str(kv.get("params", "{}"))
    params = dict(params) if isinstance(params, dict) else {}
    metric = kv.get("metric_type") or params.pop("metric_type", "") or ""
    params.pop("metric_type", None)
    for key in ("offset", "group_by_field", "group_size", "strict_group_size"):
        if key in params and key not in kv:
            kv[key] = json.dumps(params[key]) if not isinstance(params[key], str) else params[key]
        params.pop(key, None)
    strict = str(kv.get("strict_group_size", "false")).lower() == "true"
    return rq.Search(
        db,
        msg.collection_name,
        None if by_ids else queries_from_placeholder(msg.placeholder_group),
        kv.get("anns_field", ""),
        msg.dsl,
        _int(kv.get("topk"), 10),
        _int(kv.get("offset"), 0),
        tuple(msg.output_fields) or None,
        str(metric).upper(),
        params,
        tuple(msg.partition_names),
        template_values(msg.expr_template_values),
        kv.get("group_by_field", ""),
        _int(kv.get("group_size"), 1),
        strict,
        _int(kv.get("round_decimal"), -1),
        consistency_name(msg.consistency_level) if not msg.use_default_consistency else "",
        function_score_from_pb(msg),
        str(loads_or_str(kv.get("timezone", "")) or ""),
        str(loads_or_str(kv.get("time_fields", "")) or ""),
        ids=tuple(_ids_list(msg.ids)) if by_ids else None,
        highlighter=highlighter_from_pb(msg),
        aggregation=request_spec(msg),
    )


def search_to_pb(r: rq.Search) -> milvus_pb2.SearchRequest:
    kv: dict[str, Any] = {
        "topk": str(r.limit),
        "round_decimal": str(r.round_decimal),
        "offset": str(r.offset),
        "params": json.dumps(r.params),
    }
    if r.anns_field:
        kv["anns_field"] = r.anns_field
    if r.metric_type:
        kv["metric_type"] = r.metric_type
    if r.timezone:
        kv["timezone"] = r.timezone
    if r.time_fields:
        kv["time_fields"] = r.time_fields
    if r.group_by_field:
        kv.update(
            group_by_field=r.group_by_field,
            group_size=str(r.group_size),
            strict_group_size=str(r.strict_group_size).lower(),
        )
    msg = milvus_pb2.SearchRequest(
        db_name=r.db_name,
        collection_name=r.collection_name,
        partition_names=list(r.partition_names),
        dsl=r.filter,
        dsl_type=common_pb2.BoolExprV1,
        output_fields=list(r.output_fields or []),
        search_params=kv_pairs(kv),
        nq=len(r.ids) if r.ids is not None else int(r.data.shape[0]),
        expr_template_values=template_to_pb(r.filter_params),
        consistency_level=consistency_number(r.consistency_level) if r.consistency_level else 0,
        use_default_consistency=not r.consistency_level,
        guarantee_timestamp=r.guarantee_timestamp,
    )
    if r.ids is None:
        msg.placeholder_group = queries_to_placeholder(r.data)
    elif "ids" in msg.DESCRIPTOR.fields_by_name:
        msg.ids.CopyFrom(_ids_pb(list(r.ids)))
    else:
        raise ParamError("ids: this pymilvus's protocol modules cannot send a search by primary keys; "
                         "pymilvus 2.6.9 or newer can")
    if r.ranker:
        msg.function_score.CopyFrom(function_score_to_pb(r.ranker))
    if r.highlighter is not None:
        highlighter_to_pb(msg, r.highlighter)
    if r.aggregation is not None:
        set_request_spec(msg, r.aggregation)
    return msg


def search_result_to_pb(hits: Any, r: Any, schema: CollectionSchema) -> milvus_pb2.SearchResults:
    """Hits as SearchResults; a search iterator's page also carries its token, bound and session timestamp."""
    page = hits if isinstance(hits, IteratorPage) else None
    res = hits_to_pb(schema, page.hits if page else hits, list(r.output_fields or []))
    highlights_to_pb(page.hits if page else hits, res)
    if getattr(hits, "agg_buckets", None) is not None:
        buckets_to_pb(hits.agg_buckets, res)
    if page is not None and "search_iterator_v2_results" in res.DESCRIPTOR.fields_by_name:
        res.search_iterator_v2_results.token = _ITER_TOKEN
        res.search_iterator_v2_results.last_bound = page.last_bound
    reply = milvus_pb2.SearchResults(results=res, collection_name=r.collection_name)
    if page is not None and "session_ts" in reply.DESCRIPTOR.fields_by_name:
        reply.session_ts = timestamp()
    return reply


def search_result_from_pb(resp: milvus_pb2.SearchResults, r: Any) -> list[list[dict[str, Any]]]:
    hits = hits_from_pb(resp.results)
    highlights_from_pb(resp.results, hits)
    buckets = buckets_from_pb(resp.results)
    if buckets is None:
        return hits
    out = AggregatedHits(hits)
    out.agg_buckets = buckets
    return out


# -- hybrid search ----------------------------------------------------------------------------------------------


def _ranker_from_kv(kv: dict[str, str]) -> dict[str, Any]:
    strategy = kv.get("strategy", "rrf")
    params = loads_or_str(kv.get("params", "{}"))
    return {"strategy": strategy, "params": params if isinstance(params, dict) else {}}


def hybrid_from_pb(msg: milvus_pb2.HybridSearchRequest, db: str) -> rq.HybridSearch:
    """A hybrid search; `ParamError` (65535) when it names both a ranker strategy and a function score."""
    kv = kv_dict(msg.rank_params)
    functions = function_score_from_pb(msg)
    if functions is not None and "strategy" in kv:
        raise ParamError(f"ranker: got both rank_params strategy {kv['strategy']!r} and a function_score; "
                         "expected one ranker", code=65535)
    subs = tuple(_search_from_pb(s, db) for s in msg.requests)
    return rq.HybridSearch(
        db,
        msg.collection_name,
        subs,
        functions or _ranker_from_kv(kv),
        _int(kv.get("limit"), 10),
        _int(kv.get("offset"), 0),
        tuple(msg.output_fields) or None,
        tuple(msg.partition_names),
        _int(kv.get("round_decimal"), -1),
        str(kv.get("group_by_field", "")),
        _int(kv.get("group_size"), 1),
        str(kv.get("strict_group_size", "false")).lower() == "true",
        str(loads_or_str(kv.get("timezone", "")) or "") or next((x.timezone for x in subs if x.timezone), ""),
        str(loads_or_str(kv.get("time_fields", "")) or "") or next((x.time_fields for x in subs if x.time_fields), ""),
        consistency_name(msg.consistency_level) if not msg.use_default_consistency else "",
    )


def hybrid_to_pb(r: rq.HybridSearch) -> milvus_pb2.HybridSearchRequest:
    functions = "functions" in r.ranker
    kv = {} if functions else {
        "strategy": r.ranker.get("strategy", "rrf"),
        "params": json.dumps(r.ranker.get("params", {})),
    }
    kv |= {
        "limit": str(r.limit),
        "offset": str(r.offset),
        "round_decimal": str(r.round_decimal),
    }
    if r.group_by_field:
        kv |= {"group_by_field": r.group_by_field, "group_size": str(r.group_size),
               "strict_group_size": str(r.strict_group_size)}
    if r.timezone:
        kv["timezone"] = r.timezone
    if r.time_fields:
        kv["time_fields"] = r.time_fields
    msg = milvus_pb2.HybridSearchRequest(
        db_name=r.db_name,
        collection_name=r.collection_name,
        partition_names=list(r.partition_names),
        requests=[search_to_pb(s) for s in r.reqs],
        rank_params=kv_pairs(kv),
        output_fields=list(r.output_fields or []),
        consistency_level=consistency_number(r.consistency_level) if r.consistency_level else 0,
        use_default_consistency=not r.consistency_level,
        guarantee_timestamp=r.guarantee_timestamp,
    )
    if functions:
        msg.function_score.CopyFrom(function_score_to_pb(r.ranker))
    return msg
