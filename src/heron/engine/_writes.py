"""The write path: insert, upsert, delete, sealing, persistence and recovery.

Order of a write: validate (nothing touched yet) → assign a sequence number
→ make the record durable (an insert in the insert log, an upsert or delete
in the catalog's log: the write is now acknowledged-to-be) → apply to memory
→ publish. Sealing moves a growing segment to an Arrow file in the
background and, in one catalog transaction, records it and retires the log
records the file now covers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .. import _requests as rq
from .._errors import DataError
from .._schema import META_FIELD
from .._types import DataType
from ..data._batch import Batch, check_unique_pks, normalize_pks
from ..data._column import Column
from ..data._pa import to_numpy
from ._collection import Collection, Partition
from ._segment import LIVE, Segment
from .index._base import BuildCancelled
from .index._definitions import build_scalar
from .storage import _ipc as ar
from .storage._files import read_segment_file, write_segment_file

if TYPE_CHECKING:
    from ._engine import Engine

log = logging.getLogger("heron.engine")

#: A sealed segment is rewritten without its deleted rows once this share of them is deleted.
COMPACT_RATIO = 0.2
#: Each newly persisted segment is merged into the partition's previous sealed
#: segment while the result holds at most this many bytes of vectors (and at
#: least ``seal_rows`` rows; ``HERON_MERGE_ROWS`` sets the row limit itself, 0
#: turns merging off). A search then asks one index per partition instead of
#: one per ``seal_rows`` rows (on 100k x 128 HNSW two segments cost about 1.6x
#: one), and the larger segment's index is extended with the new rows rather
#: than built again, so a merge costs about what indexing the new segment alone
#: would.
MERGE_VECTOR_BYTES = 256 << 20


class Writer:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Stages an insert's rows in its growing segment while the caller's thread writes the insert log.
        self._stager = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heron-stage")
        self._stager.submit(int)  # start its thread now rather than in the first insert

    def close(self) -> None:
        self._stager.shutdown(wait=True)

    # -- requests ------------------------------------------------------------------
    def op_insert(self, r: rq.Insert) -> dict[str, Any]:
        e = self.engine
        coll = e.collection(r.db_name, r.collection_name)
        p = coll.partition(r.partition_name)
        batch: Batch = r.batch
        self._check_batch(coll, batch, r.upsert)
        with coll.write_lock:
            pk = coll.schema.primary_field
            if pk.name not in batch.columns:
                ids = Column(DataType.INT64, self._auto_ids(batch.num_rows))
                batch = Batch(batch.num_rows, {pk.name: ids, **batch.columns}, batch.vectors)
            pks = batch.columns[pk.name].values
            seq = e.next_seq()
            seqs = np.full(batch.num_rows, seq, dtype=np.int64)
            rb = ar.batch_to_record_batch(coll.schema, batch, seqs)
            batch = _with_arrow_texts(batch, rb)
            kind = "upsert" if r.upsert else "insert"
            if batch.num_rows:
                if r.upsert:  # the catalog's log: its record becomes a delete once the rows are sealed
                    e.catalog.append_log(seq, coll.id, p.id, kind, ar.to_ipc_bytes(rb))
                    self._apply(coll, p, kind, batch, seqs, seq)
                else:
                    self._insert(coll, p, batch, seqs, ar.IpcPayload(rb))
            coll.publish(seq)
        ids = pks.to_pylist() if isinstance(pks, (pa.Array, pa.ChunkedArray)) else pks.tolist()
        key = "upsert_count" if r.upsert else "insert_count"
        return {key: batch.num_rows, "ids": ids}

    def op_delete(self, r: rq.Delete) -> dict[str, Any]:
        e = self.engine
        coll = e.collection(r.db_name, r.collection_name)
        parts = [coll.partition(r.partition_name)] if r.partition_name else list(coll.partitions.values())
        pk = coll.schema.primary_field
        pks = normalize_pks(pk, r.ids) if r.ids is not None else None
        with coll.write_lock:
            if pks is None:
                pks = e.reader.matching_pks(coll, parts, r.filter, r.filter_params)
            seq = e.next_seq()
            pid = parts[0].id if r.partition_name else 0
            e.catalog.append_log(seq, coll.id, pid, "delete", ar.pks_to_ipc_bytes(pks, pk.dtype is DataType.VARCHAR))
            count = self._delete(coll, parts, pks, seq)
            coll.publish(seq)
        return {"delete_count": count}

    def op_flush(self, r: rq.Flush) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            for p in coll.partitions.values():
                if p.growing is not None and p.growing.n:
                    self._seal(coll, p)
        self.engine.wait_background()

    def op_truncate_collection(self, r: rq.TruncateCollection) -> None:
        e = self.engine
        coll = e.collection(r.db_name, r.collection_name)
        e.wait_background()
        with coll.write_lock:
            seq = e.next_seq()
            with e.catalog.transaction() as c:
                c.execute("DELETE FROM segments WHERE collection_id=?", (coll.id,))
                c.execute("DELETE FROM log WHERE collection_id=?", (coll.id,))
                e.catalog.retire(c, coll.id, 0, 0, seq)
            e.inserts.retire(coll.id, 0, 0, seq)
            coll.retire_segments()
            for p in coll.partitions.values():
                p.sealed, p.growing = [], None
            e.dir.remove_collection(coll.id)
            coll.publish(seq)

    # -- checks --------------------------------------------------------------------
    def _check_batch(self, coll: Collection, batch: Batch, upsert: bool) -> None:
        schema = coll.schema
        pk = schema.primary_field
        for f in schema.fields:
            if f.is_primary and f.auto_id and not upsert:
                if f.name in batch.columns:
                    raise DataError(f"field {f.name!r}: the primary key is auto_id; do not pass values for it")
                continue
            if f.dtype.is_vector:
                v = batch.vectors.get(f.name)
                if v is None or v.shape[0] != batch.num_rows:
                    raise DataError(f"field {f.name!r}: missing or wrong number of vectors")
                if f.dtype.is_dense_vector:
                    width = (f.dim or 0) // 8 if f.dtype is DataType.BINARY_VECTOR else f.dim
                    if v.ndim != 2 or v.shape[1] != width:
                        raise DataError(f"field {f.name!r}: got vectors of shape {v.shape}, expected dim={f.dim}")
            else:
                c = batch.columns.get(f.name)
                if c is None or len(c.values) != batch.num_rows or c.dtype is not f.dtype:
                    raise DataError(f"field {f.name!r}: missing, of the wrong type or of the wrong length")
        extra = set(batch.columns) - set(schema.field_names()) - {META_FIELD}
        if extra:
            raise DataError(f"field {sorted(extra)[0]!r}: the schema has no such field")
        if pk.name in batch.columns:
            check_unique_pks(pk, batch.columns[pk.name])

    def _auto_ids(self, n: int) -> np.ndarray:
        e = self.engine
        with e._seq_lock:
            base = max(int(time.time() * 1000) << 18, getattr(e, "_auto_id", 0))
            e._auto_id = base + n  # type: ignore[attr-defined]
        return np.arange(base, base + n, dtype=np.int64)

    # -- applying -------------------------------------------------------------------
    def _apply(self, coll: Collection, p: Partition, kind: str, batch: Batch, seqs: np.ndarray, seq: int) -> None:
        if kind == "upsert":
            pk = coll.schema.primary_field
            keys = batch.columns[pk.name].values
            keys = np.asarray(keys.to_pylist(), dtype=object) if isinstance(keys, (pa.Array, pa.ChunkedArray)) else keys
            self._delete(coll, list(coll.partitions.values()), keys, seq)
        seg = self._growing(coll, p, batch.num_rows)
        seg.append(batch, seqs)
        if seg.n >= self.engine.seal_rows:
            self._seal(coll, p)

    def _growing(self, coll: Collection, p: Partition, rows: int) -> Segment:
        """The growing segment that takes the next ``rows`` rows.

        A segment that has rows but no room for these is sealed first: its
        buffers, sized for `seal_rows`, would otherwise be copied into ones
        twice as large.
        """
        e = self.engine
        seg = coll.growing_segment(p, e.next_segment_id())
        if seg.n and seg.n + rows > e.seal_rows:
            self._seal(coll, p)
            seg = coll.growing_segment(p, e.next_segment_id())
        if seg.n == 0:
            seg.reserve(max(e.seal_rows, rows))
        return seg

    def _insert(self, coll: Collection, p: Partition, batch: Batch, seqs: np.ndarray, payload: ar.IpcPayload) -> None:
        """Stage the rows in the growing segment on another thread while this one logs them.

        The rows become part of the segment only once their record is on disk;
        if either step fails, neither the segment nor the log keeps anything.
        The log write and sync release the GIL, so staging costs the call
        nothing, and no thread handoff is on the way to the acknowledgement
        unless staging is the slower of the two.
        """
        e = self.engine
        seg = self._growing(coll, p, batch.num_rows)
        staged = self._stager.submit(seg.stage, batch, seqs)
        try:
            held = e.inserts.write(int(seqs[0]), coll.id, p.id, payload)
        except BaseException:
            _settle(staged)
            seg.unstage()
            raise
        try:
            staged.result()
        except BaseException:
            _settle(staged)
            try:
                held.drop()
            finally:
                seg.unstage()
            raise
        held.keep()
        seg.commit(batch.num_rows, seqs)
        if seg.n >= e.seal_rows:
            self._seal(coll, p)

    def _delete(self, coll: Collection, parts: list[Partition], pks: np.ndarray, seq: int) -> int:
        count = 0
        for p in parts:
            for seg in p.segments():
                hit = seg.mark_deleted(pks, seq)
                count += hit
                if hit and seg.sealed and seg.persisted and seg.deleted >= COMPACT_RATIO * seg.n:
                    self.engine.submit(self._compact, coll, p, seg)
        return count

    def op_compact(self, r: rq.Compact) -> int:
        """Rewrite every sealed segment that has deleted rows; returns a job id (done on return)."""
        coll = self.engine.collection(r.db_name, r.collection_name)
        self.engine.wait_background()
        for p in list(coll.partitions.values()):
            for seg in list(p.sealed):
                if seg.deleted and seg.persisted:
                    self._compact(coll, p, seg)
        self.engine.wait_background()
        return coll.visible_seq

    def _compact(self, coll: Collection, p: Partition, old: Segment) -> None:
        """Replace ``old`` by a segment without its deleted rows; readers keep their views meanwhile."""
        e = self.engine
        with coll.write_lock:
            if coll.dropped or old not in p.sealed:
                return
            view = old.snapshot()
            keep = np.flatnonzero(view.visible(np.iinfo(np.int64).max - 1))
            new = Segment(e.next_segment_id(), p.id, coll.schema)
            if len(keep):
                new.append(self._batch_of(coll, view).take(keep), view._seq[keep])
            new.freeze()
        path = e.dir.segment_path(coll.id, new.id)
        if new.n:
            write_segment_file(path, ar.batch_to_record_batch(coll.schema, self._batch_of(coll, new.snapshot()),
                                                              new.seq.data[: new.n]))
        with coll.write_lock:
            if coll.dropped or old not in p.sealed:
                if os.path.exists(path):
                    os.unlink(path)
                return
            # Rows deleted while the file was written: carry their marks over.
            late = np.flatnonzero(old.deleted_at.data[keep] != LIVE)
            new.deleted_at.data[late] = old.deleted_at.data[keep][late]
            new.deleted = len(late)
            with e.catalog.transaction() as c:
                c.execute("DELETE FROM segments WHERE id=?", (old.id,))
                if new.n:
                    c.execute("INSERT INTO segments(id, collection_id, partition_id, path, num_rows, max_seq) "
                              "VALUES (?,?,?,?,?,?)", (new.id, coll.id, p.id, os.path.basename(path), new.n,
                                                       old.max_seq))
            new.max_seq = old.max_seq
            new.persisted = True
            coll.replace_sealed(p, [old], new if new.n else None)
        self._remove_files(coll, old)
        if new.n:
            self._build_indexes(coll, new)

    @staticmethod
    def _batch_of(coll: Collection, view: Any) -> Batch:
        batch = Batch(view.n)
        names = [f.name for f in coll.schema.fields if not f.dtype.is_vector]
        for f in coll.schema.fields:
            if f.dtype.is_vector:
                batch.vectors[f.name] = view.vectors(f.name)
        if META_FIELD in view.segment.cols:
            names.append(META_FIELD)
        for name in names:
            col = view.column(name)
            texts = view.segment.json_texts(name, view.n) if col.dtype is DataType.JSON else None
            batch.columns[name] = col if texts is None else dataclasses.replace(col, texts=texts)
        return batch

    def _seal(self, coll: Collection, p: Partition) -> None:
        if p.growing is None:
            return
        p.growing.freeze()
        seg = coll.seal_growing(p)
        self.engine.submit(self._persist, coll, p, seg)

    # -- background work ------------------------------------------------------------
    def _persist(self, coll: Collection, p: Partition, seg: Segment) -> None:
        e = self.engine
        if coll.dropped:
            return
        path = e.dir.segment_path(coll.id, seg.id)
        n = seg.n
        rb = ar.batch_to_record_batch(coll.schema, self._batch_of(coll, seg.snapshot()), seg.seq.data[:n])
        write_segment_file(path, rb)
        min_seq = int(seg.seq.data[:n].min())
        with coll.write_lock:
            if coll.dropped or p.name not in coll.partitions or seg not in p.sealed:
                os.unlink(path)
                return
            is_str = coll.schema.primary_field.dtype is DataType.VARCHAR
            with e.catalog.transaction() as c:
                c.execute("INSERT INTO segments(id, collection_id, partition_id, path, num_rows, max_seq) "
                          "VALUES (?,?,?,?,?,?)", (seg.id, coll.id, p.id, os.path.basename(path), n, seg.max_seq))
                ups = c.execute("SELECT seq, payload FROM log WHERE collection_id=? AND partition_id=? AND "
                                "kind='upsert' AND seq BETWEEN ? AND ?", (coll.id, p.id, min_seq, seg.max_seq))
                for s, payload in ups.fetchall():
                    keys = ar.from_ipc_bytes(payload).column(coll.schema.primary_field.name)
                    pks = np.asarray(keys.to_pylist(), dtype=object) if is_str else np.asarray(to_numpy(keys))
                    c.execute("UPDATE log SET kind='delete', partition_id=0, payload=? WHERE seq=?",
                              (ar.pks_to_ipc_bytes(pks, is_str), s))
                c.execute("DELETE FROM log WHERE collection_id=? AND partition_id=? AND kind='insert' "
                          "AND seq BETWEEN ? AND ?", (coll.id, p.id, min_seq, seg.max_seq))
                e.catalog.retire(c, coll.id, p.id, min_seq, seg.max_seq)
            e.inserts.retire(coll.id, p.id, min_seq, seg.max_seq)
            seg.persisted = True
        base = self._merge_base(coll, p, seg)
        if base is not None:
            try:
                if self._merge(coll, p, base, seg):
                    return
            except Exception:  # merging is an optimisation: both segments stay, their indexes are rebuilt
                log.exception("merging segments %s and %s failed", base.id, seg.id)
                return
        self._build_indexes(coll, seg)

    # -- merging ----------------------------------------------------------------------
    def merge_limit(self, coll: Collection) -> int:
        """The most rows a merged segment of `coll` may hold."""
        env = os.environ.get("HERON_MERGE_ROWS")
        if env is not None:
            return int(env)
        width = sum(_vector_bytes(f.dtype, f.dim) for f in coll.schema.fields if f.dtype.is_vector)
        return max(self.engine.seal_rows, MERGE_VECTOR_BYTES // max(width, 1))

    def _merge_base(self, coll: Collection, p: Partition, seg: Segment) -> Segment | None:
        """The sealed segment just before `seg` in its partition, if the two may merge."""
        with coll.write_lock:
            if not _alive(coll, p, seg):
                return None
            i = p.sealed.index(seg)
            base = p.sealed[i - 1] if i > 0 else None
        if base is None or not base.persisted or base.n + seg.n > self.merge_limit(coll):
            return None
        return base

    def _merge(self, coll: Collection, p: Partition, base: Segment, seg: Segment) -> bool:
        """Replace `base` and `seg` by one segment holding the rows of both, in that order.

        Deleted rows are carried over with their marks (compaction removes
        them), so row numbers of `base` stay valid and its vector indexes are
        extended with the rows of `seg`. Readers keep searching the two old
        segments until the merged one, indexed and durable, takes their place
        in one catalog transaction. Returns False, having changed nothing, if
        either segment went away meanwhile (compaction, drop).
        """
        e = self.engine
        with coll.write_lock:
            if not _alive(coll, p, base, seg):
                return False
            bview, sview = base.snapshot(), seg.snapshot()
        try:
            new = Segment(e.next_segment_id(), p.id, coll.schema)
            new.start_from(bview, bview.n + sview.n)
            new.append(self._batch_of(coll, sview), np.asarray(sview._seq[: sview.n]))
            new.freeze()
            for d in list(coll.indexes.values()):
                f = coll.schema.field(d.field_name)
                cur = base.vindex.get(d.field_name)
                if f is None or not f.dtype.is_vector or cur is None or cur[0] != d.signature:
                    continue
                # The index may grow in place: from now on `base` is searched exactly.
                with coll.write_lock:
                    base.vindex.pop(d.field_name, None)
                try:
                    ext = cur[1].extended(sview.vectors(f.name))
                except Exception:  # derived data: build it from the rows instead
                    log.exception("extending %s of segment %s failed", d.index_type, base.id)
                    ext = None
                if ext is not None:
                    new.vindex[d.field_name] = (d.signature, ext)
            self._index_segment(coll, new)  # whatever could not be extended; nothing saved yet
            path = e.dir.segment_path(coll.id, new.id)
            write_segment_file(path, ar.batch_to_record_batch(coll.schema, self._batch_of(coll, new.snapshot()),
                                                              new.seq.data[: new.n]))
            with coll.write_lock:
                if not _alive(coll, p, base, seg):
                    os.unlink(path)
                    if _alive(coll, p, base):
                        e.submit(self._build_indexes, coll, base)  # it gave its index to the merge
                    return False
                # Deletes that reached either segment since the snapshot are carried over too.
                new.deleted_at.data[: base.n] = base.deleted_at.data[: base.n]
                new.deleted_at.data[base.n : new.n] = seg.deleted_at.data[: seg.n]
                new.deleted = int(np.count_nonzero(new.deleted_at.data[: new.n] != LIVE))
                new.max_seq = max(base.max_seq, seg.max_seq)
                with e.catalog.transaction() as c:
                    c.execute("DELETE FROM segments WHERE id IN (?, ?)", (base.id, seg.id))
                    c.execute("INSERT INTO segments(id, collection_id, partition_id, path, num_rows, max_seq) "
                              "VALUES (?,?,?,?,?,?)", (new.id, coll.id, p.id, os.path.basename(path), new.n,
                                                       new.max_seq))
                new.persisted = True
                coll.replace_sealed(p, [base, seg], new)
        except BaseException:  # e.g. a full disk: both stay, indexed again (`base` may have given its index away)
            for old in (base, seg):
                if _alive(coll, p, old):
                    e.submit(self._build_indexes, coll, old)
            raise
        for old in (base, seg):
            self._remove_files(coll, old)
        # Saved by a task of its own: by the time it runs nothing here holds the old
        # segments, so their memory is free again before the index is serialised.
        e.submit(self._save_indexes, coll, new)
        log.debug("merged segments %s and %s into %s (%d rows)", base.id, seg.id, new.id, new.n)
        if new.deleted >= COMPACT_RATIO * new.n:
            e.submit(self._compact, coll, p, new)
        return True

    def _remove_files(self, coll: Collection, seg: Segment) -> None:
        e = self.engine
        for stale in [e.dir.segment_path(coll.id, seg.id)] + [
                e.dir.index_path(coll.id, seg.id, d.field_name) for d in coll.indexes.values()]:
            if os.path.exists(stale):
                os.unlink(stale)

    def _save_indexes(self, coll: Collection, seg: Segment) -> None:
        """Write the vector indexes of a merged segment, then build any it lacks (one created meanwhile)."""
        p = coll.partition_by_id(seg.partition_id)
        for name, (_sig, idx) in list(seg.vindex.items()):
            if coll.dropped or p is None or seg not in p.sealed:
                return
            try:
                idx.save(self.engine.dir.index_path(coll.id, seg.id, name))
            except OSError as exc:
                log.warning("could not save index of segment %s: %s", seg.id, exc)
        self._build_indexes(coll, seg)

    # -- indexes ----------------------------------------------------------------------
    def _build_indexes(self, coll: Collection, seg: Segment) -> None:
        """Build (and save) the indexes `seg` lacks, unless it was merged or compacted away meanwhile."""
        p = coll.partition_by_id(seg.partition_id)
        if seg.persisted and (p is None or seg not in p.sealed):
            return
        self._index_segment(coll, seg)

    def _index_segment(self, coll: Collection, seg: Segment) -> None:
        e = self.engine
        view = seg.snapshot()
        for d in list(coll.indexes.values()):
            f = coll.schema.field(d.field_name)
            if f is None or coll.dropped:
                continue
            if not f.dtype.is_vector:
                if d.field_name not in seg.sindex:
                    idx = build_scalar(d, view.column(d.field_name))
                    if idx is not None:
                        seg.sindex[d.field_name] = idx
                continue
            cur = seg.vindex.get(d.field_name)
            if cur is not None and cur[0] == d.signature:
                continue
            t0 = time.perf_counter()
            try:
                from .index._vector_index import build_index

                idx = build_index(f.dtype, f.dim or 0, d.index_type, d.metric_type, d.params, view.vectors(f.name),
                                  cancelled=lambda: coll.dropped, busy=e.busy)
            except BuildCancelled:
                return
            except Exception:  # derived data: search stays exact on this segment
                log.exception("building %s on segment %s failed", d.index_type, seg.id)
                continue
            seg.vindex[d.field_name] = (d.signature, idx)
            log.debug("built %s on segment %s in %.2fs", d.index_type, seg.id, time.perf_counter() - t0)
            if seg.persisted and not coll.dropped:
                try:
                    idx.save(e.dir.index_path(coll.id, seg.id, d.field_name))
                except OSError as exc:
                    log.warning("could not save index of segment %s: %s", seg.id, exc)
        _prewarm_json(seg)

    def index_sealed(self, coll: Collection) -> None:
        """Build the indexes of every sealed segment that lacks one (in the background)."""
        for p in coll.partitions.values():
            for seg in p.sealed:
                if seg.persisted:
                    self.engine.submit(self._build_indexes, coll, seg)

    def drop_partition_data(self, coll: Collection, p: Partition) -> None:
        e = self.engine
        seq = e.next_seq()
        with e.catalog.transaction() as c:
            c.execute("DELETE FROM segments WHERE partition_id=?", (p.id,))
            c.execute("DELETE FROM log WHERE collection_id=? AND partition_id=?", (coll.id, p.id))
            c.execute("DELETE FROM partitions WHERE id=?", (p.id,))
            e.catalog.retire(c, coll.id, p.id, 0, seq)
        e.inserts.retire(coll.id, p.id, 0, seq)
        coll.retire_segments([p])
        for seg in p.sealed:
            for path in (e.dir.segment_path(coll.id, seg.id),):
                if os.path.exists(path):
                    os.unlink(path)

    # -- recovery ---------------------------------------------------------------------
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
        known = set()
        for sid, pid, path, _n, _max_seq in e.catalog.rows(
            "SELECT id, partition_id, path, num_rows, max_seq FROM segments WHERE collection_id=? ORDER BY id",
            (coll.id,),
        ):
            p = coll.partition_by_id(pid)
            if p is None:
                continue
            full = os.path.join(e.dir.collection_dir(coll.id), path)
            known.add(path)
            batch, seqs = ar.record_batch_to_batch(coll.schema, read_segment_file(full))
            seg = Segment(sid, pid, coll.schema)
            seg.append(batch, seqs)
            seg.freeze()
            seg.persisted = True
            p.sealed.append(seg)
            self._load_indexes(coll, seg)
        self._remove_orphans(coll, known)
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
            self._apply(coll, p, "insert", batch, seqs, seq)
        self._replay_deletes(coll, deletes)
        seg_top = max((s.max_seq for p in coll.partitions.values() for s in p.segments()), default=0)
        coll.visible_seq = max(top, seg_top, e._seq)

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
                from .index._vector_index import load_index

                idx = load_index(path)
                if idx.ntotal != seg.n or idx.index_type != d.index_type or idx.metric != d.metric_type:
                    raise ValueError("index does not match its segment")
                seg.vindex[d.field_name] = (d.signature, idx)
            except Exception as exc:  # damaged or missing: derived data, rebuild it
                log.info("rebuilding index of segment %s field %s: %s", seg.id, d.field_name, exc)
                missing = True
        if missing:
            e.submit(self._build_indexes, coll, seg)

    def _remove_orphans(self, coll: Collection, known: set[str]) -> None:
        d = self.engine.dir.collection_dir(coll.id)
        for name in os.listdir(d):
            seg_file = name.split(".", 1)[0] + ".arrow"
            if ".tmp" in name or seg_file not in known:  # also index files cut off mid-save
                try:
                    os.unlink(os.path.join(d, name))
                except OSError:
                    pass


def _settle(f: Future[Any]) -> None:
    """Wait until ``f`` has run, whatever it raised (its outcome is someone else's to report)."""
    while not f.done():
        try:
            wait_futures([f])
        except BaseException:  # an interrupt while waiting: staging must still end before it is undone
            continue


def _with_arrow_texts(batch: Batch, rb: pa.RecordBatch) -> Batch:
    """``batch`` with its JSON columns' texts taken from ``rb`` (Arrow), for the segment to keep."""
    cols = dict(batch.columns)
    for name, c in batch.columns.items():
        if c.dtype is DataType.JSON:
            cols[name] = dataclasses.replace(c, texts=rb.column(name))
    return Batch(batch.num_rows, cols, batch.vectors)


def _alive(coll: Collection, p: Partition, *segs: Segment) -> bool:
    """Whether `p` is still a partition of `coll` and holds every one of `segs` as sealed."""
    return not coll.dropped and coll.partitions.get(p.name) is p and all(s in p.sealed for s in segs)


def _vector_bytes(dtype: DataType, dim: int | None) -> int:
    """Bytes a row's vector of this type takes (an estimate for sparse vectors)."""
    d = dim or 0
    if dtype is DataType.FLOAT_VECTOR:
        return 4 * d
    if dtype in (DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR):
        return 2 * d
    if dtype is DataType.BINARY_VECTOR:
        return max(1, d // 8)
    if dtype is DataType.INT8_VECTOR:
        return d
    return 512


def _prewarm_json(seg: Segment) -> None:
    """Extract the common top-level keys of the sealed segment's JSON columns for filters (derived data)."""
    from .filter._extract import prewarm_json_keys

    for name, dtype in seg.dtypes.items():
        if dtype is not DataType.JSON or name not in seg.cols:
            continue
        try:
            prewarm_json_keys(seg.column(name, seg.n).values)
        except Exception:  # only time is lost: the first filter on the key extracts it itself
            log.exception("extracting JSON keys of %s in segment %s failed", name, seg.id)
