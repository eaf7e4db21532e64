"""Heron: a vector database with blocking and asyncio clients over one API.

    import heron
    client = heron.Client("./heron.db")          # embedded, data in ./heron.db/
    client = heron.Client("http://host:19530")   # a Heron (or Milvus) server

`AsyncClient` has the same methods as coroutines.
"""

from __future__ import annotations

from ._errors import (
    AliasNotFoundError,
    AlreadyExistsError,
    AuthenticationError,
    ClientClosedError,
    CollectionNotFoundError,
    CollectionNotLoadedError,
    CorruptionError,
    DatabaseNotFoundError,
    DataDirLockedError,
    DataError,
    DiskFullError,
    FilterError,
    HeronError,
    IndexNotFoundError,
    NotFoundError,
    ParamError,
    PartitionNotFoundError,
    PermissionDeniedError,
    SchemaError,
    ServerBusyError,
    StorageError,
)
from ._functions import Function, FunctionType
from ._schema import CollectionSchema, FieldSchema, StructFieldSchema
from ._types import ConsistencyLevel, DataType, LoadState, MetricType
from ._version import __version__
from .client._async_client import AsyncClient
from .client._helpers import AnnSearchRequest, IndexParams, RRFRanker, WeightedRanker
from .client._results import (
    Hit,
    Hits,
    NodeInfo,
    QueryResult,
    ReplicaInfo,
    ResourceGroupInfo,
    SearchResult,
    Shard,
)
from .client._sync_client import Client

# A function, not a class of the API modules: reachable as heron.register_embedding_function, outside __all__.
from .engine.functions._embedding import register_embedding_function as register_embedding_function

__all__ = [
    "AliasNotFoundError",
    "AlreadyExistsError",
    "AnnSearchRequest",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientClosedError",
    "CollectionNotFoundError",
    "CollectionNotLoadedError",
    "CollectionSchema",
    "ConsistencyLevel",
    "CorruptionError",
    "DataDirLockedError",
    "DataError",
    "DataType",
    "DatabaseNotFoundError",
    "DiskFullError",
    "FieldSchema",
    "FilterError",
    "Function",
    "FunctionType",
    "HeronError",
    "Hit",
    "Hits",
    "IndexNotFoundError",
    "IndexParams",
    "LoadState",
    "MetricType",
    "NodeInfo",
    "NotFoundError",
    "ParamError",
    "PartitionNotFoundError",
    "PermissionDeniedError",
    "QueryResult",
    "RRFRanker",
    "ReplicaInfo",
    "ResourceGroupInfo",
    "SchemaError",
    "SearchResult",
    "ServerBusyError",
    "Shard",
    "StorageError",
    "StructFieldSchema",
    "WeightedRanker",
    "__version__",
]
