"""Every public method of pymilvus's MilvusClient and AsyncMilvusClient has a counterpart on Client and AsyncClient.

The lists are read from the installed pymilvus (CI runs this file with
pymilvus 3 in scripts/check, and with pymilvus 2.6 in scripts/check-pymilvus). A counterpart has the same name and
accepts every named parameter pymilvus's has, at the same position when
pymilvus takes it positionally, and requires none that pymilvus leaves
optional; Heron may accept more. What Heron does not provide is listed
below, each with its reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

import heron
from tests.conftest import require_module

pm = require_module("pymilvus")

#: Methods Heron does not provide, and why.
NOT_PROVIDED: dict[str, str] = {
    "get_replicate_configuration": "cross-cluster replication (CDC) streams a cluster's WAL to another cluster; "
    "Heron is one process with no replication stream (Milvus Lite answers UNIMPLEMENTED too)",
    "update_replicate_configuration": "as get_replicate_configuration: there is no replication topology to join",
    "get_replicate_info": "as get_replicate_configuration: there are no replication checkpoints to report",
    "dump_messages": "salvages a range of a cluster's WAL after a forced failover between replicated clusters; "
    "Heron has neither a WAL stream with message ids nor failover, so there is nothing to dump",
    "refresh_external_collection": "external collections read their rows from files in object storage "
    "(external_source/external_spec); Heron stores every collection's rows itself and cannot create one, "
    "so there is no external source to refresh",
    "get_refresh_external_collection_progress": "as refresh_external_collection: no refresh job can exist",
    "list_refresh_external_collection_jobs": "as refresh_external_collection: no refresh job can exist",
}

#: Methods other branches of Heron add at the same time (to be removed from here when they land).
ADDED_ELSEWHERE: frozenset[str] = frozenset({
    "add_function_field", "drop_function_field",
})

#: (pymilvus class, method, parameter) → why Heron's counterpart differs there.
PARAMETER_EXCEPTIONS: dict[tuple[str, str, str], str] = {
    # One source makes both Heron clients (scripts/unasync.py), so a method has one signature; where
    # pymilvus's two clients order parameters differently, Heron follows MilvusClient. By keyword both work.
    ("AsyncMilvusClient", "update_password", "timeout"): "MilvusClient's order (reset_connection third)",
    ("AsyncMilvusClient", "update_password", "description"): "MilvusClient's order (reset_connection third)",
    ("AsyncMilvusClient", "get_load_state", "partition_names"): "MilvusClient's order (partition_name first)",
    **{("AsyncMilvusClient", "transfer_replica", p): "MilvusClient's names by position (source_group, "
       "target_group, collection_name, num_replicas); the async names are accepted as keywords"
       for p in ("source", "target", "num_replica")},
    ("AsyncMilvusClient", "refresh_load", "partition_names"): "loaded data is always current: nothing to refresh "
    "per partition, so refresh_load takes the collection only (other keywords are accepted and ignored)",
    ("AsyncMilvusClient", "refresh_load", "timeout"): "as partition_names: pymilvus's async client puts "
    "partition_names second",
    **{("AsyncMilvusClient", "search", p): "MilvusClient's order (highlighter before ids and "
       "search_aggregation; pymilvus's async search has no highlighter)" for p in ("ids", "search_aggregation")},
    # pymilvus 3 put function_chains between ranker and highlighter; pymilvus 2.6 has highlighter and ids
    # right after ranker. Heron takes pymilvus 3's order; by keyword both releases work.
    **({("MilvusClient", "search", p): "pymilvus 3's order (function_chains before highlighter and ids)"
        for p in ("highlighter", "ids")} if int(pm.__version__.split(".")[0]) < 3 else {}),
}

#: Parameters other branches of Heron add with the features they carry (function rankers, compaction options).
PARAMETERS_ADDED_ELSEWHERE: dict[str, frozenset[str]] = {
    "search": frozenset({"ranker", "function_chains"}),
}

#: Parameters Heron does not take yet, and why (pymilvus 3 additions to search).
PARAMETERS_NOT_YET: dict[str, dict[str, str]] = {}

PAIRS = [("MilvusClient", heron.Client), ("AsyncMilvusClient", heron.AsyncClient)]


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The public methods (and static and class methods) of a class, by name."""
    return {name: member for name, member in inspect.getmembers(cls, callable)
            if not name.startswith("_") and not inspect.isclass(member)}


def parameter_problems(theirs: Callable[..., Any], ours: Callable[..., Any]) -> dict[str, str]:
    """Per parameter of ``theirs``, what ``ours`` does not match: absent, another position, or required."""
    mine = inspect.signature(ours).parameters
    positional = [p.name for p in mine.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in ("self", "cls")]
    problems = {}
    params = [p for p in inspect.signature(theirs).parameters.values() if p.name not in ("self", "cls")]
    for i, p in enumerate(params):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        h = mine.get(p.name)
        if h is None:
            problems[p.name] = "absent"
        elif p.kind == p.POSITIONAL_OR_KEYWORD and (i >= len(positional) or positional[i] != p.name):
            problems[p.name] = f"position {i} is {positional[i] if i < len(positional) else 'keyword-only'!r}"
        elif p.default is not p.empty and h.default is h.empty:
            problems[p.name] = "required"
    return problems


@pytest.mark.parametrize(("pm_name", "ours"), PAIRS, ids=[p[0] for p in PAIRS])
def test_every_pymilvus_method_has_a_counterpart(pm_name, ours):
    theirs = public_methods(getattr(pm, pm_name))
    assert len(theirs) > 50, f"pymilvus's {pm_name} lists only {len(theirs)} methods: not the class meant"
    missing = set(theirs) - set(public_methods(ours)) - set(NOT_PROVIDED) - ADDED_ELSEWHERE
    assert not missing, f"{ours.__name__} lacks {sorted(missing)} of pymilvus's {pm_name}"


@pytest.mark.parametrize(("pm_name", "ours"), PAIRS, ids=[p[0] for p in PAIRS])
def test_counterparts_take_pymilvus_parameters(pm_name, ours):
    theirs, mine = public_methods(getattr(pm, pm_name)), public_methods(ours)
    wrong = {}
    for name in sorted(set(theirs) & set(mine)):
        problems = {
            p: why for p, why in parameter_problems(theirs[name], mine[name]).items()
            if (pm_name, name, p) not in PARAMETER_EXCEPTIONS and p not in PARAMETERS_ADDED_ELSEWHERE.get(name, ())
            and p not in PARAMETERS_NOT_YET.get(name, {})
        }
        if problems:
            wrong[name] = problems
    assert not wrong, f"{ours.__name__} differs from pymilvus's {pm_name}: {wrong}"


def test_listed_exceptions_are_still_needed():
    """Each listed exception names a method pymilvus has, that Heron lacks (or differs in), so none goes stale."""
    both = {n for pm_name, _ in PAIRS for n in public_methods(getattr(pm, pm_name))}
    ours = {n for _, cls in PAIRS for n in public_methods(cls)}
    assert all(why for why in NOT_PROVIDED.values())
    for name in NOT_PROVIDED:
        assert name not in ours, f"{name} is provided now: remove it from NOT_PROVIDED"
    for name in ADDED_ELSEWHERE:
        assert name not in ours, f"{name} has landed: remove it from ADDED_ELSEWHERE"
    for name, params in PARAMETERS_NOT_YET.items():
        for param in params:
            for pm_name, cls in PAIRS:  # where the installed pymilvus has the parameter, Heron must lack it
                theirs = getattr(getattr(pm, pm_name), name, None)
                if theirs is not None and param in inspect.signature(theirs).parameters:
                    assert param in parameter_problems(theirs, getattr(cls, name)), (pm_name, name, param)
    for pm_name, name, param in PARAMETER_EXCEPTIONS:
        cls = getattr(pm, pm_name)
        # Where the installed pymilvus has the method and the parameter (older ones lack some), Heron must differ.
        if name in public_methods(cls) and param in inspect.signature(getattr(cls, name)).parameters:
            ours_fn = public_methods(dict(PAIRS)[pm_name])[name]
            assert param in parameter_problems(getattr(cls, name), ours_fn), (pm_name, name, param)
    assert set(NOT_PROVIDED) <= both | set(NOT_PROVIDED)


def test_the_check_finds_what_it_should():
    """parameter_problems sees an absent parameter, a moved one and a required one."""

    def theirs(self, a, b=1, *, c=2, **kw): ...
    def ours_ok(self, a, b=1, x=0, *, c=2, d=3, **kw): ...
    def ours_bad(self, b=1, a=0, **kw): ...
    def ours_required(self, a, b, c, **kw): ...

    assert parameter_problems(theirs, ours_ok) == {}
    assert parameter_problems(theirs, ours_bad) == {"a": "position 0 is 'b'", "b": "position 1 is 'a'", "c": "absent"}
    assert set(parameter_problems(theirs, ours_required)) == {"b", "c"}
