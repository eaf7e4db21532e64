"""`heron serve`: the Milvus-protocol gRPC server over a Heron data directory.

``await serve(ServerConfig(data="./server.db"))`` runs it from Python until
SIGTERM or SIGINT, then finishes the calls in flight and closes the engine.
"""

from __future__ import annotations

from ._app import ServerConfig, serve

__all__ = ["ServerConfig", "serve"]
