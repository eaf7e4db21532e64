"""Checking a data directory without opening it for writing (``heron verify``).

`verify_directory` reads every file Heron wrote and checks it: the catalog
(SQLite's ``PRAGMA integrity_check``, opened read-only, every row's CRC and
every table's row digest), every segment file
against the checksum its catalog record holds (or its structure, for files
written before checksums were recorded), every vector index file against
its CRCs, and every insert-log record against its CRC. It changes nothing:
it takes a shared lock on the directory's ``LOCK`` file for its duration,
so no engine can open the directory meanwhile, and refuses with
`DataDirLockedError` while one has it open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .._errors import CorruptionError, DataDirLockedError, HeronError
from ._verify_snapshots import check_snapshots
from .index._base import IndexFileError, check_index_file
from .storage import _insert_log as il
from .storage import _log_files as lf
from .storage import _row_checksums as rc
from .storage._catalog import ROW_CRC_KEY, ROW_DIGEST_KEY, TABLES
from .storage._files import FileChecksum, check_segment_file


@dataclass(frozen=True)
class Problem:
    """One finding: ``file`` (relative to the directory), the ``offset`` in it where known, and ``what``.

    ``damage`` is False for a finding that is not damage (a record cut short by
    a crash, a file the next open removes).
    """

    file: str
    offset: int | None
    what: str
    damage: bool = True

    def line(self, root: str) -> str:
        return f"{os.path.join(root, self.file)}: {'-' if self.offset is None else self.offset}: {self.what}"


@dataclass
class Report:
    """What `verify_directory` checked (``checked``: counts per kind, and ``bytes``) and found."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(
        default_factory=lambda: {"catalog": 0, "catalog_rows": 0, "segments": 0, "indexes": 0, "log_files": 0,
                                 "log_records": 0,
                                 "bytes": 0}
    )

    @property
    def damaged(self) -> bool:
        return any(p.damage for p in self.problems)

    def as_dict(self) -> dict[str, Any]:
        return {"directory": self.path, "ok": not self.damaged, "checked": dict(self.checked),
                "problems": [asdict(p) for p in self.problems]}


def verify_directory(path: str) -> Report:
    """Check every file of the data directory at ``path``; see the module docstring.

    Raises `DataDirLockedError` if a process has the directory open, and
    `HeronError` if ``path`` is not a data directory. Damage is reported,
    never raised.
    """
    root = os.path.abspath(path)
    if not os.path.isdir(root) or not any(
        os.path.exists(os.path.join(root, n)) for n in ("catalog.db", "segments", "log")
    ):
        raise HeronError(f"{path!r} is not a Heron data directory")
    report = Report(root)
    with _shared_lock(root):
        cat = _check_catalog(root, report)
        _check_segment_files(root, cat, report)
        _check_insert_log(root, cat, report)
        check_snapshots(root, report, Problem)
    return report


@contextlib.contextmanager
def _shared_lock(root: str) -> Iterator[None]:
    lock_path = os.path.join(root, "LOCK")
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:  # never opened by an engine: nobody can hold it
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise DataDirLockedError(
                f"data directory {root!r} is open in another process{f' (pid {pid})' if pid else ''}; "
                "verify it once that process has closed it"
            ) from None
        yield
    finally:
        os.close(fd)


@dataclass
class _Catalog:
    """What the catalog says about the files: segment records by relative path, and log retirements."""

    segments: dict[str, tuple[str, int, int, bytes | None]] = field(default_factory=dict)  # name, id, rows, sum
    retired: il.Retired = field(default_factory=il.Retired)


def _check_catalog(root: str, report: Report) -> _Catalog | None:
    """Check the catalog; what it records, or None if it cannot be read."""
    full = os.path.join(root, "catalog.db")
    if not os.path.exists(full):
        report.problems.append(Problem("catalog.db", None, "the catalog is missing"))
        return None
    with tempfile.TemporaryDirectory(prefix="heron-verify-") as scratch:
        return _check_catalog_file(full, scratch, report)


def _check_catalog_file(full: str, scratch: str, report: Report) -> _Catalog | None:
    """Check the catalog at ``full`` without writing beside it (not even SQLite's ``-shm`` file).

    With no write-ahead log to read (a clean close leaves none), the file is
    opened as immutable; otherwise the file and its log are copied to
    ``scratch`` and the copy is checked.
    """
    name = os.path.basename(full)
    wal = full + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        for src in (full, wal):
            shutil.copyfile(src, os.path.join(scratch, os.path.basename(src)))
        uri = f"file:{os.path.join(scratch, name)}?mode=ro"
    else:
        uri = f"file:{full}?mode=ro&immutable=1"
    report.checked["catalog"] = 1
    report.checked["bytes"] += os.path.getsize(full)
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        report.problems.append(Problem(name, None, f"the catalog cannot be opened: {exc}"))
        return None
    out = _Catalog()
    try:
        for (line,) in conn.execute("PRAGMA integrity_check"):
            if line != "ok":
                report.problems.append(Problem(name, None, f"integrity check: {line}"))
        _check_rows(conn, name, report)
        names = dict(conn.execute("SELECT id, db || '.' || name FROM collections").fetchall())
        cols = {row[1] for row in conn.execute("PRAGMA table_info(segments)")}
        checksum = "checksum" if "checksum" in cols else "NULL"
        for cid, sid, rel, rows, raw in conn.execute(
            f"SELECT collection_id, id, path, num_rows, {checksum} FROM segments ORDER BY id"
        ):
            what = f"collection {names.get(cid, f'id {cid}')!r}"
            out.segments[os.path.join("segments", f"c{cid}", rel)] = (what, sid, rows, raw)
        for cid, pid, lo, hi in conn.execute("SELECT collection_id, partition_id, lo, hi FROM log_retired"):
            out.retired.add(cid, pid, lo, hi)
    except sqlite3.Error as exc:
        report.problems.append(Problem(name, None, f"the catalog is damaged: {exc}"))
        return None
    finally:
        conn.close()
    return out


def _check_rows(conn: sqlite3.Connection, name: str, report: Report) -> None:
    """Check the CRC of every catalog row (`_row_checksums`), as opening does."""
    if not rc.has_crc_columns(conn, TABLES) or not conn.execute(
            "SELECT 1 FROM meta WHERE key=?", (ROW_CRC_KEY,)).fetchall():
        report.problems.append(Problem(name, None, "rows have no CRCs yet (written by an older version): "
                                             "they get theirs at the next open", damage=False))
        return
    rc.register(conn)
    report.checked["catalog_rows"] = sum(conn.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]
                                         for t in TABLES)
    for row in rc.bad_rows(conn, TABLES):
        owner = row.table.owner
        lost = ("the catalog cannot be opened" if owner is None else
                f"collection id {row.values.get(owner)!r} is unavailable")
        report.problems.append(Problem(name, None, f"{row.describe()}: {lost}; restore catalog.db from a "
                                                   "backup"))
    if not rc.has_digest(conn) or not conn.execute("SELECT 1 FROM meta WHERE key=?", (ROW_DIGEST_KEY,)).fetchall():
        report.problems.append(Problem(name, None, "the tables have no row digest yet (written by an older "
                                                   "version): they get theirs at the next open", damage=False))
        return
    for m in rc.digest_mismatches(conn, TABLES):
        lost = ("the catalog cannot be opened" if m.owner is None else
                f"collection id {m.owner} is unavailable")
        report.problems.append(Problem(name, None, f"{m.describe()}: {lost}; restore catalog.db from a backup"))


def _check_segment_files(root: str, cat: _Catalog | None, report: Report) -> None:
    known = {} if cat is None else cat.segments
    for rel, (coll, sid, rows, raw) in sorted(known.items()):
        _check_segment(root, rel, coll, sid, rows, raw, report)
    seg_root = os.path.join(root, "segments")
    for cdir in sorted(os.listdir(seg_root)) if os.path.isdir(seg_root) else []:
        for name in sorted(os.listdir(os.path.join(seg_root, cdir))):
            rel = os.path.join("segments", cdir, name)
            if rel in known:
                continue
            of_known = os.path.join("segments", cdir, name.split(".", 1)[0] + ".arrow") in known
            if name.endswith(".index") and ".tmp" not in name and (of_known or cat is None):
                _check_index(root, rel, report)
            elif cat is None:
                if name.endswith(".arrow"):
                    report.problems.append(Problem(rel, None, "not checked: its checksum is in the unreadable "
                                                              "catalog", damage=False))
            else:
                report.problems.append(Problem(rel, None, "not recorded in the catalog (left by an interrupted "
                                                          "write): removed at the next open", damage=False))


def _check_segment(root: str, rel: str, coll: str, sid: int, rows: int, raw: bytes | None, report: Report) -> None:
    lost = f"{coll} is unavailable: its segment {sid} holds {rows} rows"
    checksum = None
    if raw is not None:
        try:
            checksum = FileChecksum.from_bytes(raw)
        except ValueError as exc:
            report.problems.append(Problem("catalog.db", None, f"the checksum of segment {sid} is damaged: {exc}"))
    try:
        check_segment_file(os.path.join(root, rel), checksum, rows)
    except CorruptionError as exc:
        what = exc.message.split(f"{os.path.join(root, rel)!r} ", 1)[-1]
        report.problems.append(Problem(rel, exc.offset, f"{what}; {lost}"))
    else:
        if checksum is None:
            report.problems.append(Problem(rel, None, "no checksum recorded (written by an older version): "
                                                      "structure checked only", damage=False))
    report.checked["segments"] += 1
    with contextlib.suppress(OSError):
        report.checked["bytes"] += os.path.getsize(os.path.join(root, rel))


def _check_index(root: str, rel: str, report: Report) -> None:
    full = os.path.join(root, rel)
    try:
        check_index_file(full)
    except IndexFileError as exc:
        what = exc.message.split(f"{full!r} ", 1)[-1]
        report.problems.append(Problem(rel, exc.offset, f"{what} (derived data: rebuilt at the next open)"))
    report.checked["indexes"] += 1
    report.checked["bytes"] += os.path.getsize(full)


def _check_insert_log(root: str, cat: _Catalog | None, report: Report) -> None:
    """Judge the log files as opening does (`_log_files.judge`), reporting each record that is lost."""
    log_dir = os.path.join(root, "log")
    if not os.path.isdir(log_dir):
        return
    try:
        known = lf.read_manifest(log_dir) or {}
    except CorruptionError as exc:
        report.problems.append(Problem(os.path.join("log", lf.MANIFEST), None, str(exc)))
        known = {}
    scans = []
    for name in lf.log_files(log_dir):
        scan = lf.scan_file(os.path.join(log_dir, name), name)
        scans.append(scan)
        report.checked["log_files"] += 1
        report.checked["log_records"] += len(scan.records)
        report.checked["bytes"] += scan.size
    damage = lf.judge(scans, known)
    damaged = {(d.name, d.offset) for d in damage}
    for d in damage:
        what = d.reason
        if any(s.name == d.name and s.bad == d.offset for s in scans):
            what += ": " + _bad_record(os.path.join(log_dir, d.name), d.offset, d.name, cat)
        report.problems.append(Problem(os.path.join("log", d.name), d.offset, what))
    last = scans[-1] if scans else None
    if last is not None and last.bad is not None and (last.name, last.bad) not in damaged:
        report.problems.append(Problem(os.path.join("log", last.name), last.bad,
                                       "the last record is incomplete or fails its CRC: a write cut short by a "
                                       "crash (never acknowledged; cut at the next open)", damage=False))


def _bad_record(path: str, pos: int, name: str, cat: _Catalog | None) -> str:
    """What a record that fails its CRC or framing held, as far as its header can still be believed."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = os.pread(fh.fileno(), lf.HEADER.size, pos)
    if len(head) == lf.HEADER.size:
        magic, _crc, length, seq, coll, part = lf.HEADER.unpack_from(head)
        if magic in (lf.MAGIC, lf.PADDED, lf.PACKED) and pos + lf.HEADER.size + length <= size:
            rec = lf.Record(seq, coll, part, name, pos + lf.HEADER.size, length)
            if cat is not None and cat.retired.covers(rec):
                return (f"the record of seq {seq} (collection id {coll}) fails its CRC; it is retired (its rows "
                        "are in a segment file), so nothing is lost")
            return (f"the record of seq {seq} (collection id {coll}, {length} bytes) fails its CRC: its "
                    "acknowledged rows cannot be read")
    return "a record fails its framing (header damaged): its acknowledged rows cannot be read"
