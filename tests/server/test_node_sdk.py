"""The Milvus Node.js SDK (``@zilliz/milvus2-sdk-node``) against ``heron serve``: create, insert, search, query, drop.

`tests/node/basics.js` makes the calls and prints what each answered; the
test checks the answers against what the rows hold. It needs node and the
SDK installed in ``tests/node/node_modules`` (``npm ci --prefix tests/node``,
as ``.ci/run`` does): without them it skips, and fails under CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import require

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SDK = NODE_DIR / "node_modules" / "@zilliz" / "milvus2-sdk-node"


def _vector(i: int) -> list[float]:
    return [float(i), 1.0, (i % 3) / 3, 1 / (i + 1)]  # as basics.js makes them


def test_node_sdk_basics(start_server):
    node = shutil.which("node")
    require(node, "node is not installed (apt-get install nodejs npm)")
    require(SDK.is_dir(), f"the Node.js SDK is not installed: npm ci --prefix {NODE_DIR}")
    server = start_server()
    proc = subprocess.run(
        [str(node), "basics.js", f"127.0.0.1:{server.port}", "node_books"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, f"node failed:\n{proc.stderr[-4000:]}\nserver:\n{server.output()[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["create"] == "Success" and out["has"] is True
    assert [name for name, _ in out["fields"]] == ["id", "title", "year", "vector"]
    assert [t for _, t in out["fields"]] == ["Int64", "VarChar", "Int32", "FloatVector"]
    assert out["insert"]["status"] == "Success" and out["insert"]["count"] == 20
    assert sorted(int(i) for i in out["insert"]["ids"]) == list(range(20))

    # The three nearest rows (L2) to row 7's vector among the rows with year >= 2005, computed here.
    vectors = np.array([_vector(i) for i in range(20)], dtype=np.float32)
    d = ((vectors - vectors[7]) ** 2).sum(axis=1)
    allowed = np.arange(20) >= 5
    expected = [int(i) for i in np.argsort(np.where(allowed, d, np.inf), kind="stable")[:3]]
    hits = out["search"]["hits"]
    assert out["search"]["status"] == "Success"
    assert [int(h["id"]) for h in hits] == expected
    assert [h["title"] for h in hits] == [f"book {i}" for i in expected]
    assert [h["year"] for h in hits] == [2000 + i for i in expected]
    np.testing.assert_allclose([h["score"] for h in hits], d[expected], rtol=1e-5, atol=1e-6)

    rows = sorted(out["query"]["rows"], key=lambda r: int(r["id"]))
    assert out["query"]["status"] == "Success"
    assert [(int(r["id"]), r["title"], r["year"]) for r in rows] == [(i, f"book {i}", 2000 + i) for i in (2, 4, 6)]
    assert out["rows"] == 20
    assert out["drop"] == "Success" and out["after_drop"] is False
