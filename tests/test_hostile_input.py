"""Input that would poison a collection or stall a call is refused with a clear error, and nothing is written."""

from __future__ import annotations

import importlib.util
import os
import time
import timeit

import numpy as np
import pytest

import heron
from heron import DataError, ParamError
from heron.data._batch import build_batch

SURROGATE = "\udcff"


def _schema() -> heron.CollectionSchema:
    s = heron.CollectionSchema(enable_dynamic_field=True)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("j", heron.DataType.JSON, nullable=True)
    s.add_field("s", heron.DataType.VARCHAR, max_length=20, nullable=True)
    s.add_field("arr", heron.DataType.ARRAY, element_type=heron.DataType.VARCHAR, max_capacity=4, max_length=10,
                nullable=True)
    return s


@pytest.mark.parametrize("extra,field", [
    ({"j": {"a": ["x", SURROGATE]}}, "j['a'][1]"),
    ({"j": {"\ud800k": 1}}, "j['\\ud800k']"),
    ({"j": '{"a": "\\udcff"}'}, "j['a']"),
    ({"s": "a" + SURROGATE}, "s"),
    ({"arr": ["ok", SURROGATE]}, "arr"),
    ({"dyn": {"z": SURROGATE}}, "dyn['z']"),
    ({"dyn": SURROGATE}, "dyn"),
])
def test_a_lone_surrogate_is_refused_naming_field_row_and_value(client, extra, field):
    client.create_collection("c", schema=_schema())
    client.load_collection("c")
    client.insert("c", [{"id": i, "v": [1.0, 0.0], "j": {"a": "ok"}} for i in range(3)])
    rows = [{"id": 10 + k, "v": [1.0, 0.0], "j": {"a": "ok"}} for k in range(3)]
    rows[2].update(extra)
    with pytest.raises(DataError) as e:
        client.insert("c", rows)
    msg = str(e.value)
    assert e.value.code == 1100 and field in msg and "row 2" in msg and "surrogate" in msg and "\\udcff" in msg \
        or "\\ud800" in msg, msg
    assert client.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 3
    assert len(client.query("c", filter='j["a"] == "ok"', output_fields=["id"])) == 3


def test_characters_past_the_basic_plane_are_kept(client):
    client.create_collection("c", schema=_schema())
    client.load_collection("c")
    client.insert("c", [{"id": 1, "v": [1.0, 0.0], "j": {"a": "\U0001F600"}, "s": "\U0001F600", "dyn": "\U0001F600"}])
    row = client.get("c", ids=[1], output_fields=["j", "s", "dyn"])[0]
    assert row["j"] == {"a": "\U0001F600"} and row["s"] == "\U0001F600" and row["dyn"] == "\U0001F600"
    assert len(client.query("c", filter='j["a"] == "\U0001F600"', output_fields=["id"])) == 1


def test_surrogate_check_costs_little_on_the_insert_path():
    """The check is one substring test per JSON text; print the cost of building a 1,000-row batch."""
    schema = _schema()
    rows = [{"id": i, "v": [1.0, 0.0], "j": {"a": i, "b": "text"}, "s": "abc", "dyn": i} for i in range(1000)]
    best = min(timeit.repeat(lambda: build_batch(schema, rows), number=20, repeat=5)) / 20
    print(f"\nbuilding a 1,000-row batch with JSON, VARCHAR and a dynamic field: {best * 1e3:.2f} ms")
    assert best < 1.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinite_query_vectors_are_refused_naming_the_query(client, bad):
    client.create_collection("c", dimension=4)
    client.insert("c", [{"id": i, "vector": [float(i), 1, 0, 0]} for i in range(5)])
    with pytest.raises(ParamError, match="query vector 1 holds NaN or infinity") as e:
        client.search("c", [[1, 1, 0, 0], [bad, 1, 0, 0]], limit=3)
    assert e.value.code == 1100
    with pytest.raises(ParamError, match="query vector 0"):
        client.search("c", np.array([[1, bad, 0, 0]], dtype=np.float32), limit=3)
    req = heron.AnnSearchRequest([[bad, 0, 0, 1]], "vector", {}, limit=3)
    with pytest.raises(ParamError, match="query vector 0"):
        client.hybrid_search("c", [req], heron.RRFRanker(), limit=3)


@pytest.mark.parametrize("call,words", [
    (lambda c: c.query("c", filter="id >= 0", offset=-5, limit=3), "offset: got -5, expected an integer >= 0"),
    (lambda c: c.query("c", filter="id >= 0", limit=0), "limit: got 0"),
    (lambda c: c.query("c", filter="id >= 0", limit=-2), "limit: got -2"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, search_params={"offset": -1}), "offset: got -1"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, offset=-1), "offset: got -1"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, search_params={"params": {"ef": -1}}),
     "ef must be an integer in 1..32768, got -1"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, search_params={"params": {"radius": "abc"}}),
     "radius must be a number"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, search_params={"params": {"radius": 0.1, "range_filter": "x"}}),
     "range_filter must be a number"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, round_decimal=7), "round_decimal: got 7, expected an integer in -1..6"),
    (lambda c: c.search("c", [[1, 1, 0, 0]], limit=3, round_decimal=-2), "round_decimal: got -2"),
])
def test_out_of_range_arguments_are_refused_with_code_1100(client, call, words):
    client.create_collection("c", dimension=4)
    client.insert("c", [{"id": i, "vector": [float(i), 1, 0, 0]} for i in range(5)])
    with pytest.raises(ParamError) as e:
        call(client)
    assert e.value.code == 1100 and words in str(e.value), str(e.value)


def test_nprobe_zero_is_refused_on_an_ivf_index(client):
    schema = heron.CollectionSchema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=4)
    idx = client.prepare_index_params()
    idx.add_index("vector", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 4})
    client.create_collection("c", schema=schema, index_params=idx)
    client.load_collection("c")
    client.insert("c", [{"id": i, "vector": [float(i), 1, 0, 0]} for i in range(5)])
    with pytest.raises(ParamError, match="nprobe must be an integer in 1..65536, got 0"):
        client.search("c", [[1, 1, 0, 0]], limit=3, search_params={"params": {"nprobe": 0}})
    assert len(client.search("c", [[1, 1, 0, 0]], limit=3, search_params={"params": {"nprobe": 4}})[0]) == 3


def _dup_rows(client) -> None:
    client.insert("c", [{"id": i, "vector": [float(i), 1, 0, 0], "v": i} for i in range(5)])
    client.insert("c", [{"id": 1, "vector": [9, 9, 9, 9], "v": 100}])
    client.insert("c", [{"id": 1, "vector": [8, 8, 8, 8], "v": 200}])


def test_a_key_inserted_again_reads_as_its_latest_write(client):
    client.create_collection("c", dimension=4)
    _dup_rows(client)
    assert client.get("c", ids=[1], output_fields=["v"]) == [{"id": 1, "v": 200}]
    assert client.query("c", filter="id == 1", output_fields=["v"]) == [{"id": 1, "v": 200}]
    rows = client.query("c", filter="id >= 0", output_fields=["v"])
    assert sorted((r["id"], r["v"]) for r in rows) == [(0, 0), (1, 200), (2, 2), (3, 3), (4, 4)]
    hits = client.search("c", [[8, 8, 8, 8]], limit=3, output_fields=["v"])[0]
    assert [h["id"] for h in hits][:1] == [1] and hits[0]["entity"]["v"] == 200 and len(hits) == 3
    assert len({h["id"] for h in hits}) == 3


def _milvus_lite_available() -> bool:
    if importlib.util.find_spec("milvus_lite") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("milvus-lite is a dev dependency and must be installed in CI")
        return False
    return True


def test_a_repeated_key_reads_as_milvus_lite_reads_it(tmp_path):
    """Differential: get, query and search with a repeated key against Milvus Lite (embedded via pymilvus)."""
    if not _milvus_lite_available():
        pytest.skip("milvus-lite not installed")
    from pymilvus import MilvusClient

    lite = MilvusClient(str(tmp_path / "lite.db"))
    ours = heron.Client(str(tmp_path / "heron"))
    try:
        answers = []
        for c in (lite, ours):
            c.create_collection("c", dimension=4)
            _dup_rows(c)
            got = {
                "get": [dict(r) for r in c.get("c", ids=[1], output_fields=["v"])],
                "query": [dict(r) for r in c.query("c", filter="id == 1", output_fields=["v"])],
                "all": sorted((r["id"], r["v"]) for r in c.query("c", filter="id >= 0", output_fields=["v"])),
                "search": [(h["id"], h["entity"]["v"]) for h in c.search("c", [[8, 8, 8, 8]], limit=10,
                                                                           output_fields=["v"])[0]],
            }
            answers.append(got)
        lite_ans, heron_ans = answers
        assert heron_ans["get"] == lite_ans["get"] == [{"id": 1, "v": 200}]
        assert heron_ans["query"] == lite_ans["query"]
        assert heron_ans["all"] == lite_ans["all"]
        assert heron_ans["search"] == lite_ans["search"]
    finally:
        lite.close()
        ours.close()


def test_no_repeated_key_costs_nothing_measurable(tmp_path):
    """Print the cost of a single-query search and a 1,000-row insert with the reduction in place."""
    c = heron.Client(str(tmp_path / "db"))
    try:
        c.create_collection("c", dimension=128)
        vecs = np.random.default_rng(0).standard_normal((1000, 128)).astype(np.float32)
        nxt = [0]

        def insert() -> None:
            c.insert("c", {"id": np.arange(nxt[0], nxt[0] + 1000), "vector": vecs})
            nxt[0] += 1000

        for _ in range(10):
            insert()
        q = vecs[:1]
        c.search("c", q, limit=10)
        t0 = time.perf_counter()
        search = min(timeit.repeat(lambda: c.search("c", q, limit=10), number=100, repeat=5)) / 100
        ins = min(timeit.repeat(insert, number=5, repeat=3)) / 5
        print(f"\nsingle-query search over 10,000 rows: {search * 1e6:.0f} us; 1,000-row numpy insert: "
              f"{ins * 1e3:.2f} ms ({time.perf_counter() - t0:.1f} s measuring)")
        assert search < 0.5 and ins < 1.0
    finally:
        c.close()


def test_a_metric_the_unindexed_field_cannot_compute_is_refused(tmp_path):
    client = heron.Client(str(tmp_path / "m.db"))
    schema = client.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("m", schema=schema)
    client.insert("m", [{"id": i, "v": [float(i), 1.0, 0.0, 0.0]} for i in range(5)])
    client.load_collection("m")
    with pytest.raises(heron.ParamError, match="metric_type 'BM25'.*expected one of COSINE, L2, IP") as err:
        client.search("m", data=[[1.0, 0.0, 0.0, 0.0]], limit=2, search_params={"metric_type": "BM25"})
    assert err.value.code == 1100
    hits = client.search("m", data=[[1.0, 0.0, 0.0, 0.0]], limit=2, search_params={"metric_type": "L2"})
    assert [h["id"] for h in hits[0]] == [1, 0]
    client.close()
