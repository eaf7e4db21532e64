"""Heron never imports pandas on its own (pyarrow would, ~50 MiB), nor scipy.sparse for dense vectors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_broad_embedded_workload_never_imports_pandas(tmp_path):
    child = Path(__file__).with_name("_no_pandas_child.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, str(child), str(tmp_path / "db")], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("NO PANDAS"), out.stdout[-3000:]
    assert "no scipy.sparse" in out.stdout  # loaded on first use of sparse vectors only


_SPARSE = """
import sys, heron
from heron import DataType
c = heron.Client(sys.argv[1])
s = c.create_schema(auto_id=True)
s.add_field("id", DataType.INT64, is_primary=True)
s.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
ip = c.prepare_index_params()
ip.add_index(field_name="sv", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
c.create_collection("s", schema=s, index_params=ip)
assert "scipy.sparse" not in sys.modules
c.insert("s", [{"sv": {1: 0.5, 7: 1.0}}, {"sv": {2: 1.0}}, {"sv": {7: 0.25}}])
hits = c.search("s", data=[{7: 2.0}], limit=5, output_fields=["sv"])[0]
assert [round(h["distance"], 3) for h in hits] == [2.0, 0.5], hits
assert hits[0]["entity"]["sv"] == {1: 0.5, 7: 1.0}, hits
print("OK")
"""


def test_sparse_vectors_load_scipy_when_first_used(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", _SPARSE, str(tmp_path / "db")], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0 and out.stdout.strip() == "OK", out.stderr[-3000:]
