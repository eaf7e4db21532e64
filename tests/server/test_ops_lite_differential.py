"""ShowCollections and ShowPartitions with names and load states, side by side with Milvus Lite.

pymilvus asks ShowCollections with names (and ``type=InMemory``) to learn
whether collections are loaded, and ShowPartitions for partitions' load
state; Heron must answer them as Milvus Lite does: the names asked for, in
that order, each with its in-memory percentage.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import launch_server, require_module
from tests.server.test_milvus_lite_interop import start_milvus_lite

pm = require_module("pymilvus")
require_module("milvus_lite")
DataType = pm.DataType


@pytest.fixture(scope="module")
def uris() -> Iterator[dict[str, str]]:
    tmp = tempfile.mkdtemp(prefix="heron-ops-lite-")
    lite = start_milvus_lite(f"{tmp}/lite")
    heron_server = launch_server(f"{tmp}/heron")
    try:
        yield {"lite": f"http://127.0.0.1:{lite.port}", "heron": heron_server.uri}
    finally:
        heron_server.stop()
        lite.proc.terminate()
        lite.proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare(c: Any) -> None:
    for name in ("a", "b"):
        schema = c.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
        idx = c.prepare_index_params()
        idx.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_collection(name, schema=schema, index_params=idx)
    c.create_partition("a", "p")
    c.release_collection("b")


def _answers(uri: str) -> dict[str, Any]:
    c = pm.MilvusClient(uri)
    try:
        _prepare(c)
        stub = c._get_connection()._stub
        pb = pm.grpc_gen.milvus_pb2
        out: dict[str, Any] = {}
        r = stub.ShowCollections(pb.ShowCollectionsRequest(collection_names=["b", "a"], type=pb.InMemory))
        out["named"] = (r.status.code, list(r.collection_names), list(r.inMemory_percentages))
        r = stub.ShowCollections(pb.ShowCollectionsRequest())
        out["all"] = (r.status.code, sorted(r.collection_names))
        r = stub.ShowPartitions(pb.ShowPartitionsRequest(collection_name="a"))
        out["partitions"] = (r.status.code, sorted(r.partition_names))
        r = stub.ShowPartitions(pb.ShowPartitionsRequest(collection_name="a", partition_names=["p"]))
        out["named partitions"] = (r.status.code, list(r.partition_names))
        out["load state b"] = str(c.get_load_state("b")["state"])
        out["load state a"] = str(c.get_load_state("a")["state"])
        return out
    finally:
        c.close()


def test_show_collections_and_partitions_answer_as_milvus_lite(uris: dict[str, str]) -> None:
    assert _answers(uris["heron"]) == _answers(uris["lite"])
