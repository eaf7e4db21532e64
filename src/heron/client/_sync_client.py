"""`Client`: the blocking client, generated from `_async_client.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _requests as rq
from .._errors import IndexNotFoundError, ParamError
from .._partial import given_fields, partial_schema
from .._schema import CollectionSchema
from ..data._batch import build_batch
from ._sync_admin import AdminMixin
from ._sync_iterators import QueryIterator, SearchIterator
from ._sync_loading import wait_loaded
from ._sync_ops import OpsMixin
from ._sync_session import AsyncClientSession
from ._sync_text import TextMixin
from ._base import (
    ClientBase,
    compact_options,
    described,
    is_remote,
    one_node_replicas,
    property_keys_of,
)
from ._helpers import AnnSearchRequest, IndexParams
from ._milvus_objects import as_index_specs
from ._results import QueryResult, ReplicaInfo, SearchResult, shape_search
from .transports._local import LocalTransport


class Client(AdminMixin, OpsMixin, TextMixin, ClientBase):
    """A blocking Heron client. Embedded for a local path.

    Use it as ``with Client(...) as client:`` or
    call ``client.close()``.

    ``uri`` is a local path (a data directory, created if missing) or
    ``http(s)://host:port`` of a server; ``user`` and ``password`` (or
    ``token``) authenticate to it and ``db_name`` picks the database. Every
    method takes ``timeout`` in seconds and ``db_name=`` for another database.
    Failures raise a `HeronError` subclass.
    """

    def __init__(
        self,
        uri: str = "./heron.db",
        user: str = "",
        password: str = "",
        db_name: str = "",
        token: str = "",
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(uri, user, password, db_name, token, timeout, **kwargs)
        self._transport: Any
        if is_remote(uri):
            from .transports._grpc import make_remote_transport

            self._transport = make_remote_transport(uri, self._token, self._db, kwargs)
        else:
            self._transport = LocalTransport(uri)

    def _call(self, request: Any, timeout: float | None = None) -> Any:
        return self._transport.handle(request, self._to(timeout))

    def close(self) -> None:
        """Release the client's resources; calling it twice is harmless."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _pk_name(self, collection_name: str, db: str) -> str:
        """The primary key field's name, which keys search hits (as in pymilvus)."""
        return (self._schema(collection_name, db)).primary_field.name

    def _schema(self, collection_name: str, db: str, refresh: bool = False) -> CollectionSchema:
        key = (db, collection_name)
        schema = None if refresh else self._schemas.get(key)
        if schema is None:
            desc = self._call(rq.DescribeCollection(db, collection_name))
            schema = CollectionSchema.from_dict(desc)
            self._schemas[key] = schema
        return schema

    # -- databases ---------------------------------------------------------------------
    def create_database(self, db_name: str, properties: dict[str, Any] | None = None,
                              timeout: float | None = None, **kwargs: Any) -> None:
        """Create a database; `AlreadyExistsError` if it exists. Properties are kept as strings (``str(value)``)."""
        props = {str(k): v if isinstance(v, str) else str(v) for k, v in dict(properties or {}).items()}
        self._call(rq.CreateDatabase(db_name, props), timeout)

    def drop_database(self, db_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop an empty database; `ParamError` for ``default`` or one that still has collections."""
        self._call(rq.DropDatabase(db_name), timeout)

    def list_databases(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The names of the databases, ``default`` first."""
        return self._call(rq.ListDatabases(), timeout)

    def describe_database(self, db_name: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``{"name", ...properties}`` of a database (values as strings); `DatabaseNotFoundError` if there is none."""
        return self._call(rq.DescribeDatabase(db_name), timeout)

    def use_database(self, db_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Make ``db_name`` the database of later calls; raises if it does not exist."""
        self._call(rq.DescribeDatabase(db_name), timeout)
        self._db = db_name

    def using_database(self, db_name: str, **kwargs: Any) -> None:
        """The same as `use_database` (pymilvus's older name)."""
        self.use_database(db_name, **kwargs)

    # -- collections -------------------------------------------------------------------
    def create_collection(
        self,
        collection_name: str,
        dimension: int | None = None,
        primary_field_name: str = "id",
        id_type: str = "int",
        vector_field_name: str = "vector",
        metric_type: str = "COSINE",
        auto_id: bool = False,
        timeout: float | None = None,
        schema: CollectionSchema | Any = None,
        index_params: IndexParams | Any = None,
        **kwargs: Any,
    ) -> None:
        """Create a collection from ``schema``, or the quick way from ``dimension``.

        ``schema`` and ``index_params`` may be Heron's objects or pymilvus's.
        Without index params the collection is loaded all the same, and its
        unindexed vector fields are searched exactly (as Milvus Lite does; the
        Milvus server would refuse to load it, and Heron logs that once).

        Creating it
        again with the same schema does nothing; with another schema it raises
        `AlreadyExistsError`, and an unsound schema `SchemaError`.
        """
        req = self._create_collection_request(
            collection_name, dimension, primary_field_name, id_type, vector_field_name, metric_type, auto_id,
            schema, index_params, kwargs,
        )
        self._schemas.pop((req.db_name, collection_name), None)
        self._call(req, timeout)
        if req.index_params:  # created, indexed and loaded: wait until Loaded, as pymilvus does
            wait_loaded(self, req.db_name, collection_name, (), timeout)

    def drop_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop a collection with its data, partitions, indexes and aliases; a missing one is not an error."""
        self._schemas.pop((self._dbn(kwargs), collection_name), None)
        self._call(rq.DropCollection(self._dbn(kwargs), collection_name), timeout)

    def has_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> bool:
        """Whether a collection (or alias) of that name exists."""
        return self._call(rq.HasCollection(self._dbn(kwargs), collection_name), timeout)

    def list_collections(self, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The names of the database's collections, sorted."""
        return self._call(rq.ListCollections(self._dbn(kwargs)), timeout)

    def describe_collection(self, collection_name: str, timeout: float | None = None,
                                  **kwargs: Any) -> dict[str, Any]:
        """The collection as pymilvus describes it: fields, ``auto_id``, aliases, properties, ...

        Property values are strings, as Milvus stores them. `CollectionNotFoundError` if there is none.
        """
        return described(self._call(rq.DescribeCollection(self._dbn(kwargs), collection_name), timeout))

    def rename_collection(self, old_name: str, new_name: str, target_db: str = "",
                                timeout: float | None = None, **kwargs: Any) -> None:
        """Rename a collection (into ``target_db`` if given); `AlreadyExistsError` if the name is taken."""
        self._schemas.clear()
        self._call(rq.RenameCollection(self._dbn(kwargs), old_name, new_name, target_db), timeout)

    def get_collection_stats(self, collection_name: str, timeout: float | None = None,
                                   **kwargs: Any) -> dict[str, Any]:
        """``{"row_count"}``: the rows visible now, deletes subtracted."""
        return self._call(rq.GetCollectionStats(self._dbn(kwargs), collection_name), timeout)

    def truncate_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Delete every row of a collection, keeping its schema, partitions and indexes."""
        self._call(rq.TruncateCollection(self._dbn(kwargs), collection_name), timeout)

    def alter_collection_properties(self, collection_name: str, properties: dict[str, Any],
                                          timeout: float | None = None, **kwargs: Any) -> None:
        """Merge ``properties`` into the collection's, kept as the strings pymilvus sends (``str(value)``)."""
        props = {str(k): v if isinstance(v, str) else str(v) for k, v in dict(properties).items()}
        self._call(rq.AlterCollectionProperties(self._dbn(kwargs), collection_name, props), timeout)

    def drop_collection_properties(self, collection_name: str, property_keys: list[str],
                                         timeout: float | None = None, **kwargs: Any) -> None:
        """Remove the named properties from the collection; a key it does not have is ignored."""
        keys = property_keys_of(property_keys)
        self._call(rq.AlterCollectionProperties(self._dbn(kwargs), collection_name, {}, keys), timeout)

    # -- partitions ----------------------------------------------------------------------
    def create_partition(self, collection_name: str, partition_name: str, timeout: float | None = None,
                               **kwargs: Any) -> None:
        """Create a partition, loaded if the collection is; one that exists already is left as it is (as in Milvus)."""
        self._call(rq.CreatePartition(self._dbn(kwargs), collection_name, partition_name), timeout)

    def drop_partition(self, collection_name: str, partition_name: str, timeout: float | None = None,
                             **kwargs: Any) -> None:
        """Drop a partition and its rows; `ParamError` for ``_default``.

        A loaded partition is dropped too, as Milvus Lite does (the Milvus
        server wants it released first; Heron logs that once per collection).
        """
        self._call(rq.DropPartition(self._dbn(kwargs), collection_name, partition_name), timeout)

    def has_partition(self, collection_name: str, partition_name: str, timeout: float | None = None,
                            **kwargs: Any) -> bool:
        """Whether the collection has a partition of that name."""
        return self._call(rq.HasPartition(self._dbn(kwargs), collection_name, partition_name), timeout)

    def list_partitions(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> list[str]:
        """The names of the collection's partitions, ``_default`` first."""
        return self._call(rq.ListPartitions(self._dbn(kwargs), collection_name), timeout)

    def get_partition_stats(self, collection_name: str, partition_name: str, timeout: float | None = None,
                                  **kwargs: Any) -> dict[str, Any]:
        """``{"row_count"}`` of one partition; `PartitionNotFoundError` if there is none."""
        return self._call(rq.GetPartitionStats(self._dbn(kwargs), collection_name, partition_name), timeout)

    # -- load state ------------------------------------------------------------------------
    def load_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Load the collection (every partition) for search and query; returns once it is Loaded.

        A Milvus server loads in the background: this waits for it as pymilvus does, raising
        `HeronError` if ``timeout`` seconds pass first.
        """
        self._call(rq.LoadCollection(self._dbn(kwargs), collection_name), timeout)
        wait_loaded(self, self._dbn(kwargs), collection_name, (), timeout)

    def release_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Release the collection: search and query raise `CollectionNotLoadedError` until it is loaded."""
        self._call(rq.ReleaseCollection(self._dbn(kwargs), collection_name), timeout)

    def load_partitions(self, collection_name: str, partition_names: str | list[str],
                              timeout: float | None = None, **kwargs: Any) -> None:
        """Load the named partitions (one name or a list); `PartitionNotFoundError` names a missing one."""
        names = (partition_names,) if isinstance(partition_names, str) else tuple(partition_names)
        self._call(rq.LoadPartitions(self._dbn(kwargs), collection_name, names), timeout)
        wait_loaded(self, self._dbn(kwargs), collection_name, names, timeout)

    def release_partitions(self, collection_name: str, partition_names: str | list[str],
                                 timeout: float | None = None, **kwargs: Any) -> None:
        """Release the named partitions (one name or a list); the others stay loaded."""
        names = (partition_names,) if isinstance(partition_names, str) else tuple(partition_names)
        self._call(rq.ReleasePartitions(self._dbn(kwargs), collection_name, names), timeout)

    def get_load_state(self, collection_name: str, partition_name: str = "", timeout: float | None = None,
                             *, partition_names: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """``{"state": LoadState}`` of the collection, or of the named partitions.

        A missing collection gives ``LoadState.NotExist`` rather than an error.
        """
        names = tuple(partition_names or ([partition_name] if partition_name else []))
        return self._call(rq.GetLoadState(self._dbn(kwargs), collection_name, names), timeout)

    def refresh_load(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """The same as `load_collection`: loaded data is always current."""
        self._call(rq.LoadCollection(self._dbn(kwargs), collection_name), timeout)

    def describe_replica(self, collection_name: str, timeout: float | None = None,
                               **kwargs: Any) -> list[ReplicaInfo]:
        """The collection's in-memory replicas: one, on the one node that serves it (as a one-node Milvus answers).

        `CollectionNotFoundError` if there is none; a released collection has
        no replica (`NotFoundError`, code 400, as in Milvus).
        """
        db = self._dbn(kwargs)
        desc = self._call(rq.DescribeCollection(db, collection_name), timeout)
        state = self._call(rq.GetLoadState(db, collection_name, ()), timeout)
        return one_node_replicas(collection_name, desc, state["state"])

    # -- indexes -------------------------------------------------------------------------
    def create_index(self, collection_name: str, index_params: IndexParams | Any,
                           timeout: float | None = None, **kwargs: Any) -> None:
        """Create the indexes of ``index_params`` (from `prepare_index_params`, Heron's or pymilvus's).

        Sealed data is indexed in the background, and search stays correct
        meanwhile. `ParamError` for bad parameters or for a field that has
        another index already.
        """
        self._call(rq.CreateIndex(self._dbn(kwargs), collection_name, as_index_specs(index_params)), timeout)

    def drop_index(self, collection_name: str, index_name: str, timeout: float | None = None,
                         **kwargs: Any) -> None:
        """Drop an index (by index name or field name); `IndexNotFoundError` if there is none.

        A vector field's index is dropped only from a released collection (as
        in Milvus); `ParamError` while it is loaded. Scalar indexes may go at any time.
        """
        self._call(rq.DropIndex(self._dbn(kwargs), collection_name, index_name), timeout)

    def list_indexes(self, collection_name: str, field_name: str = "", timeout: float | None = None,
                           **kwargs: Any) -> list[str]:
        """The names of the collection's indexes, or of those on ``field_name``."""
        return self._call(rq.ListIndexes(self._dbn(kwargs), collection_name, field_name or ""), timeout)

    def describe_index(self, collection_name: str, index_name: str, timeout: float | None = None,
                             **kwargs: Any) -> dict[str, Any] | None:
        """An index's type, metric, parameters and row counts; ``None`` if there is none (as pymilvus answers)."""
        try:
            return self._call(rq.DescribeIndex(self._dbn(kwargs), collection_name, index_name), timeout)
        except IndexNotFoundError:
            return None

    # -- aliases ---------------------------------------------------------------------------
    def create_alias(self, collection_name: str, alias: str, timeout: float | None = None,
                           **kwargs: Any) -> None:
        """Make ``alias`` another name of the collection; again for the same collection does nothing.

        `AlreadyExistsError` if the alias names another collection (code 1602)
        or is a collection's name (code 1601).
        """
        self._call(rq.CreateAlias(self._dbn(kwargs), collection_name, alias), timeout)

    def drop_alias(self, alias: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Drop an alias; a missing one is not an error."""
        self._call(rq.DropAlias(self._dbn(kwargs), alias), timeout)

    def alter_alias(self, collection_name: str, alias: str, timeout: float | None = None,
                          **kwargs: Any) -> None:
        """Point an existing alias at another collection; `AliasNotFoundError` if there is none."""
        self._call(rq.AlterAlias(self._dbn(kwargs), collection_name, alias), timeout)

    def describe_alias(self, alias: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``{"alias", "collection_name", "db_name"}``; `AliasNotFoundError` if there is none."""
        return self._call(rq.DescribeAlias(self._dbn(kwargs), alias), timeout)

    def list_aliases(self, collection_name: str = "", timeout: float | None = None,
                           **kwargs: Any) -> dict[str, Any]:
        """``{"aliases", "collection_name", "db_name"}``: the database's aliases, or the collection's."""
        return self._call(rq.ListAliases(self._dbn(kwargs), collection_name), timeout)

    # -- data ----------------------------------------------------------------------------
    def insert(self, collection_name: str, data: Any, timeout: float | None = None, partition_name: str = "",
                     **kwargs: Any) -> dict[str, Any]:
        """Insert rows; returns ``{"insert_count", "ids"}`` once they are durable.

        ``data`` is a row dict, a list of them, a dict of columns, a pandas or
        polars DataFrame, or a pyarrow Table or RecordBatch; every shape stores
        the same rows. A bad row raises `DataError` naming it, and the batch
        writes nothing.
        """
        return self._write(collection_name, data, timeout, partition_name, False, kwargs)

    def upsert(self, collection_name: str, data: Any, timeout: float | None = None, partition_name: str = "",
                     *, partial_update: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Insert rows, replacing any with the same primary key; returns ``{"upsert_count", "ids"}``.

        Takes the same ``data`` as `insert`; a bad row writes nothing. With
        ``partial_update=True`` each row gives its primary key and only the
        fields to change (the same fields in every row): a stored key keeps
        the values of the others and its dynamic keys not given; a new key
        takes defaults or nulls for them, and a field with neither refuses
        the batch.
        """
        return self._write(collection_name, data, timeout, partition_name, True, kwargs, partial_update)

    def _write(self, collection_name: str, data: Any, timeout: float | None, partition_name: str,
                     upsert: bool, kwargs: dict[str, Any], partial: bool = False) -> dict[str, Any]:
        if isinstance(data, list) and not data:  # pymilvus answers this before any server call
            return {"upsert_count" if upsert else "insert_count": 0, "ids": []}
        db = self._dbn(kwargs)
        schema = self._schema(collection_name, db)
        if partial:
            schema = partial_schema(schema, given_fields(schema, data))
        batch = build_batch(schema, data, for_upsert=upsert)
        req = rq.Insert(db, collection_name, batch, partition_name or "", upsert, bool(partial))
        return self._call(req, timeout)

    def delete(self, collection_name: str, ids: Any = None, timeout: float | None = None,
                     filter: str | None = None, partition_name: str | None = None,  # noqa: A002
                     **kwargs: Any) -> dict[str, Any]:
        """Delete rows by primary keys or by filter; returns ``{"delete_count"}``."""
        if (ids is None) == (not filter):
            raise ParamError("delete needs exactly one of ids= or filter=")
        if ids is not None and not isinstance(ids, (list, tuple, int, str)) and not hasattr(ids, "__iter__"):
            raise ParamError(f"ids: got {type(ids).__name__}, expected a list of primary keys")
        req = rq.Delete(self._dbn(kwargs), collection_name, _id_list(ids), filter or "",
                        dict(kwargs.get("filter_params") or {}), partition_name or "")
        return self._call(req, timeout)

    def get(self, collection_name: str, ids: Any, output_fields: list[str] | None = None,
                  timeout: float | None = None, partition_names: list[str] | None = None,
                  **kwargs: Any) -> QueryResult:
        """Rows by primary key (missing keys are skipped)."""
        req = self._query_request(collection_name, "", output_fields, ids, partition_names, kwargs)
        return QueryResult(self._call(req, timeout))

    def query(self, collection_name: str, filter: str = "", output_fields: list[str] | None = None,  # noqa: A002
                    timeout: float | None = None, ids: Any = None, partition_names: list[str] | None = None,
                    **kwargs: Any) -> QueryResult:
        """Rows matching ``filter`` (or ``ids``); ``output_fields=["count(*)"]`` counts them."""
        req = self._query_request(collection_name, filter, output_fields, ids, partition_names, kwargs)
        return QueryResult(self._call(req, timeout))

    def search(self, collection_name: str, data: Any = None, filter: str = "", limit: int = 10,  # noqa: A002
                     output_fields: list[str] | None = None, search_params: dict[str, Any] | None = None,
                     timeout: float | None = None, partition_names: list[str] | None = None,
                     anns_field: str | None = None, ranker: Any = None, function_chains: Any = None,
                     highlighter: Any = None, ids: Any = None, search_aggregation: Any = None,
                     **kwargs: Any) -> SearchResult:
        """Nearest neighbours of each query vector: one list of hits per query, best first.

        ``data`` is one query vector or several; ``anns_field`` picks the vector
        field when there are several, ``filter`` keeps only matching rows and
        ``search_params`` takes metric_type and index params (radius, range_filter
        for a range search). ``ranker`` (a rerank ``Function`` or ``FunctionScore``:
        decay, boost) rescores the candidates. ``ids`` (in place of ``data``) searches
        with the stored vectors of those primary keys, one list of hits per key; a key
        that is not stored is a `ParamError`. `CollectionNotLoadedError` if the
        collection is released; `ParamError` for a bad ranker, before any work.
        """
        req = self._search_request(collection_name, data, filter, limit, output_fields, search_params,
                                   partition_names, anns_field,
                                   {**kwargs, "ranker": ranker, "function_chains": function_chains, "ids": ids,
                                    "highlighter": highlighter, "search_aggregation": search_aggregation})
        raw = self._call(req, timeout)
        result = shape_search(raw, self._pk_name(req.collection_name, req.db_name))
        result.agg_buckets = getattr(raw, "agg_buckets", None) or []
        return result

    def hybrid_search(self, collection_name: str, reqs: list[AnnSearchRequest | Any], ranker: Any,
                            limit: int = 10, output_fields: list[str] | None = None, timeout: float | None = None,
                            partition_names: list[str] | None = None, **kwargs: Any) -> SearchResult:
        """Run several vector searches and fuse them with ``ranker``.

        ``reqs`` are `AnnSearchRequest` objects and ``ranker`` an RRFRanker or
        WeightedRanker, Heron's or pymilvus's, or a rerank ``Function`` with
        reranker "rrf", "weighted" or "decay".
        """
        req = self._hybrid_request(collection_name, reqs, ranker, limit, output_fields, partition_names, kwargs)
        raw = self._call(req, timeout)
        return shape_search(raw, self._pk_name(req.collection_name, req.db_name))

    def query_iterator(self, collection_name: str, batch_size: int = 1000, limit: int = -1, filter: str = "",  # noqa: A002
                       output_fields: list[str] | None = None, partition_names: list[str] | None = None,
                       timeout: float | None = None, **kwargs: Any) -> QueryIterator:
        """Rows matching ``filter`` in batches of ``batch_size``, in primary-key order; ``limit=-1`` means all.

        Iterate with ``for batch in ...`` or call ``it.next()`` until it returns ``[]``.
        """
        _check_batch(batch_size)
        req = self._query_request(collection_name, filter, output_fields, None, partition_names, kwargs)
        return QueryIterator(self, req, batch_size, limit, timeout)

    def search_iterator(self, collection_name: str, data: Any, batch_size: int = 1000, filter: str | None = None,  # noqa: A002
                        limit: int = -1, output_fields: list[str] | None = None,
                        search_params: dict[str, Any] | None = None, timeout: float | None = None,
                        partition_names: list[str] | None = None, anns_field: str | None = None,
                        round_decimal: int = -1, *, external_filter_func: Callable[[Any], Any] | None = None,
                        **kwargs: Any) -> SearchIterator:
        """Hits of one query vector in batches of ``batch_size``, best first; ``limit=-1`` means all.

        Iterate with ``for batch in ...`` or call ``it.next()`` until it returns ``[]``.
        ``external_filter_func`` takes each fetched page of hits and returns the hits to keep;
        batches still hold ``batch_size`` hits (the last may hold fewer).
        """
        if external_filter_func is not None and not callable(external_filter_func):
            raise ParamError(f"external_filter_func: got {type(external_filter_func).__name__}, expected a "
                             "callable taking a page of hits and returning the hits to keep")
        _check_batch(batch_size)
        req = self._search_request(collection_name, data, filter or "", batch_size, output_fields, search_params,
                                   partition_names, anns_field, {**kwargs, "round_decimal": round_decimal})
        if req.data.shape[0] != 1:
            raise ParamError(f"search_iterator takes one query vector; got {req.data.shape[0]}")
        return SearchIterator(self, req, batch_size, limit, timeout, external_filter_func)

    def session(self, cluster_id: str) -> AsyncClientSession:
        """A session whose reads go to cluster ``cluster_id``; Heron is one cluster, so to this client's data."""
        return AsyncClientSession(self, cluster_id)

    def flush(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Seal growing segments into files and wait for them (writes are durable without it)."""
        self._call(rq.Flush(self._dbn(kwargs), collection_name), timeout)

    def compact(self, collection_name: str, is_clustering: bool = False, is_l0: bool = False,
                      target_size: int | None = None, target_size_unit: str = "mb", timeout: float | None = None,
                      **kwargs: Any) -> int:
        """Rewrite segments without their deleted rows now (it also happens in the background); returns a job id.

        ``target_size`` (in ``target_size_unit``: b, kb, mb, gb, tb or pb) also merges
        adjacent segments while a merged segment's file stays within it. ``is_clustering``
        needs a collection with a clustering key (error 2304 otherwise, as in Milvus);
        ``is_l0`` compacts as the plain call does (deletes are applied by any compaction).
        """
        req = rq.Compact(self._dbn(kwargs), collection_name, *compact_options(is_clustering, is_l0, target_size,
                                                                               target_size_unit))
        return self._call(req, timeout)

    def get_compaction_state(self, job_id: int, timeout: float | None = None, **kwargs: Any) -> str:
        """Compaction runs to completion inside `compact`, so every job is ``"Completed"``."""
        return "Completed"

    def get_server_version(self, timeout: float | None = None, detail: bool = False,
                                 **kwargs: Any) -> str | dict[str, Any]:
        """The server's version (``v2.3.5`` from Milvus 2.3.5, ``v{heron version}`` from Heron); with
        ``detail``, pymilvus's dict of server info (``version``, ``build_time``, ``git_commit``,
        ``go_version``, ``deploy_mode``). Embedded Heron answers as `heron serve` does."""
        return self._call(rq.GetServerVersion(bool(detail)), timeout)  # type: ignore[no-any-return]


def _check_batch(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 0 < batch_size <= 16384:
        raise ParamError(f"batch_size: got {batch_size!r}, expected an integer in 1..16384")


def _id_list(ids: Any) -> Any:
    if ids is None:
        return None
    if isinstance(ids, (int, str)):
        return [ids]
    return list(ids)
