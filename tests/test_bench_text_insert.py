"""The text-only insert benchmark runs end to end on a small size; no timing is asserted."""

from __future__ import annotations

import pytest

from bench import text_insert
from tests.conftest import require_module, shared_path


def test_bm25_modes_insert_every_row_and_are_reported(tmp_path):
    shared_path("data", "minilm-dev-10k", "base.jsonl.gz")
    require_module("milvus_lite")
    texts = text_insert.read_texts(400)
    assert len(texts) == 400 and all(isinstance(t, str) and t for t in texts)
    res = text_insert.measure(texts, ["heron-bm25", "milvus-lite-bm25"], 400, 20, 150, 1, log=lambda line: None)
    for mode in ("heron-bm25", "milvus-lite-bm25"):  # each run checks the collection's row count itself
        assert "error" not in res[mode], res[mode]
        assert res[mode]["rows"] == 400
        assert res[mode]["insert_docs_s"] > 0 and res[mode]["searchable_docs_s"] > 0
    assert res["heron-bm25"]["function_docs_s"] > 0 and res["heron-bm25"]["cpu_us_doc"] > 0
    table = text_insert.report(res, 150, 1)
    assert "| heron-bm25 | 400 |" in table and "| milvus-lite-bm25 | 400 |" in table


def test_a_failing_mode_reports_its_error_and_unknown_modes_are_refused(monkeypatch):
    def broken(*args):
        raise RuntimeError("provider down")

    monkeypatch.setattr(text_insert, "run_heron", broken)
    res = text_insert.measure(["a text"], ["heron-embed"], 1, 1, 1, 2, log=lambda line: None)
    assert res["heron-embed"]["error"].startswith("failed: RuntimeError: provider down")
    assert "| heron-embed | failed: RuntimeError" in text_insert.report(res, 1, 2)
    with pytest.raises(ValueError, match="nope"):
        text_insert.measure(["a"], ["nope"], 1, 1, 1, 1)


def test_sections_replace_their_own_block_and_keep_the_rest(tmp_path):
    from bench._sections import write_section

    doc = tmp_path / "TEXT.md"
    write_section(doc, "a", "# A\n\none")
    doc.write_text(doc.read_text() + "\nprose between\n")
    write_section(doc, "b", "# B\n\ntwo")
    write_section(doc, "a", "# A\n\nthree")
    text = doc.read_text()
    assert "one" not in text and text.index("three") < text.index("prose between") < text.index("two")
    assert text.count("<!-- begin a -->") == 1 and text.count("<!-- end b -->") == 1
