"""Result objects of the operations calls, shaped as pymilvus 3 returns them (attribute access)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SnapshotInfo:
    """What `describe_snapshot` answers: the snapshot's name, description, collection and partitions.

    ``create_ts`` is in milliseconds; ``s3_location`` is where its files are
    (a directory of the data directory for Heron).
    """

    name: str
    description: str
    collection_name: str
    partition_names: list[str] = field(default_factory=list)
    create_ts: int = 0
    s3_location: str = ""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SnapshotInfo:
        """The engine's answer as an object."""
        return cls(d["name"], d["description"], d["collection_name"], list(d["partition_names"]),
                   int(d["create_ts"]), d.get("s3_location", ""))


@dataclass
class RestoreSnapshotJobInfo:
    """One restore job: its target collection, ``state`` ('RestoreSnapshotCompleted', ...) and ``progress``."""

    job_id: int
    snapshot_name: str
    db_name: str
    collection_name: str
    state: str
    progress: int = 0
    reason: str = ""
    start_time: int = 0
    time_cost: int = 0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RestoreSnapshotJobInfo:
        """The engine's answer as an object."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class SegmentInfo:
    """One segment as `list_persistent_segments` / `list_loaded_segments` list it.

    ``state`` is Milvus's state name: ``Growing`` (taking rows), ``Sealed``
    (full, its file not written yet) or ``Flushed`` (in its file).
    """

    segment_id: int
    collection_id: int
    collection_name: str
    num_rows: int
    is_sorted: bool
    state: str
    level: str
    storage_version: int
    partition_id: int = 0
    insert_channel: str = ""
    compaction_from: list[int] = field(default_factory=list)
    index_name: str = ""
    mem_size: int = 0
    node_ids: list[int] = field(default_factory=list)

    @property
    def state_name(self) -> str:
        """The state's name, as pymilvus offers it."""
        return self.state

    @property
    def level_name(self) -> str:
        """The level's name, as pymilvus offers it."""
        return self.level

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmentInfo:
        """The engine's answer as an object."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


@dataclass
class FileResourceInfo:
    """A file resource: its ``name`` and the ``path`` it was copied from."""

    name: str
    path: str
    id: int = 0


@dataclass
class CompactionPlans:
    """What `get_compaction_plans` / `list_compaction_tasks` answer: a job's state and its merge plans.

    Heron's compactions finish inside `compact` (and in the background as
    rows are deleted), so a job is always ``Completed`` and no plan is pending.
    """

    compaction_id: int
    state: str = "Completed"
    collection_name: str = ""
    plans: list[Any] = field(default_factory=list)


#: The stages `optimize` goes through, in order (pymilvus's names).
OPTIMIZE_STAGES = ("initializing", "waiting for indexes", "compacting", "waiting for compaction",
                   "waiting for index rebuild", "refreshing load")


@dataclass
class OptimizeResult:
    """What `optimize` answers: ``status`` "success", the compaction job and the stages it went through."""

    status: str
    collection_name: str
    compaction_id: int
    target_size: str | None
    progress: list[str]


class OptimizeTask:
    """`optimize(..., wait=False)`'s handle, as pymilvus's: the optimisation has finished when it is returned."""

    def __init__(self, result: OptimizeResult) -> None:
        self._result = result

    def done(self) -> bool:
        """Whether the optimisation finished (always, for Heron)."""
        return True

    def cancel(self) -> bool:
        """Cancel it; False, as it is done already."""
        return False

    def cancelled(self) -> bool:
        """Whether it was cancelled (never)."""
        return False

    def progress(self) -> str:
        """The stage reached: the last one."""
        return self._result.progress[-1]

    def result(self, timeout: float | None = None) -> OptimizeResult:
        """The `OptimizeResult`."""
        return self._result
