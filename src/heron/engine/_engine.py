"""The engine: one data directory, its catalog, and the dispatcher of requests.

`Engine.execute(request)` is the single entry point used by the embedded
transport and by the server. Engines are shared per directory within a
process (`open_engine` / `release_engine`), and a directory is held by one
process at a time.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .. import _requests as rq
from .._errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    CollectionNotFoundError,
    DatabaseNotFoundError,
    HeronError,
    IndexNotFoundError,
    ParamError,
)
from .._schema import CollectionSchema
from .._types import LoadState
from ._coalesce import SearchCoalescer
from ._collection import DEFAULT_PARTITION, Collection, Partition
from ._reads import Reader
from ._writes import Writer
from .index._definitions import IndexDef, normalize_index
from .index._faiss import detach_interrupt_check
from .storage import _prefault as prefault
from .storage._catalog import Catalog, dumps
from .storage._files import DataDir, pace_while
from .storage._insert_log import InsertLog

log = logging.getLogger("heron.engine")
#: A data request (`_DATA_REQUESTS`) within this many seconds makes the engine busy: index
#: builds then use one thread.
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


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParamError(f"{what} {name!r} is invalid: expected a letter or '_' then letters, digits or '_'")
    return name


@functools.cache
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Engine:
    """A Heron database rooted at a directory. Thread-safe."""

    def __init__(self, path: str, *, seal_rows: int | None = None) -> None:
        detach_interrupt_check()
        self.dir = DataDir(path)
        try:
            self.catalog = Catalog(self.dir.catalog_path)
        except Exception:
            self.dir.close()
            raise
        try:
            self.inserts = InsertLog(self.dir.insert_log_path, self.catalog.retired())
        except Exception:
            self.catalog.close()
            self.dir.close()
            raise
        self.seal_rows = seal_rows or int(os.environ.get("HERON_SEAL_ROWS", "65536"))
        self._lock = threading.RLock()
        self._seq_lock = threading.Lock()
        self._seq = max(self.catalog.max_seq(), self.inserts.max_seq())
        self.inserts.prepare(self._seq + 1)
        prefault.start()
        self._next_segment = 1 + self.catalog.rows("SELECT COALESCE(MAX(id), 0) FROM segments")[0][0]
        self._last_call = 0.0
        self.background = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="heron-maint", initializer=_yield_to_callers, initargs=(self.busy,)
        )
        self._pending: set[Future[Any]] = set()
        self.collections: dict[tuple[str, str], Collection] = {}
        self.writer = Writer(self)
        self.reader = Reader(self)
        self._routes: dict[type, Any] = {rq.Search: SearchCoalescer(self.reader.op_search).search}
        from .filter._parser import warm_up
        from .filter._warm import exercise

        warm_up(then=exercise)  # the filter parser and first uses of the filter path, on another thread
        self.closed = False
        self._databases = {n for (n,) in self.catalog.rows("SELECT name FROM databases")}
        self._load_catalog()

    # -- plumbing ------------------------------------------------------------------
    def next_seq(self) -> int:
        with self._seq_lock:
            self._seq += 1
            return self._seq

    def next_segment_id(self) -> int:
        with self._seq_lock:
            self._next_segment += 1
            return self._next_segment

    def submit(self, fn: Any, *args: Any) -> None:
        try:
            fut = self.background.submit(fn, *args)
        except RuntimeError:
            if self.closed:  # follow-up work of a task finishing during close: derived data, redone on open
                log.debug("engine closing: skipped %s", getattr(fn, "__name__", fn))
                return
            raise
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)

    def busy(self) -> bool:
        """Whether a data request came in during the last `BUSY_WINDOW` seconds (background work then takes less)."""
        return time.monotonic() - self._last_call < BUSY_WINDOW

    def wait_background(self) -> None:
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            for f in pending:
                f.result()

    def execute(self, request: Any) -> Any:
        """Run one request (see `heron._requests`) and return its result."""
        if self.closed:
            raise HeronError("the engine is closed")
        if type(request) in _DATA_REQUESTS:
            self._last_call = time.monotonic()
        fn = self._routes.get(type(request))
        if fn is None:
            name = _snake(type(request).__name__)
            for target in (self, self.writer, self.reader):
                fn = getattr(target, "op_" + name, None)
                if fn is not None:
                    self._routes[type(request)] = fn
                    break
            else:
                raise ParamError(f"unknown request {type(request).__name__}")
        return fn(request)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.background.shutdown(wait=True)
        self.writer.close()
        self.inserts.close()
        self.catalog.close()
        self.dir.close()

    # -- recovery ------------------------------------------------------------------
    def _load_catalog(self) -> None:
        for cid, db, name, schema, props, consistency, _loaded, created in self.catalog.rows(
            "SELECT id, db, name, schema, properties, consistency, loaded, created FROM collections"
        ):
            coll = Collection(cid, db, name, CollectionSchema.from_dict(json.loads(schema)),
                              json.loads(props), consistency, created)
            for pid, pname, ploaded in self.catalog.rows(
                "SELECT id, name, loaded FROM partitions WHERE collection_id=? ORDER BY id", (cid,)
            ):
                coll.partitions[pname] = Partition(pid, pname, bool(ploaded))
            for iname, field, itype, metric, params in self.catalog.rows(
                "SELECT index_name, field_name, index_type, metric_type, params FROM indexes WHERE collection_id=? "
                "ORDER BY rowid",
                (cid,),
            ):
                coll.indexes[iname] = IndexDef(iname, field, itype, metric, json.loads(params))
            self.collections[(db, name)] = coll
            self.writer.recover(coll)

    # -- name resolution -------------------------------------------------------------
    def _db(self, db_name: str) -> str:
        db = db_name or "default"
        if db not in self._databases:
            raise DatabaseNotFoundError(f"database {db!r} not found")
        return db

    def collection(self, db_name: str, name: str) -> Collection:
        db = self._db(db_name)
        coll = self.collections.get((db, name))
        if coll is None:
            row = self.catalog.rows("SELECT collection_id FROM aliases WHERE db=? AND alias=?", (db, name))
            if row:
                coll = next((c for c in self.collections.values() if c.id == row[0][0]), None)
        if coll is None:
            raise CollectionNotFoundError(f"collection {name!r} not found in database {db!r}")
        return coll

    # -- databases -------------------------------------------------------------------
    def op_create_database(self, r: rq.CreateDatabase) -> None:
        _check_name("database name", r.db_name)
        with self._lock:
            if self.catalog.rows("SELECT 1 FROM databases WHERE name=?", (r.db_name,)):
                raise AlreadyExistsError(f"database {r.db_name!r} already exists")
            self.catalog.execute("INSERT INTO databases(name, properties) VALUES (?, ?)",
                                 (r.db_name, dumps(r.properties)))
            self._databases.add(r.db_name)

    def op_drop_database(self, r: rq.DropDatabase) -> None:
        with self._lock:
            db = self._db(r.db_name)
            if db == "default":
                raise ParamError("database 'default' cannot be dropped")
            if any(k[0] == db for k in self.collections):
                raise ParamError(f"database {db!r} still has collections; drop them first")
            self.catalog.execute("DELETE FROM databases WHERE name=?", (db,))
            self._databases.discard(db)

    def op_list_databases(self, r: rq.ListDatabases) -> list[str]:
        return [n for (n,) in self.catalog.rows("SELECT name FROM databases ORDER BY name='default' DESC, name")]

    def op_describe_database(self, r: rq.DescribeDatabase) -> dict[str, Any]:
        db = self._db(r.db_name)
        props = self.catalog.rows("SELECT properties FROM databases WHERE name=?", (db,))[0][0]
        return {"name": db, **json.loads(props)}

    # -- collections -----------------------------------------------------------------
    def op_create_collection(self, r: rq.CreateCollection) -> None:
        _check_name("collection name", r.collection_name)
        schema = CollectionSchema.from_dict(r.schema)
        schema.validate()
        schema.assign_field_ids()
        with self._lock:
            db = self._db(r.db_name)
            existing = self.collections.get((db, r.collection_name))
            if existing is not None:
                if existing.schema.to_dict() != schema.to_dict():
                    raise AlreadyExistsError(
                        f"collection {r.collection_name!r} already exists with a different schema")
                return
            if self.catalog.rows("SELECT 1 FROM aliases WHERE db=? AND alias=?", (db, r.collection_name)):
                raise AlreadyExistsError(f"{r.collection_name!r} is already an alias")
            defs = [normalize_index(schema, spec) for spec in r.index_params]
            loaded = int(bool(defs))
            created = time.time()
            with self.catalog.transaction() as c:
                cur = c.execute(
                    "INSERT INTO collections(db, name, schema, properties, consistency, loaded, created) "
                    "VALUES (?,?,?,?,?,?,?)",
                    (db, r.collection_name, dumps(schema.to_json_dict()), dumps(r.properties),
                     r.consistency_level, loaded, created),
                )
                cid = int(cur.lastrowid or 0)
                pcur = c.execute("INSERT INTO partitions(collection_id, name, loaded) VALUES (?, ?, ?)",
                                 (cid, DEFAULT_PARTITION, loaded))
                pid = int(pcur.lastrowid or 0)
                for d in defs:
                    c.execute("INSERT OR REPLACE INTO indexes VALUES (?,?,?,?,?,?)",
                              (cid, d.index_name, d.field_name, d.index_type, d.metric_type, dumps(d.params)))
            coll = Collection(cid, db, r.collection_name, schema, dict(r.properties), r.consistency_level, created)
            coll.partitions[DEFAULT_PARTITION] = Partition(pid, DEFAULT_PARTITION, bool(loaded))
            coll.indexes = {d.index_name: d for d in defs}
            self.collections[(db, r.collection_name)] = coll

    def op_drop_collection(self, r: rq.DropCollection) -> None:
        with self._lock:
            db = self._db(r.db_name)
            coll = self.collections.get((db, r.collection_name))
            if coll is None:
                return
            with coll.write_lock:
                coll.dropped = True
                seq = self.next_seq()
                with self.catalog.transaction() as c:
                    for table, col in (("collections", "id"), ("partitions", "collection_id"),
                                       ("indexes", "collection_id"), ("aliases", "collection_id"),
                                       ("segments", "collection_id"), ("log", "collection_id")):
                        c.execute(f"DELETE FROM {table} WHERE {col}=?", (coll.id,))
                    self.catalog.retire(c, coll.id, 0, 0, seq)
                self.inserts.retire(coll.id, 0, 0, seq)
                coll.retire_segments()
                del self.collections[(db, r.collection_name)]
            self.dir.remove_collection(coll.id)

    def op_has_collection(self, r: rq.HasCollection) -> bool:
        try:
            self.collection(r.db_name, r.collection_name)
        except CollectionNotFoundError:
            return False
        return True

    def op_list_collections(self, r: rq.ListCollections) -> list[str]:
        db = self._db(r.db_name)
        return sorted(n for (d, n) in self.collections if d == db)

    def op_describe_collection(self, r: rq.DescribeCollection) -> dict[str, Any]:
        coll = self.collection(r.db_name, r.collection_name)
        d = coll.schema.to_dict()
        aliases = [a for (a,) in self.catalog.rows("SELECT alias FROM aliases WHERE collection_id=?", (coll.id,))]
        return {
            "collection_name": coll.name,
            "auto_id": d["auto_id"],
            "num_shards": 1,
            "description": d["description"],
            "fields": d["fields"],
            "functions": [],
            "aliases": aliases,
            "collection_id": coll.id,
            "consistency_level": {"Strong": 0, "Session": 1, "Bounded": 2, "Eventually": 3}.get(coll.consistency, 2),
            "properties": dict(coll.properties),
            "num_partitions": len(coll.partitions),
            "enable_dynamic_field": d["enable_dynamic_field"],
            "created_timestamp": int(coll.created * 1000) << 18,
            "db_name": coll.db,
        }

    def op_rename_collection(self, r: rq.RenameCollection) -> None:
        _check_name("collection name", r.new_name)
        with self._lock:
            coll = self.collection(r.db_name, r.old_name)
            target = self._db(r.target_db or coll.db)
            if (target, r.new_name) in self.collections:
                raise AlreadyExistsError(f"collection {r.new_name!r} already exists in database {target!r}")
            self.catalog.execute("UPDATE collections SET db=?, name=? WHERE id=?", (target, r.new_name, coll.id))
            del self.collections[(coll.db, coll.name)]
            coll.db, coll.name = target, r.new_name
            self.collections[(target, r.new_name)] = coll

    def op_get_collection_stats(self, r: rq.GetCollectionStats) -> dict[str, Any]:
        coll = self.collection(r.db_name, r.collection_name)
        return {"row_count": coll.num_rows()}

    def op_alter_collection_properties(self, r: rq.AlterCollectionProperties) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            coll.properties.update(r.properties)
            self.catalog.execute("UPDATE collections SET properties=? WHERE id=?", (dumps(coll.properties), coll.id))

    # -- partitions -------------------------------------------------------------------
    def op_create_partition(self, r: rq.CreatePartition) -> None:
        _check_name("partition name", r.partition_name)
        coll = self.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            if r.partition_name in coll.partitions:
                raise AlreadyExistsError(f"partition {r.partition_name!r} already exists in {coll.name!r}")
            cur = self.catalog.execute(
                "INSERT INTO partitions(collection_id, name, loaded) VALUES (?, ?, ?)",
                (coll.id, r.partition_name, int(coll.loaded)),
            )
            coll.partitions[r.partition_name] = Partition(int(cur.lastrowid or 0), r.partition_name, coll.loaded)

    def op_drop_partition(self, r: rq.DropPartition) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        if r.partition_name == DEFAULT_PARTITION:
            raise ParamError("the default partition '_default' cannot be dropped")
        with coll.write_lock:
            p = coll.partition(r.partition_name)
            if p.loaded:
                raise ParamError(f"partition {r.partition_name!r} is loaded; release it before dropping it")
            self.writer.drop_partition_data(coll, p)
            del coll.partitions[r.partition_name]

    def op_has_partition(self, r: rq.HasPartition) -> bool:
        return r.partition_name in self.collection(r.db_name, r.collection_name).partitions

    def op_list_partitions(self, r: rq.ListPartitions) -> list[str]:
        return list(self.collection(r.db_name, r.collection_name).partitions)

    def op_get_partition_stats(self, r: rq.GetPartitionStats) -> dict[str, Any]:
        coll = self.collection(r.db_name, r.collection_name)
        p = coll.partition(r.partition_name)
        snap = coll.snapshot([p])
        return {"row_count": int(sum(v.visible(snap.seq).sum() for _, v in snap.views))}

    # -- load state -------------------------------------------------------------------
    def _set_loaded(self, coll: Collection, parts: list[Partition], loaded: bool) -> None:
        with coll.write_lock:
            with self.catalog.transaction() as c:
                for p in parts:
                    c.execute("UPDATE partitions SET loaded=? WHERE id=?", (int(loaded), p.id))
                c.execute("UPDATE collections SET loaded=? WHERE id=?", (int(coll.loaded or loaded), coll.id))
            for p in parts:
                p.loaded = loaded

    def op_load_collection(self, r: rq.LoadCollection) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        self._set_loaded(coll, list(coll.partitions.values()), True)

    def op_release_collection(self, r: rq.ReleaseCollection) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        self._set_loaded(coll, list(coll.partitions.values()), False)

    def op_load_partitions(self, r: rq.LoadPartitions) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        self._set_loaded(coll, [coll.partition(n) for n in r.partition_names], True)

    def op_release_partitions(self, r: rq.ReleasePartitions) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        self._set_loaded(coll, [coll.partition(n) for n in r.partition_names], False)

    def op_get_load_state(self, r: rq.GetLoadState) -> dict[str, Any]:
        try:
            coll = self.collection(r.db_name, r.collection_name)
        except CollectionNotFoundError:
            return {"state": LoadState.NotExist}
        parts = [coll.partition(n) for n in r.partition_names] if r.partition_names else list(coll.partitions.values())
        loaded = all(p.loaded for p in parts) if r.partition_names else coll.loaded
        return {"state": LoadState.Loaded if loaded else LoadState.NotLoad}

    # -- indexes --------------------------------------------------------------------
    def op_create_index(self, r: rq.CreateIndex) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        defs = [normalize_index(coll.schema, spec) for spec in r.indexes]
        with coll.write_lock:
            for d in defs:
                for other in coll.indexes.values():
                    if other.field_name == d.field_name and other.signature != d.signature:
                        raise ParamError(f"field {d.field_name!r} already has index {other.index_name!r} "
                                         f"({other.index_type}); drop it before creating another")
                    if other.index_name == d.index_name and other.field_name != d.field_name:
                        raise AlreadyExistsError(f"index name {d.index_name!r} is already used on {other.field_name!r}")
            with self.catalog.transaction() as c:
                for d in defs:
                    c.execute(
                        "INSERT OR REPLACE INTO indexes VALUES (?,?,?,?,?,?)",
                        (coll.id, d.index_name, d.field_name, d.index_type, d.metric_type, dumps(d.params)),
                    )
            for d in defs:
                coll.indexes[d.index_name] = d
        self.writer.index_sealed(coll)

    def _index(self, coll: Collection, name: str) -> IndexDef:
        d = coll.indexes.get(name) or next((x for x in coll.indexes.values() if x.field_name == name), None)
        if d is None:
            raise IndexNotFoundError(f"index {name!r} not found on collection {coll.name!r}")
        return d

    def op_drop_index(self, r: rq.DropIndex) -> None:
        coll = self.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            d = self._index(coll, r.index_name)
            self.catalog.execute("DELETE FROM indexes WHERE collection_id=? AND index_name=?", (coll.id, d.index_name))
            del coll.indexes[d.index_name]
            for p in coll.partitions.values():
                for s in p.sealed:
                    s.vindex.pop(d.field_name, None)
                    s.sindex.pop(d.field_name, None)

    def op_list_indexes(self, r: rq.ListIndexes) -> list[str]:
        coll = self.collection(r.db_name, r.collection_name)
        return [d.index_name for d in coll.indexes.values() if not r.field_name or d.field_name == r.field_name]

    def op_describe_index(self, r: rq.DescribeIndex) -> dict[str, Any]:
        coll = self.collection(r.db_name, r.collection_name)
        d = self._index(coll, r.index_name)
        total = indexed = 0
        for p in coll.partitions.values():
            for s in p.segments():
                total += s.n
                if s.sealed and (d.field_name in s.vindex or d.field_name in s.sindex or not
                                 coll.schema.field(d.field_name).dtype.is_vector):  # type: ignore[union-attr]
                    indexed += s.n
        return {
            **{k: v for k, v in d.params.items()},
            "index_type": d.index_type,
            "metric_type": d.metric_type,
            "field_name": d.field_name,
            "index_name": d.index_name,
            "total_rows": total,
            "indexed_rows": indexed,
            "pending_index_rows": total - indexed,
            "state": "Finished",
        }

    # -- aliases --------------------------------------------------------------------
    def op_create_alias(self, r: rq.CreateAlias) -> None:
        _check_name("alias", r.alias)
        with self._lock:
            coll = self.collection(r.db_name, r.collection_name)
            if (coll.db, r.alias) in self.collections:
                raise AlreadyExistsError(f"alias {r.alias!r} is the name of a collection")
            if self.catalog.rows("SELECT 1 FROM aliases WHERE db=? AND alias=?", (coll.db, r.alias)):
                raise AlreadyExistsError(f"alias {r.alias!r} already exists")
            self.catalog.execute("INSERT INTO aliases VALUES (?,?,?)", (coll.db, r.alias, coll.id))

    def op_drop_alias(self, r: rq.DropAlias) -> None:
        db = self._db(r.db_name)
        self.catalog.execute("DELETE FROM aliases WHERE db=? AND alias=?", (db, r.alias))

    def op_alter_alias(self, r: rq.AlterAlias) -> None:
        with self._lock:
            coll = self.collection(r.db_name, r.collection_name)
            if not self.catalog.rows("SELECT 1 FROM aliases WHERE db=? AND alias=?", (coll.db, r.alias)):
                raise AliasNotFoundError(f"alias {r.alias!r} not found")
            self.catalog.execute("UPDATE aliases SET collection_id=? WHERE db=? AND alias=?", (coll.id, coll.db, r.alias))

    def op_describe_alias(self, r: rq.DescribeAlias) -> dict[str, Any]:
        db = self._db(r.db_name)
        row = self.catalog.rows("SELECT collection_id FROM aliases WHERE db=? AND alias=?", (db, r.alias))
        if not row:
            raise AliasNotFoundError(f"alias {r.alias!r} not found")
        coll = next(c for c in self.collections.values() if c.id == row[0][0])
        return {"alias": r.alias, "collection_name": coll.name, "db_name": db}

    def op_list_aliases(self, r: rq.ListAliases) -> dict[str, Any]:
        db = self._db(r.db_name)
        if r.collection_name:
            coll = self.collection(db, r.collection_name)
            rows = self.catalog.rows("SELECT alias FROM aliases WHERE collection_id=?", (coll.id,))
        else:
            rows = self.catalog.rows("SELECT alias FROM aliases WHERE db=?", (db,))
        return {"aliases": sorted(a for (a,) in rows), "collection_name": r.collection_name, "db_name": db}


# -- sharing per directory -----------------------------------------------------------

_registry: dict[str, tuple[Engine, int]] = {}
_registry_lock = threading.Lock()


def open_engine(path: str) -> Engine:
    """The engine of ``path``, shared by every client of this process that opens it."""
    key = os.path.realpath(path)
    with _registry_lock:
        entry = _registry.get(key)
        if entry is None or entry[0].closed:
            engine = Engine(key)
            _registry[key] = (engine, 1)
            return engine
        _registry[key] = (entry[0], entry[1] + 1)
        return entry[0]


def release_engine(engine: Engine) -> None:
    """Drop one reference; the last one closes the engine and its directory lock."""
    key = engine.dir.path
    with _registry_lock:
        entry = _registry.get(os.path.realpath(key))
        if entry is None or entry[0] is not engine:
            engine.close()
            return
        if entry[1] <= 1:
            del _registry[os.path.realpath(key)]
            engine.close()
        else:
            _registry[os.path.realpath(key)] = (engine, entry[1] - 1)
