"""The corpus: importing this module registers every case."""

from __future__ import annotations

import pymilvus

from tests.compat import _cases_catalog, _cases_errors, _cases_search, _cases_types  # noqa: F401  (they register cases)
from tests.compat._harness import CASES, Case

__all__ = ["cases", "pymilvus"]


def cases() -> list[Case]:
    return list(CASES.values())
