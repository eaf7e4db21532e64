"""``heron verify DIR [--json]``: check every checksum of a data directory, changing nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .._errors import HeronError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``verify`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="check the catalog, segment, index and insert-log files (and a server's auth.db) of a data directory "
        "against their checksums",
        description="Check every file of a data directory without opening it for writing. Prints one line per "
        "problem (file: offset: what) and a summary. Exit status: 0 clean, 1 damage found, 2 nothing checked "
        "(the directory is open in another process, or is not a data directory).",
    )
    s.add_argument("dir", help="data directory")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    return s


def run(args: argparse.Namespace) -> int:
    """0 when nothing is damaged, 1 when something is, 2 when the directory is open elsewhere or is none."""
    from ..engine._verify import verify_directory

    try:
        report = verify_directory(args.dir)
    except HeronError as exc:  # nothing was checked: not a verdict on the data
        print(f"heron verify: {exc}", file=sys.stderr)
        return 2
    _check_auth(report)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for p in report.problems:
            print(p.line(args.dir))
        c = report.checked
        damage = sum(p.damage for p in report.problems)
        notes = len(report.problems) - damage
        print(
            f"{args.dir}: checked the catalog ({c.get('catalog_rows', 0)} rows), {c['segments']} segment files, "
            f"{c['indexes']} index files and "
            f"{c['log_records']} records in {c['log_files']} insert-log files"
            + (f", {c['snapshot_files']} snapshot files" if c.get("snapshot_files") else "")
            + f" ({c['bytes']:,} bytes)"
            + (f", and auth.db ({c['auth_rows']} rows)" if "auth_rows" in c else "") + ": "
            + (f"{damage} damaged" if damage else "no damage")
            + (f", {notes} notes" if notes else "")
        )
    return 1 if report.damaged else 0


def _check_auth(report: Any) -> None:
    """Check the server's ``auth.db``, where the directory has one (`heron.server._auth.check_file`)."""
    from ..engine._verify import Problem
    from ..server._auth import check_file

    path = os.path.join(report.path, "auth.db")
    if not os.path.exists(path):
        return
    rows, problems = check_file(path)
    report.checked["auth_rows"] = rows
    report.checked["bytes"] += os.path.getsize(path)
    report.problems.extend(Problem("auth.db", None, p) for p in problems)
