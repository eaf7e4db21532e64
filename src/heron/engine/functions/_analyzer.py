"""Analyzers: text to tokens, for BM25, ``text_match``/``phrase_match`` and ``run_analyzer``.

The contract the rest of the engine uses:

- ``build_analyzer(params)`` takes a field's ``analyzer_params`` (``None`` or
  ``{}`` means the ``standard`` analyzer) and returns an `Analyzer`, or raises
  `ParamError` naming the bad key and value.
- ``Analyzer.tokenize(text)`` gives the tokens of one text, in order
  (positions matter for ``phrase_match``); ``tokenize_many(texts)`` gives a
  list per text and may be faster.

For now only ``standard`` (Unicode words, lowercased) is here; the other
built-in analyzers and custom tokenizer/filter chains come next.
"""

from __future__ import annotations

import re
from typing import Any

from ..._errors import ParamError

_WORD = re.compile(r"\w+", re.UNICODE)


class Analyzer:
    """A tokenizer followed by token filters; built by `build_analyzer`."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``, in order."""
        return [m.lower() for m in _WORD.findall(text)]

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        """The tokens of each text."""
        return [self.tokenize(t) for t in texts]


def build_analyzer(params: dict[str, Any] | None) -> Analyzer:
    """The analyzer that ``params`` (a field's ``analyzer_params``) describes."""
    params = dict(params or {})
    kind = params.get("type", "standard")
    if kind != "standard" or set(params) - {"type"}:
        raise ParamError(f"analyzer_params: {params!r} is not supported yet; expected {{'type': 'standard'}}")
    return Analyzer(params)
