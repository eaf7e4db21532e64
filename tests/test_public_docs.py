"""The public API is complete, sorted and documented: every public name and method has a docstring."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

import heron
import heron.server
from heron._errors import HeronError
from heron.client import _async_iterators, _ops_results, _sync_iterators

# Modules whose every public class is part of the API and must be re-exported by `heron`.
REEXPORTED = (
    "heron._errors",
    "heron._functions",
    "heron._schema",
    "heron._types",
    "heron.client._helpers",
    "heron.client._results",
)
# Returned by client methods, never built by users: documented, not re-exported.
RETURNED = (
    _async_iterators.AsyncQueryIterator,
    _async_iterators.AsyncSearchIterator,
    _sync_iterators.QueryIterator,
    _sync_iterators.SearchIterator,
    _ops_results.SnapshotInfo,
    _ops_results.RestoreSnapshotJobInfo,
    _ops_results.SegmentInfo,
    _ops_results.FileResourceInfo,
    _ops_results.CompactionPlans,
    _ops_results.OptimizeResult,
    _ops_results.OptimizeTask,
)


def _public(module: Any) -> list[tuple[str, Any]]:
    return [(f"{module.__name__}.{n}", getattr(module, n)) for n in module.__all__ if not n.startswith("__")]


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties that Heron defines on ``cls`` or its Heron bases (not those of builtins)."""
    out = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((b for b in cls.__mro__ if name in vars(b)), None)
        if owner is None or not owner.__module__.startswith("heron"):
            continue
        attr = vars(owner)[name]
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if inspect.isfunction(attr) or isinstance(attr, property):
            out.append((f"{cls.__name__}.{name}", attr))
    return out


def _documented(obj: Any) -> bool:
    doc = obj.__doc__
    if not doc or not doc.strip():
        return False
    # A dataclass without a docstring gets its signature as one.
    return not (inspect.isclass(obj) and doc.startswith(obj.__name__ + "("))


def _api() -> list[tuple[str, Any]]:
    names = _public(heron) + _public(heron.server)
    classes = [obj for _, obj in names if inspect.isclass(obj)] + list(RETURNED)
    names += [(f"{c.__module__}.{c.__name__}", c) for c in RETURNED]
    # Engine-internal errors too: a reader meets them in tracebacks and logs.
    names += [(f"{c.__module__}.{c.__name__}", c) for c in _subclasses(HeronError)]
    for cls in classes:
        names += _members(cls)
    return names


def test_every_public_name_and_method_has_a_docstring():
    missing = sorted(name for name, obj in _api() if not _documented(obj))
    assert not missing, f"{len(missing)} public names without a docstring:\n  " + "\n  ".join(missing)


def test_the_check_sees_the_whole_api():
    names = {name for name, _ in _api()}
    for expected in ("heron.Client", "Client.search", "AsyncClient.create_schema", "Hit.distance",
                     "CollectionSchema.add_field", "heron.server.serve", "QueryIterator.next"):
        assert expected in names
    assert "Hit.keys" not in names and "SearchResult.append" not in names


@pytest.mark.parametrize("module", [heron, heron.server], ids=lambda m: m.__name__)
def test_all_is_sorted_without_duplicates_and_every_name_exists(module):
    assert module.__all__ == sorted(set(module.__all__))
    assert [n for n in module.__all__ if not hasattr(module, n)] == []


def test_all_holds_every_public_class_of_the_api_modules():
    defined = {
        name
        for m in map(importlib.import_module, REEXPORTED)
        for name, obj in vars(m).items()
        if inspect.isclass(obj) and obj.__module__ == m.__name__ and not name.startswith("_")
    }
    defined |= {"Client", "AsyncClient", "__version__"}
    assert sorted(defined - set(heron.__all__)) == [], "public classes missing from heron.__all__"
    assert sorted(set(heron.__all__) - defined) == [], "names in heron.__all__ outside the API modules"


def _subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("heron"):
            out |= {sub} | _subclasses(sub)
    return out
