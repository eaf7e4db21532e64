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
