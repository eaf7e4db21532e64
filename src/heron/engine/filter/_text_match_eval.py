"""Evaluation of ``text_match``/``phrase_match`` over a segment (see `_text_match` for their meaning)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._types import DataType
from ..functions._analyzer import cached_analyzer
from ..index._text_index import TextIndex
from . import _bound as B
from ._vector import Tri, from_known

if TYPE_CHECKING:
    from ._compiler import Evaluator


def evaluate_match(ev: Evaluator, p: B.TextMatch) -> Tri:
    """The rows of ``ev``'s source that match: through the segment's token index, or one built now."""
    col = ev.column(p.field, DataType.VARCHAR)
    lookup = getattr(ev.source, "text_index", None)
    index = lookup(p.field) if lookup is not None else None
    if not isinstance(index, TextIndex) or index.n != ev.n:
        index = TextIndex.build(cached_analyzer(p.analyzer), col.values)
    hit = index.match_phrase(p.tokens, p.offsets, p.slop) if p.phrase else index.match_any(p.tokens)
    return from_known(hit, None if col.valid is None else col.valid.astype(bool, copy=False))
