"""``heron copy`` (also killed and resumed) and ``heron export`` + bulk insert, from embedded Heron into Milvus 2.3.5.

Off by default (it starts Milvus in a network namespace of its own, as root):
``python -m pytest -m against_milvus tests/portability/test_copy_to_milvus.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.against_milvus


def test_a_100k_row_collection_reaches_milvus_by_copy_and_by_bulk_insert_verified(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "copy-to-milvus"), "--json", str(out)],
                          capture_output=True, text=True, timeout=3600)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["version"].startswith("v2.3.5")
    assert figures["rows"] == 100_000
    copy, bulk = figures["copy"], figures["bulk"]
    assert copy["verified"], copy["output"]
    assert "100,000 rows" in copy["output"] and "2 partition count(s) equal, 100 sampled rows equal" in copy["output"]
    assert figures["back"]["verified"], figures["back"]["output"]
    assert "2 partition count(s) equal, 100 sampled rows equal" in figures["back"]["output"]
    assert bulk["verified"], bulk["output"]
    assert bulk["files"] == ["_default.parquet", "p1.parquet", "schema.json"]
    assert bulk["check"] == "2 partition count(s) equal, 100 sampled rows equal"
    resumed = figures["resumed"]
    assert 0 < resumed["killed_after"] < 100_000
    assert resumed["verified"], resumed["output"]
    assert "2 partition count(s) equal, 100 sampled rows equal" in resumed["output"]
    assert done.returncode == 0, done.stdout[-3000:]
