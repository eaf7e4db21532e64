"""``heron inspect URI [COLLECTION] [--json]``: what a data directory or a running server holds.

Databases, collections with their schema, row counts, partitions, segments
(growing or sealed, rows, bytes), indexes with their build progress, load
state, and (for a data directory) the disk use of its files. Everything is
asked through `heron.Client`, so a directory and ``http://host:port`` of
``heron serve`` answer alike. A directory that a running ``heron serve``
has open is asked through that server; one that another process has open
otherwise cannot be inspected.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ._connect import is_server, open_client


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``inspect`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "inspect", help="show the databases, collections, segments and indexes of a data directory or server",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    s.add_argument("uri", help="a data directory, or http://host:port of `heron serve`")
    s.add_argument("collection", nargs="?", default="", help="only this collection")
    s.add_argument("--db", default="", help="only this database")
    s.add_argument("--token", default="", help="user:password for a server with --auth")
    s.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return s


def run(args: argparse.Namespace) -> int:
    """Print what ``args.uri`` holds; 0, or 1 (one line on stderr) when it cannot be opened or named nothing."""
    with open_client(args.uri, args.token) as client:
        report = {"uri": args.uri, **gather(client, args.db, args.collection)}
    if not is_server(args.uri):
        report["disk"] = disk_use(os.path.abspath(args.uri))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
    return 0


def gather(client: Any, db: str = "", only: str = "") -> dict[str, Any]:
    """The report of ``client``'s databases (or ``db``), each collection (or ``only``) described.

    With ``only``, just the databases that hold a collection of that name; none: its not-found error.
    """
    dbs = [db] if db else client.list_databases()
    out: dict[str, Any] = {"databases": []}
    listed = {name: client.list_collections(db_name=name) for name in dbs}
    if only:
        listed = {name: [only] for name, names in listed.items() if only in names}
        if not listed:  # its error names the collection and the database
            client.describe_collection(only, db_name=db or "default")
    for name, names in listed.items():
        out["databases"].append({"name": name, "collections": [collection(client, name, c) for c in names]})
    return out


def collection(client: Any, db: str, name: str) -> dict[str, Any]:
    """One collection: schema, rows, partitions, segments, indexes and load state."""
    d = client.describe_collection(name, db_name=db)
    fields = [{"name": f["name"], "type": getattr(f["type"], "name", str(f["type"])),
               "params": f.get("params", {}), "primary": bool(f.get("is_primary"))} for f in d["fields"]]
    partitions = [{"name": p, "rows": int(client.get_partition_stats(name, p, db_name=db)["row_count"])}
                  for p in client.list_partitions(name, db_name=db)]
    segments = [{"id": s.segment_id, "partition_id": s.partition_id,
                 "state": "growing" if s.state == "Growing" else "sealed", "rows": int(s.num_rows),
                 "bytes": int(s.mem_size), "index": s.index_name} for s in client.list_segments(name, db_name=db)]
    indexes = []
    for index in client.list_indexes(name, db_name=db):
        i = client.describe_index(name, index, db_name=db) or {}
        indexes.append({"name": index, "field": i.get("field_name", ""), "type": i.get("index_type", ""),
                        "metric": i.get("metric_type", ""), "state": i.get("state", ""),
                        "indexed_rows": int(i.get("indexed_rows", 0)), "total_rows": int(i.get("total_rows", 0)),
                        "pending_rows": int(i.get("pending_index_rows", 0))})
    state = client.get_load_state(name, db_name=db)["state"]
    return {"name": name, "id": d.get("collection_id"), "rows": int(client.get_collection_stats(name, db_name=db)
                                                                    ["row_count"]),
            "load_state": getattr(state, "name", str(state)), "aliases": list(d.get("aliases", [])),
            "fields": fields, "partitions": partitions, "segments": segments, "indexes": indexes,
            "properties": dict(d.get("properties", {}))}


def disk_use(root: str) -> dict[str, int]:
    """Bytes on disk under ``root``: each top-level entry (catalog.db, log, segments ...) and the total."""
    use: dict[str, int] = {}
    for entry in sorted(os.listdir(root)):
        full = os.path.join(root, entry)
        if os.path.isdir(full):
            use[entry] = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(full) for f in files)
        else:
            use[entry] = os.path.getsize(full)
    use["total"] = sum(use.values())
    return use


def table(headers: list[str], rows: list[list[Any]], indent: str = "    ") -> str:
    """Rows under headers in aligned columns (numbers right-aligned)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], int) for r in rows) and bool(rows) for i in range(len(headers))]

    def line(values: list[str]) -> str:
        return indent + "  ".join(v.rjust(w) if n else v.ljust(w)
                                  for v, w, n in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers)] + [line(r) for r in cells])


def render(report: dict[str, Any]) -> str:
    """The report as text: one block per collection, tables of fields, partitions, segments and indexes."""
    out: list[str] = []
    for db in report["databases"]:
        out.append(f"database {db['name']}: {len(db['collections'])} collections")
        for c in db["collections"]:
            alias = f", aliases {', '.join(c['aliases'])}" if c["aliases"] else ""
            out.append(f"  collection {c['name']}: {c['rows']:,} rows, {c['load_state']}{alias}")
            out.append(table(["field", "type", "params", "primary"],
                             [[f["name"], f["type"], json.dumps(f["params"]) if f["params"] else "",
                               "yes" if f["primary"] else ""] for f in c["fields"]]))
            out.append(table(["partition", "rows"], [[p["name"], p["rows"]] for p in c["partitions"]]))
            if c["segments"]:
                out.append(table(["segment", "state", "rows", "bytes", "index"],
                                 [[s["id"], s["state"], s["rows"], s["bytes"], s["index"]] for s in c["segments"]]))
            if c["indexes"]:
                out.append(table(["index", "field", "type", "metric", "state", "indexed", "pending"],
                                 [[i["name"], i["field"], i["type"], i["metric"], i["state"],
                                   f"{i['indexed_rows']}/{i['total_rows']}", i["pending_rows"]]
                                  for i in c["indexes"]]))
    if "disk" in report:
        out.append("disk: " + ", ".join(f"{k} {v:,} bytes" for k, v in report["disk"].items()))
    return "\n".join(out)
