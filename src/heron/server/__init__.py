"""`heron serve`: the Milvus-protocol gRPC server over a Heron data directory."""

from __future__ import annotations

from ._app import ServerConfig, serve

__all__ = ["ServerConfig", "serve"]
