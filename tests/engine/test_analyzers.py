"""Analyzers: Milvus's built-in and custom analyzers, their token output and their errors."""

from __future__ import annotations

import gzip
import json

import pytest

from heron import ParamError
from heron.engine.functions._analyzer import build_analyzer, token_hash
from tests.conftest import require_module, shared_path

MILVUS_DOC_TEXT = "The Milvus vector database is built for scale!"


def test_the_default_analyzer_is_standard_words_lowercased() -> None:
    assert build_analyzer(None).tokenize(MILVUS_DOC_TEXT) == [
        "the", "milvus", "vector", "database", "is", "built", "for", "scale"]
    assert build_analyzer({}).tokenize("Hello") == ["hello"]
    assert build_analyzer('{"type": "standard"}').tokenize("Hello World") == ["hello", "world"]


def test_standard_splits_on_everything_but_letters_and_digits() -> None:
    tokens = build_analyzer({"type": "standard"}).tokenize("don't e-mail foo_bar 3.14 Ça 北京欢迎你")
    assert tokens == ["don", "t", "e", "mail", "foo", "bar", "3", "14", "ça", "北京欢迎你"]


def test_standard_keeps_vowel_signs_inside_words() -> None:
    # Rust's is_alphanumeric (Unicode Alphabetic) takes in Devanagari vowel signs; str.isalnum does not.
    require_module("regex")
    assert build_analyzer(None).tokenize("भाषा किताब") == ["भाषा", "किताब"]


def test_english_stems_and_drops_stop_words() -> None:
    # Milvus's documentation shows this output for its english analyzer.
    assert build_analyzer({"type": "english"}).tokenize(MILVUS_DOC_TEXT) == [
        "milvus", "vector", "databas", "built", "scale"]


def test_built_in_analyzers_take_stop_words() -> None:
    a = build_analyzer({"type": "standard", "stop_words": ["of", "the"]})
    assert a.tokenize("The Lord of the Rings") == ["lord", "rings"]
    a = build_analyzer({"type": "english", "stop_words": ["lord"]})
    assert a.tokenize("The Lord of the Rings") == ["ring"]


def test_whitespace_keeps_punctuation_and_case() -> None:
    assert build_analyzer({"type": "whitespace"}).tokenize("Hello,  World!\tok") == ["Hello,", "World!", "ok"]


def test_custom_chain_runs_filters_in_order() -> None:
    a = build_analyzer({"tokenizer": "standard", "filter": [
        "lowercase", "asciifolding", {"type": "length", "max": 6},
        {"type": "stop", "stop_words": ["_english_", "cafe"]}]})
    assert a.tokenize("The Café and Crème Brûlée in Zürich, extraordinary") == ["creme", "brulee", "zurich"]


def test_custom_filters_each() -> None:
    def run(filters: list, text: str, tokenizer: object = "standard") -> list[str]:
        return build_analyzer({"tokenizer": tokenizer, "filter": filters}).tokenize(text)

    assert run(["alphanumonly"], "abc été 123 x1") == ["abc", "123", "x1"]
    assert run([{"type": "stemmer", "language": "english"}], "running runs") == ["run", "run"]
    assert run([{"type": "stemmer", "language": "french"}], "continuellement") == ["continuel"]
    assert run([{"type": "regex", "expr": "^[a-z]+$"}], "abc Abc a1 zz") == ["abc", "zz"]
    assert run(["lowercase"], "ABC Déf") == ["abc", "déf"]
    assert run([{"type": "lowercase"}], "ABC") == ["abc"]
    assert run([], "ABC") == ["ABC"]
    assert run(["asciifolding"], "straße Øre ﬁx") == ["strasse", "Ore", "fix"]


def test_positions_keep_the_gaps_of_dropped_tokens() -> None:
    (tokens, positions), = build_analyzer({"type": "english"}).analyze_many(["the cat is on the mat"])
    assert tokens == ["cat", "mat"]
    assert positions == [1, 5]


def test_details_give_utf8_byte_offsets() -> None:
    details = build_analyzer(None).details("é ab, Cd")
    assert [(d.token, d.start_offset, d.end_offset, d.position) for d in details] == [
        ("é", 0, 2, 0), ("ab", 3, 5, 1), ("cd", 7, 9, 2)]


def test_token_hash_is_murmur3_unsigned() -> None:
    require_module("mmh3")
    # MurmurHash3_x86_32 of b"hello" with seed 0 (the reference implementation's value).
    assert token_hash("hello") == 0x248BFA47
    assert 0 <= token_hash("北京") < 2**32


def test_chinese_uses_jieba_and_keeps_cjk_and_alphanumerics() -> None:
    require_module("jieba")
    tokens = build_analyzer({"type": "chinese"}).tokenize("我爱北京天安门, hello!")
    assert "北京" in tokens and "天安门" in tokens and "hello" in tokens
    assert "," not in tokens and " " not in tokens
    exact = build_analyzer({"tokenizer": {"type": "jieba", "mode": "exact"}, "filter": ["cncharonly"]})
    assert exact.tokenize("自然语言处理 abc") == ["自然语言", "处理"]
    custom = build_analyzer({"tokenizer": {"type": "jieba", "dict": ["_default_", "赫伦数据库"], "mode": "exact"}})
    assert "赫伦数据库" in custom.tokenize("赫伦数据库很好")


@pytest.mark.parametrize("params", [
    {"type": "standard"}, {"type": "english"}, {"type": "whitespace"},
    {"tokenizer": "standard", "filter": ["lowercase", "asciifolding", {"type": "stemmer", "language": "english"}]},
])
def test_tokenize_many_matches_tokenize_on_real_texts(params: dict) -> None:
    path = shared_path("data", "minilm-dev-10k", "base.jsonl.gz")
    with gzip.open(path, "rt") as f:
        texts = [json.loads(line)["text"] for _, line in zip(range(500), f)]
    a = build_analyzer(params)
    many = a.tokenize_many(texts)
    assert many == [build_analyzer(params).tokenize(t) for t in texts]
    assert [tokens for tokens, _ in a.analyze_many(texts)] == many
    assert [[d.token for d in a.details(t)] for t in texts[:50]] == many[:50]


@pytest.mark.parametrize(("params", "named"), [
    ({"type": "bogus"}, "'bogus'"),
    ({"type": "english", "tokenizer": "standard"}, "not both"),
    ({"type": "standard", "colour": 1}, "'colour'"),
    ({"tokenizer": "bogus"}, "'bogus'"),
    ({"tokenizer": {"type": "standard", "x": 1}}, "'x'"),
    ({"tokenizer": "standard", "filter": ["bogus"]}, "'bogus'"),
    ({"tokenizer": "standard", "filter": "lowercase"}, "not a list"),
    ({"tokenizer": "standard", "filter": [{"type": "length"}]}, "'max'"),
    ({"tokenizer": "standard", "filter": [{"type": "length", "max": -1}]}, "-1"),
    ({"tokenizer": "standard", "filter": [{"type": "length", "max": 3, "min": 1}]}, "'min'"),
    ({"tokenizer": "standard", "filter": [{"type": "stemmer", "language": "klingon"}]}, "'klingon'"),
    ({"tokenizer": "standard", "filter": [{"type": "regex", "expr": "("}]}, "'('"),
    ({"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": "the"}]}, "'the'"),
    ({"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": ["_klingon_"]}]}, "'_klingon_'"),
    ({"tokenizer": "standard", "filter": [{"type": "decompounder"}]}, "'decompounder'"),
    ({"filter": ["lowercase"]}, "names no analyzer"),
    ("{not json", "not valid JSON"),
    ([1, 2], "not a dict"),
])
def test_bad_params_are_refused_naming_the_value(params: object, named: str) -> None:
    with pytest.raises(ParamError, match="analyzer_params") as info:
        build_analyzer(params)  # type: ignore[arg-type]
    assert named in str(info.value)
