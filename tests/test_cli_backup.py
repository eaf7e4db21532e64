"""``heron backup``, ``restore`` and ``compact`` on real directories and a real server under a write load."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import heron
from tests.conftest import require

BATCH = 50

WRITER = """
import os, sys
import heron
uri, acks, stop, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with heron.Client(uri) as c, open(acks, "a") as out:
    b = 0
    while not os.path.exists(stop) and b < 2000:
        c.insert("books", [{"id": b * n + i, "vector": [float(b), float(i), 1.0, 0.5]} for i in range(n)])
        out.write(f"{b}\\n")
        out.flush()
        b += 1
"""


def _heron(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", *args], capture_output=True, text=True, timeout=300, env=env)


def _acked(path: Path) -> int:
    """Batches acknowledged so far (each line is written after its insert returned)."""
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("source", ["directory", "uri"])
def test_a_backup_taken_during_a_write_load_restores_every_acknowledged_row(start_server, tmp_path, source) -> None:
    server = start_server()
    with heron.Client(server.uri) as c:
        c.create_collection("books", dimension=4)
        c.create_partition("books", "old")
        c.insert("books", [{"id": -1 - i, "vector": [1.0, 2.0, 3.0, float(i)]} for i in range(30)],
                 partition_name="old")
        c.create_database("other")
        c.create_collection("notes", dimension=2, db_name="other")
        c.insert("notes", [{"id": i, "vector": [float(i), 1.0]} for i in range(5)], db_name="other")
    acks, stop = tmp_path / "acks", tmp_path / "stop"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, server.uri, str(acks), str(stop), str(BATCH)], env=env)
    try:
        deadline = time.monotonic() + 120
        while _acked(acks) < 5 and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        before = _acked(acks)
        assert before >= 5, "the writer did not get going"
        out = _heron("backup", server.data if source == "directory" else server.uri, str(tmp_path / "backup"))
        during = _acked(acks) - before
    finally:
        stop.touch()
        writer.wait(60)
    assert writer.returncode == 0
    assert out.returncode == 0, out.stderr
    assert during > 0, "no write landed while the backup ran: the test proves nothing"
    restored = tmp_path / "restored"
    res = _heron("restore", str(tmp_path / "backup"), str(restored))
    assert res.returncode == 0, res.stderr
    with heron.Client(str(restored)) as c:
        rows = c.query("books", filter="", output_fields=["id", "vector"], limit=1_000_000)
        ids = {r["id"] for r in rows}
        assert set(range(before * BATCH)) <= ids, "an acknowledged row is missing"
        assert ids - set(range(-30, 0)) <= set(range(_acked(acks) * BATCH))
        assert len(ids) == len(rows)
        assert {r["id"] for r in c.query("books", filter="", partition_names=["old"], limit=100)} == set(range(-30, 0))
        got = next(r for r in rows if r["id"] == BATCH + 3)
        assert got["vector"] == [1.0, 3.0, 1.0, 0.5]
        assert c.get_collection_stats("notes", db_name="other")["row_count"] == 5
        assert c.list_indexes("books") == ["vector"]


def _dir_with_deletes(path: Path) -> None:
    with heron.Client(str(path)) as c:
        c.create_collection("books", dimension=2)
        c.insert("books", [{"id": i, "vector": [float(i), 1.0]} for i in range(200)])
        c.flush("books")
        c.delete("books", filter="id < 10")  # few enough that the engine leaves them to `compact`


def _segment_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("segments/*/*.arrow"))


def test_compact_drops_deleted_rows_from_the_segments(tmp_path) -> None:
    _dir_with_deletes(tmp_path / "db")
    size = _segment_bytes(tmp_path / "db")
    out = _heron("compact", str(tmp_path / "db"), "books")
    assert out.returncode == 0, out.stderr
    assert "1 segments rewritten" in out.stdout and "190 rows in 1 sealed segments" in out.stdout, out.stdout
    assert _segment_bytes(tmp_path / "db") < size
    again = _heron("compact", str(tmp_path / "db"), "books")
    assert again.returncode == 0 and "no segment had deleted rows" in again.stdout, again.stdout
    with heron.Client(str(tmp_path / "db")) as c:
        assert sorted(r["id"] for r in c.query("books", filter="", limit=1000)) == list(range(10, 200))


def test_a_damaged_backup_is_not_restored_and_an_existing_target_is_not_touched(tmp_path) -> None:
    _dir_with_deletes(tmp_path / "db")
    assert _heron("backup", str(tmp_path / "db"), str(tmp_path / "bk")).returncode == 0
    exists = _heron("backup", str(tmp_path / "db"), str(tmp_path / "bk"))
    assert exists.returncode == 1 and "exists" in exists.stderr and exists.stderr.count("\n") == 1
    (segment,) = (tmp_path / "bk").glob("segments/*/*.arrow")
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x10
    segment.write_bytes(bytes(data))
    out = _heron("restore", str(tmp_path / "bk"), str(tmp_path / "restored"))
    assert out.returncode == 1 and "nothing was restored" in out.stderr
    assert not (tmp_path / "restored").exists()


def test_a_progress_bar_shows_on_a_terminal_and_not_in_a_pipe(tmp_path) -> None:
    import importlib.util
    import pty

    require(importlib.util.find_spec("tqdm"), "tqdm is not installed (pip install heron[cli])")
    _dir_with_deletes(tmp_path / "db")
    piped = _heron("backup", str(tmp_path / "db"), str(tmp_path / "piped"))
    assert piped.returncode == 0 and piped.stderr == ""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-m", "heron", "backup", str(tmp_path / "db"), str(tmp_path / "tty")],
                          stdout=subprocess.PIPE, stderr=follower, timeout=300, env=env)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"default.books" in shown and b"190" in shown, shown


def test_a_directory_backup_keeps_the_servers_users_and_roles(tmp_path) -> None:
    from heron.server._auth import AuthStore
    from tests._sqlite_damage import auth_store_with_alice

    _dir_with_deletes(tmp_path / "db")
    auth_store_with_alice(str(tmp_path / "db" / "auth.db"), "root-pw-1")
    assert _heron("backup", str(tmp_path / "db"), str(tmp_path / "bk")).returncode == 0
    out = _heron("verify", str(tmp_path / "bk"))
    assert out.returncode == 0 and "auth.db (" in out.stdout, out.stdout
    store = AuthStore(str(tmp_path / "bk" / "auth.db"), "root-pw-1")
    try:
        assert store.authenticate("alice:alice-pw") == "alice"
    finally:
        store.close()


def test_a_backup_keeps_schema_rows_indexes_and_aliases_field_for_field(tmp_path) -> None:
    src = tmp_path / "db"
    with heron.Client(str(src)) as c:
        s = c.create_schema(enable_dynamic_field=True)
        s.add_field("pk", heron.DataType.VARCHAR, is_primary=True, max_length=20)
        s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=3)
        s.add_field("meta", heron.DataType.JSON, nullable=True)
        s.add_field("n", heron.DataType.INT32, nullable=True)
        s.add_field("tags", heron.DataType.ARRAY, element_type=heron.DataType.VARCHAR, max_capacity=4, max_length=10)
        ip = c.prepare_index_params()
        ip.add_index("v", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 4})
        c.create_collection("t", schema=s, index_params=ip, properties={"collection.ttl.seconds": "0"})
        c.insert("t", [{"pk": f"k{i}", "v": [float(i), 0.0, 1.0], "meta": {"a": i} if i % 2 else None,
                        "n": None if i % 3 == 0 else i, "tags": ["x", "y"][: i % 3], "extra": i * 10}
                       for i in range(50)])
        c.create_alias("t", "talias")
    assert _heron("backup", str(src), str(tmp_path / "bk")).returncode == 0
    with heron.Client(str(src)) as a, heron.Client(str(tmp_path / "bk")) as b:
        def rows(c: heron.Client) -> list[dict]:
            return sorted(c.query("t", filter="", output_fields=["*"], limit=100), key=lambda r: r["pk"])

        assert rows(a) == rows(b) and len(rows(b)) == 50
        da, db = a.describe_collection("t"), b.describe_collection("t")
        assert {k: v for k, v in da.items() if k != "created_timestamp"} == {
            k: v for k, v in db.items() if k != "created_timestamp"}
        assert db["aliases"] == ["talias"]
        assert a.describe_index("t", "v") == b.describe_index("t", "v")
