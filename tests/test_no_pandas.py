"""Heron never imports pandas on its own: pyarrow would pull it in (~50 MiB of memory) on many calls."""

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
