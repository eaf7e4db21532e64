"""Lexical highlighting of search hits (pymilvus 3's ``LexicalHighlighter``, Milvus 2.6.8+).

Highlighting runs after the search, on its final hits; it changes no hit and
no score. The terms come from the BM25 search itself (``highlight_search_text``:
the query vector's dimensions are the hashes of the query's terms, so a token
of the function's input text matches when its BM25 hash is one of them) and from
``highlight_query`` entries (``{"type": "TextMatch", "field", "text"}``: the
text analyzed by the field's analyzer). Each hit gets, per highlighted field,
``{"fragments": [...], "scores": [...]}``: up to ``num_of_fragments`` pieces of
the field's text, each starting ``fragment_offset`` characters before a match
and about ``fragment_size`` characters long (stretched to end after its last
match), the matches wrapped in ``pre_tags``/``post_tags`` (rotating through the
lists in match order); a fragment's score is the number of matches it holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._errors import ParamError
from .._types import DataType
from .functions._analyzer import cached_analyzer
from .functions._bm25 import hash_tokens

if TYPE_CHECKING:
    from ._engine import Engine
    from ._reads import Reader

DEFAULTS: dict[str, Any] = {"pre_tags": ["<em>"], "post_tags": ["</em>"], "fragment_offset": 0,
                            "fragment_size": 100, "num_of_fragments": 5}
_KEYS = {*DEFAULTS, "highlight_query", "highlight_search_text"}
_QUERY_TYPES = {"textmatch", "text_match", "phrasematch", "phrase_match"}


def highlighting(engine: Engine, reads: Reader, search: Callable[[rq.Search], Any]) -> Callable[[rq.Search], Any]:
    """``search``, then the highlights its ``highlighter`` asks for added to each hit."""

    def run(r: rq.Search) -> Any:
        if r.highlighter is None:
            return search(r)
        spec = check_spec(r.highlighter)
        coll = engine.collection(r.db_name, r.collection_name)
        targets = _targets(coll, reads, r, spec)  # bad fields fail before the search runs
        hits = search(dataclasses.replace(r, highlighter=None))
        _annotate(reads, r, coll.schema, spec, targets, hits)
        return hits

    run.__wrapped__ = search  # type: ignore[attr-defined]  # the search it wraps (inspect.unwrap)
    return run


def check_spec(h: Any) -> dict[str, Any]:
    """The highlighter's params with defaults filled in; `ParamError` naming a bad one."""
    if not isinstance(h, dict) or str(h.get("type", "lexical")).lower() != "lexical":
        kind = h.get("type") if isinstance(h, dict) else type(h).__name__
        raise ParamError(f"highlighter: got type {kind!r}; only lexical highlighting is supported "
                         "(semantic highlighting needs a model service)")
    params = dict(h.get("params") or {})
    unknown = set(params) - _KEYS
    if unknown:
        raise ParamError(f"highlighter: unknown param {sorted(unknown)[0]!r}; expected {sorted(_KEYS)}")
    spec = {**DEFAULTS, **params}
    for key in ("pre_tags", "post_tags"):
        tags = spec[key]
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            raise ParamError(f"highlighter.{key}: got {tags!r}, expected a non-empty list of strings")
    for key, low in (("fragment_offset", 0), ("fragment_size", 1), ("num_of_fragments", 0)):
        v = spec[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ParamError(f"highlighter.{key}: got {v!r}, expected an integer >= {low}")
    queries = spec.get("highlight_query") or []
    if not isinstance(queries, list) or not all(
            isinstance(q, dict) and str(q.get("type", "")).lower() in _QUERY_TYPES
            and isinstance(q.get("field"), str) and isinstance(q.get("text"), str) for q in queries):
        raise ParamError(f"highlighter.highlight_query: got {queries!r}, expected a list of "
                         "{'type': 'TextMatch', 'field': <text field>, 'text': <terms>}")
    spec["highlight_query"] = queries
    if not isinstance(spec.get("highlight_search_text", False), bool):
        raise ParamError(f"highlighter.highlight_search_text: got {spec['highlight_search_text']!r}, "
                         "expected True or False")
    return spec


def _analyzed_field(coll: Any, name: str, why: str) -> Any:
    f = coll.schema.field(name)
    if f is None or f.dtype is not DataType.VARCHAR or not (f.enable_analyzer or "analyzer_params" in f.params):
        raise ParamError(f"highlighter: {why} {name!r} is not a VARCHAR field with an analyzer in {coll.name!r}")
    if "multi_analyzer_params" in f.params:
        raise ParamError(f"highlighter: field {name!r} has multi_analyzer_params; highlighting needs one analyzer")
    return f


def _targets(coll: Any, reads: Reader, r: rq.Search, spec: dict[str, Any]) -> tuple[str, dict[str, set[int]]]:
    """The BM25 input field whose search terms are highlighted ("" for none), and per field the
    term hashes of the ``highlight_query`` entries."""
    search_text = ""
    if spec.get("highlight_search_text"):
        f = reads._field(coll, r.anns_field)
        fn = next((fn for fn in coll.schema.functions if f.name in fn.output_field_names
                   and str(fn.function_type).upper().endswith("BM25")), None)
        if fn is None:
            raise ParamError(f"highlighter.highlight_search_text: field {f.name!r} is not the output of a BM25 "
                             "function, so the search has no text terms to highlight")
        search_text = _analyzed_field(coll, fn.input_field_names[0], "BM25 input field").name
    fixed: dict[str, set[int]] = {}
    for q in spec["highlight_query"]:
        f = _analyzed_field(coll, q["field"], "highlight_query field")
        fixed.setdefault(f.name, set()).update(
            hash_tokens(cached_analyzer(f.analyzer_params).tokenize(q["text"])).tolist())
    return search_text, fixed


def _annotate(reads: Reader, r: rq.Search, schema: Any, spec: dict[str, Any],
              targets: tuple[str, dict[str, set[int]]], hits: list[list[dict[str, Any]]]) -> None:
    search_text, fixed = targets
    names = list(dict.fromkeys([*([search_text] if search_text else []), *fixed]))
    per_query: list[set[int]] = []
    if search_text:
        m = r.data.tocsr()
        per_query = [set(m.indices[m.indptr[i]:m.indptr[i + 1]].astype(np.int64).tolist()) for i in range(len(hits))]
    pk = schema.primary_field.name
    keys = list(dict.fromkeys(h["id"] for q in hits for h in q))
    texts: dict[Any, dict[str, Any]] = {}
    if keys and names:
        rows = reads.op_query(rq.Query(r.db_name, r.collection_name, "", (pk, *names), keys))
        texts = {row[pk]: row for row in rows}
    analyzers = {name: cached_analyzer(schema.field(name).analyzer_params) for name in names}
    for qi, q in enumerate(hits):
        terms = {name: fixed.get(name, set()) | (per_query[qi] if name == search_text else set()) for name in names}
        for h in q:
            row = texts.get(h["id"], {})
            h["highlight"] = {name: _highlight(row.get(name) or "", analyzers[name], terms[name], spec)
                              for name in names}


def _highlight(text: str, analyzer: Any, terms: set[int], spec: dict[str, Any]) -> dict[str, list[Any]]:
    """The fragments of ``text`` around the tokens whose hashes are in ``terms``, and their scores."""
    if not text or not terms or spec["num_of_fragments"] == 0:
        return {"fragments": [], "scores": []}
    toks = analyzer.details(text)
    hit = np.isin(hash_tokens([t.token for t in toks]), np.fromiter(terms, np.int64, len(terms)))
    spans = np.array([(t.start_offset, t.end_offset) for t in toks], dtype=np.int64).reshape(-1, 2)[hit]
    if not len(spans):
        return {"fragments": [], "scores": []}
    if not text.isascii():  # analyzer offsets are UTF-8 bytes; fragments are cut in characters
        ends = np.cumsum([len(c.encode()) for c in text])  # byte offset after each character
        spans = np.searchsorted(ends, spans, side="right")
    order = np.lexsort((spans[:, 1], spans[:, 0]))
    spans = spans[order]
    pre, post = spec["pre_tags"], spec["post_tags"]
    fragments: list[str] = []
    scores: list[float] = []
    k = i = 0
    while i < len(spans) and len(fragments) < spec["num_of_fragments"]:
        start = max(0, int(spans[i, 0]) - spec["fragment_offset"])
        end = min(len(text), start + spec["fragment_size"])
        parts, at, n = [], start, 0
        while i < len(spans) and spans[i, 0] < max(end, at + 1):
            s, e = int(spans[i, 0]), int(spans[i, 1])
            if s < at:  # overlapping tokens: the first one's tags cover it
                i += 1
                continue
            parts += [text[at:s], pre[k % len(pre)], text[s:e], post[k % len(post)]]
            at, end, k, n, i = e, max(end, e), k + 1, n + 1, i + 1
        parts.append(text[at:end])
        fragments.append("".join(parts))
        scores.append(float(n))
    return {"fragments": fragments, "scores": scores}
