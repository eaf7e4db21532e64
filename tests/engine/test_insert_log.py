"""The insert log: records, torn tails, damage, retirement, and what a reopened database replays."""

from __future__ import annotations

import os
import sqlite3

import pytest

import heron
from heron.engine.storage import _insert_log, _log_files
from heron.engine.storage._insert_log import ALIGN, HEADER, MAGIC, InsertLog, Retired


def _log(path, retired=None, file_bytes=None) -> InsertLog:
    return InsertLog(str(path), retired or Retired(), file_bytes=file_bytes)


def _crash(log: InsertLog) -> None:
    """Leave the files as ``kill -9`` would: no clean close recorded in the manifest."""
    os.close(log._fd)
    log._fd = -1
    log.close()


def _files(path) -> list[str]:
    return sorted(f for f in os.listdir(path) if f.endswith(".log"))


def test_records_come_back_in_order_after_reopening(tmp_path):
    log = _log(tmp_path)
    log.append(3, 1, 10, b"three")
    log.append(5, 2, 20, b"other collection")
    log.append(7, 1, 11, bytearray(b"seven"))
    log.close()
    log = _log(tmp_path)
    assert log.records(1) == [(3, 10, b"three"), (7, 11, b"seven")]
    assert log.records(2) == [(5, 20, b"other collection")]
    assert log.max_seq() == 7
    log.close()


def test_the_record_buffer_goes_once_no_record_has_used_it_for_a_while(tmp_path):
    """Kept between records, given back after `IDLE_BUFFER_SECONDS` without one; a later record makes it again."""
    log = _log(tmp_path)
    log.append(3, 1, 10, b"three" * 1000)
    kept = log._buf
    assert kept is not None
    assert not log.release_idle(60.0)  # used a moment ago
    log.append(4, 1, 10, b"four")
    assert log._buf is kept  # the same buffer, reused
    log._lock.acquire()  # a write under way: not waited for
    try:
        assert not log.release_idle(0.0) and log._buf is kept
    finally:
        log._lock.release()
    assert log.release_idle(0.0) and log._buf is None and kept.closed
    assert not log.release_idle(0.0)  # none left
    log.append(5, 1, 10, b"five")
    assert log._buf is not None
    log.close()
    log = _log(tmp_path)
    assert log.records(1) == [(3, 10, b"three" * 1000), (4, 10, b"four"), (5, 10, b"five")]
    log.close()


def test_records_start_on_aligned_boundaries_padded_with_zeros(tmp_path):
    log = _log(tmp_path)
    log.append(1, 1, 1, b"a" * 10)
    log.append(2, 1, 1, b"b" * (ALIGN - HEADER.size + 1))  # one byte into a second block
    log.append(3, 1, 1, b"c")
    log.close()
    (name,) = _files(tmp_path)
    data = (tmp_path / name).read_bytes()
    assert len(data) >= 5 * ALIGN and not data[4 * ALIGN :].strip(b"\0")  # the zero tail
    assert data[HEADER.size + 10 : ALIGN] == bytes(ALIGN - HEADER.size - 10)
    assert [data[k * ALIGN : k * ALIGN + 4] for k in (0, 1, 3)] == [MAGIC] * 3
    assert _log(tmp_path).records(1) == [(1, 1, b"a" * 10), (2, 1, b"b" * (ALIGN - HEADER.size + 1)), (3, 1, b"c")]


@pytest.mark.parametrize("keep", [1, HEADER.size - 1, HEADER.size + 2, HEADER.size + 9])
def test_a_torn_last_record_is_cut_away_and_appending_goes_on(tmp_path, keep):
    log = _log(tmp_path)
    log.append(1, 1, 1, b"a" * 10)
    log.append(2, 1, 1, b"b" * 10)
    _crash(log)
    (name,) = _files(tmp_path)
    full = tmp_path / name
    with open(full, "r+b") as fh:  # a torn write: the second record keeps ``keep`` of its bytes, the file its size
        fh.seek(ALIGN + keep)
        fh.write(bytes(ALIGN - keep))
    log = _log(tmp_path)
    assert log.records(1) == [(1, 1, b"a" * 10)]
    assert not full.read_bytes()[ALIGN:].strip(b"\0")  # zeroed, the tail kept
    log.append(3, 1, 1, b"c")
    log.close()
    assert _files(tmp_path) == [name]
    assert _log(tmp_path).records(1) == [(1, 1, b"a" * 10), (3, 1, b"c")]


@pytest.mark.parametrize("cut", [ALIGN + 1, ALIGN + HEADER.size + 5, ALIGN + HEADER.size + 10, 2 * ALIGN,
                                 2 * ALIGN + 100])
def test_a_file_cut_before_its_tail_is_refused_even_after_a_crash(tmp_path, cut):
    """The file always grows ahead of its records, so a cut in the last padding or at a boundary is no crash."""
    log = _log(tmp_path)
    log.append(1, 1, 1, b"a" * 10)
    log.append(2, 1, 1, b"b" * 10)
    _crash(log)
    (name,) = _files(tmp_path)
    with open(tmp_path / name, "r+b") as fh:
        fh.truncate(cut)
    with pytest.raises(heron.CorruptionError, match="cut off at byte"):
        _log(tmp_path)


def test_a_file_of_records_without_a_tail_is_read_and_not_appended_to(tmp_path):
    old = b"".join(_log_files.encode(seq, 1, 1, b"old %d" % seq).replace(MAGIC, b"HIL2", 1) for seq in (1, 2))
    (tmp_path / "00000000000000000001.log").write_bytes(old)
    log = _log(tmp_path)
    assert log.records(1) == [(1, 1, b"old 1"), (2, 1, b"old 2")]
    log.append(3, 1, 1, b"c")
    log.close()
    assert _files(tmp_path) == ["00000000000000000001.log", "00000000000000000003.log"]
    assert _log(tmp_path).records(1) == [(1, 1, b"old 1"), (2, 1, b"old 2"), (3, 1, b"c")]


def test_files_of_unpadded_records_are_read_and_not_appended_to(tmp_path):
    import struct
    import zlib

    def packed(seq, payload):
        rest = HEADER.pack(b"HIL1", 0, len(payload), seq, 1, 1)[8:] + payload
        return b"HIL1" + struct.pack("<I", zlib.crc32(rest)) + rest

    (tmp_path / "00000000000000000001.log").write_bytes(packed(1, b"old one") + packed(2, b"old two"))
    log = _log(tmp_path)
    assert log.records(1) == [(1, 1, b"old one"), (2, 1, b"old two")]
    log.append(3, 1, 1, b"new")
    log.close()
    assert _files(tmp_path) == ["00000000000000000001.log", "00000000000000000003.log"]
    assert _log(tmp_path).records(1) == [(1, 1, b"old one"), (2, 1, b"old two"), (3, 1, b"new")]


def test_after_a_crash_a_flipped_byte_in_the_last_record_loses_that_record_only(tmp_path):
    log = _log(tmp_path)
    log.append(1, 1, 1, b"first")
    log.append(2, 1, 1, b"second")
    _crash(log)
    (name,) = _files(tmp_path)
    with open(tmp_path / name, "r+b") as fh:
        fh.seek(ALIGN + HEADER.size + 3)
        fh.write(b"X")
    assert _log(tmp_path).records(1) == [(1, 1, b"first")]


def test_damage_before_the_last_file_refuses_to_open(tmp_path):
    log = _log(tmp_path, file_bytes=1)  # one record per file
    for seq in (1, 2, 3):
        log.append(seq, 1, 1, b"payload %d" % seq)
    log.close()
    files = _files(tmp_path)
    assert len(files) == 3
    with open(tmp_path / files[0], "r+b") as fh:
        fh.seek(HEADER.size)
        fh.write(b"Q")
    with pytest.raises(heron.CorruptionError, match="damaged record at byte 0"):
        _log(tmp_path)


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    log = _log(tmp_path)
    log.append(1, 1, 1, b"kept")
    (name,) = _files(tmp_path)
    size = (tmp_path / name).stat().st_size
    real = os.pwrite

    def torn_write(fd, data, offset):
        real(fd, data[:ALIGN], offset)  # the first block reaches the file, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_insert_log.os, "pwrite", torn_write)
    with pytest.raises(OSError, match="No space"):
        log.append(2, 1, 1, b"lost" * ALIGN)
    monkeypatch.undo()
    assert (tmp_path / name).stat().st_size == size
    log.append(3, 1, 1, b"next")
    log.close()
    assert _log(tmp_path).records(1) == [(1, 1, b"kept"), (3, 1, b"next")]


def test_a_file_system_that_refuses_direct_writes_gets_buffered_ones(tmp_path, monkeypatch):
    log = _log(tmp_path)
    log.append(1, 1, 1, b"first")
    log._direct = True  # as after an open that took O_DIRECT
    real = os.pwrite
    calls = []

    def refusing(fd, data, offset):
        calls.append(offset)
        if len(calls) == 1:
            raise OSError(22, "Invalid argument")
        return real(fd, data, offset)

    monkeypatch.setattr(_insert_log.os, "pwrite", refusing)
    log.append(2, 1, 1, b"second")
    log.append(3, 1, 1, b"third")
    monkeypatch.undo()
    assert calls == [ALIGN, ALIGN, 2 * ALIGN]
    assert log._direct is False
    log.close()
    assert _log(tmp_path).records(1) == [(1, 1, b"first"), (2, 1, b"second"), (3, 1, b"third")]


def test_files_go_once_every_record_is_retired_the_active_one_too(tmp_path):
    retired = Retired()
    log = _log(tmp_path, retired, file_bytes=1)
    log.append(1, 1, 1, b"p1")
    log.append(2, 1, 2, b"p2")  # rotates: file of seq 1 is no longer active
    log.append(3, 2, 1, b"c2")
    assert len(_files(tmp_path)) == 3
    log.retire(1, 1, 1, 2)  # partition 1 of collection 1: the record of seq 2 is in partition 2
    assert len(_files(tmp_path)) == 2
    assert log.records(1) == [(2, 2, b"p2")]
    log.retire(1, 0, 0, 3)  # the whole collection
    assert len(_files(tmp_path)) == 1
    log.retire(2, 0, 0, 3)
    assert _files(tmp_path) == []  # the active one too: a nearly full disk gets its space back at once
    assert log.records(1) == log.records(2) == []
    log.append(4, 2, 1, b"c2 again")  # starts a new file
    assert _files(tmp_path) == ["00000000000000000004.log"]
    assert log.records(2) == [(4, 1, b"c2 again")]
    log.close()


# -- through the client -------------------------------------------------------------------


def _count(c, name):
    return c.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"]


def _ids(c, name):
    return sorted(r["id"] for r in c.query(name, filter="", output_fields=["id"], limit=100))


def _rows(start, n):
    return [{"id": i, "vector": [float(i), 1.0]} for i in range(start, start + n)]


def test_sealed_rows_retire_their_log_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    monkeypatch.setattr(_insert_log, "FILE_BYTES", 1)
    path = tmp_path / "d"
    with heron.Client(str(path)) as c:
        c.create_collection("x", dimension=2)
        for start in range(0, 450, 50):
            c.insert("x", _rows(start, 50))
        c.flush("x")
        # 9 records, one file each; every one is retired once sealed, the active one too.
        assert _files(path / "log") == []
    with heron.Client(str(path)) as c:
        assert _count(c, "x") == 450
        assert len(c.get("x", ids=list(range(450)))) == 450


def test_a_dropped_collection_id_is_not_handed_out_again(tmp_path):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("old", dimension=2)
        c.insert("old", _rows(0, 30))
        c.drop_collection("old")
        c.create_collection("new", dimension=2)
        c.insert("new", _rows(100, 5))
    with sqlite3.connect(os.path.join(path, "catalog.db")) as db:
        assert db.execute("SELECT id FROM collections WHERE name='new'").fetchall() == [(2,)]
    with heron.Client(path) as c:
        assert c.list_collections() == ["new"]
        assert _ids(c, "new") == list(range(100, 105))


def test_truncated_and_dropped_partition_rows_stay_gone_after_reopening(tmp_path):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("t", dimension=2)
        c.insert("t", _rows(0, 20))
        c.truncate_collection("t")
        c.insert("t", _rows(50, 3))
        c.create_collection("p", dimension=2)
        c.create_partition("p", "part")
        c.insert("p", _rows(0, 10), partition_name="part")
        c.insert("p", _rows(10, 4))
        c.release_partitions("p", ["part"])
        c.drop_partition("p", "part")
    with heron.Client(path) as c:
        assert _ids(c, "t") == [50, 51, 52]
        assert _ids(c, "p") == [10, 11, 12, 13]


def test_a_segment_is_sealed_before_a_batch_would_overflow_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=2)
        for start in range(0, 300, 30):
            c.insert("x", _rows(start, 30))
        c.flush("x")
        p = c._transport._engine.collection("default", "x").partition("_default")
        assert [s.n for s in p.sealed] == [90, 90, 90, 30]
        assert _count(c, "x") == 300


def test_sequence_numbers_never_go_back_below_a_retired_range(tmp_path):
    """Inserts after a truncate and a restart get numbers above the truncate's, so they are replayed."""
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("t", dimension=2)
        c.insert("t", _rows(0, 5))
        c.truncate_collection("t")
    for round_ in range(3):
        with heron.Client(path) as c:
            c.insert("t", _rows(100 + round_, 1))
    with heron.Client(path) as c:
        assert _ids(c, "t") == [100, 101, 102]


def _fail_log_sync(monkeypatch, calls) -> type[BaseException]:
    real = os.fdatasync

    def failing(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(_insert_log.os, "fdatasync", failing)
    return heron.StorageError  # the OSError, as a Heron error naming the log


def _fail_staging(monkeypatch, calls) -> type[BaseException]:
    """Staging fails after the record is synced, half done: rows written past the segment's end."""
    from heron.engine._segment import Segment

    real = Segment.stage

    def failing(self, batch, seqs):
        calls.append(batch.num_rows)
        real(self, batch, seqs)
        raise MemoryError("no room")

    monkeypatch.setattr(Segment, "stage", failing)
    return MemoryError


@pytest.mark.parametrize("fail", [_fail_log_sync, _fail_staging], ids=["log-sync", "staging"])
def test_a_failed_insert_leaves_nothing_behind(tmp_path, monkeypatch, fail):
    path = str(tmp_path / "d")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=2)
        c.insert("x", _rows(0, 10))
        (name,) = _files(tmp_path / "d" / "log")
        size = (tmp_path / "d" / "log" / name).stat().st_size
        calls: list = []
        error = fail(monkeypatch, calls)
        with pytest.raises(error):
            c.insert("x", _rows(10, 5))
        monkeypatch.undo()
        assert calls
        assert (tmp_path / "d" / "log" / name).stat().st_size == size  # its record was cut away
        assert _count(c, "x") == 10
        assert c.get("x", ids=list(range(10, 15))) == []
        c.insert("x", _rows(20, 3))
        assert c._transport._engine.collection("default", "x").partition("_default").growing.n == 13
        assert _ids(c, "x") == [*range(10), 20, 21, 22]
    with heron.Client(path) as c:
        assert _ids(c, "x") == [*range(10), 20, 21, 22]
