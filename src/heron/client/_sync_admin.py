"""The blocking twin of `AsyncClient`'s part, generated from `_async_admin.py` by scripts/unasync.py. Do not edit."""

from __future__ import annotations

from typing import Any

from ._base import ClientBase


class AdminMixin(ClientBase):
    """Users, roles, privileges and database properties."""

    def _call(self, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError
