"""The write path: insert, upsert, delete, flush, truncate and dropping a partition's rows.

Order of a write: validate (nothing touched yet) → assign a sequence number
→ make the record durable (an insert in the insert log, an upsert or delete
in the catalog's log: the write is now acknowledged-to-be) → apply to memory
→ publish. A write that fails before its record is durable leaves nothing
behind. Sealing a full growing segment, and what follows it in the
background, is `_maintenance`'s.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from .. import _requests as rq
from .._errors import DataError
from .._pool import Pool
from .._schema import META_FIELD
from .._types import DataType
from ..data._batch import Batch, check_unique_pks, normalize_pks
from ..data._column import Column
from ._collection import Collection, Partition
from ._functions_apply import apply_functions
from ._maintenance import COMPACT_RATIO
from ._partial_update import complete_partial
from ._schema_ops import complete_batch
from ._segment import Segment
from .storage import _ipc as ar
from .storage._io_errors import Headroom, io_error_as

if TYPE_CHECKING:
    from ._engine import Engine


class Writer:
    """The write requests of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Stages an insert's rows in its growing segment while the caller's thread writes the insert log.
        self._stager = Pool(max_workers=1, thread_name_prefix="heron-stage")
        self._stager.submit(int)  # start its thread now rather than in the first insert
        #: Inserts and upserts are refused while the disk is nearly full; deletes, which free space, are not.
        self.headroom = Headroom(engine.dir.path)

    def close(self) -> None:
        self._stager.shutdown(wait=True)

    # -- requests ------------------------------------------------------------------------
    def op_insert(self, r: rq.Insert) -> dict[str, Any]:
        e = self.engine
        coll = e.collection(r.db_name, r.collection_name)
        p = coll.partition(r.partition_name)
        batch: Batch = r.batch
        if r.partial_update and not r.upsert:
            raise DataError("partial_update applies to upsert only")
        if not r.partial_update:
            batch = complete_batch(coll.schema, batch)  # rows from a client that has not seen an added field
            batch = apply_functions(coll.schema, batch)
            self._check_batch(coll, batch, r.upsert)
        self.headroom.check("upsert" if r.upsert else "insert", coll.name)
        with coll.write_lock:
            if r.partial_update:
                batch = complete_partial(coll, apply_functions(coll.schema, batch, partial=True))
                self._check_batch(coll, batch, True)
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
                    self.apply(coll, p, kind, batch, seqs, seq)
                else:
                    self._insert(coll, p, batch, seqs, ar.IpcPayload(rb))
            coll.publish(seq)
        e.interim.look(coll, written=True)  # the new rows join the interim indexes on their own threads
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
        """Seal and persist the collection's growing rows; segment files that failed before are tried again.

        Raises `DiskFullError` / `StorageError` if a segment file of the
        collection still cannot be written (its rows stay in the log, safe,
        and sealing keeps retrying in the background).
        """
        coll = self.engine.collection(r.db_name, r.collection_name)
        m = self.engine.maintenance
        m.retry_persists()
        with coll.write_lock:
            sealing = [p for p in coll.partitions.values() if p.growing is not None and p.growing.n]
            rows = sum(p.growing.n for p in sealing if p.growing is not None)
            for p in sealing:
                m.seal(coll, p)
        self.engine.progress.report("flush", coll.name, 0, rows or 1, f"{rows} rows in {len(sealing)} partitions")
        self.engine.wait_background()
        if m.unpersisted(coll):  # failed meanwhile, or a retry already under way failed as space came back:
            m.retry_persists()  # once more, now, before saying so
            self.engine.wait_background()
        m.raise_unpersisted(coll)
        self.engine.progress.report("flush", coll.name, rows or 1, rows or 1, "done")

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

    def drop_partition_data(self, coll: Collection, p: Partition) -> None:
        """Remove `p`, its logged writes and its segment files (the caller holds the collection's write lock)."""
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

    # -- checks --------------------------------------------------------------------------
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
        if upsert and pk.name in batch.columns:  # an insert may repeat a key: reads see the latest row
            check_unique_pks(pk, batch.columns[pk.name])

    def _auto_ids(self, n: int) -> np.ndarray:
        base = self.engine.reserve_auto_ids(n)
        return np.arange(base, base + n, dtype=np.int64)

    # -- applying ------------------------------------------------------------------------
    def apply(self, coll: Collection, p: Partition, kind: str, batch: Batch, seqs: np.ndarray, seq: int) -> None:
        """Apply logged rows to memory (an upsert first deletes its keys), sealing the segment once it is full."""
        if kind == "upsert":
            pk = coll.schema.primary_field
            keys = batch.columns[pk.name].values
            keys = np.asarray(keys.to_pylist(), dtype=object) if isinstance(keys, (pa.Array, pa.ChunkedArray)) else keys
            self._delete(coll, list(coll.partitions.values()), keys, seq)
        seg = self._growing(coll, p, batch.num_rows)
        seg.append(batch, seqs)
        if seg.n >= self.engine.seal_rows:
            self.engine.maintenance.seal(coll, p)

    def _growing(self, coll: Collection, p: Partition, rows: int) -> Segment:
        """The growing segment that takes the next ``rows`` rows.

        A segment that has rows but no room for these is sealed first: its
        buffers, sized for `seal_rows`, would otherwise be copied into ones
        twice as large.
        """
        e = self.engine
        seg = coll.growing_segment(p, e.next_segment_id())
        if seg.n and seg.n + rows > e.seal_rows:
            self.engine.maintenance.seal(coll, p)
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
        except BaseException as exc:
            _settle(staged)
            seg.unstage()
            mapped = io_error_as(exc, f"insert into collection {coll.name!r}", e.inserts.path)
            if mapped is None or mapped is exc:
                raise
            raise mapped from exc
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
            self.engine.maintenance.seal(coll, p)

    def _delete(self, coll: Collection, parts: list[Partition], pks: np.ndarray, seq: int) -> int:
        count = 0
        for p in parts:
            for seg in p.segments():
                hit = seg.mark_deleted(pks, seq)
                count += hit
                if hit and seg.sealed and seg.persisted and seg.deleted >= COMPACT_RATIO * seg.n:
                    self.engine.submit(self.engine.maintenance.compact, coll, p, seg)
        return count


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

