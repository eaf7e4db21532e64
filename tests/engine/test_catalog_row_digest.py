"""A catalog row gone entirely is damage: the per-table row digest (count and CRC sum) no longer adds up.

Rows are removed two ways: a raw ``DELETE`` through a connection with Heron's
SQL function, the ``row_digest`` table then put back as it was (a lost row
changes no digest: no trigger runs when a b-tree loses a cell); and by
lowering the cell count in the header of the b-tree page that holds a
table's rows, with the page's fragment count raised by the lost cell's size
so that SQLite's own ``quick_check`` still passes.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import heron
from heron.engine.storage import _row_checksums as rc
from heron.engine.storage._catalog import ROW_DIGEST_KEY, TABLES


def _make(path: Path) -> None:
    with heron.Client(str(path)) as c:
        for name in ("a", "b"):
            c.create_collection(name, dimension=2)
            c.insert(name, [{"id": i, "vector": [1.0, float(i)]} for i in range(20)])
            c.flush(name)
        c.create_alias("b", "b_alias")


def _count(c: heron.Client, name: str) -> int:
    return len(c.query(name, filter="", output_fields=["id"], limit=100))


def _delete_keeping_digest(path: Path, sql: str) -> int:
    """Run a raw DELETE on the catalog, then put the digest back as it was; how many rows went."""
    db = sqlite3.connect(str(path / "catalog.db"), isolation_level=None)
    try:
        rc.register(db)
        digest = db.execute(f"SELECT tbl, owner, n, s FROM {rc.DIGEST}").fetchall()
        db.execute("BEGIN")
        n = db.execute(sql).rowcount
        db.execute(f"DELETE FROM {rc.DIGEST}")
        db.executemany(f"INSERT INTO {rc.DIGEST}(tbl, owner, n, s) VALUES (?, ?, ?, ?)", digest)
        db.execute("COMMIT")
        return n
    finally:
        db.close()


def _varint(data: bytes | bytearray, at: int) -> tuple[int, int]:
    value = 0
    for k in range(9):
        byte = data[at + k]
        if k == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + k + 1
    raise AssertionError("unreachable")


def _drop_last_cell(path: Path, table: str) -> int:
    """Lower the cell count of ``table``'s (single, leaf) root page by one; the rowid of the row that vanishes."""
    cat = path / "catalog.db"
    assert not os.path.exists(f"{cat}-wal") or os.path.getsize(f"{cat}-wal") == 0
    db = sqlite3.connect(str(cat))
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    db.close()
    data = bytearray(cat.read_bytes())
    base = (root - 1) * page_size
    head = base + (100 if root == 1 else 0)
    assert data[head] == 0x0D, "not a table leaf page"
    cells = int.from_bytes(data[head + 3 : head + 5], "big")
    ptr = base + int.from_bytes(data[head + 8 + 2 * (cells - 1) : head + 10 + 2 * (cells - 1)], "big")
    size, at = _varint(data, ptr)
    rowid, at = _varint(data, at)
    data[head + 3 : head + 5] = (cells - 1).to_bytes(2, "big")
    data[head + 7] += at - ptr + size  # the cell's bytes now count as fragments: SQLite's checks agree
    cat.write_bytes(bytes(data))
    db = sqlite3.connect(str(cat))
    assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    db.close()
    return rowid


def _verify(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", "verify", str(path)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_a_clean_catalog_has_a_digest_that_adds_up(tmp_path):
    path = tmp_path / "db"
    _make(path)
    with heron.Client(str(path)) as c:
        c.drop_alias("b_alias")
        c.create_collection("c", dimension=2)
        c.drop_collection("c")
        c.delete("a", filter="id in [1, 2]")
    db = sqlite3.connect(str(path / "catalog.db"))
    assert rc.digest_mismatches(db, TABLES) == []
    assert db.execute(f"SELECT n FROM {rc.DIGEST} WHERE tbl='segments' AND owner=1").fetchone() == (1,)
    db.close()
    done = _verify(path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_deleted_segment_row_makes_its_collection_unavailable_and_the_other_answers(tmp_path):
    path = tmp_path / "db"
    _make(path)
    assert _delete_keeping_digest(path, "DELETE FROM segments WHERE collection_id=1") == 1
    with heron.Client(str(path)) as c:
        with pytest.raises(heron.CorruptionError) as info:
            _count(c, "a")
        msg = str(info.value)
        assert "table 'segments' holds 0 row(s) where 1 were written" in msg, msg
        assert "collection 'a'" in msg and str(path / "catalog.db") in msg, msg
        assert _count(c, "b") == 20 and _count(c, "b_alias") == 20
    done = _verify(path)
    assert done.returncode == 1 and "table 'segments'" in done.stdout and "collection id 1" in done.stdout, \
        done.stdout


@pytest.mark.parametrize("sql", ["DELETE FROM collections WHERE name='b'", "DELETE FROM aliases",
                                 "DELETE FROM meta WHERE key='row_crc'"], ids=["collection", "alias", "meta"])
def test_a_deleted_row_of_the_whole_catalog_refuses_the_open_naming_table_and_file(tmp_path, sql):
    path = tmp_path / "db"
    _make(path)
    assert _delete_keeping_digest(path, sql) == 1
    table = sql.split()[2]
    with pytest.raises(heron.CorruptionError, match=f"table '{table}' holds .* where .* were written") as info:
        heron.Client(str(path))
    assert info.value.path == str(path / "catalog.db") and str(path / "catalog.db") in str(info.value)
    done = _verify(path)
    assert done.returncode == 1 and f"table '{table}'" in done.stdout, done.stdout


def test_a_row_lost_from_a_b_tree_page_is_found(tmp_path):
    path = tmp_path / "db"
    _make(path)
    assert _drop_last_cell(path, "segments") == 2  # collection b's segment
    with heron.Client(str(path)) as c:
        with pytest.raises(heron.CorruptionError, match="table 'segments' holds 0 row.*collection 'b'"):
            _count(c, "b")
        assert _count(c, "a") == 20


def test_a_row_lost_from_a_page_of_the_meta_table_refuses_the_open(tmp_path):
    path = tmp_path / "db"
    _make(path)
    _drop_last_cell(path, "meta")
    with pytest.raises(heron.CorruptionError, match="table 'meta' holds .* row.* where .* were written") as info:
        heron.Client(str(path))
    assert info.value.path == str(path / "catalog.db")


def test_a_catalog_without_a_digest_gets_one_at_the_first_open(tmp_path):
    path = tmp_path / "db"
    _make(path)
    db = sqlite3.connect(str(path / "catalog.db"), isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE '%digest%'"
                              ).fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute(f"DROP TABLE {rc.DIGEST}")
    rc.register(db)
    db.execute("DELETE FROM meta WHERE key=?", (ROW_DIGEST_KEY,))
    db.close()
    done = _verify(path)
    assert done.returncode == 0 and "no row digest yet" in done.stdout, done.stdout
    started = time.time()
    with heron.Client(str(path)) as c:
        assert _count(c, "a") == 20
    db = sqlite3.connect(str(path / "catalog.db"))
    (value,) = db.execute("SELECT value FROM meta WHERE key=?", (ROW_DIGEST_KEY,)).fetchone()
    assert json.loads(value)["since"] >= started - 1
    assert rc.digest_mismatches(db, TABLES) == []
    db.close()
    _delete_keeping_digest(path, "DELETE FROM segments WHERE collection_id=2")
    with heron.Client(str(path)) as c, pytest.raises(heron.CorruptionError, match="table 'segments'"):
        _count(c, "b")
