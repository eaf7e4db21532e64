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

# Requests defined in modules of their own, re-exported: every request is ``rq.Name``.
from ._requests_admin import (
    AlterRole as AlterRole,
)
from ._requests_admin import (
    CreatePrivilegeGroup as CreatePrivilegeGroup,
)
from ._requests_admin import (
    CreateResourceGroup as CreateResourceGroup,
)
from ._requests_admin import (
    CreateRole as CreateRole,
)
from ._requests_admin import (
    CreateUser as CreateUser,
)
from ._requests_admin import (
    DescribeResourceGroup as DescribeResourceGroup,
)
from ._requests_admin import (
    DescribeRole as DescribeRole,
)
from ._requests_admin import (
    DescribeUser as DescribeUser,
)
from ._requests_admin import (
    DropPrivilegeGroup as DropPrivilegeGroup,
)
from ._requests_admin import (
    DropResourceGroup as DropResourceGroup,
)
from ._requests_admin import (
    DropRole as DropRole,
)
from ._requests_admin import (
    DropUser as DropUser,
)
from ._requests_admin import (
    ListGrants as ListGrants,
)
from ._requests_admin import (
    ListPrivilegeGroups as ListPrivilegeGroups,
)
from ._requests_admin import (
    ListResourceGroups as ListResourceGroups,
)
from ._requests_admin import (
    ListUsers as ListUsers,
)
from ._requests_admin import (
    OperatePrivilege as OperatePrivilege,
)
from ._requests_admin import (
    OperatePrivilegeGroup as OperatePrivilegeGroup,
)
from ._requests_admin import (
    OperateUserRole as OperateUserRole,
)
from ._requests_admin import (
    TransferReplica as TransferReplica,
)
from ._requests_admin import (
    UpdatePassword as UpdatePassword,
)
from ._requests_admin import (
    UpdateResourceGroups as UpdateResourceGroups,
)
from ._requests_admin import (
    UpdateUser as UpdateUser,
)
from ._requests_ops import (
    AddCollectionField as AddCollectionField,
)
from ._requests_ops import (
    AddCollectionStructField as AddCollectionStructField,
)
from ._requests_ops import (
    AddFileResource as AddFileResource,
)
from ._requests_ops import (
    AlterCollectionField as AlterCollectionField,
)
from ._requests_ops import (
    AlterIndexProperties as AlterIndexProperties,
)
from ._requests_ops import (
    CreateSnapshot as CreateSnapshot,
)
from ._requests_ops import (
    DescribeSnapshot as DescribeSnapshot,
)
from ._requests_ops import (
    DropCollectionField as DropCollectionField,
)
from ._requests_ops import (
    DropSnapshot as DropSnapshot,
)
from ._requests_ops import (
    FlushAll as FlushAll,
)
from ._requests_ops import (
    GetFlushAllState as GetFlushAllState,
)
from ._requests_ops import (
    GetImportProgress as GetImportProgress,
)
from ._requests_ops import (
    GetRestoreSnapshotState as GetRestoreSnapshotState,
)
from ._requests_ops import (
    ImportFiles as ImportFiles,
)
from ._requests_ops import (
    ListFileResources as ListFileResources,
)
from ._requests_ops import (
    ListImports as ListImports,
)
from ._requests_ops import (
    ListLoadedSegments as ListLoadedSegments,
)
from ._requests_ops import (
    ListRestoreSnapshotJobs as ListRestoreSnapshotJobs,
)
from ._requests_ops import (
    ListSegments as ListSegments,
)
from ._requests_ops import (
    ListSnapshots as ListSnapshots,
)
from ._requests_ops import (
    PinSnapshotData as PinSnapshotData,
)
from ._requests_ops import (
    RemoveFileResource as RemoveFileResource,
)
from ._requests_ops import (
    RestoreSnapshot as RestoreSnapshot,
)
from ._requests_ops import (
    UnpinSnapshotData as UnpinSnapshotData,
)

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
    #: The time zone TIMESTAMPTZ values come back in ("": the collection's, else the database's, else UTC).
    timezone: str = ""
    #: TIMESTAMPTZ values as lists of these parts of their time ("year, month, day"), not as text.
    time_fields: str = ""
    #: The Milvus timestamp the read must see (0: as its consistency level says); Heron reads its own
    #: writes whatever it is, a Milvus server waits for it (the level Customized, or Session).
    guarantee_timestamp: int = 0


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
    #: As for `Query`.
    timezone: str = ""
    time_fields: str = ""
    #: Primary keys whose stored vectors (of the searched field) are the queries, in place of ``data`` (None).
    ids: tuple[Any, ...] | None = None
    #: Lexical highlighting of the hits: ``{"type": "lexical", "params": {pre_tags, post_tags, ...}}`` (None: none).
    highlighter: dict[str, Any] | None = None
    #: Bucket aggregation of the hits (see wire/_aggregation for its shape); ``limit`` is then ignored.
    aggregation: dict[str, Any] | None = None
    #: As for `Query`.
    guarantee_timestamp: int = 0


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
    #: As for `Query`.
    timezone: str = ""
    time_fields: str = ""
    #: As for `Query`.
    consistency_level: str = ""
    guarantee_timestamp: int = 0


@dataclass(frozen=True)
class Flush:
    db_name: str
    collection_name: str


@dataclass(frozen=True)
class Compact:
    db_name: str
    collection_name: str
    #: Clustering compaction (Milvus's majorCompaction): only for a collection with a clustering key.
    is_clustering: bool = False
    #: L0 compaction (applying delete records); Heron applies deletes when it compacts segments anyway.
    is_l0: bool = False
    #: Merge adjacent sealed segments while the merged file stays within this many MB (0: no merging).
    target_size_mb: int = 0


# -- database properties -------------------------------------------------------


@dataclass(frozen=True)
class AlterDatabase:
    """Set ``properties`` on a database and remove the properties named in ``delete_keys``."""

    db_name: str
    properties: dict[str, Any]
    delete_keys: tuple[str, ...] = ()


# -- schema functions ----------------------------------------------------------


@dataclass(frozen=True)
class AddCollectionFunction:
    """Add ``function`` (a `heron.Function` as its ``to_dict`` gives it) to a collection's schema."""

    db_name: str
    collection_name: str
    function: dict[str, Any]


@dataclass(frozen=True)
class AlterCollectionFunction:
    """Replace the schema function called ``function_name`` with ``function`` (its params, description)."""

    db_name: str
    collection_name: str
    function_name: str
    function: dict[str, Any]


@dataclass(frozen=True)
class DropCollectionFunction:
    db_name: str
    collection_name: str
    function_name: str


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


Request = Any


@dataclass(frozen=True)
class GetServerVersion:
    """The server's version (``GetVersion``), or with ``detail`` its server info (``Connect``), as a dict."""

    detail: bool = False
