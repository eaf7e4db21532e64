"""``text_match`` and ``phrase_match``: binding, evaluation over a segment, and the reference definition.

``text_match(field, "some words")`` keeps rows whose field holds any token of
the query text; ``phrase_match(field, "a phrase"[, slop])`` keeps rows holding
the phrase's tokens in order, with at most ``slop`` position shifts in all
(see `heron.engine.index._text_index.TextIndex.match_phrase`). Both analyze the query with the field's
analyzer and need a VARCHAR field with ``enable_match=True``. A null row is
unknown (so ``not text_match(...)`` leaves it out too).
"""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

from ..._types import DataType
from ..functions._analyzer import cached_analyzer
from . import _ast as A
from . import _bound as B

if TYPE_CHECKING:
    from ._binder import Binder

#: The most position combinations the reference definition tries for one row.
_REFERENCE_LIMIT = 100_000


def bind_match(binder: Binder, node: A.Call, name: str) -> B.TextMatch:
    """The bound form of a ``text_match``/``phrase_match`` call; `FilterError` naming what is wrong."""
    phrase = name == "phrase_match"
    usage = f"{name}(field, 'text'{', slop' if phrase else ''})"
    if node.kwargs or not 2 <= len(node.args) <= (3 if phrase else 2):
        raise binder.error(f"{name} takes {'two or three' if phrase else 'two'} arguments: {usage}", node.pos)
    target = binder.value(node.args[0])
    field = next((f for f in binder.schema.fields if isinstance(target, B.Field) and f.name == target.name), None)
    if field is None or field.dtype is not DataType.VARCHAR:
        raise binder.error(f"{name} needs a VARCHAR field as its first argument: {usage}", node.args[0].pos)
    if not field.enable_match:
        raise binder.error(
            f"{name} on field {field.name!r} requires an analyzer-enabled field with match enabled "
            "(enable_analyzer=True, enable_match=True)", node.pos)
    query = binder.const(node.args[1])
    if not isinstance(query, str):
        raise binder.error(f"{name} needs a string to match, got {query!r}", node.args[1].pos)
    slop = 0
    if len(node.args) == 3:
        slop = binder.const(node.args[2])
        if not isinstance(slop, int) or isinstance(slop, bool) or not 0 <= slop < 2**31:
            raise binder.error(f"phrase_match slop must be a non-negative integer, got {slop!r}", node.args[2].pos)
    params = field.analyzer_params
    analyzer_json = json.dumps(params or {}, sort_keys=True)
    ((tokens, positions),) = cached_analyzer(params).analyze_many([query])
    offsets = tuple(p - positions[0] for p in positions) if positions else ()
    binder.fields.add(field.name)
    return B.TextMatch(field.name, analyzer_json, tuple(tokens), offsets, phrase, slop)


def reference_match(value: Any, p: B.TextMatch) -> bool | None:
    """The definition, for one row's value: plain Python over its tokens."""
    if value is None:
        return None
    ((tokens, positions),) = cached_analyzer(p.analyzer).analyze_many([value])
    if not p.phrase:
        return any(t in tokens for t in p.tokens)
    if not p.tokens:
        return False
    where = [[pos for tok, pos in zip(tokens, positions) if tok == want] for want in p.tokens]
    for combo in itertools.islice(itertools.product(*where), _REFERENCE_LIMIT):
        shifted = [pos - q for pos, q in zip(combo, p.offsets)]
        if max(shifted) - min(shifted) <= p.slop:
            return True
    return False
