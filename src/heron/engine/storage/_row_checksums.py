"""A CRC on every row of a SQLite file Heron keeps (the catalog, the server's ``auth.db``).

SQLite checks its own structure (pages, cells, b-trees), not the values a
row holds: a flipped byte inside a schema's JSON, a segment's row count or a
password hash reads back as a different, well-formed value. Each covered
table therefore has a ``crc`` column: the CRC-32 of a canonical
serialisation of the table's name and the row's other columns (`row_crc`).
Triggers compute it, inside the statement that inserts or updates the row,
so every write path keeps it with no change to its SQL and no extra commit;
the function the triggers call (``heron_row_crc``) exists only on
connections `install` has prepared, so a writer that bypasses Heron fails
instead of leaving a row without a CRC.

Rows written before CRCs existed get theirs the first time a writer opens
the file (`fill_missing`), and the file then records that it has them (the
``meta``-style row named by the caller): from then on a row without a CRC
is damage like a wrong one. `bad_rows` finds the rows whose CRC does not
match, in one query per table.

Per-row CRCs cannot see a row that is gone (a raw ``DELETE``, a b-tree page
that lost a cell while SQLite's structure stayed valid). So the file also
keeps, in the ``row_digest`` table, per covered table and per owner (the
collection a row belongs to; `NO_OWNER` for the rest) how many rows there
are and the sum of their CRCs, kept by triggers of the same statements
(insert, update, delete) in deltas, so a write costs one small update and
no scan. `digest_mismatches` compares it with the rows as read; a file
written before digests gets its digest from its rows once (`reset_digest`),
and records that it has one like it records the CRCs.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FUNCTION = "heron_row_crc"
#: The table holding each covered table's row count and CRC sum, per owner.
DIGEST = "row_digest"
#: The owner recorded for the rows of a table that belongs to the whole file.
NO_OWNER = -1
_DIGEST_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {DIGEST}(tbl TEXT NOT NULL, owner INTEGER NOT NULL, "
                  "n INTEGER NOT NULL, s INTEGER NOT NULL, PRIMARY KEY(tbl, owner))")


@dataclass(frozen=True)
class Table:
    """A covered table: the columns its CRC covers (every one but ``crc``), those naming a row, its owner column.

    ``owner`` is the column holding the id of the collection a row belongs to
    (None for rows that belong to the whole file).
    """

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    owner: str | None = None


@dataclass(frozen=True)
class BadRow:
    """A row whose CRC does not match: its table, its key (as stored), all its values, the CRCs."""

    table: Table
    rowid: int
    values: dict[str, Any]
    stored: int | None
    computed: int

    def key(self) -> str:
        return ", ".join(f"{k}={self.values.get(k)!r}" for k in self.table.key)

    def describe(self) -> str:
        crc = "no CRC" if self.stored is None else f"CRC {self.stored:#010x}, computed {self.computed:#010x}"
        return f"row {self.key()} of table {self.table.name!r} is damaged ({crc})"

    def owners(self, known: Iterable[int]) -> list[int]:
        """The collection ids the row may belong to.

        If putting some known id in the owner column makes the CRC match, only
        that column was damaged and that id is the owner; otherwise the row
        names its owner (its other values are damaged, or its CRC).
        """
        col = self.table.owner
        if col is None:
            return []
        stored_owner = self.values.get(col)
        matches = [cid for cid in known if cid != stored_owner and self.stored == row_crc(
            self.table.name, *(cid if c == col else self.values[c] for c in self.table.columns))]
        if matches:
            return matches
        return [stored_owner] if isinstance(stored_owner, int) else []


def row_crc(table: str, *values: Any) -> int:
    """The CRC-32 of ``table`` and ``values``, each tagged with its type and prefixed with its length.

    Tags: ``N`` NULL, ``I`` integer (decimal), ``F`` real (`float.hex`), ``S``
    text (UTF-8), ``B`` blob (its bytes); the length is 4 bytes, little-endian.
    """
    parts = [b"S" + table.encode()]
    for v in values:
        t = type(v)
        if t is str:
            parts.append(b"S" + v.encode("utf-8", "surrogatepass"))
        elif t is int:
            parts.append(b"I%d" % v)
        elif v is None:
            parts.append(b"N")
        elif t is float:
            parts.append(b"F" + v.hex().encode())
        elif t is bytes:
            parts.append(b"B" + v)
        else:
            raise TypeError(f"a value of type {t.__name__} has no canonical form here")
    return zlib.crc32(b"".join(len(p).to_bytes(4, "little") + p for p in parts))


def register(conn: sqlite3.Connection) -> None:
    """Make ``heron_row_crc`` callable on ``conn`` (for checking, or for the triggers of a writer)."""
    conn.create_function(FUNCTION, -1, row_crc, deterministic=True)


def _call(table: Table, prefix: str = "") -> str:
    return f"{FUNCTION}('{table.name}', {', '.join(prefix + c for c in table.columns)})"


def install(conn: sqlite3.Connection, tables: Sequence[Table]) -> None:
    """Prepare a writer's connection: the function, a ``crc`` column on each table, the triggers keeping it and the digest.

    Runs outside a transaction, before the connection writes anything else.
    """
    register(conn)
    conn.execute("PRAGMA trusted_schema=ON")  # the triggers call a function of this connection
    conn.execute("PRAGMA recursive_triggers=ON")  # rows INSERT OR REPLACE deletes leave the digest too
    conn.execute(_DIGEST_SCHEMA)
    for t in tables:
        if "crc" not in {row[1] for row in conn.execute(f"PRAGMA table_info({t.name})")}:
            conn.execute(f"ALTER TABLE {t.name} ADD COLUMN crc INTEGER")
        conn.execute(
            f"CREATE TRIGGER IF NOT EXISTS {t.name}_crc_insert AFTER INSERT ON {t.name} BEGIN "
            f"UPDATE {t.name} SET crc={_call(t, 'NEW.')} WHERE rowid=NEW.rowid; END")
        conn.execute(
            f"CREATE TRIGGER IF NOT EXISTS {t.name}_crc_update AFTER UPDATE OF {', '.join(t.columns)} ON {t.name} "
            f"BEGIN UPDATE {t.name} SET crc={_call(t, 'NEW.')} WHERE rowid=NEW.rowid; END")
        _install_digest(conn, t)


def _owner(t: Table, prefix: str) -> str:
    return str(NO_OWNER) if t.owner is None else prefix + t.owner


def _group(t: Table) -> str:
    return "" if t.owner is None else f" GROUP BY {t.owner}"


def _digest_add(t: Table, owner: str, n: str, s: str) -> str:
    """Statements (for a trigger body) adding ``n`` rows and ``s`` to the CRC sum of ``t``'s rows of ``owner``."""
    # Not INSERT OR IGNORE: the conflict policy of the outer statement (INSERT OR REPLACE) would override it.
    return (f"INSERT INTO {DIGEST}(tbl, owner, n, s) SELECT '{t.name}', {owner}, 0, 0 WHERE NOT EXISTS "
            f"(SELECT 1 FROM {DIGEST} WHERE tbl='{t.name}' AND owner={owner}); "
            f"UPDATE {DIGEST} SET n=n+({n}), s=s+({s}) WHERE tbl='{t.name}' AND owner={owner}; ")


def _install_digest(conn: sqlite3.Connection, t: Table) -> None:
    """The triggers that keep ``t``'s digest, whatever order SQLite fires them in.

    An insert adds the row with the CRC it was inserted with, a change of CRC
    (the CRC triggers', or anyone's) adds the difference, a delete takes the
    row away, and a change of owner moves the row's CRC to the new owner.
    """
    new, old = _owner(t, "NEW."), _owner(t, "OLD.")
    conn.execute(f"CREATE TRIGGER IF NOT EXISTS {t.name}_digest_insert AFTER INSERT ON {t.name} BEGIN "
                 + _digest_add(t, new, "1", "COALESCE(NEW.crc, 0)") + "END")
    conn.execute(f"CREATE TRIGGER IF NOT EXISTS {t.name}_digest_crc AFTER UPDATE OF crc ON {t.name} BEGIN "
                 + _digest_add(t, new, "0", "COALESCE(NEW.crc, 0) - COALESCE(OLD.crc, 0)") + "END")
    conn.execute(f"CREATE TRIGGER IF NOT EXISTS {t.name}_digest_delete AFTER DELETE ON {t.name} BEGIN "
                 + _digest_add(t, old, "-1", "-COALESCE(OLD.crc, 0)")
                 + f"DELETE FROM {DIGEST} WHERE tbl='{t.name}' AND owner={old} AND n=0 AND s=0; END")
    if t.owner is not None:
        conn.execute(
            f"CREATE TRIGGER IF NOT EXISTS {t.name}_digest_owner AFTER UPDATE OF {t.owner} ON {t.name} "
            f"WHEN OLD.{t.owner} IS NOT NEW.{t.owner} BEGIN "
            + _digest_add(t, old, "-1", "-COALESCE(OLD.crc, 0)") + _digest_add(t, new, "1", "COALESCE(OLD.crc, 0)")
            + f"DELETE FROM {DIGEST} WHERE tbl='{t.name}' AND owner={old} AND n=0 AND s=0; END")


@dataclass(frozen=True)
class DigestMismatch:
    """A table whose rows of one owner do not add up to its digest: ``recorded`` and ``found`` (rows, CRC sum)."""

    table: Table
    owner: int | None
    recorded: tuple[int, int]
    found: tuple[int, int]

    def describe(self) -> str:
        (want, _), (got, _) = self.recorded, self.found
        what = (f"{want - got} row(s) missing" if got < want else f"{got - want} row(s) not written by Heron"
                if got > want else "a row replaced (its CRC is not the one written)")
        return f"table {self.table.name!r} holds {got} row(s) where {want} were written: {what}"


def reset_digest(conn: sqlite3.Connection, tables: Sequence[Table]) -> None:
    """Compute the digest from the rows as they are (a file written before digests). Inside a transaction."""
    conn.execute(f"DELETE FROM {DIGEST}")
    for t in tables:
        conn.execute(f"INSERT INTO {DIGEST}(tbl, owner, n, s) SELECT '{t.name}', {_owner(t, '')}, COUNT(*), "
                     f"COALESCE(SUM(crc), 0) FROM {t.name}{_group(t)} HAVING COUNT(*) > 0")


def has_digest(conn: sqlite3.Connection) -> bool:
    return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (DIGEST,)).fetchall())


def digest_mismatches(conn: sqlite3.Connection, tables: Sequence[Table]) -> list[DigestMismatch]:
    """The (table, owner) pairs whose rows, as read, do not match the digest: one grouped scan per table.

    A table SQLite finds malformed while reading raises `sqlite3.DatabaseError` naming the table.
    """
    return check(conn, tables, crcs=False)[1]


def check(conn: sqlite3.Connection, tables: Sequence[Table], *, crcs: bool = True,
          limit: int = 100) -> tuple[list[BadRow], list[DigestMismatch]]:
    """`bad_rows` (unless not ``crcs``) and `digest_mismatches`.

    Two scans of each table: grouping the CRC check as well would carry every
    value through SQLite's sorter (twice the time on a log of 4 KiB records).
    The digest's scan reads the table itself (``NOT INDEXED``): the rows are
    what counts, and a grouped scan through an index would look each row up
    at random. ``conn`` must have the function (`register`) when ``crcs``.
    """
    recorded: dict[tuple[str, int], tuple[int, int]] = {
        (tbl, owner): (n, s) for tbl, owner, n, s in conn.execute(f"SELECT tbl, owner, n, s FROM {DIGEST}")}
    out: list[DigestMismatch] = []
    bad = bad_rows(conn, tables, limit=limit) if crcs else []
    for t in tables:
        try:
            found = {owner: (n, s) for owner, n, s in conn.execute(
                f"SELECT {_owner(t, '')}, COUNT(*), COALESCE(SUM(crc), 0) FROM {t.name} NOT INDEXED{_group(t)}")
                if n}
        except sqlite3.DatabaseError as exc:
            raise sqlite3.DatabaseError(f"table {t.name!r}: {exc}") from exc
        owners = set(found) | {o for (tbl, o) in recorded if tbl == t.name}
        for owner in sorted(owners):
            want, got = recorded.get((t.name, owner), (0, 0)), found.get(owner, (0, 0))
            if want != got:
                out.append(DigestMismatch(t, None if t.owner is None else owner, want, got))
    return bad, out


def fill_missing(conn: sqlite3.Connection, tables: Sequence[Table]) -> dict[str, int]:
    """Give every row without a CRC its CRC (rows written before CRCs); how many per table. Inside a transaction."""
    out = {}
    for t in tables:
        n = conn.execute(f"UPDATE {t.name} SET crc={_call(t)} WHERE crc IS NULL").rowcount
        if n:
            out[t.name] = n
    return out


def has_crc_columns(conn: sqlite3.Connection, tables: Sequence[Table]) -> bool:
    return all("crc" in {row[1] for row in conn.execute(f"PRAGMA table_info({t.name})")} for t in tables)


def bad_rows(conn: sqlite3.Connection, tables: Sequence[Table], *, limit: int = 100) -> list[BadRow]:
    """The rows whose CRC is missing or does not match (at most ``limit``), table by table.

    ``conn`` must have the function (`register`).
    """
    out: list[BadRow] = []
    for t in tables:
        cols = ", ".join(t.columns)
        for row in conn.execute(
            f"SELECT rowid, crc, {_call(t)}, {cols} FROM {t.name} WHERE crc IS NOT {_call(t)} LIMIT ?",
            (limit - len(out),),
        ):
            out.append(BadRow(t, row[0], dict(zip(t.columns, row[3:], strict=True)), row[1], row[2]))
        if len(out) >= limit:
            break
    return out
