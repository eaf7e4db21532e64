"""What a Milvus message asks for when that is not one engine request.

The server runs these through their ``run(execute)`` method instead of
handing them to the engine directly; ``execute`` runs one engine request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _requests as rq


@dataclass(frozen=True)
class Const:
    """A request whose answer is known without the engine (version, health, timestamps)."""

    value: Any = None

    def run(self, execute: Callable[[Any], Any]) -> Any:
        return self.value


@dataclass(frozen=True)
class DescribeIndexes:
    """Milvus's DescribeIndex with no index name: every index of a collection (optionally of one field)."""

    db_name: str
    collection_name: str
    field_name: str = ""

    def run(self, execute: Callable[[Any], Any]) -> list[dict[str, Any]]:
        names = execute(rq.ListIndexes(self.db_name, self.collection_name, self.field_name))
        return [execute(rq.DescribeIndex(self.db_name, self.collection_name, n)) for n in names]


@dataclass(frozen=True)
class Sequence:
    """Several engine requests run in order (Milvus sends some operations as one message)."""

    requests: tuple[Any, ...] = field(default_factory=tuple)

    def run(self, execute: Callable[[Any], Any]) -> list[Any]:
        return [execute(r) for r in self.requests]


def timestamp() -> int:
    """A hybrid timestamp in Milvus's layout (milliseconds << 18)."""
    return int(time.time() * 1000) << 18
