"""text_match and phrase_match: against the reference definition, through the sealed segments' token
index and the growing rows, after deletes and a restart, their errors, and side by side with Milvus Lite."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

import heron
from heron import DataType
from heron.engine.filter import evaluate_reference
from heron.engine.functions._analyzer import build_analyzer
from heron.engine.index._text_index import TextIndex
from tests.conftest import require_module, shared_path

ANALYZERS = [{"type": "standard"}, {"type": "english"},
             {"tokenizer": "standard", "filter": ["lowercase", "asciifolding", {"type": "stop", "stop_words": ["of"]}]}]


def _texts(n: int) -> list[str]:
    with gzip.open(shared_path("data", "minilm-dev-10k", "base.jsonl.gz"), "rt") as f:
        return [json.loads(line)["text"] for _, line in zip(range(n), f)]


def _schema(analyzer: dict[str, Any] | None) -> heron.CollectionSchema:
    s = heron.CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("t", DataType.VARCHAR, max_length=2000, enable_analyzer=True, enable_match=True, nullable=True,
                analyzer_params=analyzer)
    s.add_field("plain", DataType.VARCHAR, max_length=50, nullable=True)
    s.add_field("n", DataType.INT64, nullable=True)
    return s


def _queries(texts: list[str], rng: random.Random, k: int) -> list[str]:
    """Token and phrase filters drawn from the texts themselves (so that many match), plus a few that cannot."""
    out = []
    for _ in range(k):
        words = rng.choice([t for t in texts if t]).split()
        i = rng.randrange(len(words))
        phrase = " ".join(words[i:i + rng.randint(1, 3)]).replace("'", " ").replace("\\", " ")
        kind = rng.random()
        if kind < 0.4:
            out.append(f"text_match(t, '{phrase}')")
        elif kind < 0.8:
            out.append(f"phrase_match(t, '{phrase}', {rng.choice([0, 0, 1, 2, 3])})")
        elif kind < 0.9:
            out.append(f"not text_match(t, '{phrase}') and n > 10")
        else:
            out.append(f"phrase_match(t, '{phrase}') or text_match(t, 'zzqx')")
    return out


def _ids(client: Any, expr: str) -> set[int]:
    return {r["id"] for r in client.query("c", filter=expr, output_fields=["id"], limit=16384)}


@pytest.mark.parametrize("analyzer", ANALYZERS)
def test_answers_match_the_reference_sealed_growing_deleted_and_reopened(analyzer: dict[str, Any],
                                                                       tmp_path: Path) -> None:
    rng = random.Random(7)
    texts = _texts(400)
    texts[5] = None  # type: ignore[call-overload]
    rows = [{"id": i, "v": [0.0, 1.0], "t": t, "plain": None, "n": i % 50} for i, t in enumerate(texts)]
    queries = _queries([t for t in texts if t], rng, 60)
    schema = _schema(analyzer)
    path = str(tmp_path / "db")
    with heron.Client(path) as client:
        client.create_collection("c", schema=schema)
        client.insert("c", rows[:250])
        client.flush("c")  # sealed: answered through the token index
        client.insert("c", rows[250:])  # growing: tokenized when asked
        client.delete("c", ids=list(range(0, 400, 7)))
        live = [r for r in rows if r["id"] % 7]
        for q in queries:
            expected = {r["id"] for r, ok in zip(live, evaluate_reference(q, schema, live)) if ok}
            assert _ids(client, q) == expected, q
    with heron.Client(path) as client:
        for q in queries[:20]:
            expected = {r["id"] for r, ok in zip(live, evaluate_reference(q, schema, live)) if ok}
            assert _ids(client, q) == expected, q


def test_a_sealed_segment_keeps_a_token_index(tmp_path: Path) -> None:
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=_schema(None))
        client.insert("c", [{"id": 1, "v": [0.0, 1.0], "t": "Alpha beta"}])
        coll = client._transport._engine.collection("default", "c")  # type: ignore[attr-defined]
        assert _ids(client, "text_match(t, 'alpha')") == {1}
        growing = [p.growing for p in coll.partitions.values() if p.growing is not None]
        assert growing and growing[0].text.built["t"].n == 1  # kept for the next query, extended by later rows
        client.insert("c", [{"id": 2, "v": [0.0, 1.0], "t": "Beta gamma"}])
        assert _ids(client, "text_match(t, 'beta')") == {1, 2}
        assert growing[0].text.built["t"].n == 2
        client.flush("c")
        assert _ids(client, "text_match(t, 'gamma')") == {2}
        segs = [s for p in coll.partitions.values() for s in p.sealed]
        assert segs and all(isinstance(s.text.built.get("t"), TextIndex) for s in segs)
        assert all("plain" not in s.text.built for s in segs)


def test_the_documented_phrase_examples() -> None:
    analyzer = build_analyzer(None)
    texts = ["machine learning boosts efficiency", "learning machine", "deep learning machine models",
             "machine deep learning", None]
    index = TextIndex.build(analyzer, texts)
    q = ("machine", "learning")
    assert index.match_phrase(q, (0, 1), 0).tolist() == [True, False, False, False, False]
    assert index.match_phrase(q, (0, 1), 1).tolist() == [True, False, False, True, False]
    assert index.match_phrase(q, (0, 1), 2).tolist() == [True, True, True, True, False]
    assert index.match_any(("efficiency", "models")).tolist() == [True, False, True, False, False]
    assert index.match_any(()).tolist() == [False] * 5
    assert index.match_phrase(("learning", "learning"), (0, 1), 0).tolist() == [False] * 5


def test_stop_words_leave_gaps_in_phrases(tmp_path: Path) -> None:
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=_schema({"type": "english"}))
        client.insert("c", [{"id": 1, "v": [0.0, 1.0], "t": "the king of the hill"},
                            {"id": 2, "v": [0.0, 1.0], "t": "king hill"}])
        assert _ids(client, "phrase_match(t, 'kings of the hills')") == {1}
        assert _ids(client, "phrase_match(t, 'king hill')") == {2}
        assert _ids(client, "phrase_match(t, 'king hill', 2)") == {1, 2}


def test_null_rows_match_neither_way(tmp_path: Path) -> None:
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=_schema(None))
        client.insert("c", [{"id": 1, "v": [0.0, 1.0], "t": "red fox"}, {"id": 2, "v": [0.0, 1.0], "t": None},
                            {"id": 3, "v": [0.0, 1.0], "t": "blue whale"}])
        assert _ids(client, "text_match(t, 'fox')") == {1}
        assert _ids(client, "not text_match(t, 'fox')") == {3}
        client.flush("c")
        assert _ids(client, "not text_match(t, 'fox')") == {3}
        assert {r["id"] for r in client.query("c", filter="text_match(t, {q})", filter_params={"q": "whale fox"},
                                              output_fields=["id"])} == {1, 3}


@pytest.mark.parametrize(("expr", "phrase"), [
    ("text_match(plain, 'x')", "'plain'"),
    ("phrase_match(plain, 'x')", "'plain'"),
    ("text_match(n, 'x')", "VARCHAR"),
    ("text_match(t)", "two arguments"),
    ("text_match(t, 'a', 1)", "two arguments"),
    ("phrase_match(t, 'a', 1, 2)", "two or three"),
    ("text_match(t, 3)", "string"),
    ("phrase_match(t, 'a b', -1)", "non-negative"),
    ("phrase_match(t, 'a b', 1.5)", "non-negative"),
])
def test_bad_calls_are_refused(expr: str, phrase: str, tmp_path: Path) -> None:
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=_schema(None))
        with pytest.raises(heron.FilterError, match=phrase):
            client.query("c", filter=expr)


def test_text_match_agrees_with_milvus_lite() -> None:
    """On the standard analyzer, the same rows as Milvus Lite; where they differ, Heron follows Milvus.

    Milvus Lite has no RunAnalyzer (its server answers UNIMPLEMENTED), so its
    tokens are compared through text_match. Where it differs, checked below so
    that a change on either side shows: its tokenizer keeps ``_`` inside words
    (Python's ``\\w``), where Milvus's (tantivy's SimpleTokenizer) and Heron's
    split; and it ignores ``analyzer_params`` (every field gets its standard
    analyzer), so the other analyzers have no Lite answers to compare with.
    """
    require_module("pymilvus")
    require_module("milvus_lite")
    import pymilvus as pm

    from tests.server.test_milvus_lite_interop import start_milvus_lite

    texts = _texts(300)
    rng = random.Random(3)
    words = [w for t in texts for w in build_analyzer(None).tokenize(t)]
    queries = [" ".join(rng.sample(words, rng.randint(1, 3))) for _ in range(40)]
    queries += ["Sequence", "MOUNTAINS, peaks!", "zzqx"]
    data = tempfile.mkdtemp()
    lite = start_milvus_lite(data)
    try:
        mc = pm.MilvusClient(f"http://127.0.0.1:{lite.port}")
        schema = mc.create_schema()
        schema.add_field("id", pm.DataType.INT64, is_primary=True)
        schema.add_field("v", pm.DataType.FLOAT_VECTOR, dim=2)
        schema.add_field("t", pm.DataType.VARCHAR, max_length=2000, enable_analyzer=True, enable_match=True)
        index = mc.prepare_index_params()
        index.add_index("v", index_type="FLAT", metric_type="L2")
        mc.create_collection("c", schema=schema, index_params=index)
        rows = [{"id": i, "v": [0.0, 1.0], "t": t} for i, t in enumerate(texts)]
        mc.insert("c", rows)
        with heron.Client(str(Path(data) / "heron")) as hc:
            hc.create_collection("c", schema=schema, index_params=index)
            hc.insert("c", rows)
            for q in queries:
                expr = f"text_match(t, '{q}')"
                lite_ids = {r["id"] for r in mc.query("c", filter=expr, output_fields=["id"], limit=1000)}
                assert _ids(hc, expr) == lite_ids, q
            extra = {"id": 1000, "v": [0.0, 1.0], "t": "foo_bar"}
            mc.insert("c", [extra])
            hc.insert("c", [extra])
            lite_hits = [mc.query("c", filter=f"text_match(t, '{q}')", output_fields=["id"]) for q in ("foo", "foo_bar")]
            assert [[r["id"] for r in hits] for hits in lite_hits] == [[], [1000]]
            assert [_ids(hc, f"text_match(t, '{q}')") for q in ("foo", "foo_bar")] == [{1000}, {1000}]
            # Milvus Lite keeps analyzer_params but tokenizes with its standard analyzer whatever they say:
            # its english field does not stem ("run" misses "running"); Heron's (like Milvus's) does.
            english = mc.create_schema()
            english.add_field("id", pm.DataType.INT64, is_primary=True)
            english.add_field("v", pm.DataType.FLOAT_VECTOR, dim=2)
            english.add_field("t", pm.DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                              analyzer_params={"type": "english"})
            running = [{"id": 1, "v": [0.0, 1.0], "t": "running late"}]
            for c in (mc, hc):
                c.create_collection("e", schema=english, index_params=index)
                c.insert("e", running)
            assert mc.query("e", filter="text_match(t, 'run')", output_fields=["id"]) == []
            assert [r["id"] for r in hc.query("e", filter="text_match(t, 'run')", output_fields=["id"])] == [1]
            import grpc

            with pytest.raises(grpc.RpcError) as info:
                mc.run_analyzer(["x"])
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        mc.close()
    finally:
        lite.proc.kill()
        lite.proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def test_an_index_extended_piece_by_piece_answers_as_one_built_at_once() -> None:
    texts: list[str | None] = list(_texts(300))
    texts[10] = None
    analyzer = build_analyzer({"type": "english"})
    whole = TextIndex.build(analyzer, texts)
    pieces = TextIndex.build(analyzer, texts[:37])
    for a, b in ((37, 38), (38, 150), (150, 151), (151, 300)):
        pieces = pieces.joined(TextIndex.build(analyzer, texts[a:b]))
    assert pieces.n == whole.n == 300
    rng = random.Random(5)
    for _ in range(40):
        words = analyzer.tokenize(rng.choice([t for t in texts if t]))
        if not words:
            continue
        i = rng.randrange(len(words))
        q = tuple(words[i:i + 2])
        offsets = tuple(range(len(q)))
        assert pieces.match_any(q).tolist() == whole.match_any(q).tolist()
        for slop in (0, 2):
            assert pieces.match_phrase(q, offsets, slop).tolist() == whole.match_phrase(q, offsets, slop).tolist()


def test_growing_rows_queried_between_inserts(tmp_path: Path) -> None:
    rng = random.Random(11)
    texts = _texts(200)
    schema = _schema({"type": "english"})
    queries = _queries(texts, rng, 10)
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=schema)
        rows: list[dict[str, Any]] = []
        for start in range(0, 200, 40):
            batch = [{"id": i, "v": [0.0, 1.0], "t": texts[i], "n": i % 50} for i in range(start, start + 40)]
            client.insert("c", batch)
            rows += batch
            for q in queries:
                expected = {r["id"] for r, ok in zip(rows, evaluate_reference(q, schema, rows)) if ok}
                assert _ids(client, q) == expected, q
        client.flush("c")
        for q in queries:
            expected = {r["id"] for r, ok in zip(rows, evaluate_reference(q, schema, rows)) if ok}
            assert _ids(client, q) == expected, q


def test_merged_segments_answer_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_MERGE_ROWS", "1000")
    rng = random.Random(2)
    texts = _texts(300)
    schema = _schema({"type": "english"})
    queries = _queries(texts, rng, 15)
    rows = [{"id": i, "v": [0.0, 1.0], "t": t, "n": i % 50} for i, t in enumerate(texts)]
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=schema)
        for start in range(0, 300, 60):
            client.insert("c", rows[start:start + 60])
            client.flush("c")
        coll = client._transport._engine.collection("default", "c")  # type: ignore[attr-defined]
        sealed = [s for p in coll.partitions.values() for s in p.sealed]
        assert len(sealed) < 5 and sum(s.n for s in sealed) == 300  # merged
        for q in queries:
            expected = {r["id"] for r, ok in zip(rows, evaluate_reference(q, schema, rows)) if ok}
            assert _ids(client, q) == expected, q
        assert all(s.text.built["t"].n == s.n for s in sealed)


def test_match_without_enable_analyzer_uses_the_standard_analyzer(tmp_path: Path) -> None:
    # Milvus reads enable_match on its own (Go's ParseBool spellings too); the analyzer defaults to standard.
    s = heron.CollectionSchema()
    s.add_field("id", DataType.INT64, is_primary=True).add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("t", DataType.VARCHAR, max_length=50, enable_match="True")
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=s)
        client.insert("c", [{"id": 1, "v": [0.0, 1.0], "t": "Running Fox"}])
        assert _ids(client, "text_match(t, 'fox')") == {1}
        assert _ids(client, "text_match(t, 'run')") == set()
        field = next(f for f in client.describe_collection("c")["fields"] if f["name"] == "t")
        assert field["params"]["enable_match"] == "true"


def test_chinese_fields_match_jieba_words(tmp_path: Path) -> None:
    require_module("jieba")
    with heron.Client(str(tmp_path / "db")) as client:
        client.create_collection("c", schema=_schema({"type": "chinese"}))
        client.insert("c", [{"id": 1, "v": [0.0, 1.0], "t": "我爱北京天安门"},
                            {"id": 2, "v": [0.0, 1.0], "t": "上海是一个城市"}])
        assert _ids(client, "text_match(t, '北京')") == {1}
        assert _ids(client, "text_match(t, '城市 天安门')") == {1, 2}
        assert _ids(client, "phrase_match(t, '北京天安门')") == {1}
