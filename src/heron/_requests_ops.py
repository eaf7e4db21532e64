"""Requests for schema evolution, snapshots, segments and file resources.

Part of `heron._requests`, which re-exports every class; see that module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# -- schema evolution and operations -------------------------------------------


@dataclass(frozen=True)
class AddCollectionField:
    """Add ``field`` (a `FieldSchema.to_dict` form) to a live collection; rows written before read its default or null."""

    db_name: str
    collection_name: str
    field: dict[str, Any]


@dataclass(frozen=True)
class AddCollectionStructField:
    """Add a nullable struct array ``field`` (a `StructFieldSchema.describe` form) to a live collection."""

    db_name: str
    collection_name: str
    field: dict[str, Any]


@dataclass(frozen=True)
class AlterCollectionField:
    """Set ``properties`` of one field (``max_length``, ``mmap.enabled``, ...) and remove those in ``delete_keys``."""

    db_name: str
    collection_name: str
    field_name: str
    properties: dict[str, Any]
    delete_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class DropCollectionField:
    """Remove a field (named, or by ``field_id`` when the name is empty) from a collection's schema."""

    db_name: str
    collection_name: str
    field_name: str = ""
    field_id: int = 0


@dataclass(frozen=True)
class AlterIndexProperties:
    """Set ``properties`` of an index (``mmap.enabled``) and remove those in ``delete_keys``."""

    db_name: str
    collection_name: str
    index_name: str
    properties: dict[str, Any]
    delete_keys: tuple[str, ...] = ()


# -- snapshots -------------------------------------------------------------------


@dataclass(frozen=True)
class CreateSnapshot:
    db_name: str
    collection_name: str
    snapshot_name: str
    description: str = ""


@dataclass(frozen=True)
class DropSnapshot:
    db_name: str
    collection_name: str
    snapshot_name: str


@dataclass(frozen=True)
class ListSnapshots:
    db_name: str
    collection_name: str = ""


@dataclass(frozen=True)
class DescribeSnapshot:
    db_name: str
    collection_name: str
    snapshot_name: str


@dataclass(frozen=True)
class RestoreSnapshot:
    """Restore ``snapshot_name`` of ``collection_name`` as a new collection ``target_collection_name``."""

    db_name: str
    collection_name: str
    snapshot_name: str
    target_collection_name: str
    target_db_name: str = ""


@dataclass(frozen=True)
class GetRestoreSnapshotState:
    job_id: int


@dataclass(frozen=True)
class ListRestoreSnapshotJobs:
    db_name: str
    collection_name: str = ""


@dataclass(frozen=True)
class PinSnapshotData:
    db_name: str
    collection_name: str
    snapshot_name: str
    ttl_seconds: int = 0


@dataclass(frozen=True)
class UnpinSnapshotData:
    pin_id: int


# -- flushing and segments ---------------------------------------------------------


@dataclass(frozen=True)
class FlushAll:
    """Flush every collection of a database ("" for every database)."""

    db_name: str = ""


@dataclass(frozen=True)
class GetFlushAllState:
    """Whether every collection of a database ("" for all) has its rows in segment files.

    With ``flush_all_ts`` (what `FlushAll` answered): only the rows written up to then.
    """

    db_name: str = ""
    flush_all_ts: int = 0


@dataclass(frozen=True)
class ListSegments:
    """The segments of a collection that are in files."""

    db_name: str
    collection_name: str


@dataclass(frozen=True)
class ListLoadedSegments:
    """The segments of a collection that searches read: all of them, growing ones included."""

    db_name: str
    collection_name: str


# -- file resources ----------------------------------------------------------------


@dataclass(frozen=True)
class AddFileResource:
    """Keep a copy of the file at ``path`` (on the engine's machine) as resource ``name``."""

    name: str
    path: str


@dataclass(frozen=True)
class RemoveFileResource:
    name: str


@dataclass(frozen=True)
class ListFileResources:
    pass


# -- bulk import ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportFiles:
    """Start a job inserting the rows of ``files`` (paths on the engine's machine) into the collection.

    Each entry of ``files`` is a Parquet, row-based JSON (``{"rows": [...]}``), JSON
    lines or CSV file, a ``.npy`` file of one field (the ``.npy`` files given
    together form one set of columns), or a folder of ``.npy`` files. The result is
    the job's id; the job runs in the background, all or nothing. ``options``: ``sep``
    and ``nullkey`` for CSV, ``column_map`` (JSON: file column -> field, "" drops it);
    ``resume`` ``1`` for a resumable job instead (committed and recorded chunk by chunk of
    ``chunk_rows``; a rerun skips what is in) or ``abort`` to drop the record of one
    (`heron.engine._import_resume`).
    """

    db_name: str
    collection_name: str
    files: tuple[str, ...]
    partition_name: str = ""
    options: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class GetImportProgress:
    """The state of import job ``job_id``: a dict (see `heron.engine._import.ImportJob.describe`)."""

    job_id: int


@dataclass(frozen=True)
class ListImports:
    """The import jobs (of one collection, when named), oldest first, at most ``limit`` (0: all)."""

    db_name: str
    collection_name: str = ""
    limit: int = 0


#: Import job states, with Milvus's numbers (``common.ImportState``), and their names.
IMPORT_STATE_NAMES: dict[int, str] = {0: "Pending", 1: "Failed", 2: "Importing", 6: "Completed"}
