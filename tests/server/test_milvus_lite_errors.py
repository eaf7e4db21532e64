"""The common errors, side by side with Milvus Lite: the same code, and Milvus's wording naming the object.

Each case is one call made three ways on the same prepared objects: with
pymilvus's ``MilvusClient`` against a ``milvus-lite server`` (started here as
a real process), with ``MilvusClient`` against ``heron serve``, and with
``heron.Client`` embedded (given pymilvus's own schema and index objects).
Where Milvus and Milvus Lite agree on the error, Heron must give the same
code, and a message carrying Milvus's phrase and the object's name. Where
they disagree, the case says so and why; Heron then follows the Milvus
server (its codes are the ones ``pymilvus`` documents and libraries test),
and the test checks that Milvus Lite still answers as listed, so a change
on either side shows up here.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import heron
from tests.conftest import launch_server, require_module
from tests.server.test_milvus_lite_interop import start_milvus_lite

pm = require_module("pymilvus")
require_module("milvus_lite")
DataType = pm.DataType


@dataclass(frozen=True)
class Case:
    """One call, the error code Milvus gives, its phrase, and what differs in Milvus Lite (if anything)."""

    call: Callable[[Any], Any]
    #: Milvus's error code, or "answers" where Milvus (or Milvus Lite, for its bookkeeping habits) answers.
    code: int | str
    phrase: str
    names: tuple[str, ...] = ()
    #: Milvus Lite's own code where it differs from Milvus's, with the reason Heron follows Milvus.
    lite: tuple[int | str, str] | None = None
    #: pymilvus refuses it before sending; heron.Client refuses it itself, with its own code and wording.
    client_side: bool = False


_VEC = [1.0, 0.0, 0.0, 0.0]

CASES: dict[str, Case] = {
    # -- collections ------------------------------------------------------------------------
    "describe a missing collection": Case(lambda c: c.describe_collection("x"), 100, "collection not found", ("x",)),
    "insert into a missing collection": Case(lambda c: c.insert("x", [{"id": 1}]), 100, "collection not found", ("x",)),
    "search a missing collection": Case(lambda c: c.search("x", [_VEC]), 100, "collection not found", ("x",)),
    "query a missing collection": Case(lambda c: c.query("x", filter="id > 0"), 100, "collection not found", ("x",)),
    "get from a missing collection": Case(lambda c: c.get("x", ids=[1]), 100, "collection not found", ("x",)),
    "delete from a missing collection": Case(lambda c: c.delete("x", ids=[1]), 100, "collection not found", ("x",)),
    "stats of a missing collection": Case(lambda c: c.get_collection_stats("x"), 100, "collection not found", ("x",)),
    "load a missing collection": Case(lambda c: c.load_collection("x"), 100, "collection not found", ("x",)),
    "release a missing collection": Case(lambda c: c.release_collection("x"), 100, "collection not found", ("x",)),
    "rename a missing collection": Case(lambda c: c.rename_collection("x", "y"), 100, "collection not found", ("x",)),
    "indexes of a missing collection": Case(lambda c: c.list_indexes("x"), 100, "collection not found", ("x",)),
    "alias to a missing collection": Case(lambda c: c.create_alias("x", "al2"), 100, "collection not found", ("x",)),
    "move an alias to a missing collection": Case(lambda c: c.alter_alias("x", "al"), 100, "collection not found",
                                                  ("x",)),
    "create a collection again, another schema": Case(
        lambda c: c.create_collection("c", dimension=8), 1,
        "create duplicate collection with different parameters", ("c",)),
    "create a collection again, same schema": Case(
        lambda c: c.create_collection("c2", dimension=4), "answers", "",
        lite=(1, "Milvus makes creating a collection idempotent; Milvus Lite refuses the second call")),
    "search a collection with no index": Case(lambda c: c.search("u", [_VEC]), "answers", ""),
    # -- partitions -------------------------------------------------------------------------
    "drop a missing partition": Case(lambda c: c.drop_partition("c", "zz"), 200, "partition not found", ("zz",)),
    "stats of a missing partition": Case(lambda c: c.get_partition_stats("c", "zz"), 200, "partition not found",
                                         ("zz",)),
    "insert into a missing partition": Case(
        lambda c: c.insert("c", [{"id": 9, "v": _VEC, "t": "a"}], partition_name="zz"), 200, "partition not found",
        ("zz",)),
    "search a missing partition": Case(
        lambda c: c.search("c", [_VEC], partition_names=["zz"]), 200, "partition not found", ("zz",),
        lite=("answers", "Milvus Lite skips an unknown partition and answers nothing; the Milvus server refuses it")),
    "create a partition again": Case(
        lambda c: c.create_partition("c", "_default"), "answers", "",
        lite=(1, "Milvus's root coordinator accepts a partition created again as done; Milvus Lite refuses it")),
    "drop a loaded partition": Case(
        lambda c: (c.create_partition("c", "pp"), c.drop_partition("c", "pp")), "answers", ""),
    # -- load state -------------------------------------------------------------------------
    "search a released collection": Case(lambda c: c.search("r", [_VEC]), 101, "collection not loaded", ("r",)),
    "query a released collection": Case(lambda c: c.query("r", filter="id > 0"), 101, "collection not loaded",
                                        ("r",)),
    "get from a released collection": Case(lambda c: c.get("r", ids=[1]), 101, "collection not loaded", ("r",)),
    # -- aliases ----------------------------------------------------------------------------
    "describe a missing alias": Case(
        lambda c: c.describe_alias("nope"), 1600, "alias not found", ("nope",),
        lite=(100, "Milvus Lite reports a missing alias as a missing collection; Milvus has ErrAliasNotFound")),
    "move a missing alias": Case(
        lambda c: c.alter_alias("c", "nope"), 1600, "alias not found", ("nope",),
        lite=(100, "as above")),
    "the same alias again": Case(
        lambda c: c.create_alias("c", "al"), "answers", "",
        lite=(1, "Milvus treats the same alias on the same collection as done; Milvus Lite refuses it")),
    "an alias taken by another collection": Case(
        lambda c: c.create_alias("c2", "al"), 1602, "alias already exist", ("al",),
        lite=(1, "Milvus Lite has no code for it (UnexpectedError); Milvus has ErrAliasAlreadyExist")),
    "an alias named like a collection": Case(
        lambda c: c.create_alias("c", "c2"), 1601, "alias and collection name conflict", ("c2",),
        lite=(1, "Milvus Lite has no code for it (UnexpectedError); Milvus has ErrAliasCollectionNameConflict")),
    # -- databases --------------------------------------------------------------------------
    "describe a missing database": Case(
        lambda c: c.describe_database("nodb"), 800, "database not found", ("nodb",),
        lite=(6, "Milvus Lite answers the legacy IllegalArgument; Milvus has ErrDatabaseNotFound (800)")),
    "drop a missing database": Case(
        lambda c: c.drop_database("nodb"), 800, "database not found", ("nodb",),
        lite=(6, "as above")),
    # -- indexes ----------------------------------------------------------------------------
    "drop a missing index": Case(lambda c: c.drop_index("u", "nope"), 700, "index not found", ("nope",)),
    "drop a vector index of a loaded collection": Case(
        lambda c: c.drop_index("c", "v"), 65535, "index cannot be dropped, collection is loaded", ("c",),
        lite=(6, "Milvus Lite refuses it too, with the legacy IllegalArgument code; Milvus's is 65535")),
    # -- arguments pymilvus checks before sending -------------------------------------------
    "insert without a required field": Case(lambda c: c.insert("c", [{"id": 9, "t": "a"}]), 1, "missed an field",
                                            ("v",), client_side=True),
    "insert an unknown field": Case(lambda c: c.insert("c", [{"id": 9, "v": _VEC, "t": "a", "zz": 1}]), 1,
                                    "unexpected field", ("zz",), client_side=True),
    "search with limit 0": Case(lambda c: c.search("c", [_VEC], limit=0), 1, "`limit` value 0 is illegal",
                                client_side=True),
}


def _prepare(c: Any) -> None:
    """The objects every case expects: c (indexed, loaded), c2, r (released), u (no index), alias al -> c."""
    s = pm.MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("t", DataType.VARCHAR, max_length=8)
    idx = pm.MilvusClient.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    for name in ("c", "r"):
        c.create_collection(name, schema=s, index_params=idx)
        c.insert(name, [{"id": i, "v": [float(i)] * 4, "t": "a"} for i in range(3)])
    c.create_collection("u", schema=s)
    c.create_collection("c2", dimension=4)
    c.release_collection("r")
    c.create_alias("c", "al")


def _outcome(client: Any, call: Callable[[Any], Any]) -> tuple[Any, str]:
    try:
        call(client)
    except (pm.MilvusException, heron.HeronError) as e:
        return int(e.code), str(e.message)
    return "answers", ""


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[str, dict[str, tuple[Any, str]]]]:
    """Per backend ("lite", "served", "embedded"), per case, ``(code or "answers", message)``."""
    root = tempfile.mkdtemp(prefix="heron-lite-errors-")
    lite = start_milvus_lite(f"{root}/lite")
    server = None
    try:
        server = launch_server(f"{root}/heron")
        clients = {"lite": pm.MilvusClient(lite.uri), "served": pm.MilvusClient(server.uri),
                   "embedded": heron.Client(f"{root}/embedded")}
        result: dict[str, dict[str, tuple[Any, str]]] = {}
        for where, c in clients.items():
            _prepare(c)
            result[where] = {name: _outcome(c, case.call) for name, case in CASES.items()}
            c.close()
        yield result
    finally:
        lite.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("name", list(CASES))
def test_heron_refuses_as_milvus_does(outcomes, name):
    case = CASES[name]
    expected_lite = case.code if case.lite is None else case.lite[0]
    assert outcomes["lite"][name][0] == expected_lite, (name, outcomes["lite"][name])
    for where in ("served", "embedded"):
        code, message = outcomes[where][name]
        if where == "embedded" and case.client_side:
            assert code in (1, 1100) and all(obj in message for obj in case.names), (where, name, code, message)
            continue
        assert code == case.code, (where, name, code, message)
        assert case.phrase in message, (where, name, message)
        for obj in case.names:
            assert obj in message, (where, name, message)
