"""The seed tutorial scenario (shared/scenarios/seed_tutorial_async.py) passes, embedded."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import HERON_SRC, ROOT, shared_path

QUICKSTART = ROOT / "examples" / "quickstart.py"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": HERON_SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_seed_tutorial_passes_embedded(tmp_path):
    scenario = shared_path("scenarios", "seed_tutorial_async.py")
    out = subprocess.run(
        [sys.executable, str(scenario), str(tmp_path / "t.db"), "--fresh"],
        capture_output=True, text=True, timeout=240, env=_env(), cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].endswith(" 0 failed")


def test_quickstart_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(QUICKSTART), str(tmp_path / "q.db")],
        capture_output=True, text=True, timeout=120, env=_env(), cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "nearest 3" in out.stdout and "red or blue:" in out.stdout
