"""A collection in memory: partitions, segments, index definitions, write path.

Writes to one collection are serialised by ``write_lock``. A write is first
made durable in a log (`_insert_log` or the catalog's), then applied to the in-memory
segments, then published by advancing ``visible_seq``. Readers take a
`Snapshot` without waiting for writers: they see every write published
before they started and nothing of a write still being applied.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import CorruptionError, PartitionNotFoundError
from .._schema import CollectionSchema
from ._latest import LatestKeys
from ._segment import Segment, SegmentView
from .index._definitions import IndexDef

DEFAULT_PARTITION = "_default"
#: Filter plans a collection remembers by expression (`Collection.filter_plan`).
MAX_PLANS = 256
#: Longer filters are not remembered here (see `filter._cache`): 256 of 1 MiB each would hold GBs.
MAX_PLAN_TEXT = 4096


@dataclass
class Partition:
    id: int
    name: str
    loaded: bool = False
    growing: Segment | None = None
    sealed: list[Segment] = field(default_factory=list)

    def segments(self) -> list[Segment]:
        segs = list(self.sealed)
        if self.growing is not None:
            segs.append(self.growing)
        return segs


@dataclass
class Snapshot:
    """What a read sees: the segment views at sequence number ``seq``.

    ``hidden[i]`` marks the rows of ``views[i]`` that a later write of their
    primary key hides (None when there are none): a read sees one row per
    key, the latest (see `_latest`).
    """

    seq: int
    views: list[tuple[Partition, SegmentView]]
    hidden: list[np.ndarray | None]

    def live(self, i: int) -> np.ndarray:
        """The rows of ``views[i]`` that this snapshot sees (a fresh mask)."""
        mask = self.views[i][1].visible(self.seq)
        h = self.hidden[i]
        if h is not None:
            mask &= ~h
        return mask

    def count(self) -> int:
        """How many rows (one per primary key) this snapshot sees."""
        return sum(int(np.count_nonzero(self.live(i))) for i in range(len(self.views)))


class Collection:
    def __init__(
        self,
        collection_id: int,
        db: str,
        name: str,
        schema: CollectionSchema,
        properties: dict[str, Any],
        consistency: str,
        created: float,
    ) -> None:
        self.id = collection_id
        self.db = db
        self.name = name
        self.schema = schema
        self.properties = properties
        if properties.get("timezone"):  # TIMESTAMPTZ text without an offset is read in it
            schema.properties["timezone"] = properties["timezone"]
        self.consistency = consistency
        self.created = created
        self.partitions: dict[str, Partition] = {}
        self.indexes: dict[str, IndexDef] = {}
        self.write_lock = threading.RLock()
        self._publish = threading.Lock()
        self.visible_seq = 0
        self.dropped = False
        #: Why the collection is unavailable (a damaged segment file), or None; see `check_available`.
        self.damage: CorruptionError | None = None
        self.auto_id_next = 0
        self._plans: dict[str, Any] = {}
        #: The vector field each ``anns_field`` value names, found once (the schema never changes).
        self.anns_fields: dict[str, Any] = {}
        self.latest = LatestKeys()

    def check_available(self) -> None:
        """Raise `CorruptionError` (naming the damaged file and what it holds) if the collection is unavailable."""
        d = self.damage
        if d is not None:  # a fresh error each time: raising one object again would grow its traceback
            raise CorruptionError(d.message, path=d.path, offset=d.offset)

    def forget_plans(self) -> None:
        """Drop the remembered plans (the schema's ``timezone``, which ISO literals are read in, changed)."""
        self._plans.clear()

    def filter_plan(self, expr: str, params: dict[str, Any] | None = None) -> Any:
        """The compiled plan of filter `expr` on this collection's schema (fixed for its life), remembered.

        Expressions with template parameters go through the filter module's own cache every time.
        """
        plan = None if params else self._plans.get(expr)
        if plan is not None:
            return plan
        from .filter import compile_filter

        if params:
            return compile_filter(expr or "", self.schema, params)
        plan = compile_filter(expr or "", self.schema, None)
        if len(expr) > MAX_PLAN_TEXT:  # the filter module's cache, bounded in bytes, holds long ones
            return plan
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[expr] = plan
        return plan

    # -- partitions ----------------------------------------------------------------
    def partition(self, name: str) -> Partition:
        p = self.partitions.get(name or DEFAULT_PARTITION)
        if p is None:
            raise PartitionNotFoundError(
                f"partition not found[partition={name}]: collection {self.name!r} has no partition {name!r}")
        return p

    def partition_by_id(self, pid: int) -> Partition | None:
        for p in self.partitions.values():
            if p.id == pid:
                return p
        return None

    @property
    def loaded(self) -> bool:
        return any(p.loaded for p in self.partitions.values())

    def growing_segment(self, p: Partition, new_id: int) -> Segment:
        if p.growing is None:
            p.growing = Segment(new_id, p.id, self.schema)
        return p.growing

    # -- segment changes that snapshots must see whole --------------------------------
    def seal_growing(self, p: Partition) -> Segment | None:
        """Move the growing segment to the sealed ones (callers hold the write lock)."""
        with self._publish:
            seg = p.growing
            if seg is not None:
                p.sealed = [*p.sealed, seg]
                p.growing = None
            return seg

    def replace_sealed(self, p: Partition, old: list[Segment], new: Segment | None) -> None:
        """Put `new` (if any) where ``old[0]`` was and drop every segment of `old`, in one step."""
        with self._publish:
            out: list[Segment] = []
            for s in p.sealed:
                if s is old[0]:
                    if new is not None:
                        out.append(new)
                elif not any(s is o for o in old):
                    out.append(s)
            p.sealed = out
        for s in old:
            s.retire()

    def retire_segments(self, parts: list[Partition] | None = None) -> None:
        """Let the segments of ``parts`` (all partitions when None) go: see `Segment.retire`."""
        for p in self.partitions.values() if parts is None else parts:
            for s in p.segments():
                s.retire()

    # -- visibility ----------------------------------------------------------------
    def publish(self, seq: int) -> None:
        with self._publish:
            if seq > self.visible_seq:
                self.visible_seq = seq

    def snapshot(self, partitions: list[Partition]) -> Snapshot:
        with self._publish:
            seq = self.visible_seq
            views = [(p, s.snapshot()) for p in partitions for s in p.segments()]
        return Snapshot(seq, views, self.latest.hidden([v for _, v in views], seq))

    def index_for(self, field_name: str) -> IndexDef | None:
        for d in self.indexes.values():
            if d.field_name == field_name:
                return d
        return None

    def num_rows(self) -> int:
        """Rows written and not deleted, one per primary key, as of now."""
        return self.snapshot(list(self.partitions.values())).count()
