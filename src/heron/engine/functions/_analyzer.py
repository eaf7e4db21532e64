"""Analyzers: text to tokens, for BM25, ``text_match``/``phrase_match`` and ``run_analyzer``.

The contract the rest of the engine uses:

- ``build_analyzer(params)`` takes a field's ``analyzer_params`` (``None`` or
  ``{}`` means the ``standard`` analyzer; a JSON string is read first) and
  returns an `Analyzer`, or raises `ParamError` naming the bad key and value.
- ``Analyzer.tokenize(text)`` gives the tokens of one text, in order;
  ``tokenize_many(texts)`` gives a list per text and is faster (each distinct
  token goes through the filters once per batch); ``analyze_many(texts)``
  also gives each token's position (``phrase_match`` needs them: a dropped
  token, such as a stop word, leaves a gap).

The analyzers are Milvus's: the built-in ``standard`` (letters-and-digits
tokenizer, lowercase), ``english`` (plus Snowball English stemming and the
English stop words), ``chinese`` (jieba, then only CJK letters and ASCII
letters and digits), ``whitespace``; all take ``stop_words``. A custom one is
``{"tokenizer": ..., "filter": [...]}`` (see `_analyzer_tokenizers` and
`_analyzer_filters`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from ..._errors import ParamError
from ._analyzer_filters import TokenFilter, build_filter, stemmer, stop_words
from ._analyzer_filters import _cn_alphanum_only as _cn_alphanum
from ._analyzer_tokenizers import Tokenizer, build_tokenizer

BUILT_IN = ("standard", "english", "chinese", "whitespace")
_MEMO_LIMIT = 1 << 20


@dataclass(frozen=True)
class Token:
    """One token as ``run_analyzer(with_detail=True)`` shows it: UTF-8 byte offsets, as Milvus gives them."""

    token: str
    start_offset: int
    end_offset: int
    position: int
    position_length: int = 1


def token_hash(token: str) -> int:
    """Milvus's hash of a token: unsigned 32-bit MurmurHash3 (seed 0) of its UTF-8 bytes."""
    import mmh3  # type: ignore[import-not-found, unused-ignore]

    return int(mmh3.hash(token.encode(), 0, signed=False))


class Analyzer:
    """A tokenizer followed by token filters; built by `build_analyzer`."""

    def __init__(self, params: dict[str, Any], tokenizer: Tokenizer, filters: list[TokenFilter]) -> None:
        self.params = params
        self._tokenizer = tokenizer
        self._filters = filters
        #: Lowercasing first (most analyzers): an ASCII text is lowercased whole before it is split,
        #: and only the other filters run per distinct token.
        self._lower_first = bool(filters) and filters[0] is str.lower
        self._rest = filters[1:] if self._lower_first else filters
        self._memo: dict[str, str | None] = {}

    def _filtered(self, words: Iterable[str], chain: list[TokenFilter]) -> dict[str, str | None]:
        """The filtered form of each word, computed once per distinct word and kept.

        ``chain`` is the whole chain, or the chain without its leading lowercase
        for words already lowercased: both give the same answer for those.
        """
        memo = self._memo
        if len(memo) > _MEMO_LIMIT:
            self._memo = memo = {}  # a new dict: a thread still reading the old one keeps its words
        found: dict[str, str | None] = {}
        for word in words:
            if word in memo:
                found[word] = memo[word]
                continue
            out: str | None = word
            for f in chain:
                if out is None:
                    break
                out = f(out)
            memo[word] = found[word] = out
        return found

    def _words(self, texts: list[str]) -> tuple[list[list[str]], list[TokenFilter]]:
        """Each text's tokenizer output, and the filters still to run on it."""
        split = self._tokenizer.words
        if not self._lower_first:
            return [split(t) for t in texts], self._filters
        lowered = [split(t.lower()) if t.isascii() else [w.lower() for w in split(t)] for t in texts]
        return lowered, self._rest

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text``, in order."""
        return self.tokenize_many([text])[0]

    def tokenize_many(self, texts: list[str]) -> list[list[str]]:
        """The tokens of each text."""
        raw, chain = self._words(texts)
        if not chain:
            return raw
        memo = self._filtered(dict.fromkeys(itertools.chain.from_iterable(raw)), chain)
        return [[m for w in words if (m := memo[w]) is not None] for words in raw]

    def analyze_many(self, texts: list[str]) -> list[tuple[list[str], list[int]]]:
        """The tokens of each text with their positions (a dropped token leaves a gap)."""
        raw, chain = self._words(texts)
        memo = self._filtered(dict.fromkeys(itertools.chain.from_iterable(raw)), chain) if chain else None
        out: list[tuple[list[str], list[int]]] = []
        for words in raw:
            if memo is None:
                out.append((words, list(range(len(words)))))
                continue
            kept = [(m, i) for i, w in enumerate(words) if (m := memo[w]) is not None]
            out.append(([m for m, _ in kept], [i for _, i in kept]))
        return out

    def details(self, text: str) -> list[Token]:
        """The tokens of ``text`` with UTF-8 byte offsets and positions."""
        spans = self._tokenizer.spans(text)
        memo = self._filtered({w for w, _, _ in spans}, self._filters) if self._filters else None
        ascii_text = text.isascii()
        out = []
        for position, (word, start, end) in enumerate(spans):
            token = word if memo is None else memo[word]
            if token is None:
                continue
            if not ascii_text:
                start, end = len(text[:start].encode()), len(text[:end].encode())
            out.append(Token(token, start, end, position))
        return out


def _parse(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if isinstance(params, (str, bytes)):
        if not params:
            return {}
        try:
            params = orjson.loads(params)
        except orjson.JSONDecodeError as exc:
            raise ParamError(f"analyzer_params: {params!r} is not valid JSON: {exc}") from exc
    if not isinstance(params, dict):
        raise ParamError(f"analyzer_params: {params!r} is not a dict; expected {{'type': 'standard'}} "
                         "or {'tokenizer': ..., 'filter': [...]}")
    return dict(params)


def _built_in(params: dict[str, Any]) -> Analyzer:
    kind = params["type"]
    if kind not in BUILT_IN:
        raise ParamError(f"analyzer_params.type: {kind!r} is not a built-in analyzer; expected one of "
                         f"{', '.join(BUILT_IN)}")
    extra = set(params) - {"type", "stop_words"}
    if extra:
        raise ParamError(f"analyzer_params: unknown parameter {sorted(extra)[0]!r} for the {kind} analyzer; "
                         "a built-in analyzer takes only stop_words")
    filters: list[TokenFilter] = []
    if kind == "chinese":
        tokenizer = build_tokenizer("jieba")
        filters.append(_cn_alphanum)
    else:
        tokenizer = build_tokenizer("whitespace" if kind == "whitespace" else "standard")
    if kind in ("standard", "english"):
        filters.append(str.lower)
    if kind == "english":
        filters.append(stemmer("english"))
        filters.append(build_filter({"type": "stop", "stop_words": ["_english_"]}))
    if "stop_words" in params:
        words = stop_words(params["stop_words"], "analyzer_params.stop_words")
        filters.append(lambda token: None if token in words else token)
    return Analyzer(params, tokenizer, filters)


def build_analyzer(params: dict[str, Any] | str | None) -> Analyzer:
    """The analyzer that ``params`` (a field's ``analyzer_params``) describes; `ParamError` if it is wrong."""
    params = _parse(params)
    if not params:
        return _built_in({"type": "standard"})
    if "type" in params:
        if "tokenizer" in params or "filter" in params:
            raise ParamError("analyzer_params: give either type (a built-in analyzer) or tokenizer and filter, "
                             f"not both: {params!r}")
        return _built_in(params)
    if "tokenizer" not in params:
        raise ParamError(f"analyzer_params: {params!r} names no analyzer; expected type or tokenizer")
    extra = set(params) - {"tokenizer", "filter"}
    if extra:
        raise ParamError(f"analyzer_params: unknown parameter {sorted(extra)[0]!r}; expected type, or "
                         "tokenizer and filter")
    specs = params.get("filter", [])
    if not isinstance(specs, list):
        raise ParamError(f"analyzer_params.filter: {specs!r} is not a list of filters")
    return Analyzer(params, build_tokenizer(params["tokenizer"]), [build_filter(s) for s in specs])


_CACHE: dict[str, Analyzer] = {}


def cached_analyzer(params: dict[str, Any] | str | None) -> Analyzer:
    """`build_analyzer(params)`, kept per distinct ``params`` (building one may load a dictionary)."""
    params = _parse(params)
    key = orjson.dumps(params, option=orjson.OPT_SORT_KEYS).decode()
    analyzer = _CACHE.get(key)
    if analyzer is None:
        analyzer = build_analyzer(params)
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = analyzer
    return analyzer
