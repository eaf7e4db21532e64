"""``heron compact URI COLLECTION``: rewrite the collection's segments without their deleted rows."""

from __future__ import annotations

import argparse
from typing import Any

from ._connect import open_client


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``compact`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "compact", help="rewrite a collection's segments without their deleted rows")
    s.add_argument("uri", help="a data directory, or http://host:port of `heron serve`")
    s.add_argument("collection", help="the collection")
    s.add_argument("--db", default="", help="its database (default: default)")
    s.add_argument("--token", default="", help="user:password for a server with --auth")
    return s


def run(args: argparse.Namespace) -> int:
    """Compact and say what changed; 0 when done."""
    with open_client(args.uri, args.token) as client:
        kw = {"db_name": args.db} if args.db else {}
        before = _segments(client, args.collection, kw)
        job = client.compact(args.collection, **kw)
        after = _segments(client, args.collection, kw)
    rewritten = sorted(set(before) - set(after))
    print(f"heron compact: {args.collection}: job {job} completed; "
          + (f"{len(rewritten)} segments rewritten without their deleted rows ({', '.join(map(str, rewritten))}), "
             if rewritten else "no segment had deleted rows; ")
          + f"{sum(after.values()):,} rows in {len(after)} sealed segments")
    return 0


def _segments(client: Any, name: str, kw: dict[str, Any]) -> dict[int, int]:
    """Rows per sealed segment id."""
    return {int(s.segment_id): int(s.num_rows) for s in client.list_persistent_segments(name, **kw)}
