"""The saved filter parser (``_grammar.tables``) matches the grammar and parses as a freshly built one."""

from __future__ import annotations

import json
from importlib import resources

import lark

from heron.engine.filter import _parser as P

EXPRS = [
    'a == 1 and b != "x" or not (c >= 2.5)',
    'a in [1, 2] and b like "p%" and c["k"] < 3 and d is null',
    'array_contains(a, 1) and b > {p} and c % 2 == 0',
    'json_contains_any(meta["tags"], ["x", "y"]) or 1 < n <= 5',
    "text_match(body, 'vector db') and -x ** 2 >= 3.5e-2",
]


def _header() -> dict[str, str]:
    raw = resources.files("heron.engine.filter").joinpath("_grammar.tables").read_bytes()
    return json.loads(raw.partition(b"\n")[0])


def test_the_saved_parser_was_made_from_this_grammar():
    assert _header()["grammar_sha256"] == P.tables_header(P.grammar_text())["grammar_sha256"], (
        "the filter grammar changed: run `python scripts/filter_tables.py`"
    )


def test_the_saved_parser_parses_like_a_freshly_built_one():
    text = P.grammar_text()
    loaded = P.load_tables(text)
    if _header()["lark"] != lark.__version__:  # another lark: the tables are refused, the grammar is built
        assert loaded is None
        return
    assert loaded is not None
    built = P.build_parser(text)
    for expr in EXPRS:
        try:
            want = built.parse(expr)
        except lark.exceptions.LarkError as exc:
            want = type(exc)
        try:
            got = loaded.parse(expr)
        except lark.exceptions.LarkError as exc:
            got = type(exc)
        assert got == want, expr


def test_tables_made_from_another_grammar_are_refused():
    assert P.load_tables(P.grammar_text() + "\n// changed\n") is None
