"""Analyzer tokenizers: text to token spans (``standard``, ``whitespace``, ``jieba``).

A tokenizer gives the tokens of a text with their character offsets; the
position of a token is its index in that list (filters that drop tokens keep
the positions of the others, so ``phrase_match`` sees the gaps).
"""

from __future__ import annotations

import re
from typing import Any

from ..._errors import ParamError

#: Milvus's ``standard`` tokenizer splits on every character that is not a letter or digit
#: (Rust's ``char::is_alphanumeric``: Unicode Alphabetic or Numeric, which takes in the vowel
#: signs of Indic scripts, unlike Python's ``str.isalnum``): ``don't`` gives ``don`` and ``t``,
#: ``foo_bar`` gives two tokens, and a run of CJK ideographs stays one token.
_ALNUM_RUN: Any
try:
    import regex

    _ALNUM_RUN = regex.compile(r"[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]+")
except ImportError:  # without the regex package: letters and digits as Python defines them
    _ALNUM_RUN = re.compile(r"[^\W_]+")
#: The same runs in an ASCII text (ASCII letters and digits are all there is to them), found by ``re``
#: in half the time the ``regex`` class takes.
_ASCII_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")
#: The ``whitespace`` tokenizer splits on ASCII whitespace only, as tantivy's does.
_NON_SPACE = re.compile(r"[^ \t\n\r\x0b\x0c]+")

Span = tuple[str, int, int]


class Tokenizer:
    """Splits a text into tokens; subclasses set `pattern` or override the two methods."""

    name = ""
    pattern: Any = _ALNUM_RUN

    def words(self, text: str) -> list[str]:
        """The tokens of ``text``, in order."""
        return self.pattern.findall(text)

    def spans(self, text: str) -> list[Span]:
        """The tokens of ``text`` with their start and end character offsets."""
        return [(m.group(), m.start(), m.end()) for m in self.pattern.finditer(text)]


class StandardTokenizer(Tokenizer):
    """Runs of letters and digits."""

    name = "standard"
    pattern = _ALNUM_RUN

    def words(self, text: str) -> list[str]:
        return (_ASCII_ALNUM_RUN if text.isascii() else _ALNUM_RUN).findall(text)


class WhitespaceTokenizer(Tokenizer):
    """Runs of anything but ASCII whitespace."""

    name = "whitespace"
    pattern = _NON_SPACE


class JiebaTokenizer(Tokenizer):
    """Chinese word segmentation with jieba (the ``heron[chinese]`` extra).

    ``mode`` is ``"search"`` (the default, as in Milvus: long words also give
    their shorter words) or ``"exact"``; ``hmm`` turns jieba's HMM for unknown
    words on (the default) or off; ``dict`` lists extra words, with
    ``"_default_"`` standing for jieba's own dictionary.
    """

    name = "jieba"

    def __init__(self, params: dict[str, Any]) -> None:
        unknown = set(params) - {"type", "mode", "hmm", "dict"}
        if unknown:
            raise ParamError(f"analyzer_params.tokenizer: unknown jieba parameter {sorted(unknown)[0]!r}; "
                             "expected mode, hmm or dict")
        try:
            import jieba  # type: ignore[import-untyped]
        except ImportError as exc:
            raise ParamError("analyzer_params: the jieba tokenizer (and the chinese analyzer) needs the "
                             "jieba package: pip install 'heron[chinese]'") from exc
        mode = params.get("mode", "search")
        if mode not in ("search", "exact"):
            raise ParamError(f"analyzer_params.tokenizer.mode: {mode!r} is not a jieba mode; expected 'search' "
                             "or 'exact'")
        hmm = params.get("hmm", True)
        if not isinstance(hmm, bool):
            raise ParamError(f"analyzer_params.tokenizer.hmm: {hmm!r} is not a bool")
        words = params.get("dict", ["_default_"])
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ParamError(f"analyzer_params.tokenizer.dict: {words!r} is not a list of strings")
        self._mode = "search" if mode == "search" else "default"
        self._hmm = hmm
        self._jieba = jieba.Tokenizer()
        jieba.setLogLevel(60)
        for word in words:
            if word != "_default_":
                self._jieba.add_word(word)

    def words(self, text: str) -> list[str]:
        return [w for w, _, _ in self.spans(text)]

    def spans(self, text: str) -> list[Span]:
        return list(self._jieba.tokenize(text, mode=self._mode, HMM=self._hmm))


def build_tokenizer(spec: Any) -> Tokenizer:
    """The tokenizer ``spec`` names: ``"standard"``, ``"whitespace"``, ``"jieba"`` or ``{"type": ...}``."""
    params: dict[str, Any] = {}
    if isinstance(spec, dict):
        params = spec
        kind = spec.get("type")
    else:
        kind = spec
    if kind == "jieba":
        return JiebaTokenizer(params)
    if kind in ("standard", "whitespace"):
        extra = set(params) - {"type"}
        if extra:
            raise ParamError(f"analyzer_params.tokenizer: unknown {kind} tokenizer parameter {sorted(extra)[0]!r}")
        return StandardTokenizer() if kind == "standard" else WhitespaceTokenizer()
    raise ParamError(f"analyzer_params.tokenizer: {kind!r} is not a tokenizer; expected one of "
                     "'standard', 'whitespace', 'jieba'")
