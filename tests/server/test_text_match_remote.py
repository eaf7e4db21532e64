"""text_match and phrase_match through every client: both Heron clients, embedded and served, and
pymilvus against heron serve (fields created with enable_analyzer / enable_match over the wire)."""

from __future__ import annotations

from typing import Any

import pytest

import heron
from tests.conftest import require_module
from tests.server.test_run_analyzer import _text_schema


@pytest.fixture
def server(wiped_server):
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


pm = require_module("pymilvus")


ROWS = [
    {"id": 1, "v": [0.0, 1.0], "t": "Machine learning boosts efficiency", "plain": "a"},
    {"id": 2, "v": [0.0, 1.0], "t": "learning machines", "plain": "b"},
    {"id": 3, "v": [0.0, 1.0], "t": "machine deep learning", "plain": "c"},
    {"id": 4, "v": [0.0, 1.0], "t": "The kings of the hills", "plain": "d"},
]
MATCHES = {
    "text_match(t, 'machines')": {1, 2, 3},
    "text_match(t, 'efficiency kings')": {1, 4},
    "not text_match(t, 'learn')": {4},
    "phrase_match(t, 'machine learning')": {1},
    "phrase_match(t, 'machine learning', 1)": {1, 3},
    "phrase_match(t, 'machine learning', 2)": {1, 2, 3},
    "phrase_match(t, 'king of the hill')": {4},
    "text_match(t, 'deep') and plain == 'c'": {3},
}


def _match_ids(c: Any, expr: str) -> set[int]:
    return {r["id"] for r in c.query("docs", filter=expr, output_fields=["id"])}


def test_text_match_and_phrase_match_through_every_client(client: Any) -> None:
    client.create_collection("docs", schema=_text_schema(heron))
    client.insert("docs", ROWS[:2])
    client.flush("docs")
    client.insert("docs", ROWS[2:])
    for expr, expected in MATCHES.items():
        assert _match_ids(client, expr) == expected, expr
    with pytest.raises(heron.FilterError, match="'plain'"):
        client.query("docs", filter="text_match(plain, 'a')")
    client.delete("docs", filter="phrase_match(t, 'king of the hill') or text_match(t, 'efficiency')")
    assert _match_ids(client, "id > 0") == {2, 3}


def test_pymilvus_text_match_against_heron_serve(server: Any) -> None:
    mc = pm.MilvusClient(server.uri)
    try:
        index = mc.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        mc.create_collection("docs", schema=_text_schema(pm.MilvusClient), index_params=index)
        mc.insert("docs", ROWS)
        for expr, expected in MATCHES.items():
            assert _match_ids(mc, expr) == expected, expr
        hits = mc.search("docs", [[0.0, 1.0]], filter="phrase_match(t, 'machine learning', 1)", limit=10)
        assert {h["id"] for h in hits[0]} == {1, 3}
        with pytest.raises(pm.MilvusException, match="enable_match"):
            mc.query("docs", filter="text_match(plain, 'a')")
    finally:
        mc.close()

