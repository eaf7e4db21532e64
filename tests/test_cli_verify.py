"""``heron verify DIR`` on real directories: clean, damaged in each kind of file, cut short by a crash, in use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import heron
from heron.engine.storage._insert_log import ALIGN, HEADER


def _verify(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "heron", "verify", str(path), *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """'a' sealed to a segment with an HNSW index; 'b' in three insert-log records, not sealed."""
    path = tmp_path_factory.mktemp("verify") / "db"
    rng = np.random.default_rng(3)
    with heron.Client(str(path)) as c:
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
        c.create_collection("a", dimension=16, index_params=idx)
        c.insert("a", [{"id": i, "vector": rng.random(16)} for i in range(3000)])
        c.flush("a")
        c._transport._engine.wait_background()
        c.create_collection("b", dimension=16)
        for k in range(3):
            c.insert("b", [{"id": k * 100 + i, "vector": rng.random(16)} for i in range(100)])
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


def _files(path: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file()}


def test_a_clean_directory_verifies_and_nothing_in_it_changes(pristine, tmp_path) -> None:
    work = tmp_path / "db"
    shutil.copytree(pristine, work)
    before = _files(work)
    out = _verify(work)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 segment files, 1 index files" in out.stdout and "no damage" in out.stdout
    report = json.loads(_verify(work, "--json").stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["checked"]["log_records"] >= 3
    assert _files(work) == before


def _first_record_of_b(work: Path) -> tuple[Path, int]:
    """An offset inside the payload of the first insert-log record of collection 'b' (not yet sealed)."""
    for log in sorted((work / "log").glob("*.log")):
        data = log.read_bytes()
        pos = 0
        while pos + HEADER.size <= len(data):
            _magic, _crc, length, _seq, coll, _part = HEADER.unpack_from(data, pos)
            if coll == 2:
                return log, pos + HEADER.size + length // 2
            pos += -(-(HEADER.size + length) // ALIGN) * ALIGN
    raise AssertionError("no record of 'b' in the insert log")


def _damage(work: Path, what: str) -> Path:
    if what == "segment":
        (target,) = work.glob("segments/*/*.arrow")
        offset = target.stat().st_size // 2
    elif what == "index":
        (target,) = work.glob("segments/*/*.index")
        offset = 225
    elif what == "log":
        target, offset = _first_record_of_b(work)
    else:
        target = work / "catalog.db"
        offset = 65536 if target.stat().st_size > 65536 else 100  # the page type of page 2 (or page 1's header)
    with open(target, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ 0x10]))
    return target


@pytest.mark.parametrize("what", ["segment", "index", "log", "catalog"])
def test_a_flipped_byte_in_each_kind_of_file_is_named_and_exits_1(pristine, tmp_path, what) -> None:
    work = tmp_path / "db"
    shutil.copytree(pristine, work)
    target = _damage(work, what)
    out = _verify(work)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith(f"{target}: ") for line in lines), out.stdout
    if what == "log":
        assert "acknowledged rows cannot be read" in out.stdout
    assert "damaged" in lines[-1]
    report = json.loads(_verify(work, "--json").stdout)
    assert report["ok"] is False
    assert str(target.relative_to(work)) in {p["file"] for p in report["problems"] if p["damage"]}


def test_a_last_record_cut_short_by_a_crash_is_a_note_not_damage(pristine, tmp_path) -> None:
    work = tmp_path / "db"
    shutil.copytree(pristine, work)
    (log,) = sorted((work / "log").glob("*.log"))[-1:]
    with open(log, "ab") as f:  # a record whose header made it to the disk and whose payload did not
        f.write(HEADER.pack(b"HIL2", 1234, 5000, 10**6, 1, 1) + b"\0" * 100)
    out = _verify(work)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{log}: " in out.stdout and "cut short by a crash" in out.stdout


def test_a_directory_open_in_another_process_is_not_verified(pristine, tmp_path) -> None:
    work = tmp_path / "db"
    shutil.copytree(pristine, work)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, heron; c = heron.Client(sys.argv[1]); print('open', flush=True); "
         "sys.stdin.read(); c.close()", str(work)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        out = _verify(work)
        assert out.returncode == 2
        assert f"open in another process (pid {holder.pid})" in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1
    finally:
        holder.communicate("", timeout=60)
    assert _verify(work).returncode == 0


def test_a_path_that_is_no_data_directory_is_not_verified(tmp_path) -> None:
    out = _verify(tmp_path / "nothing")
    assert out.returncode == 2 and "not a Heron data directory" in out.stderr
    assert os.listdir(tmp_path) == []
