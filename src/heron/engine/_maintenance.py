"""Maintenance: sealing, persisting, merging and compacting segments, and building their indexes.

Sealing freezes a partition's growing segment and hands it to the engine's
background thread, which writes it to an Arrow file and, in one catalog
transaction, records the file and retires the log records it now covers.
Sealed segments are then merged into their predecessor while the result is
small enough, rewritten without their deleted rows once enough are deleted,
and indexed. Readers keep the segments of their snapshot throughout: a new
segment replaces old ones in one step, and only once it is durable. Vector
and scalar indexes are derived data: a build that fails leaves the segment
searched exactly, and a missing index file is built again. A merge is an
optimisation too: closing or dropping stops one between two steps (both
segments stay), and an open merges what was left apart (`merge_neighbours`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _requests as rq
from .._errors import DiskFullError, StorageError
from .._schema import META_FIELD
from .._types import DataType
from ..data._batch import Batch
from ..data._pa import to_numpy
from ._collection import Collection, Partition
from ._compact_options import check_clustering, merge_to_target, vector_bytes
from ._faults import fault_point
from ._interim import join_interim
from ._marks import carry_marks
from ._merge_write import write_merged
from ._rebuild import rebuild_grown
from ._segment import Segment
from ._segment_map import let_go_of_rows, mapped_segment, rows_taken, serve_from_file
from .filter._extract import prewarm_segment
from .index._base import BuildCancelled
from .index._definitions import build_scalar
from .index._grow import copies_on_growth, file_stand_in, grown_copy, grows_in_place, rehouse
from .index._vector_index import build_index
from .storage import _ipc as ar
from .storage import _prefault as prefault
from .storage._files import FileChecksum, write_segment_file
from .storage._io_errors import io_error_as, removed_on_error
from .storage._mapped import MappedFile

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
#: would. 1 GiB, Milvus's segment size, makes 1M x 128 float vectors one
#: segment; a merge holds one copy of the index in memory and none of the
#: vectors (`_merge_write`, `index._grow`).
MERGE_VECTOR_BYTES = 1 << 30
#: A segment file that could not be written (a full disk) is tried again after this long,
#: doubling with each failure up to `RETRY_MAX_SECONDS` (and at once by a flush).
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
_KEPT = "its rows stay safe in the insert log and are searched from memory until the file is written"
#: A segment file is recorded with its checksum in the transaction that makes it part of the collection.
_RECORD_SEGMENT = ("INSERT INTO segments(id, collection_id, partition_id, path, num_rows, max_seq, checksum) "
                   "VALUES (?,?,?,?,?,?,?)")


class Maintenance:
    """The background work on one engine's segments; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Sealed segments whose file or catalog record could not be written, with the error, by id.
        self._unpersisted: dict[int, tuple[Collection, Partition, Segment, StorageError]] = {}
        self._retry_delay = RETRY_FIRST_SECONDS
        self._retry_timer: threading.Timer | None = None
        self._failing = False  # background writes fail: warned once, until they succeed again
        self._state_lock = threading.Lock()
        #: Vector index builds that raised, by (segment id, field): the error, until a build succeeds.
        self.failed_builds: dict[tuple[int, str], str] = {}

    # -- sealing and persisting ----------------------------------------------------------
    def seal(self, coll: Collection, p: Partition) -> None:
        """Freeze the growing segment of `p` (if any) and persist it on the background thread."""
        if p.growing is None:
            return
        p.growing.freeze()
        seg = coll.seal_growing(p)
        self.engine.submit(self._persist, coll, p, seg)

    def _persist(self, coll: Collection, p: Partition, seg: Segment) -> None:
        """Persist `seg` (`_persist_once`); if the disk refuses, keep it in memory and try again later.

        Until its file is written and recorded the segment's rows stay in the
        insert log (safe across a crash) and are searched from memory; the
        failure is logged once at WARNING, and the next flush of the collection
        raises it (`raise_unpersisted`).
        """
        if seg.persisted:
            return
        try:
            self._persist_once(coll, p, seg)
        except Exception as exc:
            err = io_error_as(exc, f"writing segment {seg.id} of collection {coll.name!r}",
                              self.engine.dir.segment_path(coll.id, seg.id), _KEPT)
            if err is None or seg.persisted:
                raise
            self._persist_failed(coll, p, seg, err)
            return
        self._persist_done(seg)

    def _persist_once(self, coll: Collection, p: Partition, seg: Segment) -> None:
        """Write `seg` to its file and record it, retiring the log records it covers; then queue its merge or index."""
        e = self.engine
        if coll.dropped:
            return
        path = e.dir.segment_path(coll.id, seg.id)
        n = seg.n
        rb = ar.batch_to_record_batch(coll.schema, self._batch_of(coll, seg.snapshot()), seg.seq.data[:n])
        with removed_on_error(path + ".tmp", path):
            checksum = write_segment_file(path, rb)
        min_seq = int(seg.seq.data[:n].min())
        with coll.write_lock:
            if coll.dropped or p.name not in coll.partitions or seg not in p.sealed:
                os.unlink(path)
                return
            is_str = coll.schema.primary_field.dtype is DataType.VARCHAR
            fault_point("persist.before_commit")
            with removed_on_error(path), e.catalog.transaction() as c:
                c.execute(_RECORD_SEGMENT, (seg.id, coll.id, p.id, os.path.basename(path), n, seg.max_seq,
                                            checksum.to_bytes()))
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
            fault_point("persist.after_commit")
            e.inserts.retire(coll.id, p.id, min_seq, seg.max_seq)
            seg.persisted = True
        self._columns_from_file(coll, seg, path, checksum)
        # Merged or indexed by a task of its own, behind the persists of segments sealed meanwhile:
        # a load faster than merging has all its segments written (their vectors leave the heap for
        # the page cache) within seconds, instead of each waiting for the slow merges before it.
        e.submit_on(self._merge_or_index, coll, p, seg)

    def _merge_or_index(self, coll: Collection, p: Partition, seg: Segment) -> None:
        base = self._merge_base(coll, p, seg)
        if base is not None and self.try_merge(coll, p, base, seg) is not False:
            return  # merged (and indexed), or both stay as they are
        self.build_indexes(coll, seg)

    def try_merge(self, coll: Collection, p: Partition, base: Segment, seg: Segment) -> bool | None:
        """`_merge` in the background: True if merged, False if either segment went away, None if it failed.

        Merging is an optimisation: a failure is logged (a full disk through
        `_io_failed`) and a merge stopped by a drop or a close is not; both
        segments then stay, with the indexes they have (the rest are built again).
        """
        try:
            return self._merge(coll, p, base, seg)
        except BuildCancelled:  # dropped, or closing: the next open merges and indexes what is left
            return None
        except Exception as exc:
            err = io_error_as(exc, f"merging segments {base.id} and {seg.id}",
                              self.engine.dir.collection_dir(coll.id), "both stay as they are")
            if err is None:
                log.exception("merging segments %s and %s failed", base.id, seg.id)
            else:
                self._io_failed(err)
            return None

    def unwanted(self, coll: Collection) -> bool:
        """Whether background work on `coll` is no longer wanted: the collection is dropped or the engine closes."""
        return coll.dropped or self.engine.closing

    def _columns_from_file(self, coll: Collection, seg: Segment, path: str, checksum: FileChecksum) -> None:
        """Serve persisted `seg`'s vectors and plain columns from its file (`serve_from_file`), giving memory back.

        Readers holding the segment's arrays keep them until they let go. If
        the file cannot be mapped the rows stay in memory (logged).
        """
        try:
            mapped = mapped_segment(seg.id, seg.partition_id, coll.schema, MappedFile(path, checksum, seg.n))
        except Exception:  # memory only: the rows are in the file and in memory alike
            log.exception("segment %s stays in memory: its file could not be mapped", seg.id)
            return
        with coll.write_lock:
            serve_from_file(seg, mapped)

    @staticmethod
    def _batch_of(coll: Collection, view: Any, vectors: dict[str, Any] | None = None) -> Batch:
        batch = Batch(view.n)
        names = [f.name for f in coll.schema.fields if not f.dtype.is_vector]
        for f in coll.schema.fields:
            if f.dtype.is_vector:
                batch.vectors[f.name] = vectors[f.name] if vectors and f.name in vectors else view.vectors(f.name)
        if META_FIELD in view.segment.cols:
            names.append(META_FIELD)
        for name in names:
            col = view.column(name)
            texts = view.segment.json_texts(name, view.n) if col.dtype is DataType.JSON else None
            batch.columns[name] = col if texts is None else dataclasses.replace(col, texts=texts)
        return batch

    # -- failed background writes ---------------------------------------------------------
    def _io_failed(self, err: StorageError, then: str = "") -> None:
        """Log a failed background write: at WARNING the first time since they last succeeded."""
        with self._state_lock:
            first, self._failing = not self._failing, True
        if first:
            log.warning("%s%s (further failures of background writes are logged at DEBUG until one succeeds)",
                        err, then)
        else:
            log.debug("%s%s", err, then)

    def _persist_failed(self, coll: Collection, p: Partition, seg: Segment, err: StorageError) -> None:
        with self._state_lock:
            self._unpersisted[seg.id] = (coll, p, seg, err)
        self._io_failed(err)
        with self._state_lock:
            if self._retry_timer is not None:
                return
            delay, self._retry_delay = self._retry_delay, min(2 * self._retry_delay, RETRY_MAX_SECONDS)
            timer = self._retry_timer = threading.Timer(delay, self._retry_due)
            timer.daemon = True
        timer.start()

    def _persist_done(self, seg: Segment) -> None:
        with self._state_lock:
            was_failing = self._unpersisted.pop(seg.id, None) is not None
            if self._unpersisted:
                return
            self._retry_delay = RETRY_FIRST_SECONDS
            recovered, self._failing = self._failing, False
        if was_failing or recovered:
            log.info("segment files are written again (segment %s)", seg.id)

    def _retry_due(self) -> None:
        with self._state_lock:
            self._retry_timer = None
        self.retry_persists()

    def retry_persists(self) -> None:
        """Try again, on the background thread, to write every segment file that failed."""
        with self._state_lock:
            pending = list(self._unpersisted.values())
        for coll, p, seg, _err in pending:
            if coll.dropped or seg not in p.sealed:
                self._persist_done(seg)
            else:
                self.engine.submit(self._persist, coll, p, seg)

    def unpersisted(self, coll: Collection) -> int:
        """How many of `coll`'s sealed segments have no file yet because writing it failed."""
        with self._state_lock:
            return sum(c is coll for c, _p, _s, _err in self._unpersisted.values())

    def raise_unpersisted(self, coll: Collection) -> None:
        """Raise the error of `coll`'s segments whose files could not be written, if any."""
        with self._state_lock:
            errs = [err for c, _p, _s, err in self._unpersisted.values() if c is coll]
        if errs:
            kind = DiskFullError if isinstance(errs[0], DiskFullError) else StorageError
            raise kind(f"flush of collection {coll.name!r}: {len(errs)} sealed segment(s) not written: {errs[0]} "
                       "(their rows are safe in the insert log; Heron keeps trying to write them)")

    # -- compacting ----------------------------------------------------------------------
    def op_compact(self, r: rq.Compact) -> int:
        """Rewrite every sealed segment that has deleted rows; returns a job id (done on return)."""
        coll = self.engine.collection(r.db_name, r.collection_name)
        check_clustering(coll, r)
        self.engine.wait_background()
        for p in list(coll.partitions.values()):
            for seg in list(p.sealed):
                if seg.deleted and seg.persisted:
                    self.compact(coll, p, seg, background=False)
        self.engine.wait_background()
        merge_to_target(self, coll, r.target_size_mb)
        return coll.visible_seq

    def compact(self, coll: Collection, p: Partition, old: Segment, *, background: bool = True) -> None:
        """Replace ``old`` by a segment without its deleted rows; readers keep their views meanwhile.

        If the disk refuses, ``old`` stays as it was: in the background that is
        logged (it is tried again at the next delete that hits it), otherwise
        the `DiskFullError` / `StorageError` is raised.
        """
        try:
            self._compact_once(coll, p, old)
        except Exception as exc:
            err = io_error_as(exc, f"compacting segment {old.id} of collection {coll.name!r}",
                              self.engine.dir.collection_dir(coll.id), "the segment stays as it is")
            if err is None or (not background and err is exc):
                raise
            if not background:
                raise err from exc
            self._io_failed(err)

    def _compact_once(self, coll: Collection, p: Partition, old: Segment) -> None:
        e = self.engine
        with coll.write_lock:
            if coll.dropped or old not in p.sealed:
                return
            view = old.snapshot()
            keep = np.flatnonzero(view.visible(np.iinfo(np.int64).max - 1))
            new = Segment(e.next_segment_id(), p.id, coll.schema)
            if len(keep):
                new.append(self._batch_of(coll, view).take(keep), view.seqs[keep])
            new.freeze()
        path = e.dir.segment_path(coll.id, new.id)
        checksum = None
        if new.n:
            with removed_on_error(path + ".tmp", path):
                checksum = write_segment_file(path, ar.batch_to_record_batch(
                    coll.schema, self._batch_of(coll, new.snapshot()), new.seq.data[: new.n]))
        with coll.write_lock:
            if coll.dropped or old not in p.sealed:
                if os.path.exists(path):
                    os.unlink(path)
                return
            # Rows deleted while the file was written: carry their marks over.
            new.deleted = carry_marks(new.deleted_at, [(0, old.deleted_at.view(old.n)[keep])])
            fault_point("compact.before_commit")
            with removed_on_error(path), e.catalog.transaction() as c:
                c.execute("DELETE FROM segments WHERE id=?", (old.id,))
                if checksum is not None:
                    c.execute(_RECORD_SEGMENT, (new.id, coll.id, p.id, os.path.basename(path), new.n, old.max_seq,
                                                checksum.to_bytes()))
            new.max_seq = old.max_seq
            new.persisted = True
            coll.replace_sealed(p, [old], new if new.n else None)
        fault_point("compact.after_commit")
        self._remove_files(coll, old)
        if new.n and checksum is not None:
            self._columns_from_file(coll, new, path, checksum)
            self.build_indexes(coll, new)

    # -- merging -------------------------------------------------------------------------
    def merge_limit(self, coll: Collection) -> int:
        """The most rows a merged segment of `coll` may hold."""
        env = os.environ.get("HERON_MERGE_ROWS")
        if env is not None:
            return int(env)
        width = sum(vector_bytes(f.dtype, f.dim) for f in coll.schema.fields if f.dtype.is_vector)
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
        either segment went away meanwhile (compaction, drop). Raises
        `BuildCancelled`, both segments staying as they are, if the collection
        is dropped or the engine closes while the file is written or an index
        grows: neither waits for the rest of a merge.
        """
        e = self.engine
        with coll.write_lock:
            if not _alive(coll, p, base, seg):
                return False
            bview, sview = base.snapshot(), seg.snapshot()

        def check() -> None:  # a merge is an optimisation: dropping or closing does not wait for it
            if self.unwanted(coll):
                raise BuildCancelled(f"merging segments {base.id} and {seg.id} was cancelled")

        try:
            new, path, checksum = write_merged(self.engine, coll, p, bview, sview, self._batch_of, check)
            with removed_on_error(path):  # not recorded yet: gone with a failure before the install
                self._extend_indexes(coll, base, new, sview)
                self._index_segment(coll, new)  # whatever could not be extended; nothing saved yet
                join_interim(base, seg, new)  # read with the fresh segments while they hold most rows
                fault_point("merge.before_install")
                if not self._install_merged(coll, p, base, seg, new, path, checksum):
                    return False
        except BaseException:  # e.g. a full disk: both stay, indexed again (`base` may have given its index away)
            for old in (base, seg):
                if _alive(coll, p, old):
                    e.submit(self.build_indexes, coll, old)
            raise
        fault_point("merge.after_install")
        for old in (base, seg):
            self._remove_files(coll, old)
        # The heap is trimmed once this task ends (`Engine` pool's `after_task`): here the old
        # segments and their interim lists are still held by this frame and its caller's.
        # Saved by a task of its own: by the time it runs nothing here holds the old
        # segments, so their memory is free again before the index is serialised.
        e.submit_on(self._save_indexes, coll, new)
        e.submit_on(partial(rebuild_grown, self), coll, p, new)  # once no newer segment waits to merge into it
        e.progress.report("merge", coll.name, new.n, new.n, f"segments {base.id} and {seg.id} into {new.id}")
        if new.deleted >= COMPACT_RATIO * new.n:
            e.submit_on(self.compact, coll, p, new)
        return True

    def _extend_indexes(self, coll: Collection, base: Segment, new: Segment, sview: Any) -> None:
        """Give `new` the vector indexes of `base`, extended with the rows of `sview` where they allow it.

        Raises `BuildCancelled` if the collection is dropped or the engine closes meanwhile.
        """
        e = self.engine
        stop = partial(self.unwanted, coll)
        for d in list(coll.indexes.values()):
            f = coll.schema.field(d.field_name)
            cur = base.vindex.get(d.field_name)
            if f is None or not f.dtype.is_vector or cur is None or cur[0] != d.signature:
                continue
            # `base` answers from a stand-in read from the index file while its index grows in place
            # (`_grow`); else a copy grows, and an index that grows in place without a stand-in is
            # taken from `base` first, which is then searched exactly.
            in_place = self._stand_in(coll, base, d.field_name, cur)
            if not in_place and not copies_on_growth(cur[1]):
                with coll.write_lock:
                    base.vindex.pop(d.field_name, None)
            try:  # a slice at a time, leaving callers a core while they are busy (`build_threads`)
                vectors = sview.vectors(f.name)
                held = base.vindex.get(d.field_name)
                if in_place and held is not None:  # its arrays read again from the stand-in's file, with room
                    rehouse(cur[1], held[1], sview.n)
                taken = rows_taken(sview.segment, f.name)  # their file pages go as the index takes them
                ext = (cur[1].extended if in_place else partial(grown_copy, cur[1]))(vectors, stop, e.busy, taken)
                let_go_of_rows(sview.segment, f.name)
            except BuildCancelled:  # dropped, or closing: the merge stops, both segments stay
                raise
            except Exception:  # derived data: build it from the rows instead
                log.exception("extending %s of segment %s failed", d.index_type, base.id)
                ext = None
            if ext is not None:
                new.vindex[d.field_name] = (d.signature, ext)

    def _stand_in(self, coll: Collection, base: Segment, name: str, cur: tuple[Any, Any]) -> bool:
        """Have `base` answer from `cur`'s index file (`file_stand_in`) so the merge may grow `cur` in place.

        False, with `base` left as it is, where the index is not one to grow in
        place or its file cannot be written or read.
        """
        if not grows_in_place(cur[1]) or not base.persisted:
            return False
        try:
            stand_in = file_stand_in(cur[1], self.engine.dir.index_path(coll.id, base.id, name))
        except Exception as exc:  # derived data: the merge grows a copy instead
            log.warning("index of segment %s field %s could not be served from its file (%s): growing a copy",
                        base.id, name, exc)
            return False
        with coll.write_lock:
            if base.vindex.get(name) is not cur:
                return False
            base.vindex[name] = (cur[0], stand_in)
        return True

    def _install_merged(self, coll: Collection, p: Partition, base: Segment, seg: Segment, new: Segment,
                        path: str, checksum: FileChecksum) -> bool:
        """Record `new` (written to `path`) in place of `base` and `seg`; False if either went away meanwhile."""
        e = self.engine
        with coll.write_lock:
            if not _alive(coll, p, base, seg):
                os.unlink(path)
                if _alive(coll, p, base):
                    e.submit(self.build_indexes, coll, base)  # it gave its index to the merge
                return False
            # Deletes that reached either segment since the snapshot are carried over too.
            new.deleted = carry_marks(new.deleted_at, [(0, base.deleted_at.view(base.n)),
                                                       (base.n, seg.deleted_at.view(seg.n))])
            new.max_seq = max(base.max_seq, seg.max_seq)
            with removed_on_error(path), e.catalog.transaction() as c:
                c.execute("DELETE FROM segments WHERE id IN (?, ?)", (base.id, seg.id))
                c.execute(_RECORD_SEGMENT, (new.id, coll.id, p.id, os.path.basename(path), new.n, new.max_seq,
                                            checksum.to_bytes()))
            new.persisted = True
            coll.replace_sealed(p, [base, seg], new)
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
            self.save_index(coll, seg, name, idx)
        self.build_indexes(coll, seg)

    # -- indexes -------------------------------------------------------------------------
    def build_indexes(self, coll: Collection, seg: Segment) -> None:
        """Build (and save) the indexes `seg` lacks, unless it was merged or compacted away meanwhile."""
        p = coll.partition_by_id(seg.partition_id)
        if self.engine.closing or (seg.persisted and (p is None or seg not in p.sealed)):
            return  # closing: derived data, built at the next open
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
            e.interim.settle()  # fresh rows into the interim lists first: searches read those meanwhile
            t0 = time.perf_counter()
            what = f"segment {seg.id} field {f.name}"
            try:
                idx = build_index(f.dtype, f.dim or 0, d.index_type, d.metric_type, d.params, view.vectors(f.name),
                                  cancelled=partial(self.unwanted, coll), busy=e.busy,
                                  progress=partial(e.progress.report, "index", coll.name, detail=what))
            except BuildCancelled:  # dropped, or closing: the next open builds what is missing
                return
            except Exception as exc:  # derived data: search stays exact on this segment
                log.exception("building %s on segment %s failed", d.index_type, seg.id)
                self.failed_builds[(seg.id, d.field_name)] = f"building {d.index_type} failed: {exc}"
                continue
            finally:
                let_go_of_rows(seg, f.name)
            self.failed_builds.pop((seg.id, d.field_name), None)
            seg.vindex[d.field_name] = (d.signature, idx)
            prefault.trim_heap()
            log.debug("built %s on segment %s in %.2fs", d.index_type, seg.id, time.perf_counter() - t0)
            if seg.persisted and not coll.dropped:
                self.save_index(coll, seg, d.field_name, idx)
        prewarm_segment(seg)

    def save_index(self, coll: Collection, seg: Segment, name: str, idx: Any) -> None:
        """Write `seg`'s index of field `name` to its file; if the disk refuses, it is used from memory (`_index_save_failed`)."""
        try:
            fault_point("index.before_save")
            idx.save(self.engine.dir.index_path(coll.id, seg.id, name))
            fault_point("index.after_save")
        except OSError as exc:
            self._index_save_failed(coll, seg, exc)

    def _index_save_failed(self, coll: Collection, seg: Segment, exc: OSError) -> None:
        """An index file could not be written: the index is used from memory and built again on the next open."""
        err = io_error_as(exc, f"saving an index of segment {seg.id} of collection {coll.name!r}",
                          self.engine.dir.collection_dir(coll.id),
                          "the index is used from memory, and built again on the next open")
        self._io_failed(err or StorageError(str(exc)))

    def index_sealed(self, coll: Collection) -> None:
        """Build the indexes of every sealed segment that lacks one (in the background)."""
        for p in coll.partitions.values():
            for seg in p.sealed:
                if seg.persisted:
                    self.engine.submit(self.build_indexes, coll, seg)


def _alive(coll: Collection, p: Partition, *segs: Segment) -> bool:
    """Whether `p` is still a partition of `coll` and holds every one of `segs` as sealed."""
    return not coll.dropped and coll.partitions.get(p.name) is p and all(s in p.sealed for s in segs)
