"""Refine parameters through ``heron serve``: pymilvus sends index and search parameters as strings."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import Server, require_module


@pytest.fixture
def server(wiped_server: Server) -> Server:
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


pymilvus = require_module("pymilvus")
DataType = pymilvus.DataType


def _collection(c, name: str, index_type: str, params: dict) -> np.ndarray:
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=16)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type=index_type, metric_type="L2", params=params)
    c.create_collection(name, schema=schema, index_params=idx)
    x = np.random.default_rng(3).normal(size=(3000, 16)).astype(np.float32)
    c.insert(name, [{"id": i, "v": row.tolist()} for i, row in enumerate(x)])
    c.flush(name)
    return x


@pytest.mark.parametrize(
    ("index_type", "params", "search"),
    [
        ("IVF_RABITQ", {"nlist": 16, "refine": True, "refine_type": "FP32"},
         {"nprobe": 16, "refine_k": 4, "rbq_query_bits": 8}),
        ("HNSW_SQ", {"sq_type": "SQ6", "refine": True, "refine_type": "FP16"}, {"ef": 64, "refine_k": 2.5}),
        ("IVF_PQ", {"nlist": 16, "m": 4, "nbits": 8, "refine": True, "refine_type": "SQ8"},
         {"nprobe": 16, "refine_k": 8}),
    ],
)
def test_pymilvus_builds_and_searches_a_refined_index(server: Server, index_type: str, params: dict, search: dict) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        x = _collection(c, "q", index_type, params)
        got = c.describe_index("q", "v")
        assert got["index_type"] == index_type
        assert (got["refine"], got["refine_type"]) == ("true", params["refine_type"])
        hits = c.search("q", [x[7].tolist(), x[2900].tolist()], limit=5, search_params={"params": search})
        assert [h[0]["id"] for h in hits] == [7, 2900]
        assert hits[0][0]["distance"] == pytest.approx(0.0, abs=1e-2)
    finally:
        c.close()


@pytest.mark.parametrize(
    ("params", "search", "message"),
    [
        ({"refine": True, "sq_type": "SQ8", "refine_type": "SQ6"}, None, "must be of higher precision than sq_type"),
        ({"refine": True, "refine_type": "FP64"}, None, "invalid refine type : FP64, optional types"),
        ({"refine": True}, {"ef": 32, "refine_k": 0.5}, "refine_k must be a number in [1.0, "),
    ],
)
def test_pymilvus_gets_the_refine_errors(server: Server, params: dict, search: dict | None, message: str) -> None:
    c = pymilvus.MilvusClient(server.uri)
    try:
        if search is None:
            with pytest.raises(pymilvus.MilvusException) as err:
                _collection(c, "bad", "HNSW_SQ", params)
            assert not c.has_collection("bad") or c.list_indexes("bad") == []
        else:
            _collection(c, "bad", "HNSW_SQ", params)
            with pytest.raises(pymilvus.MilvusException) as err:
                c.search("bad", [[0.0] * 16], limit=3, search_params={"params": search})
        assert message in str(err.value)
    finally:
        c.close()
