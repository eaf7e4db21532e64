"""The portability program against embedded Heron, ``heron serve`` and a real Milvus 2.3.5 standalone.

Off by default (it installs and starts Milvus in a network namespace of its
own, as root): ``python -m pytest -m against_milvus tests/portability``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.against_milvus


def test_every_step_agrees_on_the_three_servers(tmp_path: Path) -> None:
    out = tmp_path / "answers.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "against-milvus"), "--json", str(out)],
                          capture_output=True, text=True, timeout=1800)
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    answers = json.loads(out.read_text())["answers"]
    embedded, served, milvus = answers
    assert milvus["version"].startswith("v2.3.5")
    for i, (step, value) in enumerate(embedded["program"]):
        assert served["program"][i] == [step, value], step
        assert milvus["program"][i] == [step, value], step
    assert done.returncode == 0, done.stdout[-3000:]
    features = {name: value for name, value in milvus["features"]}
    assert set(features) == {f"feature: {f}" for f in
                             ("sparse vectors", "nullable fields", "BM25 full text search", "several vector fields")}
    assert all(value == "ok" for _, value in embedded["features"] + served["features"])
