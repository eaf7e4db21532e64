"""The blocking twin of `AsyncClient`'s part, generated from `_async_text.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

from typing import Any

from ._base import ClientBase


class TextMixin(ClientBase):
    """Text calls: analyzers and schema functions."""

    def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError
