"""alter_database_properties / drop_database_properties, side by side with Milvus Lite.

The same calls through pymilvus on Milvus Lite, pymilvus and both Heron
clients on ``heron serve``, and both Heron clients embedded: every step's
``describe_database`` must be the same, and a deleted key stays deleted
after the data directory is opened again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import heron
from tests.conftest import Server, launch_server, require_module

pm = require_module("pymilvus")


class _Blocking:
    def __init__(self, client: heron.AsyncClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        return lambda *a, **k: asyncio.run(method(*a, **k))


def _steps(c: Any) -> list[Any]:
    out: list[Any] = []

    def outcome(call: Any) -> Any:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - the error's code is the outcome compared
            return ("error", int(getattr(exc, "code", -1)))
        return "ok"

    out.append(outcome(lambda: c.create_database("dbp", properties={"a": 1, "b": "x"})))
    out.append(c.describe_database("dbp"))
    out.append(outcome(lambda: c.alter_database_properties("dbp", {"b": "y", "c": True, "d": 2.5})))
    out.append(c.describe_database("dbp"))
    out.append(outcome(lambda: c.drop_database_properties("dbp", ["a", "not-there"])))
    out.append(c.describe_database("dbp"))
    out.append(outcome(lambda: c.alter_database_properties("default", {"k": "v"})))
    out.append(c.describe_database("default"))
    out.append(outcome(lambda: c.drop_database_properties("default", ["k"])))
    out.append(c.describe_database("default"))
    out.append(outcome(lambda: c.alter_database_properties("no_such_db", {"k": "v"})))
    out.append(outcome(lambda: c.drop_database("dbp")))
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = launch_server(str(tmp_path_factory.mktemp("dbprops") / "data"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lite_steps(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    require_module("milvus_lite")
    lite = pm.MilvusClient(str(tmp_path_factory.mktemp("lite") / "lite.db"))
    try:
        return _steps(lite)
    finally:
        lite.close()


def test_milvus_lite_answers_as_expected(lite_steps):
    """What the other tests compare against: properties as strings, deleted keys gone."""
    assert lite_steps[1] == {"name": "dbp", "a": "1", "b": "x"}
    assert lite_steps[5] == {"name": "dbp", "b": "y", "c": "True", "d": "2.5"}
    assert lite_steps[9] == {"name": "default"}
    assert lite_steps[10] == ("error", LITE_NO_DB)


#: Milvus Lite's code for a database that does not exist; Heron gives the Milvus server's, 800
#: ("database not found"), as for describe_database (see test_milvus_lite_errors.py).
LITE_NO_DB = 6
MILVUS_NO_DB = 800


@pytest.mark.parametrize("kind", ["pymilvus-served", "sync-served", "async-served", "sync-embedded",
                                  "async-embedded"])
def test_the_same_answers_as_milvus_lite(kind, lite_steps, served, tmp_path):
    client_kind, where = kind.split("-")
    uri = served.uri if where == "served" else str(tmp_path / "db")
    if client_kind == "pymilvus":
        c: Any = pm.MilvusClient(uri)
    elif client_kind == "sync":
        c = heron.Client(uri)
    else:
        c = _Blocking(heron.AsyncClient(uri))
    try:
        expected = [*lite_steps[:10], ("error", MILVUS_NO_DB), *lite_steps[11:]]
        assert _steps(c) == expected
    finally:
        c.close()


def test_deleted_keys_stay_deleted_after_reopening(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        c.create_database("kept", properties={"a": "1", "b": "2"})
        c.drop_database_properties("kept", ["a"])
        c.alter_database_properties("kept", {"c": "3"})
    with heron.Client(path) as c:
        assert c.describe_database("kept") == {"name": "kept", "b": "2", "c": "3"}


def test_bad_input_names_the_argument_and_writes_nothing(tmp_path):
    with heron.Client(str(tmp_path / "db")) as c:
        with pytest.raises(heron.ParamError, match="properties"):
            c.alter_database_properties("default", ["not", "a", "dict"])  # type: ignore[arg-type]
        with pytest.raises(heron.ParamError, match="property_keys"):
            c.drop_database_properties("default", "a")  # type: ignore[arg-type]
        with pytest.raises(heron.DatabaseNotFoundError):
            c.alter_database_properties("nodb", {"a": "1"})
        assert c.describe_database("default") == {"name": "default"}
