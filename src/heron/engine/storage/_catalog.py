"""The catalog and write-ahead log: one SQLite database in WAL mode.

Everything that must survive a crash goes through here: databases,
collections (schema as JSON), partitions, indexes, aliases, sealed segment
records, the log of upserts and deletes, and which records of the insert
log (`_insert_log`) are retired. A write is acknowledged only once
its transaction has committed with ``synchronous=FULL``, so an acknowledged
write survives ``kill -9`` and power loss. A torn final record cannot exist:
SQLite either commits a transaction whole or rolls it back on open.

Opening runs SQLite's ``quick_check`` and refuses a damaged catalog with
`CorruptionError`; it also refuses a catalog that is missing, or has no
tables, while the directory still holds data (``data_left``): without the
catalog the schemas are gone, and a fresh one would hand the old ids out
again. Collection, partition and segment ids are never handed out twice:
their tables are ``AUTOINCREMENT`` (SQLite keeps the largest id ever used),
and `raise_ids` lifts those marks above any id still found in the directory.

Every row carries a CRC of its values (`_row_checksums`), checked at open.
A damaged row of a table that belongs to one collection (its partitions,
indexes, segments, log records and log retirements) leaves that collection
unavailable (`damaged`, which recovery turns into `Collection.damage`) and
the others open; a damaged row of the rest (databases, collections,
aliases, meta), or one whose collection cannot be told, refuses the open:
those rows name, type and route everything else. Either way the error
names the table, the row and the file. A row that is gone entirely (or one
added behind Heron's back) shows in the per-table digest (row count and CRC
sum, per collection for the tables that belong to one), with the same
consequences: the table, the collection and the file are named.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..._errors import CorruptionError
from . import _row_checksums as rc
from ._insert_log import Retired
from ._io_errors import storage_errors

log = logging.getLogger("heron.engine")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS databases(name TEXT PRIMARY KEY, properties TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS collections(
    id INTEGER PRIMARY KEY AUTOINCREMENT, db TEXT NOT NULL, name TEXT NOT NULL, schema TEXT NOT NULL,
    properties TEXT NOT NULL DEFAULT '{}', consistency TEXT NOT NULL DEFAULT 'Bounded',
    loaded INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, crc INTEGER, UNIQUE(db, name));
CREATE TABLE IF NOT EXISTS partitions(
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL, name TEXT NOT NULL,
    loaded INTEGER NOT NULL DEFAULT 0, crc INTEGER, UNIQUE(collection_id, name));
CREATE TABLE IF NOT EXISTS indexes(
    collection_id INTEGER NOT NULL, index_name TEXT NOT NULL, field_name TEXT NOT NULL,
    index_type TEXT NOT NULL, metric_type TEXT NOT NULL, params TEXT NOT NULL,
    PRIMARY KEY(collection_id, index_name));
CREATE TABLE IF NOT EXISTS aliases(db TEXT NOT NULL, alias TEXT NOT NULL, collection_id INTEGER NOT NULL,
    PRIMARY KEY(db, alias));
CREATE TABLE IF NOT EXISTS segments(
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection_id INTEGER NOT NULL, partition_id INTEGER NOT NULL,
    path TEXT NOT NULL, num_rows INTEGER NOT NULL, max_seq INTEGER NOT NULL, checksum BLOB, crc INTEGER);
CREATE TABLE IF NOT EXISTS log(
    seq INTEGER PRIMARY KEY, collection_id INTEGER NOT NULL, partition_id INTEGER NOT NULL,
    kind TEXT NOT NULL, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS log_by_collection ON log(collection_id, seq);
CREATE TABLE IF NOT EXISTS log_retired(
    collection_id INTEGER NOT NULL, partition_id INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL);
"""


class Catalog:
    """Thread-safe access to the catalog database; every method is one transaction."""

    def __init__(self, path: str, *, data_left: Callable[[], list[str]] = list) -> None:
        """Open (or create) the catalog at ``path``; see the module docstring for what is refused.

        ``data_left`` lists what the directory holds besides the catalog (segment
        files, insert-log records); a missing or table-less catalog is refused
        while it lists anything. Raises `CorruptionError`; nothing is changed then.
        """
        self.path = path
        existed = os.path.exists(path) and os.path.getsize(path) > 0
        if not existed:
            _refuse_without_catalog(path, "missing" if not os.path.exists(path) else "empty (0 bytes)", data_left)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        try:
            self._open(path, existed, data_left)
        except BaseException:
            self._conn.close()
            raise

    def _open(self, path: str, existed: bool, data_left: Callable[[], list[str]]) -> None:
        c = self._conn
        try:
            problems = [r[0] for r in c.execute("PRAGMA quick_check").fetchall()]
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise CorruptionError(
                f"catalog {path!r} is damaged ({'; '.join(problems[:3])}); the catalog holds every schema, so "
                "restore catalog.db from a backup", path=path)
        if existed and "collections" not in tables:
            _refuse_without_catalog(path, "empty (no tables)", data_left)
        c.execute("PRAGMA page_size=65536")  # large log records: fewer overflow pages (new databases only)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("PRAGMA foreign_keys=OFF")
        c.executescript(_SCHEMA)
        if "checksum" not in {row[1] for row in c.execute("PRAGMA table_info(segments)")}:
            c.execute("ALTER TABLE segments ADD COLUMN checksum BLOB")  # NULL: written before checksums
        rc.install(c, TABLES)
        remade = self._autoincrement(tables)
        rc.install(c, TABLES)  # the triggers of tables `_autoincrement` made again
        if not self.rows("SELECT name FROM databases WHERE name='default'"):
            self.execute("INSERT INTO databases(name) VALUES ('default')")
        self._check_rows(remade)

    def _check_rows(self, remade: bool) -> None:
        """Give rows written before CRCs theirs, and tables their digest (once), then check every row's CRC and
        every table's digest (see the module docstring). ``remade``: tables were copied without their triggers."""
        filled: dict[str, int] = {}
        if not self.rows("SELECT 1 FROM meta WHERE key=?", (ROW_CRC_KEY,)):
            with self.transaction() as c:
                filled = rc.fill_missing(c, TABLES)
                c.execute("INSERT INTO meta(key, value) VALUES (?, ?)",
                          (ROW_CRC_KEY, dumps({"since": time.time(), "filled": filled})))
            if filled:
                log.info("catalog %s: rows written before row CRCs got theirs: %s", self.path, filled)
        # Rows that had no CRCs until now were written without the digest's triggers too.
        if filled or remade or not self.rows("SELECT 1 FROM meta WHERE key=?", (ROW_DIGEST_KEY,)):
            with self.transaction() as c:
                c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                          (ROW_DIGEST_KEY, dumps({"since": time.time()})))
                rc.reset_digest(c, TABLES)
        #: Collection id -> why its catalog rows cannot be trusted (see the module docstring).
        self.damaged: dict[int, CorruptionError] = {}
        with self._lock:
            try:
                bad, missing = rc.check(self._conn, TABLES)
            except sqlite3.DatabaseError as exc:
                raise CorruptionError(f"catalog {self.path!r} is damaged ({exc}); the catalog holds every schema, "
                                      "so restore catalog.db from a backup", path=self.path) from None
        if not bad and not missing:
            return
        known = {cid for (cid,) in self.rows("SELECT id FROM collections")}
        names = self.collection_names()
        for row in bad:
            owners = [o for o in row.owners(known) if o in known]
            if len(owners) != 1:
                whose = ("it belongs to the whole catalog" if row.table.owner is None else
                         "which collection it belongs to cannot be told")
                raise CorruptionError(
                    f"catalog {self.path!r}: {row.describe()}; {whose}, so nothing can be opened. Restore "
                    "catalog.db from a backup", path=self.path)
            if owners[0] not in self.damaged:
                self.damaged[owners[0]] = CorruptionError(
                    f"catalog {self.path!r}: {row.describe()}; collection {names[owners[0]]} is unavailable "
                    "until catalog.db is restored from a backup", path=self.path)
                log.error("%s", self.damaged[owners[0]].message)
        for m in missing:
            if m.owner is None or m.owner not in known:
                whose = ("it belongs to the whole catalog" if m.owner is None else
                         f"the rows are of collection id {m.owner}, which the catalog does not hold")
                raise CorruptionError(
                    f"catalog {self.path!r}: {m.describe()}; {whose}, so nothing can be opened. Restore "
                    "catalog.db from a backup", path=self.path)
            if m.owner not in self.damaged:
                self.damaged[m.owner] = CorruptionError(
                    f"catalog {self.path!r}: {m.describe()} of collection {names[m.owner]}; the collection is "
                    "unavailable until catalog.db is restored from a backup", path=self.path)
                log.error("%s", self.damaged[m.owner].message)

    def _autoincrement(self, tables: set[str]) -> bool:
        """Give catalogs made before ids were kept from repeating ``AUTOINCREMENT`` tables (same rows).

        Whether any table was made again."""
        remade = False
        for table in _AUTOINCREMENT:
            sql = self.rows("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (table,))[0][0]
            if "AUTOINCREMENT" in sql:
                continue
            create = _SCHEMA[_SCHEMA.index(f"CREATE TABLE IF NOT EXISTS {table}("):]
            create = create[: create.index(";")]
            with self.transaction() as c:
                c.execute(f"ALTER TABLE {table} RENAME TO {table}_old")
                c.execute(create)
                c.execute(f"INSERT INTO {table} SELECT * FROM {table}_old")
                c.execute(f"DROP TABLE {table}_old")
            remade = True
        return remade

    def raise_ids(self, **floors: int) -> None:
        """Keep ids of each table (``collections=7`` ...) above ``floor``: ids still in use outside the catalog."""
        with self.transaction() as c:
            for table, floor in floors.items():
                if not c.execute("SELECT 1 FROM sqlite_sequence WHERE name=?", (table,)).fetchall():
                    c.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, 0)", (table,))
                c.execute("UPDATE sqlite_sequence SET seq=? WHERE name=? AND seq<?", (floor, table, floor))

    def last_id(self, table: str) -> int:
        """The largest id ``table`` has ever handed out (deleted rows included)."""
        seq = self.rows("SELECT seq FROM sqlite_sequence WHERE name=?", (table,))
        top = self.rows(f"SELECT COALESCE(MAX(id), 0) FROM {table}")[0][0]
        return max(int(seq[0][0]) if seq else 0, int(top))

    def collection_names(self) -> dict[int, str]:
        """Collection id -> how messages name it."""
        return {cid: f"{name!r} in database {db!r}" for cid, db, name in
                self.rows("SELECT id, db, name FROM collections")}

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run statements atomically; the transaction is durable when the block exits.

        On any failure, the commit's included (a full disk fails there in WAL
        mode), the transaction is rolled back, so the catalog is as before and
        takes the next one; I/O failures are raised as `DiskFullError` /
        `StorageError` (`_io_errors`).
        """
        with self._lock, storage_errors("writing the catalog", self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        with self.transaction() as c:
            return c.execute(sql, args)

    def rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def max_seq(self) -> int:
        a = self.rows("SELECT COALESCE(MAX(seq), 0) FROM log")[0][0]
        b = self.rows("SELECT COALESCE(MAX(max_seq), 0) FROM segments")[0][0]
        c = self.rows("SELECT value FROM meta WHERE key='seq'")
        # A retirement's upper end may be the newest number handed out (a truncate, a drop):
        # numbers at or below it are never handed out again, or their inserts would count as retired.
        d = self.rows("SELECT COALESCE(MAX(hi), 0) FROM log_retired")[0][0]
        return max(a, b, d, int(c[0][0]) if c else 0)

    def save_seq(self, conn: sqlite3.Connection, seq: int) -> None:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('seq', ?)", (str(seq),))

    def append_log(self, seq: int, collection_id: int, partition_id: int, kind: str, payload: bytes) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO log(seq, collection_id, partition_id, kind, payload) VALUES (?,?,?,?,?)",
                (seq, collection_id, partition_id, kind, payload),
            )

    def log_records(self, collection_id: int) -> list[tuple[int, int, str, bytes]]:
        return self.rows(
            "SELECT seq, partition_id, kind, payload FROM log WHERE collection_id=? ORDER BY seq", (collection_id,)
        )

    def retired(self) -> Retired:
        out = Retired()
        for coll, part, lo, hi in self.rows("SELECT collection_id, partition_id, lo, hi FROM log_retired"):
            out.add(coll, part, lo, hi)
        return out

    @staticmethod
    def retire(conn: sqlite3.Connection, collection_id: int, partition_id: int, lo: int, hi: int) -> None:
        """Record, inside a transaction, that insert-log records in ``lo..hi`` are no longer needed."""
        conn.execute("INSERT INTO log_retired(collection_id, partition_id, lo, hi) VALUES (?,?,?,?)",
                     (collection_id, partition_id, lo, hi))

    def close(self) -> None:
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError as exc:  # a full disk: the WAL stays, and opening checkpoints it
                log.warning("could not checkpoint the catalog %s on close: %s", self.path, exc)
            finally:
                self._conn.close()


_AUTOINCREMENT = ("collections", "partitions", "segments")

#: The tables whose rows carry a CRC; a row's ``owner`` column names the collection it belongs to.
TABLES = (
    rc.Table("meta", ("key", "value"), ("key",)),
    rc.Table("databases", ("name", "properties"), ("name",)),
    rc.Table("collections", ("id", "db", "name", "schema", "properties", "consistency", "loaded", "created"),
             ("id", "db", "name")),
    rc.Table("aliases", ("db", "alias", "collection_id"), ("db", "alias")),
    rc.Table("partitions", ("id", "collection_id", "name", "loaded"), ("id",), "collection_id"),
    rc.Table("indexes", ("collection_id", "index_name", "field_name", "index_type", "metric_type", "params"),
             ("collection_id", "index_name"), "collection_id"),
    rc.Table("segments", ("id", "collection_id", "partition_id", "path", "num_rows", "max_seq", "checksum"),
             ("id",), "collection_id"),
    rc.Table("log", ("seq", "collection_id", "partition_id", "kind", "payload"), ("seq",), "collection_id"),
    rc.Table("log_retired", ("collection_id", "partition_id", "lo", "hi"),
             ("collection_id", "partition_id", "lo"), "collection_id"),
)
#: The ``meta`` row that says every row has had its CRC since (a row without one is damage).
ROW_CRC_KEY = "row_crc"
#: The ``meta`` row that says the ``row_digest`` table is kept (a table that does not match it is damage).
ROW_DIGEST_KEY = "row_digest"


def _refuse_without_catalog(path: str, state: str, data_left: Callable[[], list[str]]) -> None:
    left = data_left()
    if left:
        raise CorruptionError(
            f"catalog {path!r} is {state}, but the directory still holds data: {', '.join(left[:5])}"
            f"{f' and {len(left) - 5} more' if len(left) > 5 else ''}. The catalog holds the schemas, so the data "
            "cannot be opened or repaired without it: restore catalog.db from a backup", path=path)


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
