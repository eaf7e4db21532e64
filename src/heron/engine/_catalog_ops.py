"""Catalog operations: databases, collections, partitions, load state, indexes and aliases.

`CatalogOps` answers the requests of `heron._requests` that change or
describe what exists rather than the rows (the engine's dispatch table says
which method answers which request). A change is written to the catalog
before the objects in memory change, so a call that fails there leaves both
as they were. Changes to names shared by collections (databases,
collection names, aliases) hold the engine's ``lock``; changes inside one
collection hold its ``write_lock``.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from .. import _requests as rq
from .._errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    CollectionNotFoundError,
    IndexNotFoundError,
    ParamError,
)
from .._schema import CollectionSchema
from .._types import LoadState
from ._collection import DEFAULT_PARTITION, Collection, Partition
from ._functions_apply import check_functions_build
from ._lite_habits import note_dropped_loaded_partition, note_unindexed
from ._text_ops import check_field_analyzers
from ._zones import check_zone_property, sync_schema_zone
from .index._definitions import IndexDef, normalize_index
from .storage._catalog import dumps

if TYPE_CHECKING:
    from ._engine import Engine

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def _check_name(what: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParamError(f"{what} {name!r} is invalid: expected a letter or '_' then letters, digits or '_'")
    return name


class CatalogOps:
    """The catalog requests of one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.catalog = engine.catalog

    # -- databases -----------------------------------------------------------------------
    def op_create_database(self, r: rq.CreateDatabase) -> None:
        _check_name("database name", r.db_name)
        check_zone_property(r.properties)
        with self.engine.lock:
            if self.catalog.rows("SELECT 1 FROM databases WHERE name=?", (r.db_name,)):
                raise AlreadyExistsError(f"database {r.db_name!r} already exists")
            self.catalog.execute("INSERT INTO databases(name, properties) VALUES (?, ?)",
                                 (r.db_name, dumps(r.properties)))
            self.engine.databases.add(r.db_name)

    def op_drop_database(self, r: rq.DropDatabase) -> None:
        with self.engine.lock:
            db = self.engine.database(r.db_name)
            if db == "default":
                raise ParamError("database 'default' cannot be dropped")
            if any(k[0] == db for k in self.engine.collections):
                raise ParamError(f"database {db!r} still has collections; drop them first")
            self.catalog.execute("DELETE FROM databases WHERE name=?", (db,))
            self.engine.databases.discard(db)

    def op_list_databases(self, r: rq.ListDatabases) -> list[str]:
        return [n for (n,) in self.catalog.rows("SELECT name FROM databases ORDER BY name='default' DESC, name")]

    def op_describe_database(self, r: rq.DescribeDatabase) -> dict[str, Any]:
        db = self.engine.database(r.db_name)
        props = self.catalog.rows("SELECT properties FROM databases WHERE name=?", (db,))[0][0]
        return {"name": db, **json.loads(props)}

    def op_alter_database(self, r: rq.AlterDatabase) -> None:
        """Merge ``properties`` into the database's and remove the ``delete_keys`` (one write, or none)."""
        if r.properties and r.delete_keys:
            raise ParamError("alter_database: give properties to set or keys to delete, not both (as in Milvus)")
        with self.engine.lock:
            db = self.engine.database(r.db_name)
            props = json.loads(self.catalog.rows("SELECT properties FROM databases WHERE name=?", (db,))[0][0])
            props.update(r.properties)
            for key in r.delete_keys:
                props.pop(key, None)
            self.catalog.execute("UPDATE databases SET properties=? WHERE name=?", (dumps(props), db))

    # -- collections ---------------------------------------------------------------------
    def op_create_collection(self, r: rq.CreateCollection) -> None:
        _check_name("collection name", r.collection_name)
        schema = CollectionSchema.from_dict(r.schema)
        schema.validate()
        check_field_analyzers(schema)
        check_zone_property(r.properties)
        schema.assign_field_ids()
        check_functions_build(schema)
        with self.engine.lock:
            db = self.engine.database(r.db_name)
            existing = self.engine.collections.get((db, r.collection_name))
            if existing is not None:
                if existing.schema.to_dict() != schema.to_dict():
                    raise AlreadyExistsError(
                        "create duplicate collection with different parameters, "
                        f"collection: {r.collection_name}", code=1)
                return
            if self.catalog.rows("SELECT 1 FROM aliases WHERE db=? AND alias=?", (db, r.collection_name)):
                raise AlreadyExistsError(f"{r.collection_name!r} is already an alias")
            defs = [normalize_index(schema, spec) for spec in r.index_params]
            # Loaded from the start, with or without indexes, as in Milvus Lite (see _lite_habits).
            loaded = 1
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
                    c.execute("INSERT OR REPLACE INTO indexes(collection_id, index_name, field_name, index_type, "
                              "metric_type, params) VALUES (?,?,?,?,?,?)",
                              (cid, d.index_name, d.field_name, d.index_type, d.metric_type, dumps(d.params)))
            coll = Collection(cid, db, r.collection_name, schema, dict(r.properties), r.consistency_level, created)
            coll.partitions[DEFAULT_PARTITION] = Partition(pid, DEFAULT_PARTITION, bool(loaded))
            coll.indexes = {d.index_name: d for d in defs}
            self.engine.collections[(db, r.collection_name)] = coll

    def op_drop_collection(self, r: rq.DropCollection) -> None:
        with self.engine.lock:
            db = self.engine.database(r.db_name)
            coll = self.engine.collections.get((db, r.collection_name))
            if coll is None:
                return
            with coll.write_lock:
                coll.dropped = True
                seq = self.engine.next_seq()
                with self.catalog.transaction() as c:
                    for table, col in (("collections", "id"), ("partitions", "collection_id"),
                                       ("indexes", "collection_id"), ("aliases", "collection_id"),
                                       ("segments", "collection_id"), ("log", "collection_id")):
                        c.execute(f"DELETE FROM {table} WHERE {col}=?", (coll.id,))
                    self.catalog.retire(c, coll.id, 0, 0, seq)
                self.engine.inserts.retire(coll.id, 0, 0, seq)
                coll.retire_segments()
                del self.engine.collections[(db, r.collection_name)]
        # a segment or index file being written now would fail once the directory is gone (a false disk alarm)
        self.engine.settle(coll)
        self.engine.dir.remove_collection(coll.id)
        self.engine.snapshots.remove_collection(coll)

    def op_has_collection(self, r: rq.HasCollection) -> bool:
        try:
            self.engine.collection(r.db_name, r.collection_name)
        except CollectionNotFoundError:
            return False
        return True

    def op_list_collections(self, r: rq.ListCollections) -> list[str]:
        db = self.engine.database(r.db_name)
        return sorted(n for (d, n) in self.engine.collections if d == db)

    def op_describe_collection(self, r: rq.DescribeCollection) -> dict[str, Any]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        d = coll.schema.to_dict()
        aliases = [a for (a,) in self.catalog.rows("SELECT alias FROM aliases WHERE collection_id=?", (coll.id,))]
        return {
            "collection_name": coll.name,
            "auto_id": d["auto_id"],
            "num_shards": 1,
            "description": d["description"],
            "fields": d["fields"],
            "functions": d.get("functions", []),
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
        with self.engine.lock:
            coll = self.engine.collection(r.db_name, r.old_name)
            target = self.engine.database(r.target_db or coll.db)
            if (target, r.new_name) in self.engine.collections:
                raise AlreadyExistsError(f"collection {r.new_name!r} already exists in database {target!r}")
            self.catalog.execute("UPDATE collections SET db=?, name=? WHERE id=?", (target, r.new_name, coll.id))
            del self.engine.collections[(coll.db, coll.name)]
            coll.db, coll.name = target, r.new_name
            self.engine.collections[(target, r.new_name)] = coll

    def op_get_collection_stats(self, r: rq.GetCollectionStats) -> dict[str, Any]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        return {"row_count": coll.num_rows()}

    def op_alter_collection_properties(self, r: rq.AlterCollectionProperties) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        check_zone_property(r.properties)
        with coll.write_lock:
            coll.properties.update(r.properties)
            for key in r.delete_keys:
                coll.properties.pop(key, None)
            sync_schema_zone(coll)
            self.catalog.execute("UPDATE collections SET properties=? WHERE id=?", (dumps(coll.properties), coll.id))

    # -- partitions ----------------------------------------------------------------------
    def op_create_partition(self, r: rq.CreatePartition) -> None:
        _check_name("partition name", r.partition_name)
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            if r.partition_name in coll.partitions:
                return  # Milvus accepts a partition created again and changes nothing
            cur = self.catalog.execute(
                "INSERT INTO partitions(collection_id, name, loaded) VALUES (?, ?, ?)",
                (coll.id, r.partition_name, int(coll.loaded)),
            )
            coll.partitions[r.partition_name] = Partition(int(cur.lastrowid or 0), r.partition_name, coll.loaded)

    def op_drop_partition(self, r: rq.DropPartition) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        if r.partition_name == DEFAULT_PARTITION:
            raise ParamError("the default partition '_default' cannot be dropped")
        with coll.write_lock:
            p = coll.partition(r.partition_name)
            if p.loaded:
                note_dropped_loaded_partition(coll, p.name)
            self.engine.writer.drop_partition_data(coll, p)
            del coll.partitions[r.partition_name]

    def op_has_partition(self, r: rq.HasPartition) -> bool:
        return r.partition_name in self.engine.collection(r.db_name, r.collection_name).partitions

    def op_list_partitions(self, r: rq.ListPartitions) -> list[str]:
        return list(self.engine.collection(r.db_name, r.collection_name).partitions)

    def op_get_partition_stats(self, r: rq.GetPartitionStats) -> dict[str, Any]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        p = coll.partition(r.partition_name)
        return {"row_count": coll.snapshot([p]).count()}

    # -- load state ----------------------------------------------------------------------
    def _set_loaded(self, coll: Collection, parts: list[Partition], loaded: bool) -> None:
        with coll.write_lock:
            with self.catalog.transaction() as c:
                for p in parts:
                    c.execute("UPDATE partitions SET loaded=? WHERE id=?", (int(loaded), p.id))
                c.execute("UPDATE collections SET loaded=? WHERE id=?", (int(coll.loaded or loaded), coll.id))
            for p in parts:
                p.loaded = loaded

    def op_load_collection(self, r: rq.LoadCollection) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        note_unindexed(coll, "load_collection")
        self._set_loaded(coll, list(coll.partitions.values()), True)

    def op_release_collection(self, r: rq.ReleaseCollection) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        self._set_loaded(coll, list(coll.partitions.values()), False)

    def op_load_partitions(self, r: rq.LoadPartitions) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        note_unindexed(coll, "load_partitions")
        self._set_loaded(coll, [coll.partition(n) for n in r.partition_names], True)

    def op_release_partitions(self, r: rq.ReleasePartitions) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        self._set_loaded(coll, [coll.partition(n) for n in r.partition_names], False)

    def op_get_load_state(self, r: rq.GetLoadState) -> dict[str, Any]:
        try:
            coll = self.engine.collection(r.db_name, r.collection_name)
        except CollectionNotFoundError:
            return {"state": LoadState.NotExist}
        parts = [coll.partition(n) for n in r.partition_names] if r.partition_names else list(coll.partitions.values())
        loaded = all(p.loaded for p in parts) if r.partition_names else coll.loaded
        return {"state": LoadState.Loaded if loaded else LoadState.NotLoad}

    # -- indexes -------------------------------------------------------------------------
    def op_create_index(self, r: rq.CreateIndex) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
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
                        "INSERT OR REPLACE INTO indexes(collection_id, index_name, field_name, index_type, "
                        "metric_type, params) VALUES (?,?,?,?,?,?)",
                        (coll.id, d.index_name, d.field_name, d.index_type, d.metric_type, dumps(d.params)),
                    )
            for d in defs:
                coll.indexes[d.index_name] = d
        self.engine.maintenance.index_sealed(coll)

    def _index(self, coll: Collection, name: str) -> IndexDef:
        d = coll.indexes.get(name) or next((x for x in coll.indexes.values() if x.field_name == name), None)
        if d is None:
            raise IndexNotFoundError(
                f"index not found[indexName={name}]: collection {coll.name!r} has no index {name!r}")
        return d

    def op_drop_index(self, r: rq.DropIndex) -> None:
        coll = self.engine.collection(r.db_name, r.collection_name)
        with coll.write_lock:
            d = self._index(coll, r.index_name)
            field = coll.schema.field(d.field_name)
            if coll.loaded and field is not None and field.dtype.is_vector:
                # Milvus and Milvus Lite both refuse it; a scalar index may go while loaded, as in Milvus.
                # Milvus's own error here carries no specific code: 65535, its "unexpected" one.
                raise ParamError(f"index cannot be dropped, collection is loaded, please release it first "
                                 f"[collection={coll.name}][index={d.index_name}]: "
                                 f"release_collection({coll.name!r}) first", code=65535)
            self.catalog.execute("DELETE FROM indexes WHERE collection_id=? AND index_name=?", (coll.id, d.index_name))
            del coll.indexes[d.index_name]
            for p in coll.partitions.values():
                for s in p.sealed:
                    s.vindex.pop(d.field_name, None)
                    s.sindex.pop(d.field_name, None)

    def op_list_indexes(self, r: rq.ListIndexes) -> list[str]:
        coll = self.engine.collection(r.db_name, r.collection_name)
        return [d.index_name for d in coll.indexes.values() if not r.field_name or d.field_name == r.field_name]

    def op_describe_index(self, r: rq.DescribeIndex) -> dict[str, Any]:
        """The index's definition and build progress.

        Rows of a small growing segment count as indexed: they are searched by
        an exact scan from the moment they are written, which costs no more
        than an index. A growing segment large enough to be sealed once idle
        (`_auto_seal`) and a sealed segment are pending until the vector index
        of their rows is built (in the background, after sealing); ``state``
        is InProgress while any are, Failed (with ``index_state_fail_reason``)
        if a build raised, Finished otherwise.
        """
        coll = self.engine.collection(r.db_name, r.collection_name)
        d = self._index(coll, r.index_name)
        f = coll.schema.field(d.field_name)
        vector = f is not None and f.dtype.is_vector
        failed = self.engine.maintenance.failed_builds
        total = pending = 0
        reason = ""
        for p in coll.partitions.values():
            for s in p.segments():
                total += s.n
                built = s.vindex.get(d.field_name)
                waiting = s.sealed or self.engine.idle_sealer.will_seal(s)
                if not vector or not waiting or (built is not None and built[0] == d.signature):
                    continue
                pending += s.n
                reason = reason or failed.get((s.id, d.field_name), "")
        out = {
            **d.params,
            **d.properties,
            "index_type": d.index_type,
            "metric_type": d.metric_type,
            "field_name": d.field_name,
            "index_name": d.index_name,
            "total_rows": total,
            "indexed_rows": total - pending,
            "pending_index_rows": pending,
            "state": "Failed" if reason else ("InProgress" if pending else "Finished"),
        }
        if reason:
            out["index_state_fail_reason"] = reason
        return out

    # -- aliases -------------------------------------------------------------------------
    def op_create_alias(self, r: rq.CreateAlias) -> None:
        _check_name("alias", r.alias)
        with self.engine.lock:
            coll = self.engine.collection(r.db_name, r.collection_name)
            if (coll.db, r.alias) in self.engine.collections:
                raise AlreadyExistsError(
                    f"alias and collection name conflict[database={coll.db}][alias={r.alias}]", code=1601)
            row = self.catalog.rows("SELECT collection_id FROM aliases WHERE db=? AND alias=?", (coll.db, r.alias))
            if row and row[0][0] == coll.id:
                return  # the same alias again: Milvus accepts it and changes nothing
            if row:
                other = next((c.name for c in self.engine.collections.values() if c.id == row[0][0]), "?")
                raise AlreadyExistsError(f"alias already exist[database={coll.db}][alias={r.alias}]: "
                                         f"{r.alias} is alias to another collection: {other}", code=1602)
            self.catalog.execute("INSERT INTO aliases(db, alias, collection_id) VALUES (?,?,?)",
                                 (coll.db, r.alias, coll.id))

    def op_drop_alias(self, r: rq.DropAlias) -> None:
        db = self.engine.database(r.db_name)
        self.catalog.execute("DELETE FROM aliases WHERE db=? AND alias=?", (db, r.alias))

    def op_alter_alias(self, r: rq.AlterAlias) -> None:
        with self.engine.lock:
            coll = self.engine.collection(r.db_name, r.collection_name)
            if not self.catalog.rows("SELECT 1 FROM aliases WHERE db=? AND alias=?", (coll.db, r.alias)):
                raise AliasNotFoundError(
                    f"alias not found[database={coll.db}][alias={r.alias}]: alias {r.alias!r} does not exist")
            self.catalog.execute("UPDATE aliases SET collection_id=? WHERE db=? AND alias=?", (coll.id, coll.db, r.alias))

    def op_describe_alias(self, r: rq.DescribeAlias) -> dict[str, Any]:
        db = self.engine.database(r.db_name)
        row = self.catalog.rows("SELECT collection_id FROM aliases WHERE db=? AND alias=?", (db, r.alias))
        if not row:
            raise AliasNotFoundError(f"alias not found[database={db}][alias={r.alias}]: alias {r.alias!r} does not exist")
        coll = next(c for c in self.engine.collections.values() if c.id == row[0][0])
        return {"alias": r.alias, "collection_name": coll.name, "db_name": db}

    def op_list_aliases(self, r: rq.ListAliases) -> dict[str, Any]:
        db = self.engine.database(r.db_name)
        if r.collection_name:
            coll = self.engine.collection(db, r.collection_name)
            rows = self.catalog.rows("SELECT alias FROM aliases WHERE collection_id=?", (coll.id,))
        else:
            rows = self.catalog.rows("SELECT alias FROM aliases WHERE db=?", (db,))
        return {"aliases": sorted(a for (a,) in rows), "collection_name": r.collection_name, "db_name": db}
