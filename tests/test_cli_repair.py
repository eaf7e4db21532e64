"""``heron repair`` on real directories: damage, repair, reopen, every intact acknowledged row present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import heron
from heron.engine.storage import _insert_log
from heron.engine.storage import _log_files as lf

BATCH = 40


def _rows(b: int) -> list[dict]:
    return [{"id": b * BATCH + i, "vector": [float(i), float(b)]} for i in range(BATCH)]


def _make(path: Path, batches: int, collections=("books",)) -> None:
    with heron.Client(str(path)) as c:
        for name in collections:
            c.create_collection(name, dimension=2)
        for b in range(batches):
            c.insert(collections[b % len(collections)], _rows(b))


def _repair(path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", "repair", str(path), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def _ids(path: Path, name: str = "books") -> set[int]:
    with heron.Client(str(path)) as c:
        return {r["id"] for r in c.query(name, filter="", output_fields=["id"], limit=100_000)}


def _records(log: Path) -> list[lf.Record]:
    return lf.scan_file(str(log), log.name).records


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name != "LOCK" and not p.name.startswith("catalog.db")}


def test_repair_keeps_every_intact_record_and_moves_the_damaged_file_aside(tmp_path):
    path = tmp_path / "db"
    _make(path, 12)
    (log,) = (path / "log").glob("*.log")
    recs = _records(log)
    _flip(log, recs[3].offset + 5)  # the payload of the fourth batch
    damaged = log.read_bytes()
    with pytest.raises(heron.CorruptionError):
        heron.Client(str(path))

    before = _tree(path)
    dry = _repair(path, "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert "dry run" in dry.stdout and "damaged record at byte" in dry.stdout
    assert _tree(path) == before and not (path / "damaged").exists()

    done = _repair(path)
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)
    assert "collection 1 'books': 11 records, 440 rows to replay, salvaged" in done.stdout
    assert (path / "damaged" / "log" / log.name).read_bytes() == damaged
    assert _ids(path) == set(range(12 * BATCH)) - set(range(3 * BATCH, 4 * BATCH))
    again = _repair(path)
    assert (again.returncode, again.stdout.strip()) == (0, "nothing to repair")


def test_repair_of_damaged_padding_loses_nothing(tmp_path):
    path = tmp_path / "db"
    _make(path, 5)
    (log,) = (path / "log").glob("*.log")
    r = _records(log)[2]
    _flip(log, r.offset + r.length + 9)
    with pytest.raises(heron.CorruptionError, match="non-zero padding"):
        heron.Client(str(path))
    done = _repair(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 bytes could not be read" in done.stdout
    assert _ids(path) == set(range(5 * BATCH))


def test_repair_salvages_from_every_file_and_reports_each_collection(tmp_path, monkeypatch):
    monkeypatch.setattr(_insert_log, "FILE_BYTES", 3 * 4096)  # a few records per file
    path = tmp_path / "db"
    _make(path, 12, collections=("books", "films"))
    names = lf.log_files(str(path / "log"))
    assert len(names) >= 3
    middle = path / "log" / names[1]
    lost = _records(middle)[0]
    _flip(middle, lost.offset - lf.HEADER.size)  # the magic of its first record
    monkeypatch.undo()
    done = _repair(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"log/{names[1]}:" in done.stdout
    with heron.Client(str(path)) as c:
        present = {r["id"] for n in ("books", "films")
                   for r in c.query(n, filter="", output_fields=["id"], limit=100_000)}
    gone = set(range(12 * BATCH)) - present
    assert len(gone) == BATCH  # exactly the one damaged batch
    assert [p.name for p in (path / "damaged" / "log").iterdir()] == [names[1]]


def test_repair_drops_a_deleted_log_file_and_says_what_is_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(_insert_log, "FILE_BYTES", 1)
    path = tmp_path / "db"
    _make(path, 4)
    monkeypatch.undo()
    names = lf.log_files(str(path / "log"))
    os.unlink(path / "log" / names[1])
    with pytest.raises(heron.CorruptionError, match="missing"):
        heron.Client(str(path))
    done = _repair(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"log/{names[1]}: missing" in done.stdout and "cannot be recovered" in done.stdout
    assert _ids(path) == set(range(4 * BATCH)) - set(range(BATCH, 2 * BATCH))


def test_repair_cannot_invent_a_missing_catalog(tmp_path):
    path = tmp_path / "db"
    _make(path, 2)
    (path / "catalog.db").unlink()
    before = _tree(path)
    done = _repair(path)
    assert done.returncode == 1
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith("catalog.db: missing") and "restore catalog.db from a backup" in line
    assert _tree(path) == before


def test_repair_of_a_healthy_directory_changes_nothing(tmp_path):
    path = tmp_path / "db"
    _make(path, 3)
    before = _tree(path)
    done = _repair(path)
    assert (done.returncode, done.stdout.strip()) == (0, "nothing to repair")
    assert _tree(path) == before


def test_repair_usage_errors_exit_2(tmp_path):
    assert _repair(tmp_path / "nowhere").returncode == 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    bare = subprocess.run([sys.executable, "-m", "heron", "repair"], capture_output=True, env=env, timeout=60)
    assert bare.returncode == 2


def test_repair_refuses_a_directory_open_elsewhere(tmp_path):
    path = tmp_path / "db"
    _make(path, 1)
    with heron.Client(str(path)):
        done = _repair(path)
    assert done.returncode == 1
    assert "open in another process" in done.stderr
