"""`AsyncClient` methods for text: analyzers and schema functions.

A mixin of `AsyncClient`; `scripts/unasync.py` generates the blocking
version from this file. Methods follow pymilvus's `AsyncMilvusClient`.
"""

from __future__ import annotations

from typing import Any

from ._base import ClientBase


class AsyncTextMixin(ClientBase):
    """Text calls: analyzers and schema functions."""

    async def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError
