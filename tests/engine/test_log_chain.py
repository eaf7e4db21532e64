"""The insert log's chain of files: a file deleted whole, the newest included, is refused at open.

A writer with one record per file is killed with SIGKILL (no clean close, so
the manifest is only what rotation wrote); then a file is deleted. Opening
must refuse, naming the file; `heron repair` keeps the records of the files
that remain and reports the one that is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import heron
from heron.engine.storage import _log_files as lf

BATCH = 50
BATCHES = 4

_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import heron
    from heron.engine.storage import _insert_log
    _insert_log.FILE_BYTES = 1  # a new file for every record
    with heron.Client(sys.argv[1]) as c:
        c.create_collection("books", dimension=4)
    c = heron.Client(sys.argv[1])
    for b in range(int(sys.argv[2])):
        c.insert("books", [{"id": b * 50 + i, "vector": [float(i), float(b), 1.0, 0.5]} for i in range(50)])
    os.kill(os.getpid(), signal.SIGKILL)
""")


def _killed_writer(path: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path), str(BATCHES)], capture_output=True,
                          timeout=120, env=env)
    assert proc.returncode == -9, proc.stderr.decode()
    names = [n for n in lf.log_files(str(path / "log")) if lf.scan_file(str(path / "log" / n), n).records]
    assert len(names) == BATCHES
    return names


def _ids(path: Path) -> set[int]:
    with heron.Client(str(path)) as c:
        return {r["id"] for r in c.query("books", filter="", output_fields=["id"], limit=10_000)}


@pytest.mark.parametrize("which", [-1, 1], ids=["newest", "middle"])
def test_after_kill_9_a_deleted_log_file_is_refused_naming_it(tmp_path, which):
    path = tmp_path / "db"
    names = _killed_writer(path)
    gone = path / "log" / names[which]
    os.unlink(gone)
    with pytest.raises(heron.CorruptionError, match="missing") as info:
        heron.Client(str(path))
    assert info.value.path == str(gone)
    assert names[which] in str(info.value)
    assert not gone.exists()


def test_repair_keeps_the_files_that_remain_and_reports_the_deleted_one(tmp_path):
    path = tmp_path / "db"
    names = _killed_writer(path)
    os.unlink(path / "log" / names[-1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-m", "heron", "repair", str(path)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"log/{names[-1]}: missing" in done.stdout, done.stdout
    assert _ids(path) == set(range((BATCHES - 1) * BATCH))


def test_without_a_crash_or_deletion_every_row_is_back(tmp_path):
    path = tmp_path / "db"
    _killed_writer(path)
    assert _ids(path) == set(range(BATCHES * BATCH))
