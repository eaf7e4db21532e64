"""RunAnalyzer ⇄ `heron._requests.RunAnalyzer` and its token lists, as pure translation."""

from __future__ import annotations

from typing import Any

import orjson
from pymilvus.grpc_gen import milvus_pb2

from .. import _errors
from .. import _requests as rq
from . import _compat as compat

_DETAIL = ("start_offset", "end_offset", "position", "position_length")


def run_analyzer_from_pb(m: Any, db: str) -> rq.RunAnalyzer:
    """A RunAnalyzerRequest as a request; texts arrive as UTF-8 bytes, analyzer params as JSON text."""
    try:
        texts = tuple(bytes(t).decode("utf-8") for t in m.placeholder)
    except UnicodeDecodeError as exc:
        raise _errors.ParamError(f"run_analyzer: a text is not valid UTF-8: {exc}") from None
    params: dict[str, Any] | None = None
    if m.analyzer_params:
        try:
            loaded = orjson.loads(m.analyzer_params)
        except orjson.JSONDecodeError as exc:
            raise _errors.ParamError(f"analyzer_params: {m.analyzer_params!r} is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise _errors.ParamError(f"analyzer_params: {m.analyzer_params!r} is not a JSON object")
        params = loaded
    # collection_name, field_name and analyzer_names came with Milvus 2.6; older protocols lack them.
    return rq.RunAnalyzer(
        getattr(m, "db_name", "") or db, texts, params, bool(m.with_hash), bool(m.with_detail),
        getattr(m, "collection_name", ""), getattr(m, "field_name", ""), tuple(getattr(m, "analyzer_names", ())),
    )


def run_analyzer_to_pb(r: rq.RunAnalyzer) -> Any:
    """The RunAnalyzerRequest pymilvus would send for ``r``."""
    msg = milvus_pb2.RunAnalyzerRequest(
        placeholder=[t.encode("utf-8") for t in r.texts], with_hash=r.with_hash, with_detail=r.with_detail)
    optional = {"db_name": r.db_name, "collection_name": r.collection_name, "field_name": r.field_name}
    for key, value in optional.items():
        if value:  # absent from older protocols: set only when used, refused clearly where missing
            compat.require_field(msg, key, f"run_analyzer's {key}")
            setattr(msg, key, value)
    if r.analyzer_names:
        compat.require_field(msg, "analyzer_names", "run_analyzer's analyzer_names")
        msg.analyzer_names.extend(r.analyzer_names)
    if r.analyzer_params is not None:
        msg.analyzer_params = orjson.dumps(r.analyzer_params).decode()
    return msg


def tokens_to_pb(result: list[list[dict[str, Any]]]) -> Any:
    """The engine's token dicts as a RunAnalyzerResponse."""
    return milvus_pb2.RunAnalyzerResponse(
        results=[milvus_pb2.AnalyzerResult(tokens=[milvus_pb2.AnalyzerToken(**t) for t in tokens])
                 for tokens in result]
    )


def tokens_from_pb(reply: Any, r: rq.RunAnalyzer) -> list[list[dict[str, Any]]]:
    """A RunAnalyzerResponse as the engine's token dicts (only the parts ``r`` asked for)."""
    out = []
    for result in reply.results:
        rows = []
        for t in result.tokens:
            row: dict[str, Any] = {"token": t.token}
            if r.with_detail:
                row.update({k: int(getattr(t, k)) for k in _DETAIL})
            if r.with_hash:
                row["hash"] = int(t.hash)
            rows.append(row)
        out.append(rows)
    return out
