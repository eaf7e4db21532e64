"""The engine: one data directory, its catalog, and the dispatcher of requests.

`Engine.execute(request)` is the single entry point used by the embedded
transport and by the server; `Engine.handlers` names the one method that
answers each request type. The engine holds what those methods share:
sequence numbers, name resolution, the background thread and the directory.
Engines are shared per directory within a process (`open_engine` /
`release_engine`), and a directory is held by one process at a time.

The fork rule: a process forked while it had engines open (``os.fork``,
multiprocessing's "fork" start method, a pre-forking web server) inherits
them unusable. Every call through an inherited engine raises `HeronError`;
the child never writes, syncs, closes or unlocks anything of it (its lock
is the parent's, its SQLite connection and log files the parent's too), so
the parent's data and directory lock stay whole. A client opened in the
child for the same directory gets `DataDirLockedError` while the parent
holds it.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Future, wait
from functools import partial
from typing import Any

from .. import _requests as rq
from .._errors import (
    CollectionNotFoundError,
    DatabaseNotFoundError,
    DataDirLockedError,
    HeronError,
    ParamError,
)
from .._pool import Pool
from ._access import ACCESS_REQUESTS, NO_AUTH
from ._access import run as run_access
from ._aggregate import aggregating
from ._auto_seal import IdleSealer, idle_seal_settings
from ._catalog_ops import CatalogOps
from ._coalesce import SearchCoalescer
from ._collection import Collection
from ._file_resources import FileResources
from ._function_ops import FunctionOps
from ._highlight import highlighting
from ._import import Imports
from ._import_journal import roll_back
from ._interim import InterimIndexer, interim_rows, interim_workers
from ._maintenance import Maintenance
from ._progress import ProgressReporter
from ._reads import Reader
from ._recovery import Recovery
from ._resource_groups import ResourceGroups
from ._schema_ops import SchemaOps
from ._search_ids import by_ids
from ._segment_info import SegmentInfo
from ._snapshots import Snapshots
from ._writes import Writer
from .index._faiss import detach_interrupt_check
from .storage import _prefault as prefault
from .storage._catalog import Catalog
from .storage._consistency import data_left, reconcile
from .storage._files import DataDir, pace_while
from .storage._insert_log import InsertLog

log = logging.getLogger("heron.engine")
#: A data request (`_DATA_REQUESTS`) within this many seconds makes the engine busy: index
#: builds then leave the callers a core (`index._faiss.build_threads`).
BUSY_WINDOW = 0.05
_DATA_REQUESTS = frozenset({rq.Insert, rq.Delete, rq.Query, rq.Search, rq.HybridSearch})

#: How much lower the maintenance thread runs than the callers' threads (Linux niceness).
BACKGROUND_NICENESS = 10


def _yield_to_callers(busy: Callable[[], bool]) -> None:
    """Lower the maintenance thread's priority, and with it that of the faiss threads it starts.

    Index builds, merges and segment files then take the cores only when callers'
    reads and writes leave them idle, so an insert that seals a segment does not
    slow the next thousand inserts down while the segment's index is built.
    The files it writes also pause between steps while callers are busy.
    """
    pace_while(busy)
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICENESS))
    except (AttributeError, OSError):  # not Linux, or not allowed: the thread keeps the callers' priority
        log.debug("could not lower the maintenance thread's priority")


class Engine:
    """A Heron database rooted at a directory. Thread-safe."""

    #: The process that opened this engine, once a fork made it unusable here (see the module docstring).
    forked_from: int | None = None

    def __init__(self, path: str, *, seal_rows: int | None = None) -> None:
        detach_interrupt_check()
        idle_seconds, idle_rows = idle_seal_settings()  # a malformed setting fails before anything opens
        fresh_rows, fresh_workers = interim_rows(), interim_workers()
        self.dir = DataDir(path)
        try:
            self.catalog = Catalog(self.dir.catalog_path, data_left=lambda: data_left(self.dir.path))
        except Exception:
            self.dir.close()
            raise
        try:
            self.inserts = InsertLog(
                self.dir.insert_log_path, self.catalog.retired(), names=self.catalog.collection_names()
            )
        except Exception:
            self.catalog.close()
            self.dir.close()
            raise
        try:
            top_segment = reconcile(self.dir.path, self.catalog, self.inserts)
        except Exception:
            self.inserts.close()
            self.catalog.close()
            self.dir.close()
            raise
        self.seal_rows = seal_rows or int(os.environ.get("HERON_SEAL_ROWS", "65536"))
        #: Serialises changes to names shared by collections (databases, collection names,
        #: aliases) and guards the set of pending background tasks.
        self.lock = threading.RLock()
        self._seq_lock = threading.Lock()
        self._seq = max(self.catalog.max_seq(), self.inserts.max_seq())
        self.inserts.prepare(self._seq + 1)
        prefault.start()
        self._next_segment = max(self.catalog.last_id("segments"), top_segment)  # ids are never reused
        self._auto_id = 0
        self._last_call = 0.0
        #: Set from the start of `close` (or by an owner about to close): background work that the next
        #: open redoes (index builds) stops instead of running to its end.
        self.closing = False
        #: Progress of index builds, merges, flushes and closing (`heron.engine._progress`); set
        #: ``progress.callback`` to receive each step.
        self.progress = ProgressReporter()
        self.background = Pool(
            max_workers=1, thread_name_prefix="heron-maint", initializer=_yield_to_callers, initargs=(self.busy,),
            after_task=_trim_after,
        )
        #: Background tasks not finished, with the collection each works on (its first argument), if any.
        self._pending: dict[Future[Any], Collection | None] = {}
        self.collections: dict[tuple[str, str], Collection] = {}
        self.catalog_ops = CatalogOps(self)
        self.writer = Writer(self)
        self.maintenance = Maintenance(self)
        self.reader = Reader(self)
        self.resource_groups = ResourceGroups(self)
        self.schema_ops = SchemaOps(self)
        self.snapshots = Snapshots(self)
        self.segment_info = SegmentInfo(self)
        #: Files kept for analyzers: ``file_resources.path(name)`` is a resource's copy.
        self.file_resources = FileResources(self)
        self.function_ops = FunctionOps(self)
        #: Bulk import jobs (`heron.engine._import`).
        self.imports = Imports(self)
        #: Request type -> the one method that answers it (see `_dispatch_table`).
        self.handlers: Mapping[type, Callable[[Any], Any]] = self._dispatch_table()
        from .filter._parser import warm_up
        from .filter._warm import exercise

        warm_up(then=exercise)  # the filter parser and first uses of the filter path, on another thread
        self.closed = False
        #: Names of the databases, as the catalog holds them.
        self.databases = {n for (n,) in self.catalog.rows("SELECT name FROM databases")}
        #: Indexes fresh rows for search until their segment's own index is built (`_interim`); before recovery,
        #: whose index builds wait for it.
        self.interim = InterimIndexer(self, fresh_rows, fresh_workers)
        Recovery(self).load_catalog()
        roll_back(self.dir.path, self.execute)  # import jobs a crash cut short leave no rows
        #: Seals growing segments that took no rows for a while (`_auto_seal`); asks `interim` to keep up.
        self.idle_sealer = IdleSealer(self, idle_seconds, idle_rows)
        self.idle_sealer.start()

    def _dispatch_table(self) -> dict[type, Callable[[Any], Any]]:
        """Every request `execute` runs, each with the method that answers it."""
        c, w, m, r = self.catalog_ops, self.writer, self.maintenance, self.reader
        o, sn, si, fr = self.schema_ops, self.snapshots, self.segment_info, self.file_resources
        return {
            rq.CreateDatabase: c.op_create_database,
            rq.DropDatabase: c.op_drop_database,
            rq.ListDatabases: c.op_list_databases,
            rq.DescribeDatabase: c.op_describe_database,
            rq.CreateCollection: c.op_create_collection,
            rq.DropCollection: c.op_drop_collection,
            rq.HasCollection: c.op_has_collection,
            rq.ListCollections: c.op_list_collections,
            rq.DescribeCollection: c.op_describe_collection,
            rq.RenameCollection: c.op_rename_collection,
            rq.GetCollectionStats: c.op_get_collection_stats,
            rq.AlterCollectionProperties: c.op_alter_collection_properties,
            rq.CreatePartition: c.op_create_partition,
            rq.DropPartition: c.op_drop_partition,
            rq.HasPartition: c.op_has_partition,
            rq.ListPartitions: c.op_list_partitions,
            rq.GetPartitionStats: c.op_get_partition_stats,
            rq.LoadCollection: c.op_load_collection,
            rq.ReleaseCollection: c.op_release_collection,
            rq.LoadPartitions: c.op_load_partitions,
            rq.ReleasePartitions: c.op_release_partitions,
            rq.GetLoadState: c.op_get_load_state,
            rq.GetServerVersion: self.resource_groups.op_server_version,
            rq.CreateIndex: c.op_create_index,
            rq.DropIndex: c.op_drop_index,
            rq.ListIndexes: c.op_list_indexes,
            rq.DescribeIndex: c.op_describe_index,
            rq.CreateAlias: c.op_create_alias,
            rq.DropAlias: c.op_drop_alias,
            rq.AlterAlias: c.op_alter_alias,
            rq.DescribeAlias: c.op_describe_alias,
            rq.ListAliases: c.op_list_aliases,
            rq.Insert: w.op_insert,
            rq.Delete: w.op_delete,
            rq.Flush: w.op_flush,
            rq.TruncateCollection: w.op_truncate_collection,
            rq.Compact: m.op_compact,
            rq.Query: r.op_query,
            # Concurrent searches that differ only in their query vectors run as one call.
            rq.Search: by_ids(self, r, aggregating(self, r, highlighting(self, r, SearchCoalescer(r.op_search).search))),
            rq.HybridSearch: r.op_hybrid_search,
            rq.AlterDatabase: c.op_alter_database,
            # Users, roles and privileges: nobody logs in to an embedded engine (see _access).
            **{t: partial(run_access, NO_AUTH) for t in ACCESS_REQUESTS},
            rq.CreateResourceGroup: self.resource_groups.op_create,
            rq.DropResourceGroup: self.resource_groups.op_drop,
            rq.UpdateResourceGroups: self.resource_groups.op_update,
            rq.ListResourceGroups: self.resource_groups.op_list,
            rq.DescribeResourceGroup: self.resource_groups.op_describe,
            rq.TransferReplica: self.resource_groups.op_transfer_replica,
            rq.AddCollectionField: o.op_add_collection_field,
            rq.AddCollectionStructField: o.op_add_collection_struct_field,
            rq.AlterCollectionField: o.op_alter_collection_field,
            rq.DropCollectionField: o.op_drop_collection_field,
            rq.AlterIndexProperties: o.op_alter_index_properties,
            rq.CreateSnapshot: sn.op_create_snapshot,
            rq.DropSnapshot: sn.op_drop_snapshot,
            rq.ListSnapshots: sn.op_list_snapshots,
            rq.DescribeSnapshot: sn.op_describe_snapshot,
            rq.RestoreSnapshot: sn.op_restore_snapshot,
            rq.GetRestoreSnapshotState: sn.op_get_restore_snapshot_state,
            rq.ListRestoreSnapshotJobs: sn.op_list_restore_snapshot_jobs,
            rq.PinSnapshotData: sn.op_pin_snapshot_data,
            rq.UnpinSnapshotData: sn.op_unpin_snapshot_data,
            rq.FlushAll: si.op_flush_all,
            rq.GetFlushAllState: si.op_get_flush_all_state,
            rq.ListSegments: si.op_list_segments,
            rq.ListLoadedSegments: si.op_list_loaded_segments,
            rq.AddFileResource: fr.op_add_file_resource,
            rq.RemoveFileResource: fr.op_remove_file_resource,
            rq.ListFileResources: fr.op_list_file_resources,
            rq.AddCollectionFunction: self.function_ops.op_add_collection_function,
            rq.AlterCollectionFunction: self.function_ops.op_alter_collection_function,
            rq.DropCollectionFunction: self.function_ops.op_drop_collection_function,
            rq.RunAnalyzer: self.function_ops.op_run_analyzer,
            rq.ImportFiles: self.imports.op_import,
            rq.GetImportProgress: self.imports.op_progress,
            rq.ListImports: self.imports.op_list,
        }

    # -- plumbing ------------------------------------------------------------------
    def next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    @property
    def last_seq(self) -> int:
        """The sequence number most recently handed out (or recovered)."""
        return self._seq

    def next_segment_id(self) -> int:
        with self._seq_lock:
            self._next_segment += 1
            return self._next_segment

    def reserve_auto_ids(self, n: int) -> int:
        """The first of ``n`` consecutive auto_id keys that no earlier call of this engine handed out.

        Keys start from the clock (milliseconds shifted left by 18 bits), so
        they also stay above those handed out before the engine was opened.
        """
        with self._seq_lock:
            base = max(int(time.time() * 1000) << 18, self._auto_id)
            self._auto_id = base + n
        return base

    def submit(self, fn: Any, *args: Any) -> None:
        """Run ``fn(*args)`` on the background thread (skipped quietly once the engine is closing).

        A task whose first argument is a `Collection` works on it: `settle` stops or awaits it.
        """
        try:
            fut = self.background.submit(fn, *args)
        except RuntimeError:
            if self.closed:  # follow-up work of a task finishing during close: derived data, redone on open
                log.debug("engine closing: skipped %s", getattr(fn, "__name__", fn))
                return
            raise
        with self.lock:
            self._pending[fut] = args[0] if args and isinstance(args[0], Collection) else None
        fut.add_done_callback(self._done)

    def submit_on(self, fn: Any, coll: Collection, *args: Any) -> None:
        """`submit` ``fn(coll, *args)`` whose last argument is a segment, held weakly until the task runs.

        Queued behind other work (a bulk load's persists), a task holding its
        segment would keep one merged or compacted away meanwhile, with its
        index, until the queue reaches it; such a task is skipped instead.
        """
        *rest, seg = args
        self.submit(_call_if_alive, coll, fn, rest, weakref.ref(seg))

    def _done(self, fut: Future[Any]) -> None:
        with self.lock:
            self._pending.pop(fut, None)

    def settle(self, coll: Collection) -> None:
        """Cancel the queued background tasks on ``coll`` and wait for its running ones (and what they queue).

        For a collection being dropped (its tasks see ``dropped`` and stop early): once this returns, none
        of them touches its files. The caller must not hold `lock` or the collection's write lock.
        """
        while True:
            with self.lock:
                mine = [f for f, c in self._pending.items() if c is coll]
            if not mine:
                return
            for f in mine:
                f.cancel()
            wait(mine)

    def busy(self) -> bool:
        """Whether a data request came in during the last `BUSY_WINDOW` seconds (background work then takes less)."""
        return time.monotonic() - self._last_call < BUSY_WINDOW

    def wait_background(self) -> None:
        """Return once every background task, including those submitted meanwhile, has finished."""
        while True:
            with self.lock:
                pending = list(self._pending)
            if not pending:
                return
            wait(pending)
            for f in pending:
                if not f.cancelled():  # a dropped collection's task (`settle`)
                    f.result()

    def execute(self, request: Any) -> Any:
        """Run one request (see `heron._requests`) and return its result."""
        if self.closed:
            raise self._closed_error()
        kind = type(request)
        if kind in _DATA_REQUESTS:
            self._last_call = time.monotonic()
        handler = self.handlers.get(kind)
        if handler is None:
            raise ParamError(f"unknown request {kind.__name__}")
        return handler(request)

    def _closed_error(self) -> HeronError:
        if self.forked_from is None:
            return HeronError("the engine is closed")
        return HeronError(
            f"data directory {self.dir.path!r} was opened by process {self.forked_from} before a fork; "
            "a forked child cannot use its engine: open the client in the child after the fork, or use a server"
        )

    def close(self) -> None:
        """Finish background work and release files and the directory lock (nothing, in a forked child).

        Index builds and merges stop rather than run to their end (derived data: the next open builds
        the indexes, and both segments of a merge stay); a sealed segment's file being written finishes.
        """
        if self.closed:
            return
        self.closed = self.closing = True
        sealer = getattr(self, "idle_sealer", None)  # absent in an engine whose opening failed
        if hasattr(self, "imports"):
            self.imports.stop()  # a running import job stops at its next call; the next open rolls it back
        if sealer is not None:
            sealer.stop()
            self.interim.stop()
        pending = len(self._pending)  # no lock: a forked child's copy of it may be held by a thread it lacks
        self.progress.report("close", "", 0, pending + 1, f"{pending} background tasks to finish or stop")
        self.background.shutdown(wait=True)
        self.writer.close()
        self.inserts.close()
        self.catalog.close()
        self.dir.close()
        self.progress.report("close", "", pending + 1, pending + 1, "closed")

    # -- name resolution -------------------------------------------------------------
    def database(self, db_name: str) -> str:
        """The database ``db_name`` names ("" is "default"); `DatabaseNotFoundError` if there is none."""
        db = db_name or "default"
        if db not in self.databases:
            raise DatabaseNotFoundError(f"database not found[database={db}]: database {db!r} does not exist")
        return db

    def collection(self, db_name: str, name: str) -> Collection:
        """The collection ``name`` (or alias) names in the database; `CollectionNotFoundError` if none.

        `CorruptionError` if a file of the collection is damaged (dropping it still works).
        """
        db = self.database(db_name)
        coll = self.collections.get((db, name))
        if coll is None:
            row = self.catalog.rows("SELECT collection_id FROM aliases WHERE db=? AND alias=?", (db, name))
            if row:
                coll = next((c for c in self.collections.values() if c.id == row[0][0]), None)
        if coll is None:
            raise CollectionNotFoundError(
                f"collection not found[database={db}][collection={name}]: collection {name!r} does not exist")
        coll.check_available()
        return coll


# -- sharing per directory -----------------------------------------------------------

_registry: dict[str, tuple[Engine, int]] = {}
_registry_lock = threading.Lock()
#: Engines this process inherited through a fork: never used, never closed, never freed (see below).
_inherited: list[Engine] = []


def open_engine(path: str) -> Engine:
    """The engine of ``path``, shared by every client of this process that opens it.

    Raises `DataDirLockedError` if another process holds the directory, the
    parent included when this process is a forked child of it.
    """
    key = os.path.realpath(path)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None or entry[0].closed:
            try:
                engine = Engine(key)
            except DataDirLockedError as exc:
                inherited = next((e for e in _inherited if e.dir.path == key), None)
                if inherited is None:
                    raise
                raise DataDirLockedError(
                    f"data directory {key!r} is held by process {inherited.forked_from}, which forked this "
                    "one; open it in one process only (open clients after forking, or use a server)"
                ) from exc
            _registry[key] = (engine, 1)
            return engine
        _registry[key] = (entry[0], entry[1] + 1)
        return entry[0]


def release_engine(engine: Engine) -> None:
    """Drop one reference; the last one closes the engine and its directory lock."""
    key = os.path.realpath(engine.dir.path)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None or entry[0] is not engine:
            engine.close()
            return
        if entry[1] <= 1:
            del _registry[key]
            engine.close()
        else:
            _registry[key] = (engine, entry[1] - 1)


#: Longest wait at a program's end for the engines it left open to close (`_close_at_exit`).
EXIT_WAIT_SECONDS = 60.0


@atexit.register
def _close_at_exit() -> None:
    """Close the engines that clients left open, as ``close`` would, once the program's other threads are done.

    Runs after every non-daemon thread has ended (`_pool`): the asyncio workers' queued calls finish
    first, then each engine stops its sealer, finishes the background work under way (index builds stop:
    the next open builds them) and releases its files. A program that never closes its client thus ends
    as one that does, with nothing half done; the rows it wrote were safe in the insert log either way.
    """
    from .._workers import finish_at_exit

    finish_at_exit()
    with _registry_lock:
        engines = [engine for engine, _ in _registry.values()]

    def close_all() -> None:
        for engine in engines:
            try:
                engine.close()
            except Exception:  # the next engine still closes; what it wrote is in its insert log
                log.exception("closing %r at exit failed", engine.dir.path)

    # On a thread of its own, waited for at most EXIT_WAIT_SECONDS: a program's end never hangs on
    # background work (what is left undone is redone at the next open, as after a crash).
    closer = threading.Thread(target=close_all, name="heron-exit", daemon=True)
    try:
        closer.start()
    except RuntimeError:  # no new threads this late in the interpreter's exit: close them here
        close_all()
        return
    closer.join(EXIT_WAIT_SECONDS)
    if closer.is_alive():
        log.warning("gave up waiting %s s for background work at exit; the next open finishes it", EXIT_WAIT_SECONDS)


def _after_fork_in_child() -> None:
    """Make every engine inherited from the parent unusable, and keep the child off its files.

    Runs in the child right after ``fork()``, with one thread. Marking the
    engine closed makes `Engine.close` a no-op, so no client or exit handler
    of the child flushes, syncs or closes through it. Two things need more:

    - The directory lock is an ``flock`` on an open file description the
      child shares with the parent. Unlocking it would release the parent's
      lock, and keeping it open would keep the lock alive after the parent
      exits; so the child's descriptor is pointed elsewhere (`DataDir.leave_lock`).
    - Freeing the engine would close its SQLite connection in the child,
      which SQLite forbids for connections opened before a fork (a close may
      checkpoint the parent's write-ahead log and delete it). The engine
      gets one reference that is never dropped, so it is never freed.
    """
    global _registry_lock
    _registry_lock = threading.Lock()  # another thread may have held it at the fork
    parent = os.getppid()
    for engine, _ in list(_registry.values()):
        if engine.closed:
            continue
        engine.forked_from = parent
        engine.closed = True
        engine.dir.leave_lock()
        _inherited.append(engine)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(engine))


os.register_at_fork(after_in_child=_after_fork_in_child)


#: A background task that ran this long (a persist and merge, an index build) is followed by a
#: `trim_heap`, once it let go of the segments it worked on: what they held (a merge's old
#: segments, their interim lists) sits free inside malloc's arenas, still resident, until trimmed.
TRIM_AFTER_SECONDS = 0.5


def _trim_after(seconds: float) -> None:
    if seconds >= TRIM_AFTER_SECONDS:
        prefault.trim_heap()


def _call_if_alive(coll: Collection, fn: Any, args: list[Any], ref: weakref.ref[Any]) -> None:
    seg = ref()
    if seg is not None:
        fn(coll, *args, seg)
