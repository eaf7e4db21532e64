"""A search's lexical highlighter (SearchRequest.highlighter) and the hits' highlights (highlight_results)."""

from __future__ import annotations

import json
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from .._errors import ParamError

#: common.HighlightType: LEXICAL = 0, SEMANTIC = 1.
_TYPES = {0: "lexical", 1: "semantic"}


def highlighter_to_pb(msg: milvus_pb2.SearchRequest, h: dict[str, Any]) -> None:
    """Set ``msg.highlighter`` from `Search.highlighter` (values as pymilvus sends them: JSON for lists)."""
    if "highlighter" not in msg.DESCRIPTOR.fields_by_name:
        raise ParamError("highlighter: this pymilvus's protocol modules cannot send it; pymilvus 2.6.8 or newer can")
    kind = {v: k for k, v in _TYPES.items()}.get(str(h.get("type", "lexical")).lower(), 0)
    msg.highlighter.type = kind
    for k, v in (h.get("params") or {}).items():
        value = json.dumps(v) if isinstance(v, (dict, list)) else str(v)
        msg.highlighter.params.append(common_pb2.KeyValuePair(key=str(k), value=value))


def highlighter_from_pb(msg: milvus_pb2.SearchRequest) -> dict[str, Any] | None:
    """`Search.highlighter` from a SearchRequest (None when it has none)."""
    if "highlighter" not in msg.DESCRIPTOR.fields_by_name or not msg.HasField("highlighter"):
        return None
    params = {kv.key: _value(kv.value) for kv in msg.highlighter.params}
    return {"type": _TYPES.get(int(msg.highlighter.type), str(msg.highlighter.type)), "params": params}


def _value(text: str) -> Any:
    if text in ("True", "False"):  # pymilvus sends str(bool)
        return text == "True"
    try:
        return json.loads(text)
    except ValueError:
        return text


def highlights_to_pb(hits: list[list[dict[str, Any]]], res: schema_pb2.SearchResultData) -> None:
    """The hits' ``highlight`` dicts as ``res.highlight_results`` (one HighlightResult per field, data per hit)."""
    flat = [h for q in hits for h in q]
    names = list(dict.fromkeys(n for h in flat for n in (h.get("highlight") or {})))
    if not names or "highlight_results" not in res.DESCRIPTOR.fields_by_name:
        return
    for name in names:
        out = res.highlight_results.add(field_name=name)
        for h in flat:
            d = (h.get("highlight") or {}).get(name) or {}
            out.datas.add(fragments=list(d.get("fragments", [])), scores=list(d.get("scores", [])))


def highlights_from_pb(res: schema_pb2.SearchResultData, hits: list[list[dict[str, Any]]]) -> None:
    """Attach ``res.highlight_results`` to the hits as each hit's ``highlight``, as pymilvus shapes it."""
    results = list(getattr(res, "highlight_results", []))
    if not results:
        return
    flat = [h for q in hits for h in q]
    for i, h in enumerate(flat):
        h["highlight"] = {r.field_name: {"fragments": list(r.datas[i].fragments), "scores": list(r.datas[i].scores)}
                          for r in results if i < len(r.datas)}
