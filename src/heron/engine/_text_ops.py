"""Text operations of the engine: analyzer checks at create time and ``run_analyzer``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import ParamError, SchemaError
from .._schema import CollectionSchema
from .._types import DataType
from .functions._analyzer import Analyzer, cached_analyzer, token_hash

if TYPE_CHECKING:
    from ._engine import Engine


def check_field_analyzers(schema: CollectionSchema) -> None:
    """`SchemaError` naming the field if a VARCHAR field's ``analyzer_params`` describe no analyzer.

    ``multi_analyzer_params`` (an analyzer per row, chosen by another field's
    value) are checked too: ``analyzers`` with a ``default``, ``by_field`` naming
    a VARCHAR field, ``alias`` naming analyzers.
    """
    for f in schema.fields:
        if f.dtype is not DataType.VARCHAR:
            continue
        try:
            if "multi_analyzer_params" in f.params:
                _check_multi(schema, f.name, f.params)
            elif f.enable_analyzer or "analyzer_params" in f.params:
                cached_analyzer(f.analyzer_params)
        except ParamError as exc:
            raise SchemaError(f"field {f.name!r}: {exc}", code=exc.code) from None


def multi_analyzers(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], str]:
    """A field's ``multi_analyzer_params`` as (analyzer params by name, alias -> name, the choosing field)."""
    raw = params.get("multi_analyzer_params")
    multi = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(multi, dict):
        raise ParamError(f"multi_analyzer_params: {raw!r} is not a dict")
    extra = set(multi) - {"analyzers", "by_field", "alias"}
    if extra:
        raise ParamError(f"multi_analyzer_params: unknown key {sorted(extra)[0]!r}; expected analyzers, by_field, alias")
    analyzers, alias, by_field = multi.get("analyzers"), multi.get("alias", {}), multi.get("by_field")
    if not isinstance(analyzers, dict) or "default" not in analyzers:
        raise ParamError(f"multi_analyzer_params.analyzers: {analyzers!r} must be a dict with a 'default' analyzer")
    if not isinstance(by_field, str) or not by_field:
        raise ParamError(f"multi_analyzer_params.by_field: {by_field!r} must name a VARCHAR field")
    if not isinstance(alias, dict) or not all(isinstance(v, str) and v in analyzers for v in alias.values()):
        raise ParamError(f"multi_analyzer_params.alias: {alias!r} must map names to analyzers of 'analyzers'")
    return analyzers, alias, by_field


def _check_multi(schema: CollectionSchema, name: str, params: dict[str, Any]) -> None:
    if "analyzer_params" in params:
        raise ParamError("give analyzer_params or multi_analyzer_params, not both")
    if params.get("enable_match") == "true":
        raise ParamError("enable_match is not supported with multi_analyzer_params (text_match needs one analyzer)")
    analyzers, _, by_field = multi_analyzers(params)
    chooser = next((g for g in schema.fields if g.name == by_field), None)
    if chooser is None or chooser.dtype is not DataType.VARCHAR or by_field == name:
        raise ParamError(f"multi_analyzer_params.by_field: {by_field!r} is not another VARCHAR field of the schema")
    for key, spec in analyzers.items():
        try:
            cached_analyzer(spec)
        except ParamError as exc:
            raise ParamError(f"multi_analyzer_params.analyzers[{key!r}]: {exc}") from None


def op_run_analyzer(engine: Engine, r: rq.RunAnalyzer) -> list[list[dict[str, Any]]]:
    """Per text, its tokens as dicts: ``token``, and with details the offsets and position, with hash the hash."""
    params: Any = r.analyzer_params
    if r.collection_name or r.field_name:
        params = _field_analyzer(engine, r)
    for i, t in enumerate(r.texts):
        if not isinstance(t, str):
            raise ParamError(f"run_analyzer: text {i} is {type(t).__name__}, expected str")
    if isinstance(params, list):  # a multi-analyzer field: one analyzer per text
        return [_tokens(cached_analyzer(p), text, r) for p, text in zip(params, r.texts)]
    analyzer = cached_analyzer(params)
    if not r.with_detail:
        per_text = analyzer.tokenize_many(list(r.texts))
        return [[_token(t, r.with_hash) for t in tokens] for tokens in per_text]
    return [_tokens(analyzer, text, r) for text in r.texts]


def _tokens(analyzer: Analyzer, text: str, r: rq.RunAnalyzer) -> list[dict[str, Any]]:
    if not r.with_detail:
        return [_token(t, r.with_hash) for t in analyzer.tokenize(text)]
    rows = []
    for d in analyzer.details(text):
        row: dict[str, Any] = {"token": d.token, "start_offset": d.start_offset, "end_offset": d.end_offset,
                               "position": d.position, "position_length": d.position_length}
        if r.with_hash:
            row["hash"] = token_hash(d.token)
        rows.append(row)
    return rows


def _token(token: str, with_hash: bool) -> dict[str, Any]:
    return {"token": token, "hash": token_hash(token)} if with_hash else {"token": token}


def _field_analyzer(engine: Engine, r: rq.RunAnalyzer) -> Any:
    if not (r.collection_name and r.field_name):
        raise ParamError("run_analyzer: give both collection_name and field_name to use a field's analyzer; "
                         f"got collection_name={r.collection_name!r}, field_name={r.field_name!r}")
    coll = engine.collection(r.db_name, r.collection_name)
    for f in coll.schema.fields:
        if f.name == r.field_name:
            if not f.enable_analyzer:
                raise ParamError(f"run_analyzer: field {f.name!r} of collection {r.collection_name!r} has no "
                                 "analyzer (enable_analyzer is not set)")
            if "multi_analyzer_params" in f.params:
                return _named(f.params, r)
            return f.analyzer_params
    raise ParamError(f"run_analyzer: field {r.field_name!r} not found in collection {r.collection_name!r}")


def _named(params: dict[str, Any], r: rq.RunAnalyzer) -> list[Any]:
    """Per text, the analyzer ``r.analyzer_names`` picks (one name for all, or one per text; else ``default``)."""
    analyzers, alias, _ = multi_analyzers(params)
    names = list(r.analyzer_names) or ["default"]
    if len(names) == 1:
        names = names * len(r.texts)
    if len(names) != len(r.texts):
        raise ParamError(f"run_analyzer: analyzer_names has {len(names)} names for {len(r.texts)} texts; "
                         "expected one name, or one per text")
    return [analyzers.get(alias.get(n, n), analyzers["default"]) for n in names]
