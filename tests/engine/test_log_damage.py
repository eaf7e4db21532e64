"""Damage to the insert log on real files: a flipped bit, a cut, a deleted file.

Each case ends one of two ways: the directory opens with every acknowledged
row (only the very last record, never acknowledged, may vanish after a
crash), or opening raises `CorruptionError` naming the file and the offset
and leaves every file's bytes as they were.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import heron
from heron.engine.storage import _log_files as lf

BATCHES = 12
BATCH = 50


def _rows(batch: int) -> list[dict]:
    return [{"id": batch * BATCH + i, "vector": [float(i), float(batch), 1.0, 0.5]} for i in range(BATCH)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A directory whose insert log holds 12 records (one per acknowledged batch), closed cleanly."""
    path = tmp_path_factory.mktemp("log-damage") / "db"
    with heron.Client(str(path)) as c:
        c.create_collection("books", dimension=4)
        for b in range(BATCHES):
            c.insert("books", _rows(b))
    return path


def _copy(template: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "db"
    shutil.copytree(template, dest)
    return dest


def _log_file(path: Path) -> Path:
    (name,) = lf.log_files(str(path / "log"))
    return path / "log" / name


def _layout(log: Path) -> list[tuple[int, int, int]]:
    """(start, payload end, padded end) of each record."""
    scan = lf.scan_file(str(log), log.name)
    assert scan.bad is None and len(scan.records) == BATCHES
    return [(r.offset - lf.HEADER.size, r.offset + r.length, r.offset - lf.HEADER.size
             + lf.aligned(lf.HEADER.size + r.length)) for r in scan.records]


def _digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != "LOCK" and not p.name.startswith("catalog.db")}


def _ids(path: Path) -> set[int]:
    with heron.Client(str(path)) as c:
        return {r["id"] for r in c.query("books", filter="", output_fields=["id"], limit=10_000)}


def _flip(path: Path, offset: int, bit: int = 0) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ (1 << bit)]))


def _as_after_a_crash(path: Path) -> None:
    """The manifest as a crash leaves it: the log file was started this session and nothing vouched for yet."""
    logs = str(path / "log")
    lf.write_manifest(logs, {n: 0 for n in lf.log_files(logs)})


def _refused(path: Path, log: Path, offset: int | None, match: str, *, named: bool = True) -> None:
    before = _digest(path)
    with pytest.raises(heron.CorruptionError, match=match) as info:
        heron.Client(str(path))
    assert info.value.path == str(log)
    if offset is not None:
        assert info.value.offset == offset
        assert f"byte {offset}" in str(info.value)
    if named:  # the collections whose records the file holds (none is left in a file cut to nothing)
        assert "collection 1 ('books' in database 'default')" in str(info.value)
    assert _digest(path) == before, "a refused open changed a file"


#: Offset classes within a record: (name, offset from the record's start or payload end).
CLASSES = [("magic", 0), ("crc", 5), ("length", 9), ("seq", 13), ("collection", 21), ("partition", 29),
           ("payload", lf.HEADER.size + 7), ("payload end", -1), ("padding", +1)]
ALL = [(k, cls) for k in range(BATCHES) for cls in CLASSES]


def _offset(layout, k: int, cls: tuple[str, int]) -> int:
    start, end, padded = layout[k]
    name, at = cls
    if name == "payload end":
        return end - 1
    if name == "padding":
        assert padded > end + 1
        return end + (padded - end) // 2
    return start + at


@pytest.mark.parametrize("crash", [False, True], ids=["after-close", "after-crash"])
def test_a_flipped_bit_in_any_record_is_refused_or_loses_only_the_torn_tail(template, tmp_path, crash):
    layout = _layout(_log_file(template))
    every = {i for b in range(BATCHES) for i in range(b * BATCH, (b + 1) * BATCH)}
    refused = lost_tail = 0
    for k, cls in ALL:
        path = _copy(template, tmp_path / f"{k}-{cls[0]}")
        if crash:
            _as_after_a_crash(path)
        log = _log_file(path)
        at = _offset(layout, k, cls)
        _flip(log, at, bit=(k + at) % 8)
        if crash and k == BATCHES - 1 and cls[0] != "padding":
            # The last record of the last file, not vouched for: what a torn write leaves. It alone goes.
            assert _ids(path) == every - set(range(k * BATCH, BATCHES * BATCH)), (k, cls)
            assert not log.read_bytes()[layout[k][0]:].strip(b"\0"), "the torn record was not zeroed"
            lost_tail += 1
            continue
        record_start = layout[k][0]
        _refused(path, log, at if cls[0] == "padding" else record_start, "insert log file")
        refused += 1
        shutil.rmtree(path.parent)
    print(f"flips: {refused} refused, {lost_tail} torn tails cut, of {len(ALL)}")
    assert refused + lost_tail == len(ALL)


@pytest.mark.parametrize("cut", ["to-zero", "mid-header", "mid-payload", "at-record-boundary", "in-padding"])
def test_a_truncated_log_is_refused_after_a_clean_close(template, tmp_path, cut):
    path = _copy(template, tmp_path)
    log = _log_file(path)
    layout = _layout(log)
    size = {"to-zero": 0, "mid-header": layout[3][0] + 10, "mid-payload": layout[6][0] + 100,
            "at-record-boundary": layout[9][0], "in-padding": layout[11][2] - 7}[cut]
    os.truncate(log, size)
    _refused(path, log, size, "truncated", named=size > 0)


def test_after_a_crash_a_torn_last_record_loses_only_that_record(template, tmp_path):
    """A torn write: the last record's bytes from some point on never reached the disk (the file keeps its size)."""
    path = _copy(template, tmp_path)
    _as_after_a_crash(path)
    log = _log_file(path)
    layout = _layout(log)
    with open(log, "r+b") as fh:
        fh.seek(layout[-1][0] + 100)
        fh.write(bytes(layout[-1][2] - layout[-1][0] - 100))
    assert _ids(path) == set(range((BATCHES - 1) * BATCH))
    data = log.read_bytes()
    assert len(data) >= layout[-1][0] + lf.ALIGN and not data[layout[-1][0]:].strip(b"\0")


def test_after_a_crash_a_cut_inside_the_last_record_is_refused(template, tmp_path):
    """The file grows (durably) before a record goes into it, so no crash leaves it shorter than a torn record."""
    path = _copy(template, tmp_path)
    _as_after_a_crash(path)
    log = _log_file(path)
    layout = _layout(log)
    os.truncate(log, layout[-1][0] + 100)
    _refused(path, log, layout[-1][0] + 100, "cut off at byte .* inside the record at byte")


@pytest.mark.parametrize("boundary", [1, BATCHES // 2, BATCHES - 1])
def test_after_a_crash_a_cut_at_a_record_boundary_is_refused(template, tmp_path, boundary):
    """No crash leaves a whole last record without the zero tail: the records after it were cut off."""
    path = _copy(template, tmp_path)
    _as_after_a_crash(path)
    log = _log_file(path)
    layout = _layout(log)
    os.truncate(log, layout[boundary][0])
    _refused(path, log, layout[boundary][0], "cut off at byte .* right after a whole record")


def test_after_a_crash_the_tail_alone_may_be_cut(template, tmp_path):
    """Zeros after the last record hold nothing: cutting some of them loses nothing and is no damage."""
    path = _copy(template, tmp_path)
    _as_after_a_crash(path)
    log = _log_file(path)
    layout = _layout(log)
    os.truncate(log, layout[-1][2] + lf.ALIGN)
    assert _ids(path) == set(range(BATCHES * BATCH))


def test_a_deleted_log_file_is_refused(template, tmp_path):
    path = _copy(template, tmp_path)
    log = _log_file(path)
    os.unlink(log)
    _refused_missing = pytest.raises(heron.CorruptionError, match="missing")
    with _refused_missing as info:
        heron.Client(str(path))
    assert info.value.path == str(log)
    assert not log.exists()


def test_a_deleted_log_directory_is_refused(template, tmp_path):
    path = _copy(template, tmp_path)
    shutil.rmtree(path / "log")
    with pytest.raises(heron.CorruptionError, match="manifest .* is missing"):
        heron.Client(str(path))


def test_a_damaged_manifest_is_refused(template, tmp_path):
    path = _copy(template, tmp_path)
    _flip(path / "log" / "MANIFEST", 30)
    with pytest.raises(heron.CorruptionError, match="manifest .* is damaged") as info:
        heron.Client(str(path))
    assert info.value.path == str(path / "log" / "MANIFEST")


def test_damage_in_an_older_file_is_refused(tmp_path, monkeypatch):
    from heron.engine.storage import _insert_log

    monkeypatch.setattr(_insert_log, "FILE_BYTES", 1)  # one record per file
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        c.create_collection("books", dimension=4)
        for b in range(4):
            c.insert("books", _rows(b))
    names = lf.log_files(str(path / "log"))
    assert len(names) == 4
    _flip(path / "log" / names[1], lf.HEADER.size + 3)
    _refused(path, path / "log" / names[1], 0, "not in the last file")


_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    import heron
    with heron.Client(sys.argv[1]) as c:
        c.create_collection("books", dimension=4)
    c = heron.Client(sys.argv[1])
    for b in range(12):
        c.insert("books", [{"id": b * 50 + i, "vector": [float(i), float(b), 1.0, 0.5]} for i in range(50)])
    os.kill(os.getpid(), signal.SIGKILL)
""")


@pytest.mark.parametrize("record", [0, 5, 10])
def test_after_kill_9_a_flip_before_the_last_record_is_refused(tmp_path, record):
    path = tmp_path / "db"
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(path)], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    log = _log_file(path)
    layout = _layout(log)
    _flip(log, layout[record][0] + lf.HEADER.size + 20)
    _refused(path, log, layout[record][0], "whole records follow it")


def test_the_open_time_scan_of_64_mib_of_log(tmp_path):
    """A figure, not a bound: how long opening takes to check a full log file."""
    import time

    from heron.engine.storage._insert_log import InsertLog, Retired

    log = InsertLog(str(tmp_path), Retired())
    payload = os.urandom(600_000)
    n = (64 << 20) // len(payload)
    for seq in range(1, n + 1):
        log.append(seq, 1, 1, payload)
    log.close()
    t0 = time.perf_counter()
    reopened = InsertLog(str(tmp_path), Retired())
    took = time.perf_counter() - t0
    assert len(reopened.all_records()) == n
    reopened.close()
    print(f"open-time check of {n} records ({n * len(payload) / 2**20:.0f} MiB): {took * 1000:.0f} ms")
    assert took < 30
