"""Differential: compiled text_match/phrase_match (with a sealed-style token index and without) agree
with the reference definition on random texts and queries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import heron
from heron import DataType
from heron.data._column import Column, DictColumnSource
from heron.engine.filter import compile_filter, evaluate_reference
from heron.engine.functions._analyzer import build_analyzer
from heron.engine.index._text_index import TextIndex

ANALYZERS = [None, {"type": "english"}, {"tokenizer": "whitespace", "filter": [{"type": "stop", "stop_words": ["b"]}]}]
WORDS = ["a", "b", "c", "A", "runs", "running", "the", "of", "é"]
SEPARATORS = [" ", "  ", ", ", "-", " the "]


def _schema(analyzer: Any) -> heron.CollectionSchema:
    s = heron.CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("t", DataType.VARCHAR, max_length=500, enable_analyzer=True, enable_match=True, nullable=True,
                analyzer_params=analyzer)
    return s


SCHEMAS = [_schema(a) for a in ANALYZERS]


@st.composite
def sentence(draw: st.DrawFn, max_words: int = 8) -> str:
    words = draw(st.lists(st.sampled_from(WORDS), min_size=0, max_size=max_words))
    out = ""
    for i, w in enumerate(words):
        out += (draw(st.sampled_from(SEPARATORS)) if i else "") + w
    return out


@st.composite
def match_expr(draw: st.DrawFn) -> str:
    query = draw(sentence(max_words=3))
    if draw(st.booleans()):
        call = f"text_match(t, '{query}')"
    else:
        slop = draw(st.sampled_from(["", ", 0", ", 1", ", 2", ", 4"]))
        call = f"phrase_match(t, '{query}'{slop})"
    return draw(st.sampled_from([call, f"not {call}", f"{call} or id < 2", f"{call} and id > 1"]))


class _Indexed(DictColumnSource):
    def __init__(self, columns: dict[str, Column], n: int, index: TextIndex) -> None:
        super().__init__(columns, n)
        self._index = index

    def text_index(self, name: str) -> TextIndex | None:
        return self._index if name == "t" else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(ANALYZERS) - 1),
       texts=st.lists(st.one_of(st.none(), sentence()), min_size=1, max_size=10),
       exprs=st.lists(match_expr(), min_size=1, max_size=4))
def test_compiled_matches_agree_with_the_reference(which: int, texts: list[str | None], exprs: list[str]) -> None:
    schema = SCHEMAS[which]
    rows = [{"id": i, "t": t} for i, t in enumerate(texts)]
    valid = np.array([t is not None for t in texts])
    cols = {"id": Column(DataType.INT64, np.arange(len(texts), dtype=np.int64)),
            "t": Column(DataType.VARCHAR, pa.array(texts, pa.string()), valid)}
    plain = DictColumnSource(cols, len(texts))
    indexed = _Indexed(cols, len(texts), TextIndex.build(build_analyzer(ANALYZERS[which]), texts))
    for expr in exprs:
        expected = evaluate_reference(expr, schema, rows)
        plan = compile_filter(expr, schema)
        assert plan.evaluate(plain).tolist() == expected, expr
        assert plan.evaluate(indexed).tolist() == expected, expr
