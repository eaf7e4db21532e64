"""BM25 through ``heron serve`` with pymilvus: an index with metric BM25, searched with sparse query rows.

The rows and queries are the BM25 function's term counts; the answers must
be those of the embedded client on the same data (same ids, same scores).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from heron.engine.functions._base import FunctionDef, build
from tests.conftest import require_module


@pytest.fixture
def server(wiped_server):
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


TEXTS = ["hello world hello", "world of dogs", "", "cats and dogs", "a world apart", "dogs chase cats all day"]
QUERIES = ["hello dogs world", "cats", "nothing here"]


def _rows_and_queries() -> tuple[list[dict[str, Any]], list[dict[int, float]]]:
    fn = build(FunctionDef("bm25", "BM25", ("text",), ("sparse",)), None)

    def dicts(m: Any) -> list[dict[int, float]]:
        return [dict(zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist()))
                for lo, hi in zip(m.indptr[:-1], m.indptr[1:])]

    docs = dicts(fn.compute({"text": TEXTS})["sparse"])
    return [{"id": i, "text": t, "sparse": d} for i, (t, d) in enumerate(zip(TEXTS, docs))], \
        dicts(fn.query(QUERIES))


def _setup(client: Any, data_type: Any, **params: Any) -> None:
    s = client.create_schema()
    s.add_field("id", data_type.INT64, is_primary=True)
    s.add_field("text", data_type.VARCHAR, max_length=200)
    s.add_field("sparse", data_type.SPARSE_FLOAT_VECTOR)
    ip = client.prepare_index_params()
    ip.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params=params)
    client.create_collection("docs", schema=s, index_params=ip)


def test_pymilvus_searches_a_bm25_index_as_the_embedded_client_does(server, tmp_path):
    pm = require_module("pymilvus")
    rows, queries = _rows_and_queries()
    remote = pm.MilvusClient(server.uri)
    _setup(remote, pm.DataType, bm25_k1=1.5, bm25_b=0.6)
    remote.insert("docs", rows)
    got = remote.search("docs", data=queries, anns_field="sparse", limit=3, search_params={"metric_type": "BM25"})
    local = heron.Client(str(tmp_path / "db"))
    _setup(local, heron.DataType, bm25_k1=1.5, bm25_b=0.6)
    local.insert("docs", rows)
    want = local.search("docs", data=queries, anns_field="sparse", limit=3, search_params={"metric_type": "BM25"})
    local.close()
    assert [[h["id"] for h in q] for q in got] == [[h["id"] for h in q] for q in want]
    assert len(want[0]) == 3 and want[2] == []
    np.testing.assert_allclose([h["distance"] for h in got[0]], [h["distance"] for h in want[0]], rtol=1e-6)
    assert all(h["distance"] > 0 for h in got[0])
    desc = remote.describe_index("docs", "sparse")
    assert desc["metric_type"] == "BM25" and float(desc["bm25_k1"]) == 1.5


def test_pymilvus_gets_milvus_errors_for_bad_bm25_parameters(server):
    pm = require_module("pymilvus")
    remote = pm.MilvusClient(server.uri)
    with pytest.raises(pm.exceptions.MilvusException, match="bm25_k1") as err:
        _setup(remote, pm.DataType, bm25_k1=5)
    assert err.value.code == 1100
    assert remote.list_indexes("docs") == []  # pymilvus creates the collection first; no index is made
