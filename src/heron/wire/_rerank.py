"""Milvus protobuf ⇄ Heron function scores: the ``function_score`` of SearchRequest and HybridSearchRequest.

Pure functions. pymilvus sends a rerank ``Function`` or ``FunctionScore`` as a
``schema.FunctionScore``: functions (name, type, input fields, params as
KeyValuePairs with strings as they are and lists or objects as JSON) and the
score's own params (``boost_mode``, ``function_mode``). Heron's form is the
dict `heron._requests.Search.ranker` describes; values come back as JSON
where they are JSON and as strings otherwise, which the engine reads alike.
"""

from __future__ import annotations

import json
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from .._errors import ParamError
from . import _compat as compat
from ._schema import loads_or_str


def function_score_from_pb(msg: Any) -> dict[str, Any] | None:
    """The function score a request carries in field ``function_score``, or None when it has none.

    `ParamError` for ``function_chains``, which Heron does not run.
    """
    if compat.field_set(msg, "function_chains"):
        if compat.field_set(msg, "function_score"):
            raise ParamError("function_score and function_chains cannot be used together")
        raise ParamError("function_chains: not supported; pass rerank functions as ranker=")
    if not compat.field_set(msg, "function_score") or not msg.function_score.functions:
        return None
    fs = msg.function_score
    return {
        "functions": [
            {
                "name": f.name,
                "type": int(f.type),
                "input_field_names": list(f.input_field_names),
                "output_field_names": list(f.output_field_names),
                "params": {p.key: loads_or_str(p.value) for p in f.params},
            }
            for f in fs.functions
        ],
        "params": {p.key: loads_or_str(p.value) for p in fs.params},
    }


def function_score_to_pb(ranker: dict[str, Any]) -> schema_pb2.FunctionScore:
    """Heron's function score as the ``schema.FunctionScore`` pymilvus would send."""
    return schema_pb2.FunctionScore(
        functions=[
            schema_pb2.FunctionSchema(
                name=str(f.get("name") or ""),
                type=schema_pb2.FunctionType.Rerank,
                input_field_names=list(f.get("input_field_names") or []),
                output_field_names=list(f.get("output_field_names") or []),
                params=_pairs(f.get("params") or {}),
            )
            for f in ranker.get("functions") or []
        ],
        params=_pairs(ranker.get("params") or {}),
    )


def _pairs(d: dict[str, Any]) -> list[common_pb2.KeyValuePair]:
    """Params as pymilvus writes them: strings as they are, lists and objects as JSON, other values by ``str``."""
    return [common_pb2.KeyValuePair(key=str(k), value=json.dumps(v) if isinstance(v, (dict, list)) else str(v))
            for k, v in d.items()]
