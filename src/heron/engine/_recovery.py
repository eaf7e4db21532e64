"""Recovery: an engine's collections as its catalog, segment files and logs left them.

`Recovery.load_catalog` rebuilds every collection of the catalog in memory:
it maps the sealed segments the catalog records (`_segment_map`: columns are
views of the files, each checked against its checksum before it answers,
large files as they are used and by a background pass; a damaged, truncated
or missing one leaves its collection unavailable, with a `CorruptionError` for every request, and the others
open; so does a catalog row of the collection that fails its CRC,
`Catalog.damaged`), loads their index files (deleting and rebuilding any missing or
damaged one), removes files the catalog does not know (left by a crash
mid-write), and replays the logs (inserts, upserts, deletes) into growing
segments. Afterwards every acknowledged write is visible again, and no write
is half-applied.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import weakref
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .._errors import CorruptionError
from .._schema import CollectionSchema
from .._types import DataType
from ._collection import Collection, Partition
from ._compact_options import merge_neighbours
from ._faults import fault_point
from ._rebuild import rebuild_grown
from ._segment import Segment
from ._segment_map import mapped_segment
from .index._definitions import IndexDef, build_scalar
from .index._vector_index import load_index
from .storage import _ipc as ar
from .storage._files import FileChecksum
from .storage._mapped import MappedFile

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("heron.engine")


def check_in_background(coll: Collection, mf: MappedFile, engine: Engine) -> None:
    """Check the blocks of ``mf`` no query has checked yet, until ``coll`` is dropped or ``engine`` closes.

    ``coll`` comes first so that `Engine.settle` knows the task works on it.
    """
    mf.check_all(stop=lambda: coll.dropped or engine.closed)


class Recovery:
    """Loads one engine's collections when it opens; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load_catalog(self) -> None:
        """Put every collection of the catalog into ``engine.collections``, each recovered (see `recover`)."""
        e = self.engine
        for cid, db, name, schema, props, consistency, _loaded, created in e.catalog.rows(
            "SELECT id, db, name, schema, properties, consistency, loaded, created FROM collections"
        ):
            coll = Collection(cid, db, name, CollectionSchema.from_dict(json.loads(schema)),
                              json.loads(props), consistency, created)
            damage = e.catalog.damaged.get(cid)
            if damage is not None:  # rows of its partitions, indexes, segments or logs cannot be trusted
                coll.damage = damage
                e.collections[(db, name)] = coll
                continue
            for pid, pname, ploaded in e.catalog.rows(
                "SELECT id, name, loaded FROM partitions WHERE collection_id=? ORDER BY id", (cid,)
            ):
                coll.partitions[pname] = Partition(pid, pname, bool(ploaded))
            for iname, field, itype, metric, params in e.catalog.rows(
                "SELECT index_name, field_name, index_type, metric_type, params FROM indexes WHERE collection_id=? "
                "ORDER BY rowid",
                (cid,),
            ):
                coll.indexes[iname] = IndexDef.from_catalog(iname, field, itype, metric, params)
            e.collections[(db, name)] = coll
            self.recover(coll)

    def recover(self, coll: Collection) -> None:
        """Map sealed segments, load (or schedule) their indexes, replay the log.

        Runs under the collection's write lock: a segment sealed by the replay is
        persisted (and perhaps merged) in the background, and that must wait until
        every logged delete has been replayed onto the segments it replaces.
        """
        with coll.write_lock:
            self._recover(coll)

    def _recover(self, coll: Collection) -> None:
        e = self.engine
        if not self._map_sealed(coll):  # a segment file is damaged: the collection stays unavailable
            return
        fault_point("recovery.after_map")
        top = 0
        is_str = coll.schema.primary_field.dtype is DataType.VARCHAR
        deletes: dict[int, list[tuple[np.ndarray, int]]] = {}
        logged = [*e.catalog.log_records(coll.id), *((s, pid, "insert", b) for s, pid, b in e.inserts.records(coll.id))]
        for seq, pid, kind, payload in sorted(logged, key=lambda rec: rec[0]):
            top = max(top, seq)
            if kind == "delete":
                deletes.setdefault(pid, []).append((ar.pks_from_ipc_bytes(payload, is_str), seq))
                continue
            p = coll.partition_by_id(pid)
            if p is None:
                continue
            batch, seqs = ar.record_batch_to_batch(coll.schema, ar.from_ipc_bytes(payload))
            if kind == "upsert":
                keys = batch.columns[coll.schema.primary_field.name].values
                keys = np.asarray(keys.to_pylist(), dtype=object) if is_str else np.asarray(keys)
                deletes.setdefault(0, []).append((keys, seq))
            e.writer.apply(coll, p, "insert", batch, seqs, seq)
        self._replay_deletes(coll, deletes)
        fault_point("recovery.after_replay")
        seg_top = max((s.max_seq for p in coll.partitions.values() for s in p.segments()), default=0)
        coll.visible_seq = max(top, seg_top, e.last_seq)

    def _map_sealed(self, coll: Collection) -> bool:
        """Map the sealed segments the catalog records, remove files it does not, load or build indexes.

        Every file is checked against its checksum before it answers anything
        (`MappedFile`: small files whole now, large ones as used and in the
        background, and a later failure makes the collection unavailable then).
        If one is damaged, missing or truncated, nothing of the collection is
        mapped or removed, it is marked unavailable (`Collection.damage`) and
        False comes back; other collections are not affected. Orphans go
        before any index build is scheduled, whose temporary files would
        look like orphans.
        """
        e = self.engine
        known = set()
        loaded: list[tuple[Partition, Segment]] = []
        files: list[MappedFile] = []
        for sid, pid, path, n, max_seq, raw in e.catalog.rows(
            "SELECT id, partition_id, path, num_rows, max_seq, checksum FROM segments WHERE collection_id=? "
            "ORDER BY id",
            (coll.id,),
        ):
            p = coll.partition_by_id(pid)
            if p is None:
                continue
            full = os.path.join(e.dir.collection_dir(coll.id), path)
            known.add(path)
            try:
                seg = self._open_segment(coll, full, self._checksum(raw, sid), sid, pid, n, max_seq, files)
            except CorruptionError as exc:
                self._unavailable(coll, exc, n, max_seq)
                return False
            except (ValueError, TypeError, KeyError) as exc:  # parsed, but not rows of this collection
                self._unavailable(coll, CorruptionError(f"segment file {full!r} is damaged: {exc}", path=full), n,
                                  max_seq)
                return False
            loaded.append((p, seg))
        self._remove_orphans(coll, known)
        for p, seg in loaded:
            p.sealed.append(seg)
        if any(len(p.sealed) > 1 for p in coll.partitions.values()):  # before any index build of a segment
            e.submit(merge_neighbours, coll, e.maintenance)  # that merges into another (it builds the merged one's)
        for p, seg in loaded:
            self._load_indexes(coll, seg)
            e.submit_on(partial(rebuild_grown, e.maintenance), coll, p, seg)  # one a close stopped (`_rebuild`)
        for mf in files:  # the blocks of large files no query has used yet, checked in the background
            if not mf.checked:
                e.submit(check_in_background, coll, mf, e)
        return True

    def _open_segment(self, coll: Collection, full: str, checksum: FileChecksum | None, sid: int, pid: int,
                      n: int, max_seq: int, files: list[MappedFile]) -> Segment:
        """Map one segment file (`mapped_segment`); damage found later makes `coll` unavailable."""
        if checksum is None:
            log.warning("segment file %s has no checksum recorded (written by an older version): "
                        "checking its structure only", full)
        mf = MappedFile(full, checksum, n)
        ref = weakref.ref(coll)  # the segment holds the file: no cycle back to the collection

        def damaged(exc: CorruptionError) -> None:
            c = ref()
            if c is not None:
                Recovery._unavailable(c, exc, n, max_seq)

        mf.on_damage = damaged
        try:
            seg = mapped_segment(sid, pid, coll.schema, mf)
        except BaseException:
            mf.close()
            raise
        files.append(mf)
        return seg

    def _checksum(self, raw: bytes | None, segment_id: int) -> FileChecksum | None:
        if raw is None:
            return None
        try:
            return FileChecksum.from_bytes(raw)
        except ValueError as exc:
            path = self.engine.dir.catalog_path
            raise CorruptionError(f"catalog {path!r}: the checksum of segment {segment_id} is damaged: {exc}",
                                  path=path) from exc

    @staticmethod
    def _unavailable(coll: Collection, exc: CorruptionError, rows: int, max_seq: int) -> None:
        msg = (f"{exc.message}; collection {coll.name!r} (database {coll.db!r}) is unavailable: the segment "
               f"holds {rows} rows with sequence numbers up to {max_seq}, which cannot be read until the file "
               "is restored")
        coll.damage = CorruptionError(msg, path=exc.path, offset=exc.offset)
        log.error("%s", msg)

    def _replay_deletes(self, coll: Collection, deletes: dict[int, list[tuple[np.ndarray, int]]]) -> None:
        """Apply every logged delete in one pass per segment.

        A delete at ``s`` removes the rows of its keys written before ``s``, so a
        row is deleted exactly when the latest delete of its key is newer than
        the row: one lookup of each key's latest delete answers for all of them.
        """
        for pid, items in deletes.items():
            keys = np.concatenate([k for k, _ in items])
            seqs = np.concatenate([np.full(len(k), s, dtype=np.int64) for k, s in items])
            if not len(keys):
                continue
            order = np.lexsort((seqs, keys)) if keys.dtype != object else \
                sorted(range(len(keys)), key=lambda i: (keys[i], seqs[i]))
            keys, seqs = keys[order], seqs[order]
            last = np.ones(len(keys), dtype=bool)
            last[:-1] = keys[1:] != keys[:-1]
            uniq, latest = keys[last], seqs[last]
            parts = [coll.partition_by_id(pid)] if pid else list(coll.partitions.values())
            for p in parts:
                for seg in p.segments() if p is not None else []:
                    seg.mark_deleted_before(uniq, latest)

    def _load_indexes(self, coll: Collection, seg: Segment) -> None:
        e = self.engine
        missing = False
        for d in coll.indexes.values():
            f = coll.schema.field(d.field_name)
            if f is None:
                continue
            if not f.dtype.is_vector:
                idx = build_scalar(d, seg.snapshot().column(d.field_name))
                if idx is not None:
                    seg.sindex[d.field_name] = idx
                continue
            path = e.dir.index_path(coll.id, seg.id, d.field_name)
            try:
                idx = load_index(path)
                if idx.ntotal != seg.n or idx.index_type != d.index_type or idx.metric != d.metric_type:
                    raise ValueError("index does not match its segment")
                seg.vindex[d.field_name] = (d.signature, idx)
            except Exception as exc:  # damaged or missing: derived data, rebuilt from the verified segment
                if os.path.exists(path):
                    log.warning("index of segment %s field %s is unusable (%s): deleting it and building it again",
                                seg.id, d.field_name, exc)
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                else:
                    log.info("building the missing index of segment %s field %s", seg.id, d.field_name)
                missing = True
        if missing:
            e.submit(e.maintenance.build_indexes, coll, seg)

    def _remove_orphans(self, coll: Collection, known: set[str]) -> None:
        d = self.engine.dir.collection_dir(coll.id)
        for name in os.listdir(d):
            seg_file = name.split(".", 1)[0] + ".arrow"
            if ".tmp" in name or seg_file not in known:  # also index files cut off mid-save
                try:
                    os.unlink(os.path.join(d, name))
                except OSError:
                    pass

