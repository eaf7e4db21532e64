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
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

FUNCTION = "heron_row_crc"


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
    """Prepare a writer's connection: the function, a ``crc`` column on each table, the triggers that keep it.

    Runs outside a transaction, before the connection writes anything else.
    """
    register(conn)
    conn.execute("PRAGMA trusted_schema=ON")  # the triggers call a function of this connection
    for t in tables:
        if "crc" not in {row[1] for row in conn.execute(f"PRAGMA table_info({t.name})")}:
            conn.execute(f"ALTER TABLE {t.name} ADD COLUMN crc INTEGER")
        conn.execute(
            f"CREATE TRIGGER IF NOT EXISTS {t.name}_crc_insert AFTER INSERT ON {t.name} BEGIN "
            f"UPDATE {t.name} SET crc={_call(t, 'NEW.')} WHERE rowid=NEW.rowid; END")
        conn.execute(
            f"CREATE TRIGGER IF NOT EXISTS {t.name}_crc_update AFTER UPDATE OF {', '.join(t.columns)} ON {t.name} "
            f"BEGIN UPDATE {t.name} SET crc={_call(t, 'NEW.')} WHERE rowid=NEW.rowid; END")


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
