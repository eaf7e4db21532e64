"""Hostile input through `heron serve`: the same clear errors as embedded, never ``internal error``, nothing written."""

from __future__ import annotations

import numpy as np
import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

import heron


@pytest.fixture
def clients(server):
    ours = heron.Client(server.uri)
    theirs = MilvusClient(server.uri)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def _count(c) -> int:
    return c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]


def test_a_row_of_another_dimension_is_a_data_error_and_writes_nothing(clients):
    ours, theirs = clients
    theirs.create_collection("c", dimension=4)
    rows = [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(99)]
    rows.append({"id": 99, "vector": [1.0, 2.0, 3.0]})
    # pymilvus sends a column of vectors as one run of values: 99 rows of 4 and one of 3 arrive as 399 values.
    from pymilvus.grpc_gen import milvus_pb2, schema_pb2

    from heron._types import DataType
    req = milvus_pb2.InsertRequest(collection_name="c", num_rows=100)
    fid = req.fields_data.add(field_name="id", type=int(DataType.INT64))
    fid.scalars.long_data.data.extend(range(100))
    fv = req.fields_data.add(field_name="vector", type=int(DataType.FLOAT_VECTOR))
    fv.vectors.dim = 4
    fv.vectors.float_vector.data.extend(v for r in rows for v in r["vector"])
    assert isinstance(fv, schema_pb2.FieldData)
    stub = theirs._get_connection()._stub
    status = stub.Insert(req).status
    msg = status.reason
    assert status.code == 1100 and "internal error" not in msg, msg
    assert "field 'vector'" in msg and "399 values for 100 rows" in msg and "dim=4" in msg, msg
    with pytest.raises(heron.DataError) as e2:
        ours.insert("c", rows)
    assert "field 'vector' in row 99" in str(e2.value) and "dim=4" in str(e2.value)
    del fv.vectors.float_vector.data[:]
    fv.vectors.dim = 3
    fv.vectors.float_vector.data.extend([1.0, 2.0, 3.0] * 100)  # every row of another dimension: named by row
    status = stub.Insert(req).status
    assert status.code == 1100 and "in row 0" in status.reason and "dim=4" in status.reason, status.reason
    assert _count(ours) == 0


def test_a_lone_surrogate_sent_by_heron_remote_is_refused(clients):
    ours, _ = clients
    ours.create_collection("c", dimension=2)
    ours.insert("c", [{"id": 1, "vector": [1.0, 0.0], "j": {"a": "ok"}}])
    with pytest.raises(heron.HeronError) as e:
        ours.insert("c", [{"id": 2, "vector": [1.0, 0.0], "j": {"a": "\udcff"}}])
    assert e.value.code == 1100 and "surrogate" in str(e.value)
    assert ours.query("c", filter='j["a"] == "ok"', output_fields=["id"]) == [{"id": 1}]
    assert _count(ours) == 1


def test_nan_queries_deep_filters_and_bad_arguments_are_param_errors(clients):
    ours, theirs = clients
    ours.create_collection("c", dimension=4)
    ours.insert("c", [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(5)])
    with pytest.raises(MilvusException, match="query vector 1 holds NaN") as e:
        theirs.search("c", [[1.0, 1.0, 0.0, 0.0], [float("nan"), 1.0, 0.0, 0.0]], limit=3)
    assert e.value.code == 1100
    with pytest.raises(heron.ParamError, match="query vector 0"):
        ours.search("c", np.array([[np.inf, 1, 0, 0]], dtype=np.float32), limit=3)
    with pytest.raises(MilvusException, match="HERON_FILTER_MAX_DEPTH") as e:
        theirs.query("c", filter="(" * 10_000 + "id == 1" + ")" * 10_000, limit=3)
    assert e.value.code == 1100
    with pytest.raises(MilvusException, match="offset: got -5") as e:
        theirs.query("c", filter="id >= 0", offset=-5, limit=3)
    assert e.value.code == 1100
    with pytest.raises(MilvusException, match="ef must be an integer in 1..32768, got -1"):
        theirs.search("c", [[1.0, 1.0, 0.0, 0.0]], limit=3, search_params={"params": {"ef": -1}})
    hits = theirs.query("c", filter="id in [" + ",".join(map(str, range(0, 200_000, 2))) + "]", limit=10)
    assert sorted(h["id"] for h in hits) == [0, 2, 4]
