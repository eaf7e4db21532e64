"""The engine's dispatch table: each request type of `heron._requests` is answered by exactly one handler."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from heron import _requests as rq
from heron._errors import ParamError
from heron.engine._access import ACCESS_REQUESTS
from heron.engine._access import run as run_access
from heron.engine._coalesce import SearchCoalescer
from heron.engine._engine import Engine

#: Request classes of `heron._requests` that the engine deliberately does not execute, each with
#: the reason. None at present: the clients and the server send every one of them to
#: `Engine.execute`; what the server answers itself (users, roles, privileges) goes to its
#: `AuthStore` and has no request class.
NOT_ENGINE_REQUESTS: dict[type, str] = {}


def _request_classes() -> set[type]:
    return {
        c for _, c in inspect.getmembers(rq, inspect.isclass)
        if c.__module__.startswith(rq.__name__) and dataclasses.is_dataclass(c)
    }


def _method(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The engine method behind ``handler`` (a search coalescer runs every search through one).

    Search wrappers (by ids, highlighting, aggregation) name the search they wrap in ``__wrapped__``.
    """
    handler = inspect.unwrap(handler)
    owner = getattr(handler, "__self__", None)
    return owner.runs if isinstance(owner, SearchCoalescer) else handler


@pytest.fixture
def engine(tmp_path) -> Iterator[Engine]:
    e = Engine(str(tmp_path / "d"))
    yield e
    e.close()


def test_every_request_class_is_either_dispatched_or_listed_as_not_an_engine_request(engine) -> None:
    classes = _request_classes()
    assert set(NOT_ENGINE_REQUESTS) <= classes
    assert set(engine.handlers) == classes - set(NOT_ENGINE_REQUESTS)


def test_the_table_lists_each_request_type_once() -> None:
    """A key written twice in the table's dict would silently drop one of its handlers."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(Engine._dispatch_table)))
    (table,) = [node for node in ast.walk(tree) if isinstance(node, ast.Dict)]
    keys = Counter(ast.unparse(k) for k in table.keys if k is not None)
    assert [k for k, n in keys.items() if n > 1] == []
    # The access requests join the table through one ``**{...}`` entry (they share one handler).
    assert len(keys) + len(ACCESS_REQUESTS) == len(_request_classes() - set(NOT_ENGINE_REQUESTS))


def test_each_handler_takes_the_request_type_it_is_listed_for(engine) -> None:
    for kind, handler in engine.handlers.items():
        if kind in ACCESS_REQUESTS:
            # Users, roles and privileges share `_access.run`, which picks the step by the request's type.
            assert isinstance(handler, partial) and handler.func is run_access, (kind, handler)
            continue
        for fn in (handler, _method(handler)):
            first = next(iter(inspect.signature(fn).parameters.values()))
            assert first.annotation in (f"rq.{kind.__name__}", kind), (kind, fn)


def test_every_handler_method_answers_exactly_one_request_type(engine) -> None:
    owners = (engine.catalog_ops, engine.writer, engine.maintenance, engine.reader, engine.schema_ops,
              engine.snapshots, engine.segment_info, engine.file_resources, engine.resource_groups,
              engine.function_ops, engine.imports)
    defined = Counter(getattr(o, name) for o in owners for name in dir(o) if name.startswith("op_"))
    used = Counter(_method(h) for h in engine.handlers.values() if not isinstance(h, partial))
    assert used == defined
    partials = {k for k, h in engine.handlers.items() if isinstance(h, partial)}
    assert partials == set(ACCESS_REQUESTS)
    assert set(used.values()) == {1}


def test_searches_go_through_the_coalescer(engine) -> None:
    handler = inspect.unwrap(engine.handlers[rq.Search])
    assert isinstance(getattr(handler, "__self__", None), SearchCoalescer)
    assert _method(handler) == engine.reader.op_search


def test_an_unknown_request_is_refused_by_name(engine) -> None:
    @dataclasses.dataclass(frozen=True)
    class Frobnicate:
        db_name: str = ""

    with pytest.raises(ParamError, match="unknown request Frobnicate"):
        engine.execute(Frobnicate())


def test_a_request_is_answered_by_its_handler(engine) -> None:
    engine.execute(rq.CreateDatabase("other"))
    assert engine.execute(rq.ListDatabases()) == ["default", "other"]
