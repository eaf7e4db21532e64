"""``heron repair DIR [--dry-run]``: keep everything intact in a damaged data directory, and say what was lost.

For the insert log it keeps every record whose CRC checks, from every file
(records after the damage included): each damaged file is replaced by a
fresh one holding its intact records (written to a temporary file, synced,
renamed into place), and the original is kept under ``DIR/damaged/log/``,
never deleted. The manifest is rebuilt. One line is printed per finding,
with records and rows salvaged per collection and the bytes that could not
be read. A catalog that is missing, empty or damaged while data remains
cannot be repaired (it holds the schemas): restore it from a backup. That
includes a catalog row that fails its CRC: no copy of a row's values
exists elsewhere to rebuild it from (a schema, a segment's row count and
checksum, a log record, a retirement), and guessing would answer around
the damage, so repair names the rows and changes nothing.

Exit status: 0 when there was nothing to repair or everything was repaired,
1 when damage remains (with ``--dry-run``: when there is damage at all), 2
for usage errors. The directory must not be open in another process.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import sqlite3
from collections import defaultdict
from typing import Any

from .._errors import CorruptionError, DataDirLockedError
from ..engine.storage import _log_files as lf
from ..engine.storage import _row_checksums as rc
from ..engine.storage._catalog import TABLES
from ..engine.storage._consistency import data_left
from ..engine.storage._files import fsync_dir
from ..engine.storage._insert_log import Retired
from ..engine.storage._ipc import from_ipc_bytes


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``repair`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "repair", help="salvage the intact records of a damaged data directory (see `heron repair --help`)"
    )
    s.add_argument("dir", help="the data directory")
    s.add_argument("--dry-run", action="store_true", help="report what would be done; change nothing")
    return s


def run(args: argparse.Namespace) -> int:
    """Repair ``args.dir`` (see the module docstring for the exit status)."""
    root = os.path.abspath(args.dir)
    if not os.path.isdir(root) or not any(os.path.exists(os.path.join(root, n)) for n in ("catalog.db", "log")):
        print(f"heron repair: {args.dir!r} is not a Heron data directory")
        return 2
    with open(os.path.join(root, "LOCK"), "a") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DataDirLockedError(f"{root!r} is open in another process: close it there first") from None
        return Repair(root, dry_run=args.dry_run).run()


class Repair:
    """One run of ``heron repair`` over a data directory (locked by the caller)."""

    def __init__(self, root: str, *, dry_run: bool) -> None:
        self.root = root
        self.logs = os.path.join(root, "log")
        self.dry_run = dry_run
        self.names: dict[int, str] = {}
        self.retired = Retired()
        self.manifest_expected = False

    def say(self, line: str) -> None:
        print(line, flush=True)

    def run(self) -> int:
        if not self._catalog():
            return 1
        found = self._insert_log()
        if not found:
            self.say("nothing to repair")
            return 0
        if self.dry_run:
            self.say(f"dry run: {found} findings, nothing changed")
            return 1
        self.say(f"repaired: {found} findings; the directory opens; damaged originals are under damaged/")
        return 0

    # -- the catalog ----------------------------------------------------------------------
    def _catalog(self) -> bool:
        """Read names and retirements; False (after saying why) when the catalog cannot be used."""
        path = os.path.join(self.root, "catalog.db")
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            left = data_left(self.root)
            if left:
                state = "missing" if not os.path.exists(path) else "empty"
                self.say(f"catalog.db: {state} while the directory holds {', '.join(left[:3])}"
                         f"{' ...' if len(left) > 3 else ''}; repair cannot recreate the schemas: "
                         "restore catalog.db from a backup")
                return False
            return True
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                problems = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
                if problems == ["ok"] and rc.has_crc_columns(db, TABLES):
                    rc.register(db)
                    problems = [row.describe() for row in rc.bad_rows(db, TABLES)] or problems
                if problems == ["ok"]:
                    self.names = {cid: f"{name!r}" for cid, name in db.execute("SELECT id, name FROM collections")}
                    for row in db.execute("SELECT collection_id, partition_id, lo, hi FROM log_retired"):
                        self.retired.add(*row)
                    self.manifest_expected = bool(
                        db.execute("SELECT 1 FROM meta WHERE key='insert_log_manifest'").fetchall())
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            self.say(f"catalog.db: damaged ({'; '.join(problems[:3])}); repair cannot recreate the schemas: "
                     "restore catalog.db from a backup")
            return False
        return True

    # -- the insert log -------------------------------------------------------------------
    def _insert_log(self) -> int:
        """Find and (unless a dry run) repair damage to the insert log; returns the number of findings."""
        findings = 0
        try:
            known = lf.read_manifest(self.logs)
        except CorruptionError:
            self.say("log/MANIFEST: damaged; it is rebuilt from the files")
            known, findings = None, 1
        else:
            if known is None and self.manifest_expected:
                self.say("log/MANIFEST: missing; it is rebuilt from the files that remain (files deleted "
                         "with it cannot be named)")
                findings = 1
        known = known or {}
        present = lf.log_files(self.logs) if os.path.isdir(self.logs) else []
        scans = [lf.scan_file(os.path.join(self.logs, n), n) for n in present]
        by_file: dict[str, list[lf.Damage]] = defaultdict(list)
        for d in lf.judge(scans, known):
            by_file[d.name].append(d)
        if scans and scans[-1].bad is not None and scans[-1].name not in by_file:
            s = scans[-1]
            self.say(f"log/{s.name}: torn final record at byte {s.bad} (a write cut short by a crash, never "
                     "acknowledged); opening cuts it away")
        sizes = {s.name: known.get(s.name, 0) for s in scans}
        for name, damage in sorted(by_file.items()):
            findings += 1
            for d in damage:
                self.say(f"log/{name}: {d.reason}")
            if name not in sizes:
                self.say(f"log/{name}: its records cannot be recovered (restore them from a backup if they "
                         "matter); it is dropped from the manifest")
                continue
            sizes[name] = self._salvage(name)
        if findings and not self.dry_run:
            os.makedirs(self.logs, exist_ok=True)
            lf.write_manifest(self.logs, sizes)
        return findings

    def _salvage(self, name: str) -> int:
        """Report (and unless a dry run, keep) the intact records of one damaged file; returns its new size."""
        full = os.path.join(self.logs, name)
        records, lost, data = lf.salvage(full, name)
        per: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # records, rows, already in segments
        for r in records:
            counts = per[r.collection_id]
            counts[0] += 1
            if self.retired.covers(r):
                counts[2] += 1
            else:
                counts[1] += from_ipc_bytes(data[r.offset : r.offset + r.length]).num_rows
        for cid, (n, rows, done) in sorted(per.items()):
            name_ = f" {self.names[cid]}" if cid in self.names else ""
            extra = f" ({done} of them already in segments)" if done else ""
            self.say(f"log/{name}: collection {cid}{name_}: {n} records{extra}, {rows} rows to replay, salvaged")
        self.say(f"log/{name}: {lost} bytes could not be read")
        if self.dry_run:
            return len(data)
        tmp = full + ".repair.tmp"
        if os.path.exists(tmp):
            os.unlink(tmp)
        size = lf.write_records(tmp, ((r.seq, r.collection_id, r.partition_id,
                                       data[r.offset : r.offset + r.length]) for r in records))
        kept = self._keep_original(full, name)
        os.replace(tmp, full)
        fsync_dir(self.logs)
        self.say(f"log/{name}: rewritten with the {len(records)} intact records; the original is {kept}")
        return size

    def _keep_original(self, full: str, name: str) -> str:
        """Keep the damaged file under ``damaged/log/`` (a hard link where possible), synced; returns its path."""
        dest_dir = os.path.join(self.root, "damaged", "log")
        os.makedirs(dest_dir, exist_ok=True)
        dest, n = os.path.join(dest_dir, name), 1
        while os.path.exists(dest):
            n += 1
            dest = os.path.join(dest_dir, f"{name}.{n}")
        try:
            os.link(full, dest)
        except OSError:
            shutil.copyfile(full, dest)
            with open(dest, "rb+") as fh:
                os.fsync(fh.fileno())
        for d in (dest_dir, os.path.dirname(dest_dir), self.root):
            fsync_dir(d)
        return os.path.relpath(dest, self.root)
