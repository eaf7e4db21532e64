"""``heron import URI COLLECTION PATH...``: bulk-insert files as Milvus bulk insert reads them.

Each ``PATH`` is a Parquet, row-based JSON, JSON lines or CSV file, ``.npy``
files of one field each (given together they form one set of columns), a
folder of ``.npy`` files, or a folder ``heron export`` wrote (its
``schema.json`` says which file holds which partition). The files are read
where the engine runs: by the server, for ``http://host:port`` (paths are
made absolute here, so give paths the server can read).

``--map COLUMN=FIELD`` reads a file whose columns are named otherwise
(any Parquet, CSV or JSON lines file with a column per field).

The import commits its rows chunk by chunk (``--chunk-rows``, 8192 by
default) and is resumable: the data directory keeps a record of the files'
row ranges already in, so after a crash (of this command, or of the server)
running the same command again skips them and finishes, with no row lost or
doubled. Until then the rows imported so far stay visible; ``--abort`` drops
the record instead (those rows stay), so that a later import starts over. A
file changed since the interrupted run is refused. A bad value stops the
import with its file, field and row, and no row of its chunk is written;
fix the file and rerun to resume. Against a Milvus server, which ignores
the option asking for this, the import is Milvus's own job.

``--create-from SCHEMA.json`` (a ``schema.json`` of ``heron export``)
creates the collection first, with its partitions and indexes (those not
there yet, when it exists).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from .. import _requests as rq
from .._errors import HeronError
from ._bars import _Quiet, bar
from ._connect import open_client


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``import`` and its options to the subparsers ``sub``."""
    s: argparse.ArgumentParser = sub.add_parser(
        "import", help="bulk-insert Parquet, JSON, CSV or numpy files (as `heron export` writes them)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("uri", help="a data directory, or http://host:port of `heron serve`")
    s.add_argument("collection", help="the collection")
    s.add_argument("paths", nargs="+", help="files, folders of .npy files, or a folder `heron export` wrote")
    s.add_argument("--partition", default="", help="the partition to insert into (default: _default)")
    s.add_argument("--create-from", default="", metavar="SCHEMA.json",
                   help="create the collection from a schema.json `heron export` wrote")
    s.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD",
                   help="the file column COLUMN fills field FIELD (COLUMN= drops it); repeatable")
    s.add_argument("--sep", default=",", help="CSV field separator (default: ,)")
    s.add_argument("--db", default="", help="its database (default: default)")
    s.add_argument("--token", default="", help="user:password for a server with --auth")
    s.add_argument("--chunk-rows", type=int, default=0, metavar="N",
                   help="rows per chunk committed (default 8192; a resumed import keeps its first run's)")
    s.add_argument("--abort", action="store_true",
                   help="drop the record of an interrupted import of these files (its rows stay); import nothing")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return s


def run(args: argparse.Namespace) -> int:
    """Import; 0 once the job completed, a `HeronError` with the job's reason when it failed."""
    kw = {"db_name": args.db} if args.db else {}
    db = args.db or "default"
    with open_client(args.uri, args.token) as client:
        if args.create_from:
            create_from(client, args.collection, args.create_from, kw)
        options = {"sep": args.sep, "resume": "abort" if args.abort else "1",
                   **({"column_map": json.dumps(_mapping(args.map))} if args.map else {}),
                   **({"chunk_rows": str(args.chunk_rows)} if args.chunk_rows else {})}
        jobs = []
        for partition, files in plan(args.paths, args.partition):
            jobs.append(import_files(client, db, args.collection, files, partition, quiet=args.quiet,
                                     options=options))
    rows = sum(j["imported_rows"] for j in jobs)
    skipped = sum(j.get("skipped_rows", 0) for j in jobs)
    ids = ", ".join(str(j["job_id"]) for j in jobs)
    if args.abort:
        print(f"heron import: the record of an interrupted import of these files, if any, is dropped; "
              f"its {skipped:,} rows stay")
        return 0
    resumed = f"; resumed: {skipped:,} rows already imported skipped" if skipped else ""
    print(f"heron import: {rows:,} rows imported into {args.collection} (jobs {ids}){resumed}")
    return 0


def plan(paths: list[str], partition: str) -> list[tuple[str, list[str]]]:
    """(partition, absolute file paths) per import job: one per partition of an export folder, else one in all."""
    loose: list[str] = []
    jobs: list[tuple[str, list[str]]] = []
    for p in paths:
        full = os.path.abspath(p)
        manifest = os.path.join(full, "schema.json")
        if os.path.isdir(full) and os.path.isfile(manifest):
            with open(manifest, encoding="utf-8") as fh:
                files = json.load(fh).get("files") or {}
            jobs += [(partition or part, [os.path.join(full, name)]) for name, part in files.items()]
        else:
            loose.append(full)
    if loose:
        jobs.append((partition, loose))
    return jobs


def _mapping(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        column, eq, field = p.partition("=")
        if not eq or not column:
            raise HeronError(f"--map {p!r}: expected COLUMN=FIELD (or COLUMN= to drop the column)")
        out[column] = field
    return out


def import_files(client: Any, db: str, name: str, files: list[str], partition: str = "", *,
                 quiet: bool = False, poll: float = 0.2, options: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one import job to its end; the job's description. `HeronError` with its reason if it failed."""
    job_id = client._call(rq.ImportFiles(db, name, tuple(files), partition, dict(options or {})), None)
    progress = _Quiet() if quiet else bar(100, f"{name}", "%")
    shown = 0
    try:
        while True:
            job = client._call(rq.GetImportProgress(job_id), None)
            progress.update(job["progress"] - shown)
            shown = job["progress"]
            if job["state_name"] in ("Completed", "Failed"):
                break
            time.sleep(poll)
    finally:
        progress.close()
    if job["state_name"] == "Failed":
        resumable = (options or {}).get("resume") == "1"
        raise HeronError(f"import job {job_id} failed{'' if resumable else ', nothing imported'}: {job['reason']}")
    return dict(job)


def create_from(client: Any, name: str, manifest: str, kw: dict[str, Any]) -> None:
    """Create collection ``name`` as the ``schema.json`` at ``manifest`` describes it: schema, partitions, indexes.

    What exists already is kept (a rerun of an interrupted import): only missing partitions and indexes are made.
    """
    from .._schema import CollectionSchema

    with open(manifest, encoding="utf-8") as fh:
        doc = json.load(fh)
    d = doc.get("collection") or {}
    existed = client.has_collection(name, **kw)  # a rerun of an interrupted import finds it made
    if not existed:
        client.create_collection(name, schema=CollectionSchema.from_dict(d), properties=d.get("properties") or {},
                                 **kw)
    for p in doc.get("partitions") or []:
        if not client.has_partition(name, p, **kw):
            client.create_partition(name, p, **kw)
    indexes = doc.get("indexes") or []
    if indexes:
        if not existed:
            for index in client.list_indexes(name, **kw):  # the default index of a collection made from a dim
                client.drop_index(name, index, **kw)
        have = set(client.list_indexes(name, **kw))
        indexes = [i for i in indexes if (i.get("index_name") or i["field_name"]) not in have]
    if indexes:
        params = client.prepare_index_params()
        for i in indexes:
            extra = {k: v for k, v in i.items() if k not in _INDEX_KEYS}
            params.add_index(i["field_name"], i.get("index_type", ""), i.get("index_name", ""),
                             i.get("metric_type", ""), params=extra)
        client.create_index(name, params, **kw)


_INDEX_KEYS = frozenset({"field_name", "index_type", "index_name", "metric_type", "total_rows", "indexed_rows",
                         "pending_index_rows", "state", "index_state_fail_reason"})
