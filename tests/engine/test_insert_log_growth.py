"""How the insert log grows its file: zeros written for small records, space allocated for large ones.

Either way the file reads as zeros past its last record (the tail that tells
a crash from a cut file), and a file system without ``fallocate`` gets zeros.
"""

from __future__ import annotations

import errno
import os

import pytest

from heron.engine.storage import _insert_log
from heron.engine.storage._insert_log import ALIGN, InsertLog, Retired
from tests.conftest import require

BIG = _insert_log.LARGE_RECORD_BYTES + 3 * ALIGN + 5


def _calls(monkeypatch, fail: int | None = None) -> dict[str, int]:
    """Count fallocate calls and zero writes; with ``fail``, fallocate raises that errno."""
    seen = {"fallocate": 0, "zeros": 0}
    real_alloc, real_zeros = os.posix_fallocate, InsertLog._write_zeros

    def alloc(fd, offset, length):
        seen["fallocate"] += 1
        if fail is not None:
            raise OSError(fail, os.strerror(fail))
        return real_alloc(fd, offset, length)

    def zeros(self, target):
        seen["zeros"] += 1
        return real_zeros(self, target)

    monkeypatch.setattr(_insert_log.os, "posix_fallocate", alloc)
    monkeypatch.setattr(InsertLog, "_write_zeros", zeros)
    return seen


def _payloads(n: int, size: int) -> list[bytes]:
    return [bytes([65 + i]) * size + os.urandom(7) for i in range(n)]


def _tail_is_zero(path, log_end: int) -> bool:
    (name,) = sorted(f for f in os.listdir(path) if f.endswith(".log"))
    data = (path / name).read_bytes()
    return len(data) > log_end and not data[log_end:].strip(b"\0")


def _crash(log: InsertLog) -> None:
    os.close(log._fd)
    log._fd = -1
    log.close()


def test_large_records_grow_the_file_by_allocating_and_survive_a_crash(tmp_path, monkeypatch):
    require(hasattr(os, "posix_fallocate"), "os.posix_fallocate (this platform has none)")
    seen = _calls(monkeypatch)
    log = InsertLog(str(tmp_path), Retired())
    records = _payloads(4, BIG)
    for i, p in enumerate(records):
        log.append(i + 1, 1, 1, p)
    end = log._size
    assert seen["fallocate"] >= 1 and seen["zeros"] == 0
    assert _tail_is_zero(tmp_path, end)
    _crash(log)
    log = InsertLog(str(tmp_path), Retired())
    assert log.records(1) == [(i + 1, 1, p) for i, p in enumerate(records)]
    log.append(9, 1, 1, b"small after")  # appending goes on into the allocated tail
    log.close()
    assert InsertLog(str(tmp_path), Retired()).records(1)[-1] == (9, 1, b"small after")


def test_small_records_grow_the_file_with_written_zeros(tmp_path, monkeypatch):
    seen = _calls(monkeypatch)
    log = InsertLog(str(tmp_path), Retired())
    for i in range(40):
        log.append(i + 1, 1, 1, b"x" * 60_000)
    end = log._size
    assert seen == {"fallocate": 0, "zeros": seen["zeros"]} and seen["zeros"] >= 1
    assert _tail_is_zero(tmp_path, end)
    log.close()


@pytest.mark.parametrize("code", [errno.EOPNOTSUPP, errno.EINVAL])
def test_a_file_system_without_fallocate_gets_zeros(tmp_path, monkeypatch, code):
    seen = _calls(monkeypatch, fail=code)
    log = InsertLog(str(tmp_path), Retired())
    records = _payloads(3, BIG)
    for i, p in enumerate(records):
        log.append(i + 1, 1, 1, p)
    assert seen["fallocate"] == 1 and seen["zeros"] >= 2  # asked once, then zeros every time
    assert _tail_is_zero(tmp_path, log._size)
    log.close()
    assert InsertLog(str(tmp_path), Retired()).records(1) == [(i + 1, 1, p) for i, p in enumerate(records)]


def test_no_room_to_allocate_fails_the_write_and_leaves_the_log_as_it_was(tmp_path, monkeypatch):
    log = InsertLog(str(tmp_path), Retired())
    log.append(1, 1, 1, b"before")
    seen = _calls(monkeypatch, fail=errno.ENOSPC)
    with pytest.raises(OSError) as info:
        log.append(2, 1, 1, b"y" * BIG)
    assert info.value.errno == errno.ENOSPC
    assert seen["fallocate"] == 2 and seen["zeros"] == 0  # the whole step, then only what the record needs
    monkeypatch.undo()
    log.append(3, 1, 1, b"after")
    log.close()
    assert InsertLog(str(tmp_path), Retired()).records(1) == [(1, 1, b"before"), (3, 1, b"after")]
