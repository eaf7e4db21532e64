"""`AsyncClient` methods for operations: segments, compaction, snapshots, index and field properties.

A mixin of `AsyncClient`; `scripts/unasync.py` generates the blocking
version from this file. Methods follow pymilvus's `AsyncMilvusClient`.
"""

from __future__ import annotations

from typing import Any

from ._base import ClientBase


class AsyncOpsMixin(ClientBase):
    """Operations calls: segments, compaction, snapshots, index and field properties."""

    async def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError
