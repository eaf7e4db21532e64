"""Text operations of the engine: analyzer checks at create time and ``run_analyzer``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import ParamError, SchemaError
from .._schema import CollectionSchema
from .._types import DataType
from .functions._analyzer import cached_analyzer, token_hash

if TYPE_CHECKING:
    from ._engine import Engine


def check_field_analyzers(schema: CollectionSchema) -> None:
    """`SchemaError` naming the field if a VARCHAR field's ``analyzer_params`` describe no analyzer."""
    for f in schema.fields:
        if f.dtype is DataType.VARCHAR and (f.enable_analyzer or "analyzer_params" in f.params):
            try:
                cached_analyzer(f.analyzer_params)
            except ParamError as exc:
                raise SchemaError(f"field {f.name!r}: {exc}", code=exc.code) from None


def op_run_analyzer(engine: Engine, r: rq.RunAnalyzer) -> list[list[dict[str, Any]]]:
    """Per text, its tokens as dicts: ``token``, and with details the offsets and position, with hash the hash."""
    params = r.analyzer_params
    if r.collection_name or r.field_name:
        params = _field_analyzer(engine, r)
    analyzer = cached_analyzer(params)
    for i, t in enumerate(r.texts):
        if not isinstance(t, str):
            raise ParamError(f"run_analyzer: text {i} is {type(t).__name__}, expected str")
    if not r.with_detail:
        per_text = analyzer.tokenize_many(list(r.texts))
        return [[_token(t, r.with_hash) for t in tokens] for tokens in per_text]
    out = []
    for text in r.texts:
        rows = []
        for d in analyzer.details(text):
            row = {"token": d.token, "start_offset": d.start_offset, "end_offset": d.end_offset,
                   "position": d.position, "position_length": d.position_length}
            if r.with_hash:
                row["hash"] = token_hash(d.token)
            rows.append(row)
        out.append(rows)
    return out


def _token(token: str, with_hash: bool) -> dict[str, Any]:
    return {"token": token, "hash": token_hash(token)} if with_hash else {"token": token}


def _field_analyzer(engine: Engine, r: rq.RunAnalyzer) -> dict[str, Any] | None:
    if not (r.collection_name and r.field_name):
        raise ParamError("run_analyzer: give both collection_name and field_name to use a field's analyzer; "
                         f"got collection_name={r.collection_name!r}, field_name={r.field_name!r}")
    coll = engine.collection(r.db_name, r.collection_name)
    for f in coll.schema.fields:
        if f.name == r.field_name:
            if not f.enable_analyzer:
                raise ParamError(f"run_analyzer: field {f.name!r} of collection {r.collection_name!r} has no "
                                 "analyzer (enable_analyzer is not set)")
            return f.analyzer_params
    raise ParamError(f"run_analyzer: field {r.field_name!r} not found in collection {r.collection_name!r}")
