"""Adapters, one per benchmarked system, looked up by name and imported only when used."""

from __future__ import annotations

import importlib

from bench.adapters._base import Adapter, AdapterConfig, AsyncSearcher, Unsupported

__all__ = ["SYSTEMS", "Adapter", "AdapterConfig", "AsyncSearcher", "Unsupported", "adapter_class"]

SYSTEMS: dict[str, str] = {
    "heron": "bench.adapters.milvus_api:HeronEmbedded",
    "heron-server": "bench.adapters.milvus_api:HeronServer",
    "heron-pymilvus": "bench.adapters.milvus_api:HeronPymilvus",
    "faiss": "bench.adapters.faiss_ref:FaissHNSW",
    "faiss-flat": "bench.adapters.faiss_ref:FaissFlat",
    "hnswlib": "bench.adapters.hnswlib_ref:HnswlibHNSW",
    "milvus-lite": "bench.adapters.milvus_api:MilvusLite",
    "qdrant": "bench.adapters.qdrant:QdrantLocal",
    "chroma": "bench.adapters.chroma:Chroma",
    "lancedb": "bench.adapters.lance:Lance",
}


def adapter_class(system: str) -> type[Adapter]:
    """The adapter class for a system name; ImportError if its package is not installed."""
    module, _, attr = SYSTEMS[system].partition(":")
    cls: type[Adapter] = getattr(importlib.import_module(module), attr)
    return cls
