"""``heron backup SOURCE DEST`` and ``heron restore BACKUP DIR``.

A backup is a new Heron data directory, ``DEST``, written through the
clients: for every database and collection, its schema, partitions,
indexes, properties, aliases and load state, and its rows, read in
primary-key order a batch at a time. ``SOURCE`` is a data directory (one
that a running ``heron serve`` has open is read through that server), or
``http://host:port`` of a server: writes may go on meanwhile. Every row acknowledged
before the backup started is in it (unless deleted meanwhile); rows
written during it may be. A backup that fails leaves no ``DEST``: it is
written under a temporary name and renamed into place when complete.
From a directory, its ``auth.db`` (a server's users, roles and grants) is
copied too; a backup through a server holds no users or roles.

``heron restore BACKUP DIR`` checks the backup with ``heron verify``, then
copies it to ``DIR`` (which must not exist) the same way, so ``DIR``
appears complete or not at all.

Collections with an auto-generated primary key or with functions (BM25,
embeddings) are refused with an error naming them: their rows cannot be
written back as they were read.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import sqlite3
import sys
from typing import Any

from .._errors import HeronError
from ._bars import bar
from ._connect import data_dir, is_server, open_client

BATCH = 2000


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``backup`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "backup", help="copy every database and collection to a new data directory, while in use",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    s.add_argument("source", help="a data directory (served or not), or http://host:port of `heron serve`")
    s.add_argument("dest", help="the backup: a data directory to create (it must not exist)")
    s.add_argument("--token", default="", help="user:password for a server with --auth")
    return s


def add_restore_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``restore`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "restore", help="check a backup, then copy it to a new data directory",
    )
    s.add_argument("backup", help="a directory `heron backup` wrote")
    s.add_argument("dir", help="the data directory to create (it must not exist)")
    return s


def _fresh(dest: str) -> tuple[str, str]:
    """(absolute ``dest``, its temporary sibling); an `OSError` if ``dest`` exists."""
    full = os.path.abspath(dest)
    if os.path.exists(full):
        raise OSError(errno.EEXIST, f"{dest!r} exists: name a new directory (nothing is overwritten)")
    tmp = os.path.join(os.path.dirname(full), f".{os.path.basename(full)}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    return full, tmp


def run(args: argparse.Namespace) -> int:
    """Write the backup; 0 once ``args.dest`` is complete."""
    from ..client._sync_client import Client

    dest, tmp = _fresh(args.dest)
    with open_client(args.source, args.token) as src:
        try:
            with Client(tmp) as out:
                counts = copy_all(src, out)
            if not is_server(args.source):
                _copy_auth(os.path.abspath(args.source), tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    os.rename(tmp, dest)
    total = sum(counts.values())
    print(f"heron backup: {len(counts)} collections, {total:,} rows written to {dest}")
    return 0


def _copy_auth(source: str, dest: str) -> None:
    """Copy a directory's ``auth.db`` (users, roles, grants), as SQLite's online backup reads it."""
    path = os.path.join(source, "auth.db")
    if not os.path.exists(path):
        return
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = sqlite3.connect(os.path.join(dest, "auth.db"))
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()


def copy_all(src: Any, out: Any) -> dict[str, int]:
    """Copy every database and collection of ``src`` into ``out``; rows per ``db.collection``."""
    counts: dict[str, int] = {}
    for db in src.list_databases():
        if db != "default":
            out.create_database(db)
        for name in src.list_collections(db_name=db):
            counts[f"{db}.{name}"] = copy_collection(src, out, db, name)
    return counts


def copy_collection(src: Any, out: Any, db: str, name: str) -> int:
    """Copy one collection (schema, partitions, rows, indexes, aliases, load state); returns its rows."""
    from .._schema import CollectionSchema

    d = src.describe_collection(name, db_name=db)
    if d.get("functions"):
        raise HeronError(f"collection {db}.{name} has functions; heron backup cannot write their output "
                         "fields back yet: back it up by copying the directory of a stopped server")
    if d.get("auto_id"):
        raise HeronError(f"collection {db}.{name} generates its primary keys (auto_id); heron backup cannot "
                         "write them back as they were: back it up by copying the directory of a stopped server")
    out.create_collection(name, schema=CollectionSchema.from_dict(d), properties=d.get("properties") or {},
                          db_name=db)
    partitions = src.list_partitions(name, db_name=db)
    for p in partitions:
        if not out.has_partition(name, p, db_name=db):
            out.create_partition(name, p, db_name=db)
    rows = 0
    progress = bar(int(src.get_collection_stats(name, db_name=db)["row_count"]), f"{db}.{name}")
    try:
        for p in partitions:
            for batch in src.query_iterator(name, batch_size=BATCH, output_fields=["*"], partition_names=[p],
                                            db_name=db):
                if batch:
                    out.insert(name, list(batch), partition_name=p, db_name=db)
                    rows += len(batch)
                    progress.update(len(batch))
    finally:
        progress.close()
    _copy_indexes(src, out, db, name)
    for alias in d.get("aliases") or []:
        out.create_alias(name, alias, db_name=db)
    state = src.get_load_state(name, db_name=db)["state"]
    if getattr(state, "name", str(state)) == "NotLoad":
        out.release_collection(name, db_name=db)
    out.flush(name, db_name=db)
    return rows


def _copy_indexes(src: Any, out: Any, db: str, name: str) -> None:
    existing = set(out.list_indexes(name, db_name=db))
    for index in src.list_indexes(name, db_name=db):
        i = dict(src.describe_index(name, index, db_name=db) or {})
        extra = {k: v for k, v in i.items() if k not in _INDEX_KEYS}
        if index in existing:
            out.drop_index(name, index, db_name=db)
        params = out.prepare_index_params()
        params.add_index(i["field_name"], i.get("index_type", ""), index, i.get("metric_type", ""), params=extra)
        out.create_index(name, params, db_name=db)


_INDEX_KEYS = frozenset({"field_name", "index_type", "index_name", "metric_type", "total_rows", "indexed_rows",
                         "pending_index_rows", "state", "index_state_fail_reason"})


def run_restore(args: argparse.Namespace) -> int:
    """Verify ``args.backup``, then copy it to ``args.dir``; 1 (copying nothing) when it is damaged."""
    from ..engine._verify import verify_directory

    source = data_dir(args.backup)
    dest, tmp = _fresh(args.dir)
    report = verify_directory(source)
    if report.damaged:
        for p in report.problems:
            print(p.line(args.backup), file=sys.stderr)
        print(f"heron restore: {args.backup!r} is damaged; nothing was restored", file=sys.stderr)
        return 1
    try:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("LOCK"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.rename(tmp, dest)
    print(f"heron restore: {args.backup} restored to {dest}")
    return 0
