"""The blocking twin of `AsyncClient`'s part, generated from `_async_ops.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

from typing import Any

from ._base import ClientBase


class OpsMixin(ClientBase):
    """Operations calls: segments, compaction, snapshots, index and field properties."""

    def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError
