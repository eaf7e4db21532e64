"""Snapshots: a collection's rows at one moment, kept cheaply and restorable as a new collection.

A snapshot lives in ``snapshots/c<collection id>/<name>/`` of the data
directory: a ``manifest.json`` (schema, indexes, partitions, properties, the
sequence number it was taken at, and per file its partition, checksum and
row count) and the rows. Sealed segments already in files are hard-linked,
not copied: they never change, and a later merge or compaction that
removes the collection's own name for the file leaves the snapshot's. Rows
not yet in a file (growing segments) are written out. A segment with rows
deleted at the snapshot gets a ``.keep.npy`` mask of the rows it keeps.
The directory is built under a temporary name and renamed into place, so
a snapshot exists whole or not at all, and survives reopening. ``heron
verify`` and recovery look only at ``segments/``: snapshot files are never
taken for strays.

`restore_snapshot` creates the target collection (schema, partitions,
indexes, properties) and writes the kept rows into it; a restore that
fails drops what it created. Restore jobs run to completion within the call
(their state is kept in memory for `get_restore_snapshot_state`). Pins
(`pin_snapshot_data`) keep a snapshot from being dropped until unpinned or
until their TTL passes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._errors import AlreadyExistsError, HeronError, NotFoundError, ParamError
from .._schema import CollectionSchema
from ._catalog_ops import _check_name
from ._collection import DEFAULT_PARTITION, Collection
from ._maintenance import Maintenance
from .storage import _ipc as ar
from .storage._files import FileChecksum, read_segment_file, write_segment_file

if TYPE_CHECKING:
    from ._engine import Engine

#: Rows written per insert when a snapshot is restored.
RESTORE_CHUNK = 50_000
#: How long a pin holds when its TTL is 0 ("the server default").
DEFAULT_PIN_SECONDS = 3600


class Snapshots:
    """The snapshot requests of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = os.path.join(engine.dir.path, "snapshots")
        self._lock = threading.Lock()
        self._jobs: dict[int, dict[str, Any]] = {}
        self._pins: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count(int(time.time() * 1000))
        self._remove_unfinished()

    def _remove_unfinished(self) -> None:
        """Delete snapshot directories a crash left half-built (their names end in ``.tmp``)."""
        for cdir in os.listdir(self.root) if os.path.isdir(self.root) else []:
            base = os.path.join(self.root, cdir)
            for name in os.listdir(base) if os.path.isdir(base) else []:
                if name.endswith(".tmp"):
                    shutil.rmtree(os.path.join(base, name), ignore_errors=True)

    def _dir(self, coll: Collection, name: str = "") -> str:
        base = os.path.join(self.root, f"c{coll.id}")
        return os.path.join(base, name) if name else base

    def _manifest(self, coll: Collection, name: str) -> dict[str, Any]:
        path = os.path.join(self._dir(coll, name), "manifest.json")
        try:
            with open(path, encoding="utf-8") as f:
                return dict(json.load(f))
        except FileNotFoundError:
            raise NotFoundError(f"snapshot not found[snapshot={name}]: collection {coll.name!r} has no "
                                        f"snapshot {name!r}") from None

    # -- create and drop ----------------------------------------------------------------------
    def op_create_snapshot(self, r: rq.CreateSnapshot) -> None:
        _check_name("snapshot name", r.snapshot_name)
        e = self.engine
        coll = e.collection(r.db_name, r.collection_name)
        final = self._dir(coll, r.snapshot_name)
        if os.path.exists(final):
            raise AlreadyExistsError(f"snapshot {r.snapshot_name!r} of collection {coll.name!r} already exists")
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        try:
            manifest = self._write(coll, r, tmp)
            with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as f:
                json.dump(manifest, f)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _write(self, coll: Collection, r: rq.CreateSnapshot, tmp: str) -> dict[str, Any]:
        """Link or write the snapshot's files into ``tmp``; the manifest that describes them."""
        e = self.engine
        files: list[dict[str, Any]] = []
        pending: list[tuple[dict[str, Any], Any]] = []
        with coll.write_lock:
            snap = coll.snapshot(list(coll.partitions.values()))
            for i, (p, view) in enumerate(snap.views):
                keep = snap.live(i)
                if not keep.any():
                    continue
                entry: dict[str, Any] = {"file": f"{i}.arrow", "partition": p.name, "rows": int(view.n)}
                if not keep.all():
                    np.save(os.path.join(tmp, f"{i}.keep.npy"), keep)
                    entry["keep"] = f"{i}.keep.npy"
                seg = view.segment
                row = e.catalog.rows("SELECT checksum FROM segments WHERE id=?", (seg.id,)) if seg.persisted else []
                if row and row[0][0] is not None and view.n == seg.n:
                    os.link(e.dir.segment_path(coll.id, seg.id), os.path.join(tmp, entry["file"]))
                    entry["checksum"] = bytes(row[0][0]).hex()
                else:
                    pending.append((entry, view))
                files.append(entry)
            schema = coll.schema.to_json_dict()
            indexes = [{"field_name": d.field_name, "index_name": d.index_name, "index_type": d.index_type,
                        "metric_type": d.metric_type, "params": d.params} for d in coll.indexes.values()]
            partitions = list(coll.partitions)
        for entry, view in pending:  # rows of growing segments: views never change, so written without the lock
            rb = ar.batch_to_record_batch(coll.schema, Maintenance._batch_of(coll, view), view.seqs[: view.n])
            entry["checksum"] = write_segment_file(os.path.join(tmp, entry["file"]), rb).to_bytes().hex()
        return {
            "name": r.snapshot_name, "description": r.description, "db_name": coll.db,
            "collection_name": coll.name, "collection_id": coll.id, "schema": schema, "indexes": indexes,
            "partitions": partitions, "properties": coll.properties, "consistency": coll.consistency,
            "seq": snap.seq, "create_ts": int(time.time() * 1000), "files": files,
        }

    def op_drop_snapshot(self, r: rq.DropSnapshot) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        path = self._dir(coll, r.snapshot_name)
        key = f"{coll.id}/{r.snapshot_name}"
        with self._lock:
            now = time.time()
            held = [pid for pid, (k, until) in self._pins.items() if k == key and until > now]
        if held:
            raise ParamError(f"snapshot {r.snapshot_name!r} is pinned (pin {held[0]}); unpin_snapshot_data first")
        if os.path.isdir(path):
            shutil.rmtree(path)

    def remove_collection(self, coll: Collection) -> None:
        """Delete the snapshots of a dropped collection (no name reaches them any more)."""
        shutil.rmtree(self._dir(coll), ignore_errors=True)

    # -- describe and list ----------------------------------------------------------------------
    def op_list_snapshots(self, r: rq.ListSnapshots) -> list[str]:
        db = self.engine.database(r.db_name)
        colls = ([self.engine.collection(db, r.collection_name)] if r.collection_name
                 else [c for (d, _), c in self.engine.collections.items() if d == db])
        out: list[str] = []
        for coll in colls:
            base = self._dir(coll)
            names = os.listdir(base) if os.path.isdir(base) else []
            out.extend(n for n in names if not n.endswith(".tmp") and os.path.isdir(os.path.join(base, n)))
        return sorted(out)

    def op_describe_snapshot(self, r: rq.DescribeSnapshot) -> dict[str, Any]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        m = self._manifest(coll, r.snapshot_name)
        return {"name": m["name"], "description": m["description"], "collection_name": coll.name,
                "partition_names": list(m["partitions"]), "create_ts": int(m["create_ts"]),
                "s3_location": self._dir(coll, r.snapshot_name)}

    # -- pins ---------------------------------------------------------------------------------
    def op_pin_snapshot_data(self, r: rq.PinSnapshotData) -> int:
        coll = self.engine.collection(r.db_name, r.collection_name)
        self._manifest(coll, r.snapshot_name)
        if r.ttl_seconds < 0:
            raise ParamError(f"ttl_seconds: got {r.ttl_seconds}, expected 0 (the default) or more")
        with self._lock:
            pin = next(self._ids)
            self._pins[pin] = (f"{coll.id}/{r.snapshot_name}", time.time() + (r.ttl_seconds or DEFAULT_PIN_SECONDS))
        return pin

    def op_unpin_snapshot_data(self, r: rq.UnpinSnapshotData) -> None:
        with self._lock:
            if self._pins.pop(r.pin_id, None) is None:
                raise ParamError(f"pin {r.pin_id} does not exist (unpinned already, or expired)")

    # -- restore ------------------------------------------------------------------------------
    def op_restore_snapshot(self, r: rq.RestoreSnapshot) -> int:
        e = self.engine
        coll = e.collection(r.db_name, r.collection_name)
        m = self._manifest(coll, r.snapshot_name)
        target_db = e.database(r.target_db_name or r.db_name)
        if (target_db, r.target_collection_name) in e.collections:
            raise AlreadyExistsError(f"collection {r.target_collection_name!r} already exists in database "
                                     f"{target_db!r}; restore_snapshot creates its target")
        start = time.time()
        schema = CollectionSchema.from_dict(m["schema"])
        for f in schema.fields:
            f.added_seq = 0
        e.execute(rq.CreateCollection(target_db, r.target_collection_name, schema.to_json_dict(),
                                      tuple(m["indexes"]), m["consistency"], dict(m["properties"])))
        try:
            self._fill(coll, m, r, target_db, CollectionSchema.from_dict(m["schema"]))
        except BaseException:
            with contextlib.suppress(HeronError):
                e.execute(rq.DropCollection(target_db, r.target_collection_name))
            raise
        job = next(self._ids)
        target = e.collections[(target_db, r.target_collection_name)].id
        with self._lock:
            self._jobs[job] = {
                "job_id": job, "snapshot_name": r.snapshot_name, "db_name": target_db,
                "collection_name": r.target_collection_name, "state": "RestoreSnapshotCompleted",
                "progress": 100, "reason": "", "start_time": int(start * 1000),
                "time_cost": int((time.time() - start) * 1000), "_target": target,
            }
        return job

    def _fill(self, coll: Collection, m: dict[str, Any], r: rq.RestoreSnapshot, db: str,
              schema: CollectionSchema) -> None:
        e = self.engine
        for name in m["partitions"]:
            if name != DEFAULT_PARTITION:
                e.execute(rq.CreatePartition(db, r.target_collection_name, name))
        base = self._dir(coll, r.snapshot_name)
        for entry in m["files"]:
            table = read_segment_file(os.path.join(base, entry["file"]),
                                      FileChecksum.from_bytes(bytes.fromhex(entry["checksum"])), entry["rows"])
            batch, _ = ar.record_batch_to_batch(schema, table)
            rows = np.load(os.path.join(base, entry["keep"])) if "keep" in entry else np.ones(batch.num_rows, bool)
            kept = np.flatnonzero(rows)
            for lo in range(0, len(kept), RESTORE_CHUNK):
                part = batch.take(kept[lo: lo + RESTORE_CHUNK])
                e.execute(rq.Insert(db, r.target_collection_name, part, entry["partition"], upsert=True))

    def op_get_restore_snapshot_state(self, r: rq.GetRestoreSnapshotState) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(r.job_id)
        if job is None:
            raise ParamError(f"restore job {r.job_id} does not exist (jobs are kept until the engine closes)")
        return _public(job)

    def op_list_restore_snapshot_jobs(self, r: rq.ListRestoreSnapshotJobs) -> list[dict[str, Any]]:
        db = self.engine.database(r.db_name)
        live = {c.id for c in self.engine.collections.values()}
        with self._lock:
            jobs = [j for j in self._jobs.values() if j["_target"] in live]  # a dropped target takes its jobs along
        return [_public(j) for j in jobs if j["db_name"] == db and (not r.collection_name or
                                                                     j["collection_name"] == r.collection_name)]


def _public(job: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_")}
