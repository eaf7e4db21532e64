"""auth.db rows gone entirely are damage (the row digest), and ``heron verify`` checks auth.db."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import heron
from heron.engine.storage import _row_checksums as rc
from heron.server._auth import AuthStore, check_file
from tests._sqlite_damage import auth_store_with_alice

PASSWORD = "s3cret-Root"



def _delete_keeping_digest(path: str, sql: str) -> None:
    """A raw DELETE, with the digest put back as it was (a lost row runs no trigger)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        rc.register(db)
        digest = db.execute(f"SELECT tbl, owner, n, s FROM {rc.DIGEST}").fetchall()
        db.execute("BEGIN")
        assert db.execute(sql).rowcount == 1
        db.execute(f"DELETE FROM {rc.DIGEST}")
        db.executemany(f"INSERT INTO {rc.DIGEST}(tbl, owner, n, s) VALUES (?, ?, ?, ?)", digest)
        db.execute("COMMIT")
    finally:
        db.close()


def _verify(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", "verify", str(path)], capture_output=True, text=True,
                          timeout=120, env=env)


def _data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with heron.Client(str(data)) as c:
        c.create_collection("c", dimension=2)
    auth_store_with_alice(str(data / "auth.db"), PASSWORD)
    return data


def test_a_deleted_user_role_row_refuses_to_open_the_store(tmp_path):
    path = str(tmp_path / "auth.db")
    auth_store_with_alice(path, PASSWORD)
    _delete_keeping_digest(path, "DELETE FROM user_roles WHERE user='alice'")
    with pytest.raises(heron.CorruptionError, match="table 'user_roles' holds 0 row.* where 1 were written") as info:
        AuthStore(path, PASSWORD)
    assert info.value.path == path and path in str(info.value)


def test_a_store_without_a_digest_gets_one_once(tmp_path):
    path = str(tmp_path / "auth.db")
    auth_store_with_alice(path, PASSWORD)
    db = sqlite3.connect(path, isolation_level=None)
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE '%digest%'"
                              ).fetchall():
        db.execute(f"DROP TRIGGER {name}")
    db.execute(f"DROP TABLE {rc.DIGEST}")
    rc.register(db)
    db.execute("DELETE FROM meta WHERE key='row_digest'")
    db.close()
    AuthStore(path, PASSWORD).close()
    _delete_keeping_digest(path, "DELETE FROM grants")
    with pytest.raises(heron.CorruptionError, match="table 'grants'"):
        AuthStore(path, PASSWORD)


def test_verify_checks_auth_db_beside_the_catalog(tmp_path):
    data = _data_dir(tmp_path)
    clean = _verify(data)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "auth.db (" in clean.stdout and check_file(str(data / "auth.db"))[1] == []
    _delete_keeping_digest(str(data / "auth.db"), "DELETE FROM users WHERE name='alice'")
    done = _verify(data)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{data / 'auth.db'}: -: table 'users' holds 1 row(s) where 2 were written" in done.stdout, done.stdout


def test_verify_names_a_damaged_auth_row(tmp_path):
    data = _data_dir(tmp_path)
    path = str(data / "auth.db")
    db = sqlite3.connect(path, isolation_level=None)
    before = dict(db.execute("SELECT rowid, crc FROM grants").fetchall())
    db.create_function(rc.FUNCTION, -1, lambda *a: 0)
    db.execute("BEGIN")
    db.execute("UPDATE grants SET object_name='*'")  # would grant every collection
    for rowid, crc in before.items():
        db.execute("UPDATE grants SET crc=? WHERE rowid=?", (crc, rowid))
    db.execute("COMMIT")
    db.close()
    done = _verify(data)
    assert done.returncode == 1 and "auth.db" in done.stdout and "table 'grants'" in done.stdout, done.stdout
