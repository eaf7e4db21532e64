"""`AsyncClient` methods for operations: segments, compaction, snapshots, index and field properties.

A mixin of `AsyncClient`; `scripts/unasync.py` generates the blocking
version from this file. Methods follow pymilvus's `AsyncMilvusClient`.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import _requests as rq
from .._errors import CollectionNotFoundError, ParamError
from .._schema import FieldSchema, StructFieldSchema
from .._types import DataType
from ._base import ClientBase, property_keys_of
from ._milvus_objects import as_struct
from ._ops_results import (
    OPTIMIZE_STAGES,
    CompactionPlans,
    FileResourceInfo,
    OptimizeResult,
    OptimizeTask,
    RestoreSnapshotJobInfo,
    SegmentInfo,
    SnapshotInfo,
)


class AsyncOpsMixin(ClientBase):
    """Operations calls: segments, compaction, snapshots, index and field properties."""

    async def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    # -- schema evolution --------------------------------------------------------------------
    async def add_collection_field(self, collection_name: str, field_name: str, data_type: DataType,
                                   desc: str = "", timeout: float | None = None, **kwargs: Any) -> None:
        """Add a field to a live collection; it must be ``nullable=True`` or have a ``default_value``.

        Rows stored before read the default (or null); new rows may carry a
        value. `ParamError` (code 1100) for a primary key, partition key or
        vector field, for a field that is neither nullable nor defaulted, and
        for a name the collection already has; nothing changes then.
        """
        db = self._dbn(kwargs)
        params = {k: v for k, v in kwargs.items() if k != "db_name"}
        try:
            f = FieldSchema(field_name, data_type, desc, **params)
        except TypeError as exc:
            raise ParamError(f"add_collection_field {field_name!r}: {exc}") from None
        await self._call(rq.AddCollectionField(db, collection_name, f.to_dict()), timeout)
        self._schemas.pop((db, collection_name), None)

    async def add_collection_struct_field(self, collection_name: str, field_name: str, struct_schema: Any,
                                          max_capacity: int, desc: str | None = None, timeout: float | None = None,
                                          **kwargs: Any) -> None:
        """Add a nullable struct array field to a live collection; the rows stored before read None.

        ``struct_schema`` is a `StructFieldSchema` (Heron's or pymilvus's) with
        its sub-fields. `ParamError` for ``nullable=False``, an unsound struct
        or a name the collection already has; nothing changes then.
        """
        if not kwargs.get("nullable", True):
            raise ParamError("Adding struct field to existing collection requires nullable=True")
        if not hasattr(struct_schema, "fields") or not callable(getattr(struct_schema, "to_dict", None)):
            raise ParamError(f"struct_schema: got {type(struct_schema).__name__}, expected a StructFieldSchema")
        st = copy.deepcopy(struct_schema) if isinstance(struct_schema, StructFieldSchema) else \
            as_struct(struct_schema)
        st.name, st.max_capacity, st.nullable = field_name, max_capacity, True
        if desc is not None:
            st.description = desc
        st.params.update({k: kwargs[k] for k in ("mmap_enabled", "warmup") if k in kwargs})
        db = self._dbn(kwargs)
        await self._call(rq.AddCollectionStructField(db, collection_name, st.describe()), timeout)
        self._schemas.pop((db, collection_name), None)

    async def alter_collection_field(self, collection_name: str, field_name: str, field_params: dict[str, Any],
                                     timeout: float | None = None, **kwargs: Any) -> None:
        """Change properties of one field: ``max_length`` (VARCHAR; it can only grow), ``max_capacity``
        (ARRAY; only grows), ``mmap.enabled``. `ParamError` for any other key."""
        if not isinstance(field_params, dict):
            raise ParamError(f"field_params: got {type(field_params).__name__}, expected a dict")
        db = self._dbn(kwargs)
        await self._call(rq.AlterCollectionField(db, collection_name, field_name, dict(field_params)), timeout)
        self._schemas.pop((db, collection_name), None)

    async def drop_collection_field(self, collection_name: str, field_name: str = "", field_id: int = 0,
                                    timeout: float | None = None, **kwargs: Any) -> None:
        """Remove a field from the schema (by name, or by ``field_id``); its values are no longer read.

        `ParamError` for the primary key, a partition or clustering key, the
        last vector field, and a field that still has an index.
        """
        if bool(field_name) == bool(field_id):
            raise ParamError("drop_collection_field: pass exactly one of field_name and field_id")
        db = self._dbn(kwargs)
        await self._call(rq.DropCollectionField(db, collection_name, field_name, int(field_id)), timeout)
        self._schemas.pop((db, collection_name), None)

    # -- index properties ----------------------------------------------------------------------
    async def alter_index_properties(self, collection_name: str, index_name: str, properties: dict[str, Any],
                                     timeout: float | None = None, **kwargs: Any) -> None:
        """Set properties of an index (``mmap.enabled``); `describe_index` shows them."""
        if not isinstance(properties, dict) or not properties:
            raise ParamError(f"properties: got {properties!r}, expected a non-empty dict")
        req = rq.AlterIndexProperties(self._dbn(kwargs), collection_name, index_name, dict(properties))
        await self._call(req, timeout)

    async def drop_index_properties(self, collection_name: str, index_name: str, property_keys: list[str],
                                    timeout: float | None = None, **kwargs: Any) -> None:
        """Remove properties of an index; one it does not have is ignored."""
        keys = property_keys_of(property_keys)
        req = rq.AlterIndexProperties(self._dbn(kwargs), collection_name, index_name, {}, keys)
        await self._call(req, timeout)

    # -- snapshots -----------------------------------------------------------------------------
    async def create_snapshot(self, snapshot_name: str, collection_name: str, db_name: str = "",
                              description: str = "", compaction_protection_seconds: int = 0,
                              timeout: float | None = None, **kwargs: Any) -> None:
        """Keep the collection's rows as they are now under ``snapshot_name`` (cheap: files are linked).

        A snapshot's files are kept from compaction for as long as it exists, so
        ``compaction_protection_seconds`` (checked, at least 0) asks for nothing more.
        """
        if isinstance(compaction_protection_seconds, bool) or not isinstance(compaction_protection_seconds, int) \
                or compaction_protection_seconds < 0:
            raise ParamError(f"compaction_protection_seconds: got {compaction_protection_seconds!r}, "
                             "expected an integer of at least 0")
        req = rq.CreateSnapshot(db_name or self._db, collection_name, snapshot_name, description)
        await self._call(req, timeout)

    async def drop_snapshot(self, snapshot_name: str, collection_name: str, db_name: str = "",
                            timeout: float | None = None, **kwargs: Any) -> None:
        """Delete a snapshot; one that does not exist is ignored, a pinned one refused."""
        await self._call(rq.DropSnapshot(db_name or self._db, collection_name, snapshot_name), timeout)

    async def list_snapshots(self, collection_name: str = "", db_name: str = "", timeout: float | None = None,
                             **kwargs: Any) -> list[str]:
        """The names of the snapshots of a collection (of every collection of the database when empty)."""
        return await self._call(rq.ListSnapshots(db_name or self._db, collection_name), timeout)

    async def describe_snapshot(self, snapshot_name: str, collection_name: str, db_name: str = "",
                                timeout: float | None = None, **kwargs: Any) -> SnapshotInfo:
        """A `SnapshotInfo`; `NotFoundError` when the collection has no such snapshot."""
        d = await self._call(rq.DescribeSnapshot(db_name or self._db, collection_name, snapshot_name), timeout)
        return SnapshotInfo.from_dict(d)

    async def restore_snapshot(self, snapshot_name: str, source_collection_name: str, target_collection_name: str,
                               source_db_name: str = "", target_db_name: str = "", timeout: float | None = None,
                               **kwargs: Any) -> int:
        """Create ``target_collection_name`` with the snapshot's schema, indexes and rows; the job id.

        The job has finished when this returns (`get_restore_snapshot_state`);
        a failed restore raises and leaves no target collection behind.
        """
        req = rq.RestoreSnapshot(source_db_name or self._db, source_collection_name, snapshot_name,
                                 target_collection_name, target_db_name or source_db_name or self._db)
        return int(await self._call(req, timeout))

    async def get_restore_snapshot_state(self, job_id: int, timeout: float | None = None,
                                         **kwargs: Any) -> RestoreSnapshotJobInfo:
        """The state of a restore job this engine ran."""
        return RestoreSnapshotJobInfo.from_dict(await self._call(rq.GetRestoreSnapshotState(int(job_id)), timeout))

    async def list_restore_snapshot_jobs(self, collection_name: str = "", db_name: str = "",
                                         timeout: float | None = None, **kwargs: Any) -> list[RestoreSnapshotJobInfo]:
        """The restore jobs into a database (into one target collection when named)."""
        jobs = await self._call(rq.ListRestoreSnapshotJobs(db_name or self._db, collection_name), timeout)
        return [RestoreSnapshotJobInfo.from_dict(j) for j in jobs]

    async def pin_snapshot_data(self, snapshot_name: str, collection_name: str, db_name: str = "",
                                ttl_seconds: int = 0, timeout: float | None = None, **kwargs: Any) -> int:
        """Keep a snapshot from being dropped for ``ttl_seconds`` (0: an hour); the pin id."""
        req = rq.PinSnapshotData(db_name or self._db, collection_name, snapshot_name, int(ttl_seconds))
        return int(await self._call(req, timeout))

    async def unpin_snapshot_data(self, pin_id: int, timeout: float | None = None, **kwargs: Any) -> None:
        """Release a pin made by `pin_snapshot_data`."""
        await self._call(rq.UnpinSnapshotData(int(pin_id)), timeout)

    # -- flushing and segments -------------------------------------------------------------------
    async def flush_all(self, timeout: float | None = None, **kwargs: Any) -> None:
        """Flush every collection of every database (of one database with ``db=``), as Milvus does."""
        await self._call(rq.FlushAll(kwargs.get("db") or ""), timeout)

    async def get_flush_all_state(self, timeout: float | None = None, **kwargs: Any) -> bool:
        """Whether every collection (of database ``db=`` if given) has all its rows in segment files.

        ``flush_all_ts=`` (what the FlushAll RPC answers) asks only about the rows written up to that flush.
        """
        req = rq.GetFlushAllState(kwargs.get("db") or "", int(kwargs.get("flush_all_ts") or 0))
        return bool(await self._call(req, timeout))

    async def list_persistent_segments(self, collection_name: str, timeout: float | None = None,
                                       states: Any = None, **kwargs: Any) -> list[SegmentInfo]:
        """The segments of a collection written to files (state ``Flushed``); ``states`` narrows them."""
        segs = await self._call(rq.ListSegments(self._dbn(kwargs), collection_name), timeout)
        return _in_states([SegmentInfo.from_dict(d) for d in segs], states)

    async def list_loaded_segments(self, collection_name: str, timeout: float | None = None,
                                   **kwargs: Any) -> list[SegmentInfo]:
        """Every segment of a collection that searches read (growing ones included), with its memory size."""
        segs = await self._call(rq.ListLoadedSegments(self._dbn(kwargs), collection_name), timeout)
        return [SegmentInfo.from_dict(d) for d in segs]

    async def list_segments(self, collection_name: str, states: Any = None, timeout: float | None = None,
                            **kwargs: Any) -> list[SegmentInfo]:
        """The segments of a collection in ``states`` (names or pymilvus ``SegmentState``s; default all)."""
        segs = await self._call(rq.ListLoadedSegments(self._dbn(kwargs), collection_name), timeout)
        return _in_states([SegmentInfo.from_dict(d) for d in segs], states)


    # -- file resources --------------------------------------------------------------------------
    async def add_file_resource(self, name: str, path: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Keep a copy of the file at ``path`` as resource ``name`` (for analyzers' stop words, dictionaries).

        ``path`` is on the machine that runs the database (the server's, for a
        remote client). Adding the same name and path again does nothing.
        """
        await self._call(rq.AddFileResource(name, path), timeout)

    async def remove_file_resource(self, name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Forget resource ``name`` and delete its copy; an unknown name is ignored."""
        await self._call(rq.RemoveFileResource(name), timeout)

    async def list_file_resources(self, timeout: float | None = None, **kwargs: Any) -> list[FileResourceInfo]:
        """The resources kept, each with its ``name`` and the ``path`` it was copied from."""
        return [FileResourceInfo(d["name"], d["path"], d["id"]) for d in await self._call(rq.ListFileResources(),
                                                                                           timeout)]


    # -- compaction ------------------------------------------------------------------------------
    async def get_compaction_plans(self, job_id: int, timeout: float | None = None, **kwargs: Any) -> CompactionPlans:
        """A compaction job's plans: compaction finishes inside `compact`, so ``Completed`` with none pending."""
        return CompactionPlans(int(job_id))

    async def list_compaction_tasks(self, collection_name: str, timeout: float | None = None,
                                    **kwargs: Any) -> CompactionPlans:
        """The compaction tasks retained for a collection: none pending (`CollectionNotFoundError` if it is not one)."""
        if not isinstance(collection_name, str) or not collection_name:
            raise ParamError(f"collection_name: got {collection_name!r}, expected a collection name")
        if not await self._call(rq.HasCollection(self._dbn(kwargs), collection_name), timeout):
            raise CollectionNotFoundError(f"collection not found[collection={collection_name}]")
        return CompactionPlans(0, collection_name=collection_name)

    async def optimize(self, collection_name: str, target_size: str | None = None, wait: bool = True,
                       timeout: float | None = None, **kwargs: Any) -> OptimizeResult | OptimizeTask:
        """Seal the growing rows and compact the collection's segments (Heron merges them as they seal).

        ``target_size`` ("512MB", "1GB", a number of bytes) is checked as pymilvus checks it; Heron's merge
        limit sets the segment size. With ``wait=False`` an `OptimizeTask` comes back, already done.
        """
        if target_size is not None:
            _target_size_mb(target_size)
        db = self._dbn(kwargs)
        await self._call(rq.Flush(db, collection_name), timeout)
        job = await self._call(rq.Compact(db, collection_name), timeout)
        result = OptimizeResult("success", collection_name, int(job or 0), target_size, list(OPTIMIZE_STAGES))
        return result if wait else OptimizeTask(result)


def _in_states(segs: list[SegmentInfo], states: Any) -> list[SegmentInfo]:
    if not states:
        return segs
    names = {getattr(s, "name", s) for s in states}
    if not all(isinstance(n, str) for n in names):
        raise ParamError(f"states: got {states!r}, expected segment state names or SegmentState values")
    return [s for s in segs if s.state in names]


_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}


def _target_size_mb(target_size: Any) -> int:
    """``target_size`` in MB, as pymilvus reads it; `ParamError` for a malformed or out-of-range one."""
    import re

    if isinstance(target_size, bool) or not isinstance(target_size, (str, int, float)):
        raise ParamError(f"target_size must be a string or number, got {type(target_size).__name__}")
    if isinstance(target_size, str):
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", target_size.strip().lower())
        if m is None or (m.group(2) or "b") not in _UNITS:
            raise ParamError(f"Invalid target_size format: '{target_size}'. Expected format: '1000', '1000MB', "
                             "'1GB', '1.2gb', '1000B', '500KB', '2TB'")
        size = float(m.group(1)) * _UNITS[m.group(2) or "b"]
    else:
        size = float(target_size)
    mb = int(size // (1 << 20))
    if mb <= 0:
        raise ParamError(f"target size too small: {target_size}, must be at least 1MB")
    return mb
