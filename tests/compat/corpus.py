"""The corpus: importing this module registers every case."""

from __future__ import annotations

import pymilvus

from tests.compat import (  # noqa: F401  (they register their cases)
    _cases_catalog,
    _cases_errors,
    _cases_methods,
    _cases_search,
    _cases_types,
)
from tests.compat._harness import CASES, Case

__all__ = ["cases", "pymilvus"]


def cases() -> list[Case]:
    return list(CASES.values())
