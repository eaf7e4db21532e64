"""The operations of Heron as frozen request objects.

Every call a client makes becomes exactly one of these objects; the
embedded transport hands it to the engine's dispatcher and the server
decodes the Milvus wire protocol into the same objects, so both paths run
the same engine code. Requests hold already-normalised values: arrays, not
user-facing conveniences. Each request names the database it targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# -- databases ---------------------------------------------------------------


@dataclass(frozen=True)
class CreateDatabase:
    db_name: str
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DropDatabase:
    db_name: str


@dataclass(frozen=True)
class ListDatabases:
    pass


@dataclass(frozen=True)
class DescribeDatabase:
    db_name: str


# -- collections -------------------------------------------------------------


@dataclass(frozen=True)
class CreateCollection:
    db_name: str
    collection_name: str
    schema: dict[str, Any]
    index_params: tuple[dict[str, Any], ...] = ()
    consistency_level: str = "Bounded"
    properties: dict[str, Any] = field(default_factory=dict)
    num_partitions: int = 0


@dataclass(frozen=True)
class DropCollection:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class HasCollection:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class ListCollections:
    db_name: str


@dataclass(frozen=True)
class DescribeCollection:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class RenameCollection:
    db_name: str
    old_name: str
    new_name: str
    target_db: str = ""


@dataclass(frozen=True)
class GetCollectionStats:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class TruncateCollection:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class AlterCollectionProperties:
    """Set ``properties`` on a collection and remove the properties named in ``delete_keys``."""

    db_name: str
    collection_name: str
    properties: dict[str, Any]
    delete_keys: tuple[str, ...] = ()


# -- partitions --------------------------------------------------------------


@dataclass(frozen=True)
class CreatePartition:
    db_name: str
    collection_name: str
    partition_name: str


@dataclass(frozen=True)
class DropPartition:
    db_name: str
    collection_name: str
    partition_name: str


@dataclass(frozen=True)
class HasPartition:
    db_name: str
    collection_name: str
    partition_name: str


@dataclass(frozen=True)
class ListPartitions:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class GetPartitionStats:
    db_name: str
    collection_name: str
    partition_name: str


# -- load state --------------------------------------------------------------


@dataclass(frozen=True)
class LoadCollection:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class ReleaseCollection:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class LoadPartitions:
    db_name: str
    collection_name: str
    partition_names: tuple[str, ...]


@dataclass(frozen=True)
class ReleasePartitions:
    db_name: str
    collection_name: str
    partition_names: tuple[str, ...]


@dataclass(frozen=True)
class GetLoadState:
    db_name: str
    collection_name: str
    partition_names: tuple[str, ...] = ()


# -- indexes -----------------------------------------------------------------


@dataclass(frozen=True)
class CreateIndex:
    """``indexes``: one dict per index: field_name, index_name, index_type, metric_type, params."""

    db_name: str
    collection_name: str
    indexes: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class DropIndex:
    db_name: str
    collection_name: str
    index_name: str


@dataclass(frozen=True)
class ListIndexes:
    db_name: str
    collection_name: str
    field_name: str = ""


@dataclass(frozen=True)
class DescribeIndex:
    db_name: str
    collection_name: str
    index_name: str


# -- aliases -----------------------------------------------------------------


@dataclass(frozen=True)
class CreateAlias:
    db_name: str
    collection_name: str
    alias: str


@dataclass(frozen=True)
class DropAlias:
    db_name: str
    alias: str


@dataclass(frozen=True)
class AlterAlias:
    db_name: str
    collection_name: str
    alias: str


@dataclass(frozen=True)
class DescribeAlias:
    db_name: str
    alias: str


@dataclass(frozen=True)
class ListAliases:
    db_name: str
    collection_name: str = ""


# -- data --------------------------------------------------------------------


@dataclass(frozen=True)
class Insert:
    """``batch`` is a `heron.data._batch.Batch` built against the collection's schema.

    With ``partial_update`` (an upsert only), ``batch`` holds the primary key and
    the fields given; the others keep their stored values.
    """

    db_name: str
    collection_name: str
    batch: Any
    partition_name: str = ""
    upsert: bool = False
    partial_update: bool = False


@dataclass(frozen=True)
class Delete:
    db_name: str
    collection_name: str
    ids: Any = None
    filter: str = ""
    filter_params: dict[str, Any] = field(default_factory=dict)
    partition_name: str = ""


@dataclass(frozen=True)
class Query:
    """Filter or primary keys → rows. ``ids`` and ``filter`` are exclusive."""

    db_name: str
    collection_name: str
    filter: str = ""
    output_fields: tuple[str, ...] | None = None
    ids: Any = None
    partition_names: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    filter_params: dict[str, Any] = field(default_factory=dict)
    consistency_level: str = ""
    #: Return rows in primary-key order, only those with a key above ``after_pk`` (iterators).
    order_by_pk: bool = False
    after_pk: Any = None


@dataclass(frozen=True)
class Search:
    """``data``: a 2-d numpy array of dense queries, or a scipy CSR matrix of sparse ones."""

    db_name: str
    collection_name: str
    data: Any
    anns_field: str = ""
    filter: str = ""
    limit: int = 10
    offset: int = 0
    output_fields: tuple[str, ...] | None = None
    metric_type: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    partition_names: tuple[str, ...] = ()
    filter_params: dict[str, Any] = field(default_factory=dict)
    group_by_field: str = ""
    group_size: int = 1
    strict_group_size: bool = False
    round_decimal: int = -1
    consistency_level: str = ""
    #: A function score, ``{"functions": [{"name", "input_field_names", "params"}, ...], "params": {...}}``.
    ranker: dict[str, Any] | None = None


@dataclass(frozen=True)
class HybridSearch:
    """``reqs``: Search requests (one per field); ``ranker``: {"strategy": "rrf"|"weighted", "params": {...}},
    or a function score (see `Search.ranker`) with one rrf, weighted or decay function."""

    db_name: str
    collection_name: str
    reqs: tuple[Search, ...]
    ranker: dict[str, Any]
    limit: int = 10
    offset: int = 0
    output_fields: tuple[str, ...] | None = None
    partition_names: tuple[str, ...] = ()
    round_decimal: int = -1
    #: Group the fused hits as `Search` does: ``limit`` groups of at most ``group_size`` hits.
    group_by_field: str = ""
    group_size: int = 1
    strict_group_size: bool = False


@dataclass(frozen=True)
class Flush:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class Compact:
    db_name: str
    collection_name: str


# -- database properties -------------------------------------------------------


@dataclass(frozen=True)
class AlterDatabase:
    """Set ``properties`` on a database and remove the properties named in ``delete_keys``."""

    db_name: str
    properties: dict[str, Any]
    delete_keys: tuple[str, ...] = ()


# -- users, roles and privileges ---------------------------------------------------
# Answered by the server's auth store (`heron serve --auth`); embedded, and by a server
# without authentication, as a fresh Milvus lists them, changes refused (heron.engine._access).


@dataclass(frozen=True)
class CreateUser:
    user_name: str
    password: str
    description: str = ""


@dataclass(frozen=True)
class DropUser:
    user_name: str


@dataclass(frozen=True)
class UpdatePassword:
    user_name: str
    old_password: str
    new_password: str


@dataclass(frozen=True)
class UpdateUser:
    """Set a user's description (pymilvus 3's ``update_user``)."""

    user_name: str
    description: str


@dataclass(frozen=True)
class ListUsers:
    pass


@dataclass(frozen=True)
class DescribeUser:
    """The user named (every user for ""), with roles and description; an unknown user gives []."""

    user_name: str
    include_roles: bool = True


@dataclass(frozen=True)
class CreateRole:
    role_name: str
    description: str = ""


@dataclass(frozen=True)
class DropRole:
    role_name: str
    force_drop: bool = False


@dataclass(frozen=True)
class AlterRole:
    role_name: str
    description: str


@dataclass(frozen=True)
class OperateUserRole:
    """Grant (``grant``) or revoke a role to or from a user."""

    user_name: str
    role_name: str
    grant: bool


@dataclass(frozen=True)
class DescribeRole:
    """The role named (every role for ""), with description and, if ``include_users``, users; unknown: []."""

    role_name: str
    include_users: bool = False


@dataclass(frozen=True)
class ListGrants:
    """The grants of a role, narrowed to an object type, object name and database where given."""

    role_name: str
    object_type: str = ""
    object_name: str = ""
    db_name: str = ""


@dataclass(frozen=True)
class OperatePrivilege:
    """Grant or revoke ``privilege`` on ``object_type``/``object_name`` in ``db_name`` ("" is ``default``).

    ``v2`` marks grant_privilege_v2 (no object type: a collection, or ``*`` for all).
    """

    role_name: str
    object_type: str
    privilege: str
    object_name: str
    db_name: str
    grant: bool
    v2: bool = False


@dataclass(frozen=True)
class CreatePrivilegeGroup:
    group_name: str


@dataclass(frozen=True)
class DropPrivilegeGroup:
    group_name: str


@dataclass(frozen=True)
class ListPrivilegeGroups:
    pass


@dataclass(frozen=True)
class OperatePrivilegeGroup:
    """Add (``add``) or remove ``privileges`` to or from a privilege group."""

    group_name: str
    privileges: tuple[str, ...]
    add: bool


# -- resource groups (Heron is one node: see heron.engine._resource_groups) -------------


@dataclass(frozen=True)
class CreateResourceGroup:
    """``config``: a resource group config as a dict (``requests``, ``limits``, ``transfer_from``, ...)."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DropResourceGroup:
    name: str


@dataclass(frozen=True)
class UpdateResourceGroups:
    configs: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class DescribeResourceGroup:
    name: str


@dataclass(frozen=True)
class ListResourceGroups:
    pass


@dataclass(frozen=True)
class TransferReplica:
    db_name: str
    source_group: str
    target_group: str
    collection_name: str
    num_replicas: int


Request = Any


# -- schema evolution and operations -------------------------------------------


@dataclass(frozen=True)
class AddCollectionField:
    """Add ``field`` (a `FieldSchema.to_dict` form) to a live collection; rows written before read its default or null."""

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
@dataclass(frozen=True)
class RunAnalyzer:
    """Tokens of ``texts`` by ``analyzer_params``, or by the analyzer of ``collection_name``.``field_name``."""

    db_name: str
    texts: tuple[str, ...]
    analyzer_params: dict[str, Any] | None = None
    with_hash: bool = False
    with_detail: bool = False
    collection_name: str = ""
    field_name: str = ""
    analyzer_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddCollectionStructField:
    """Add a nullable struct array ``field`` (a `StructFieldSchema.describe` form) to a live collection."""

    db_name: str
    collection_name: str
    field: dict[str, Any]
