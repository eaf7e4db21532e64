"""A full disk: clear errors, nothing acknowledged lost, nothing unacknowledged kept, writes resume after.

The tests run on a real small file system, a tmpfs mounted for the test
(root only). Where mounting is not allowed they skip, except under
``CI=true``, where they fail: CI runs as root and must run them.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import heron
from heron.engine.storage._io_errors import Headroom, as_storage_error, is_disk_full

DIM = 32
BATCH = 500
FS_BYTES = 24 << 20


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run the disk-full tests: run them as root)")
    pytest.skip(reason)


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of `FS_BYTES` mounted at a fresh directory, unmounted when the test ends."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        _unavailable("mounting a small file system needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES}", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode:
        _unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _fill(path: Path, leave: int = 0) -> None:
    """Write ballast files until about ``leave`` bytes are free (all of it when 0)."""
    chunk = b"\0" * (1 << 16)
    try:
        with open(path / f"ballast-{time.monotonic_ns()}", "wb", buffering=0) as fh:
            while _free(path) > leave + len(chunk):
                fh.write(chunk)
            while not leave:
                fh.write(b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def _unfill(path: Path) -> None:
    for f in path.glob("ballast-*"):
        f.unlink()


def _grow(path: Path, size: int) -> None:
    """Resize the tmpfs at ``path`` to ``size`` bytes, in place (its files stay)."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True, capture_output=True)
    assert _free(path) > size - FS_BYTES, _free(path)


def _columns(ids: np.ndarray, ver: int) -> dict[str, np.ndarray]:
    vec = np.zeros((len(ids), DIM), dtype=np.float32)
    vec[:, 0] = ids
    vec[:, 1] = ver
    return {"id": ids, "ver": np.full(len(ids), ver, dtype=np.int64), "vec": vec}


def _create(client: heron.Client) -> None:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("ver", heron.DataType.INT64)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection("c", schema=s, index_params=idx)


def _stored(client: heron.Client) -> dict[int, int]:
    rows = client.query("c", filter="id >= 0", output_fields=["ver"])
    out = {r["id"]: r["ver"] for r in rows}
    assert len(out) == len(rows), "a primary key came back twice"
    return out


def _insert_until_refused(client: heron.Client, expected: dict[int, int], ver: int) -> heron.DiskFullError:
    """Insert batches until one is refused; returns that error. ``expected`` gains every acknowledged row."""
    next_id = max(expected, default=-1) + 1
    for _ in range(2000):
        ids = np.arange(next_id, next_id + BATCH, dtype=np.int64)
        try:
            client.insert("c", _columns(ids, ver))
        except heron.HeronError as exc:
            assert isinstance(exc, heron.DiskFullError), f"expected DiskFullError, got {exc!r}"
            got = client.query("c", filter=f"id >= {next_id}", output_fields=["count(*)"])[0]["count(*)"]
            assert got == 0, "rows of the refused batch are visible"
            return exc
        expected.update(dict.fromkeys(ids.tolist(), ver))
        next_id += BATCH
    pytest.fail("the file system never filled up")


def _done_or_full(write) -> bool:
    """Run one write on a full disk: True if it was done, False if it was refused as disk full."""
    try:
        write()
    except heron.HeronError as exc:
        assert isinstance(exc, heron.DiskFullError) and "full" in str(exc), f"expected DiskFullError, got {exc!r}"
        return False
    return True


def _segment_rows(path: Path) -> int:
    with sqlite3.connect(f"file:{path / 'catalog.db'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COALESCE(SUM(num_rows), 0) FROM segments").fetchone()[0]


def test_a_full_disk_refuses_writes_with_disk_full_and_loses_nothing(small_fs, monkeypatch):
    """Headroom off: the disk fills to the last byte under inserts, upserts and deletes."""
    monkeypatch.setenv("HERON_MIN_FREE_BYTES", "0")
    monkeypatch.setenv("HERON_SEAL_ROWS", "3000")
    path = small_fs / "db"
    expected: dict[int, int] = {}
    with heron.Client(str(path)) as client:
        _create(client)
        _fill(small_fs, leave=4 << 20)
        err = _insert_until_refused(client, expected, ver=1)
        assert "is full" in str(err) and str(small_fs) in str(err), err
        _fill(small_fs)  # whatever the refused insert left
        # The insert log grows its files ahead of the records (a synced zero tail), so a small write
        # may land in space reserved before the disk filled: it then succeeds and must be kept.
        # Either way it is never half-done, and a refusal is a DiskFullError.
        if _done_or_full(lambda: client.upsert("c", _columns(np.arange(0, 10, dtype=np.int64), 2))):
            expected.update(dict.fromkeys(range(10), 2))
        if _done_or_full(lambda: client.delete("c", ids=[0, 1, 2])):
            for k in (0, 1, 2):
                del expected[k]
        _done_or_full(lambda: client.create_collection("more", dimension=4))
        # Reads keep working and show exactly the acknowledged rows.
        assert _stored(client) == expected
        hit = client.search("c", data=[_columns(np.array([7]), 1)["vec"][0].tolist()], limit=1)[0]
        assert hit[0]["id"] == 7

        _unfill(small_fs)
        # Space is back, room for every file the full disk held up (the ballast alone may not be: how much
        # was written before the disk filled depends on timing): every kind of write works again, and
        # so does sealing.
        _grow(small_fs, 2 * FS_BYTES)
        client.upsert("c", _columns(np.arange(0, 10, dtype=np.int64), 2))
        expected.update(dict.fromkeys(range(10), 2))
        client.delete("c", ids=[10, 11])
        del expected[10], expected[11]
        ids = np.arange(max(expected) + 1, max(expected) + 1 + BATCH, dtype=np.int64)
        client.insert("c", _columns(ids, 3))
        expected.update(dict.fromkeys(ids.tolist(), 3))
        client.flush("c")
        assert _stored(client) == expected
    assert _segment_rows(path) >= len(expected)
    with heron.Client(str(path)) as client:
        assert _stored(client) == expected


def test_headroom_refuses_inserts_while_the_log_can_still_be_sealed(small_fs, monkeypatch):
    """With the default check on, inserts stop while there is room to seal; deletes and flush still work."""
    monkeypatch.setenv("HERON_MIN_FREE_BYTES", str(6 << 20))
    monkeypatch.setenv("HERON_SEAL_ROWS", "100000")  # nothing is sealed until the flush
    path = small_fs / "db"
    expected: dict[int, int] = {}
    with heron.Client(str(path)) as client:
        _create(client)
        _fill(small_fs, leave=9 << 20)
        err = _insert_until_refused(client, expected, ver=1)
        assert "HERON_MIN_FREE_BYTES" in str(err) and "refused" in str(err), err
        assert _free(small_fs) > 0
        with pytest.raises(heron.DiskFullError, match="HERON_MIN_FREE_BYTES"):
            client.upsert("c", _columns(np.arange(0, 10, dtype=np.int64), 2))
        client.delete("c", ids=[3, 4])
        del expected[3], expected[4]
        logs_before = sum(f.stat().st_size for f in (path / "log").iterdir())
        client.flush("c")  # the log's rows fit into a segment file: the log is retired
        assert _segment_rows(path) >= len(expected)
        assert sum(f.stat().st_size for f in (path / "log").iterdir()) < logs_before
        assert _stored(client) == expected
        _unfill(small_fs)
        ids = np.arange(max(expected) + 1, max(expected) + 1 + BATCH, dtype=np.int64)
        client.insert("c", _columns(ids, 3))
        expected.update(dict.fromkeys(ids.tolist(), 3))
    with heron.Client(str(path)) as client:
        assert _stored(client) == expected


def test_sealing_on_a_full_disk_warns_once_keeps_rows_and_resumes(small_fs, monkeypatch, caplog):
    """Segment files that cannot be written: rows stay searchable, one WARNING, written once space returns."""
    monkeypatch.setenv("HERON_MIN_FREE_BYTES", "0")
    monkeypatch.setenv("HERON_SEAL_ROWS", "1000")
    path = small_fs / "db"
    expected: dict[int, int] = {}
    caplog.set_level(logging.WARNING, logger="heron.engine")
    with heron.Client(str(path)) as client:
        _create(client)
        client.insert("c", _columns(np.arange(0, 900, dtype=np.int64), 1))
        expected.update(dict.fromkeys(range(900), 1))
        _fill(small_fs)
        with pytest.raises(heron.DiskFullError, match="not written"):
            client.flush("c")  # seals: the segment file cannot be written
        time.sleep(2)  # a few retries in the background fail meanwhile
        with pytest.raises(heron.DiskFullError, match="not written"):
            client.flush("c")
        assert _stored(client) == expected
        warnings = [r for r in caplog.records if r.name == "heron.engine" and r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "is full" in warnings[0].getMessage()
        assert _segment_rows(path) < len(expected)

        _unfill(small_fs)
        deadline = time.monotonic() + 60
        while _segment_rows(path) < len(expected):  # retried in the background, without a flush
            assert time.monotonic() < deadline, "sealing did not resume once space was freed"
            time.sleep(0.1)
        client.flush("c")
        assert _stored(client) == expected
        assert not list(small_fs.glob("db/segments/*/*.tmp")), "a partial segment file was left behind"
    with heron.Client(str(path)) as client:
        assert _stored(client) == expected


# -- the mapping itself (no file system needed) -------------------------------------------


@pytest.mark.parametrize("exc, kind", [
    (OSError(errno.ENOSPC, "No space left on device"), heron.DiskFullError),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), heron.DiskFullError),
    (sqlite3.OperationalError("database or disk is full"), heron.DiskFullError),
    (OSError(errno.EIO, "Input/output error"), heron.StorageError),
])
def test_io_failures_become_heron_errors_naming_the_operation_and_file(exc, kind):
    err = as_storage_error(exc, "insert into collection 'c'", "/data/log")
    assert type(err) is kind
    assert "insert into collection 'c'" in str(err) and "/data/log" in str(err)
    assert is_disk_full(exc) == (kind is heron.DiskFullError)


def test_other_errors_are_not_taken_for_io_failures():
    assert as_storage_error(sqlite3.IntegrityError("UNIQUE constraint failed"), "x", "/p") is None
    assert as_storage_error(heron.ParamError("bad"), "x", "/p") is None


def test_min_free_bytes_must_be_a_number(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_MIN_FREE_BYTES", "lots")
    with pytest.raises(heron.ParamError, match="HERON_MIN_FREE_BYTES='lots'"):
        Headroom(str(tmp_path))


def test_headroom_check_cost_is_a_statvfs(tmp_path):
    """The check costs one statvfs per insert (printed; the bound only catches a pathological slowdown)."""
    h = Headroom(str(tmp_path), min_free=1)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n):
        h.check("insert", "c")
    per_call = (time.perf_counter() - t0) / n
    print(f"headroom check: {per_call * 1e6:.2f} us per insert")
    assert per_call < 1e-3
