"""Test helpers that damage Heron's SQLite files as bit rot would: values change, stored CRCs stay."""

from __future__ import annotations

import sqlite3

from heron.engine.storage import _row_checksums as rc
from heron.server._auth import AuthStore


def keep_crc(db_path: str, sql: str, args: tuple[object, ...] = ()) -> None:
    """Run ``sql`` (an UPDATE) on ``db_path`` keeping every row's old CRC, as damage inside a value would."""
    db = sqlite3.connect(db_path, isolation_level=None)
    table = sql.split()[1]
    try:
        before = dict(db.execute(f"SELECT rowid, crc FROM {table}").fetchall())
        db.create_function(rc.FUNCTION, -1, lambda *a: 0)
        db.execute("BEGIN")
        db.execute(sql, args)
        for rowid, crc in before.items():
            db.execute(f"UPDATE {table} SET crc=? WHERE rowid=?", (crc, rowid))
        db.execute("COMMIT")
    finally:
        db.close()


def auth_store_with_alice(path: str, root_password: str) -> None:
    """An auth.db with user alice, role reader granted Query on collection c, and root."""
    store = AuthStore(path, root_password)
    store.create_user("alice", "alice-pw")
    store.create_role("reader")
    store.set_user_role("alice", "reader", True)
    store.set_grant("reader", "Collection", "c", "default", "Query", True)
    store.close()
