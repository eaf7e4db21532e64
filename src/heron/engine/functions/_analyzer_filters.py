"""Analyzer token filters, in Milvus's parameter shapes.

Every filter maps one token to a token or to ``None`` (dropped), so a chain
of filters is a function of the token alone: `Analyzer` runs it once per
distinct token of a batch. Filters are named by a string (``"lowercase"``) or
described by a dict (``{"type": "length", "max": 10}``), as Milvus accepts.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from ..._errors import ParamError

TokenFilter = Callable[[str], "str | None"]

#: Lucene's (and tantivy's) English stop words, Milvus's ``_english_`` list.
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these "
    "they this to was will with".split()
)
_STOP_LISTS = {"_english_": ENGLISH_STOP_WORDS}

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef\U00030000-\U0003134f"
_CN_ALNUM = re.compile(f"[{_HAN}a-zA-Z0-9]+")
_CN_CHAR = re.compile(f"[{_HAN}]+")

#: Latin letters with an ASCII form that Unicode decomposition does not give.
_FOLD_EXTRA = {
    "ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "œ": "oe",
    "Œ": "OE", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T",
    "ĸ": "q", "ŋ": "n", "Ŋ": "N", "ſ": "s", "‘": "'", "’": "'", "“": '"', "”": '"',
}

#: The Snowball stemmers Milvus offers, by the names Milvus accepts.
STEMMER_LANGUAGES = (
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hungarian", "italian",
    "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish", "tamil", "turkish",
)


@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if ch in _FOLD_EXTRA:
        return _FOLD_EXTRA[ch]
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base and base.isascii() else ch


def ascii_fold(token: str) -> str:
    """``token`` with accented and other Latin letters replaced by their ASCII forms, as Lucene folds them."""
    if token.isascii():
        return token
    return "".join(c if c.isascii() else _fold_char(c) for c in token)


def _alphanum_only(token: str) -> str | None:
    return token if token.isascii() and token.isalnum() else None


def _cn_alphanum_only(token: str) -> str | None:
    return token if _CN_ALNUM.fullmatch(token) else None


def _cn_char_only(token: str) -> str | None:
    return token if _CN_CHAR.fullmatch(token) else None


_NAMED: dict[str, TokenFilter] = {
    "lowercase": str.lower,
    "asciifolding": ascii_fold,
    "alphanumonly": _alphanum_only,
    "cnalphanumonly": _cn_alphanum_only,
    "cncharonly": _cn_char_only,
}


def stop_words(words: Any, where: str) -> frozenset[str]:
    """The stop words a ``stop_words`` list names (``"_english_"`` stands for the English list)."""
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ParamError(f"{where}: {words!r} is not a list of strings")
    out: set[str] = set()
    for word in words:
        if word in _STOP_LISTS:
            out |= _STOP_LISTS[word]
        elif len(word) > 2 and word.startswith("_") and word.endswith("_"):
            raise ParamError(f"{where}: {word!r} is not a built-in stop word list; expected "
                             f"{', '.join(sorted(_STOP_LISTS))} or plain words")
        else:
            out.add(word)
    return frozenset(out)


def _stop(words: frozenset[str]) -> TokenFilter:
    return lambda token: None if token in words else token


def _length(limit: int) -> TokenFilter:
    return lambda token: token if len(token) <= limit else None


def _regex(pattern: re.Pattern[str]) -> TokenFilter:
    return lambda token: token if pattern.search(token) else None


def stemmer(language: Any) -> TokenFilter:
    """The Snowball stemmer of ``language`` as a token filter."""
    if language not in STEMMER_LANGUAGES:
        raise ParamError(f"analyzer_params.filter.language: {language!r} is not a stemmer language; expected "
                         f"one of {', '.join(STEMMER_LANGUAGES)}")
    import snowballstemmer  # type: ignore[import-untyped]

    return snowballstemmer.stemmer(language).stemWord  # type: ignore[no-any-return]


def _check_keys(spec: dict[str, Any], kind: str, allowed: set[str]) -> None:
    extra = set(spec) - allowed - {"type"}
    if extra:
        raise ParamError(f"analyzer_params.filter: unknown parameter {sorted(extra)[0]!r} for the {kind} filter; "
                         f"expected {', '.join(sorted(allowed)) or 'none'}")
    missing = allowed - set(spec)
    if missing:
        raise ParamError(f"analyzer_params.filter: the {kind} filter needs {sorted(missing)[0]!r}")


def build_filter(spec: Any) -> TokenFilter:
    """The token filter ``spec`` describes (a name, or a dict with ``type``)."""
    if isinstance(spec, str):
        if spec in _NAMED:
            return _NAMED[spec]
        raise ParamError(f"analyzer_params.filter: {spec!r} is not a filter; expected one of "
                         f"{', '.join(_NAMED)} or a dict with type length, stop, stemmer or regex")
    if not isinstance(spec, dict):
        raise ParamError(f"analyzer_params.filter: {spec!r} is not a filter name or a dict")
    kind = spec.get("type")
    if kind in _NAMED:
        _check_keys(spec, kind, set())
        return _NAMED[kind]
    if kind == "length":
        _check_keys(spec, kind, {"max"})
        limit = spec["max"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise ParamError(f"analyzer_params.filter.max: {limit!r} is not a non-negative integer")
        return _length(limit)
    if kind == "stop":
        _check_keys(spec, kind, {"stop_words"})
        return _stop(stop_words(spec["stop_words"], "analyzer_params.filter.stop_words"))
    if kind == "stemmer":
        _check_keys(spec, kind, {"language"})
        return stemmer(spec["language"])
    if kind == "regex":
        _check_keys(spec, kind, {"expr"})
        expr = spec["expr"]
        try:
            pattern = re.compile(expr)
        except (re.error, TypeError) as exc:
            raise ParamError(f"analyzer_params.filter.expr: {expr!r} is not a regular expression: {exc}") from exc
        return _regex(pattern)
    raise ParamError(f"analyzer_params.filter: {kind!r} is not a filter type; expected one of "
                     f"{', '.join(_NAMED)}, length, stop, stemmer, regex")
