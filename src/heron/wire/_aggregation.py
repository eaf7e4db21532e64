"""Search aggregation on the wire: SearchRequest.search_aggregation and SearchResultData.agg_buckets.

A spec travels inside Heron as a dict: ``{"fields", "size", "metrics": {alias: {"op", "field"}},
"order": [{"key", "direction"}], "top_hits": {"size", "sort": [{"field", "direction"}]} | None,
"sub": spec | None}``; buckets as ``{"key": [{"field_name", "value"}], "count", "metrics", "hits":
[{"pk", "score", "fields"}], "sub_groups"}``.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from .._errors import ParamError


class AggregatedHits(list):  # type: ignore[type-arg]
    """A search reply's (empty) hit lists, with ``agg_buckets``: per query, its top-level buckets."""

    agg_buckets: list[list[dict[str, Any]]]


def spec_from_pb(msg: Any) -> dict[str, Any]:
    """A SearchAggregationSpec as a spec dict."""
    th = None
    if msg.HasField("top_hits"):
        th = {"size": int(msg.top_hits.size),
              "sort": [{"field": s.field_name, "direction": s.direction or "asc"} for s in msg.top_hits.sort]}
    return {
        "fields": list(msg.fields), "size": int(msg.size),
        "metrics": {alias: {"op": m.op, "field": m.field_name} for alias, m in msg.metrics.items()},
        "order": [{"key": o.key, "direction": o.direction or "asc"} for o in msg.order],
        "top_hits": th,
        "sub": spec_from_pb(msg.sub_aggregation) if msg.HasField("sub_aggregation") else None,
    }


def spec_to_pb(spec: dict[str, Any]) -> Any:
    """A spec dict as a SearchAggregationSpec."""
    msg = common_pb2.SearchAggregationSpec(size=spec["size"])
    msg.fields.extend(spec["fields"])
    for alias, m in spec["metrics"].items():
        msg.metrics[alias].CopyFrom(common_pb2.MetricAggSpec(op=m["op"], field_name=m["field"]))
    for o in spec["order"]:
        msg.order.append(common_pb2.OrderSpec(key=o["key"], direction=o["direction"]))
    if spec.get("top_hits"):
        th = spec["top_hits"]
        msg.top_hits.CopyFrom(common_pb2.TopHitsSpec(size=th["size"]))
        for s in th.get("sort", []):
            msg.top_hits.sort.append(common_pb2.SortSpec(field_name=s["field"], direction=s["direction"]))
    if spec.get("sub"):
        msg.sub_aggregation.CopyFrom(spec_to_pb(spec["sub"]))
    return msg


def request_spec(msg: Any) -> dict[str, Any] | None:
    """The spec of a SearchRequest (None without one, or where the installed modules lack the field)."""
    if "search_aggregation" not in msg.DESCRIPTOR.fields_by_name or not msg.HasField("search_aggregation"):
        return None
    return spec_from_pb(msg.search_aggregation)


def set_request_spec(msg: Any, spec: dict[str, Any]) -> None:
    if "search_aggregation" not in msg.DESCRIPTOR.fields_by_name:
        raise ParamError("search_aggregation: this pymilvus's protocol modules cannot send it; pymilvus 3 can")
    msg.search_aggregation.CopyFrom(spec_to_pb(spec))


def _set_value(msg: Any, v: Any, floats: str = "double_val") -> None:
    if v is None:
        return
    if isinstance(v, bool):
        msg.bool_val = v
    elif isinstance(v, int):
        msg.int_val = v
    elif isinstance(v, float):
        setattr(msg, floats, v)
    else:
        msg.string_val = str(v)


def _value(msg: Any) -> Any:
    which = msg.WhichOneof("value") if msg.DESCRIPTOR.oneofs_by_name.get("value") else None
    return getattr(msg, which) if which else None


def _bucket_to_pb(b: dict[str, Any]) -> Any:
    out = schema_pb2.AggBucket(count=b["count"])
    for k in b["key"]:
        e = out.key.add(field_name=k["field_name"])
        v = k["value"]
        _set_value(e, v if not isinstance(v, float) else str(v))
    for alias, v in b["metrics"].items():
        _set_value(out.metrics[alias], v)
    for h in b["hits"]:
        hit = out.hits.add(score=h["score"])
        if isinstance(h["pk"], str):
            hit.str_pk = h["pk"]
        else:
            hit.int_pk = int(h["pk"])
        for name, v in h["fields"].items():
            _set_value(hit.fields.add(field_name=name), v)
    for sub in b["sub_groups"]:
        out.sub_groups.append(_bucket_to_pb(sub))
    return out


def buckets_to_pb(per_query: list[list[dict[str, Any]]], res: Any) -> None:
    """Per query, its buckets into ``res.agg_buckets`` with ``res.agg_topks``."""
    for buckets in per_query:
        res.agg_topks.append(len(buckets))
        for b in buckets:
            res.agg_buckets.append(_bucket_to_pb(b))


def _bucket_from_pb(b: Any) -> dict[str, Any]:
    return {
        "key": [{"field_name": k.field_name, "value": _value(k)} for k in b.key],
        "count": int(b.count),
        "metrics": {alias: _value(m) for alias, m in b.metrics.items()},
        "hits": [{"pk": getattr(h, h.WhichOneof("pk")) if h.WhichOneof("pk") else None, "score": h.score,
                  "fields": {f.field_name: _value(f) for f in h.fields}} for h in b.hits],
        "sub_groups": [_bucket_from_pb(s) for s in b.sub_groups],
    }


def buckets_from_pb(res: Any) -> list[list[dict[str, Any]]] | None:
    """Per query, its buckets (None when the reply has none)."""
    if "agg_buckets" not in res.DESCRIPTOR.fields_by_name or not len(res.agg_topks):
        return None
    flat = [_bucket_from_pb(b) for b in res.agg_buckets]
    out, at = [], 0
    for k in res.agg_topks:
        out.append(flat[at: at + k])
        at += k
    return out
