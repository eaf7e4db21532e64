"""Flushing every collection at once, and the segments of a collection as Milvus lists them.

Milvus's segment states map onto Heron's segments: a growing segment is
``Growing``, a sealed one whose file is not written yet ``Sealed``, one in
its file ``Flushed``. Every segment is searchable from the moment it holds
rows, so the loaded segments are all of them; the persistent ones are
those with a file (and the growing rows are in the log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from ._collection import Collection

if TYPE_CHECKING:
    from ._engine import Engine


class SegmentInfo:
    """The flush-all and segment-listing requests of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _collections(self, db_name: str) -> list[Collection]:
        dbs = [self.engine.database(db_name)] if db_name else sorted(self.engine.databases)
        return [c for (d, _), c in sorted(self.engine.collections.items()) if d in dbs]

    def op_flush_all(self, r: rq.FlushAll) -> int:
        """Flush each collection (`Writer.op_flush`); the first that cannot be written raises.

        Returns the sequence number of the last write it covers, for `GetFlushAllState`.
        """
        seq = self.engine.last_seq
        for coll in self._collections(r.db_name):
            if coll.damage is None:
                self.engine.execute(rq.Flush(coll.db, coll.name))
        return seq

    def op_get_flush_all_state(self, r: rq.GetFlushAllState) -> bool:
        """No row (written up to ``flush_all_ts``, when given) is only in a growing or unwritten segment."""
        upto = r.flush_all_ts or None
        for coll in self._collections(r.db_name):
            with coll.write_lock:
                for p in coll.partitions.values():
                    for seg in p.segments():
                        if seg.persisted or not seg.n:
                            continue
                        if upto is None or int(seg.seq.data[: seg.n].min()) <= upto:
                            return False
        return True

    def op_list_segments(self, r: rq.ListSegments) -> list[dict[str, Any]]:
        return self._segments(r.db_name, r.collection_name, False)

    def op_list_loaded_segments(self, r: rq.ListLoadedSegments) -> list[dict[str, Any]]:
        return self._segments(r.db_name, r.collection_name, True)

    def _segments(self, db_name: str, collection_name: str, loaded: bool) -> list[dict[str, Any]]:
        coll = self.engine.collection(db_name, collection_name)
        out = []
        with coll.write_lock:
            for p in coll.partitions.values():
                for seg in p.segments():
                    if not seg.n or (not loaded and not seg.persisted):
                        continue
                    state = "Flushed" if seg.persisted else ("Sealed" if seg.sealed else "Growing")
                    indexed = [d.index_name for d in coll.indexes.values() if d.field_name in seg.vindex]
                    out.append({
                        "segment_id": seg.id, "collection_id": coll.id, "collection_name": coll.name,
                        "partition_id": p.id, "num_rows": seg.n - seg.deleted, "state": state,
                        "level": "L1", "is_sorted": False, "storage_version": 2,
                        "mem_size": _mem_size(seg), "index_name": indexed[0] if indexed else "",
                    })
        return out


def _mem_size(seg: Any) -> int:
    """Bytes the segment's columns hold (numpy buffers and Arrow arrays; objects counted by reference)."""
    total = 0
    for store in seg.cols.values():
        view = store.view(seg.n)
        total += int(getattr(view, "nbytes", 0) or 0)
    return total
