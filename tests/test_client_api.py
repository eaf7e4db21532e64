"""Every client method, through both clients, with pymilvus's result shapes."""

from __future__ import annotations

import numpy as np
import pytest

import heron
from tests.conftest import make_collection, simple_schema


def test_quick_setup_creates_loaded_collection_with_pymilvus_defaults(client):
    client.create_collection("quick", dimension=3)
    desc = client.describe_collection("quick")
    names = [f["name"] for f in desc["fields"]]
    assert names == ["id", "vector"]
    assert desc["enable_dynamic_field"] is True
    assert client.list_indexes("quick") == ["vector"]
    assert client.describe_index("quick", "vector")["metric_type"] == "COSINE"
    assert client.get_load_state("quick")["state"] == heron.LoadState.Loaded
    client.insert("quick", [{"id": 1, "vector": [1, 0, 0], "extra": "x"}])
    hits = client.search("quick", data=[[1, 0, 0]], limit=1, output_fields=["extra"])
    assert hits[0][0]["id"] == 1 and hits[0][0]["entity"] == {"extra": "x"}
    assert hits[0][0]["distance"] == pytest.approx(1.0)


def test_collection_lifecycle(client):
    make_collection(client, "a", rows=3)
    assert client.has_collection("a") and not client.has_collection("b")
    assert client.list_collections() == ["a"]
    assert client.get_collection_stats("a") == {"row_count": 3}
    client.rename_collection("a", "b")
    assert client.list_collections() == ["b"]
    client.truncate_collection("b")
    assert client.get_collection_stats("b") == {"row_count": 0}
    assert client.describe_collection("b")["fields"][1]["params"]["dim"] == 4
    client.drop_collection("b")
    assert client.list_collections() == []
    with pytest.raises(heron.CollectionNotFoundError) as e:
        client.describe_collection("b")
    assert e.value.code == 100


def test_create_existing_collection_with_other_schema_is_refused(client):
    make_collection(client, "a", rows=0)
    make_collection(client, "a", rows=0)  # same schema: accepted
    with pytest.raises(heron.AlreadyExistsError):
        client.create_collection("a", schema=simple_schema(dim=8))


def test_partitions(client):
    make_collection(client, "c", rows=0)
    client.create_partition("c", "p1")
    assert client.has_partition("c", "p1")
    assert client.list_partitions("c") == ["_default", "p1"]
    client.insert("c", [{"id": 100, "vec": [1.0] * 4, "name": "x", "n": 1}], partition_name="p1")
    client.insert("c", [{"id": 101, "vec": [1.0] * 4, "name": "y", "n": 1}])
    assert client.get_partition_stats("c", "p1") == {"row_count": 1}
    rows = client.query("c", filter="n == 1", partition_names=["p1"], output_fields=["name"])
    assert [r["id"] for r in rows] == [100]
    hits = client.search("c", data=[[1.0] * 4], limit=5, partition_names=["_default"])
    assert [h["id"] for h in hits[0]] == [101]
    client.release_partitions("c", ["p1"])
    with pytest.raises(heron.CollectionNotLoadedError):
        client.query("c", filter="n == 1", partition_names=["p1"])
    client.drop_partition("c", "p1")
    assert not client.has_partition("c", "p1")
    client.create_partition("c", "p2")
    assert client.get_load_state("c", partition_name="p2")["state"] == heron.LoadState.Loaded
    client.drop_partition("c", "p2")  # loaded: Milvus Lite drops it, and so does Heron
    assert client.list_partitions("c") == ["_default"]
    with pytest.raises(heron.PartitionNotFoundError):
        client.insert("c", [{"id": 1, "vec": [1.0] * 4, "name": "x", "n": 1}], partition_name="p1")


def test_load_and_release(client):
    make_collection(client, "c", rows=0)
    client.insert("c", [{"id": 1, "vec": [1.0] * 4, "name": "x", "n": 1}])
    client.release_collection("c")
    assert client.get_load_state("c")["state"] == heron.LoadState.NotLoad
    with pytest.raises(heron.CollectionNotLoadedError) as e:
        client.search("c", data=[[1.0] * 4])
    assert e.value.code == 101
    assert "collection not loaded[collection=c]" in str(e.value) and "load_collection" in str(e.value)
    client.load_collection("c")
    assert client.get_load_state("c")["state"] == heron.LoadState.Loaded
    assert len(client.search("c", data=[[1.0] * 4])[0]) == 1
    client.release_collection("c")
    assert client.get_load_state("c")["state"] == heron.LoadState.NotLoad
    assert client.get_load_state("missing")["state"] == heron.LoadState.NotExist


def test_indexes(client):
    client.create_collection("c", schema=simple_schema())
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="HNSW", metric_type="IP", params={"M": 8, "efConstruction": 64})
    idx.add_index("name", index_type="TRIE")
    idx.add_index("n", index_type="STL_SORT", index_name="n_idx")
    client.create_index("c", idx)
    assert sorted(client.list_indexes("c")) == ["n_idx", "name", "vec"]
    assert client.list_indexes("c", field_name="n") == ["n_idx"]
    d = client.describe_index("c", "vec")
    assert (d["index_type"], d["metric_type"], d["field_name"], d["M"]) == ("HNSW", "IP", "vec", 8)
    client.drop_index("c", "n_idx")
    assert "n_idx" not in client.list_indexes("c")
    assert client.describe_index("c", "n_idx") is None  # pymilvus's answer for a missing index
    with pytest.raises(heron.IndexNotFoundError):
        client.drop_index("c", "n_idx")
    bad = client.prepare_index_params()
    bad.add_index("vec", index_type="NOPE", metric_type="L2")
    with pytest.raises(heron.ParamError):
        client.create_index("c", bad)


def test_aliases(client):
    make_collection(client, "c", rows=2)
    client.create_alias("c", "al")
    assert client.describe_alias("al")["collection_name"] == "c"
    assert client.list_aliases()["aliases"] == ["al"]
    assert len(client.query("al", filter="id >= 0")) == 2
    make_collection(client, "d", rows=1)
    client.alter_alias("d", "al")
    assert len(client.query("al", filter="id >= 0")) == 1
    client.drop_alias("al")
    with pytest.raises(heron.CollectionNotFoundError):
        client.query("al", filter="id >= 0")


def test_databases(client):
    client.create_database("other")
    assert client.list_databases() == ["default", "other"]
    make_collection(client, "c", rows=1)
    client.use_database("other")
    assert client.list_collections() == []
    make_collection(client, "c", rows=3)
    assert client.get_collection_stats("c")["row_count"] == 3
    assert client.get_collection_stats("c", db_name="default")["row_count"] == 1
    with pytest.raises(heron.ParamError):
        client.drop_database("other")
    client.drop_collection("c")
    client.use_database("default")
    client.drop_database("other")
    with pytest.raises(heron.DatabaseNotFoundError) as e:
        client.use_database("other")
    assert e.value.code == 800


def test_insert_upsert_delete_get(client):
    data = make_collection(client, "c", rows=10)
    got = client.get("c", ids=[3, 4, 99], output_fields=["name"])
    assert sorted((r["id"], r["name"]) for r in got) == [(3, "n3"), (4, "n4")]
    res = client.upsert("c", [{"id": 3, "vec": [9.0] * 4, "name": "new", "n": 0}])
    assert res["upsert_count"] == 1 and res["ids"] == [3]
    assert client.get("c", ids=[3])[0]["name"] == "new"
    assert client.get("c", ids=[3])[0]["vec"] == [9.0] * 4
    assert client.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 10
    assert client.delete("c", ids=[0, 1, 1234])["delete_count"] == 2
    assert client.delete("c", filter="n == 4")["delete_count"] == 2  # ids 4 and 9
    left = sorted(r["id"] for r in client.query("c", filter="id >= 0"))
    assert left == [2, 3, 5, 6, 7, 8]
    assert data[2]["name"] == "n2"


def test_query_output_limit_offset(client):
    make_collection(client, "c", rows=10)
    rows = client.query("c", filter="id >= 0", output_fields=["name"], limit=3, offset=2)
    assert rows == [{"id": 2, "name": "n2"}, {"id": 3, "name": "n3"}, {"id": 4, "name": "n4"}]
    everything = client.query("c", filter="id == 1")
    assert set(everything[0]) == {"id", "vec", "name", "n"}
    with pytest.raises(heron.ParamError):
        client.query("c", filter="")
    assert len(client.query("c", filter="", limit=4)) == 4


def test_search_shapes_and_order(client):
    make_collection(client, "c", rows=20)
    q = np.array([[3.1] * 4, [10.0] * 4], dtype=np.float32)
    res = client.search("c", data=q, limit=3, output_fields=["name"])
    assert len(res) == 2
    assert [h["id"] for h in res[0]] == [3, 4, 2]
    assert [h["id"] for h in res[1]] == [10, 9, 11] or [h["id"] for h in res[1]] == [10, 11, 9]
    d = [h["distance"] for h in res[0]]
    assert d == sorted(d) and d[0] == pytest.approx(4 * 0.1**2, rel=1e-4)
    assert res[0][0]["entity"] == {"name": "n3"}
    assert res[0][0]["name"] == "n3"
    off = client.search("c", data=q[:1], limit=2, search_params={"offset": 1})
    assert [h["id"] for h in off[0]] == [4, 2]
    filt = client.search("c", data=q[:1], limit=3, filter="n == 0")
    assert [h["id"] for h in filt[0]] == [5, 0, 10]


def test_search_group_by_and_round_decimal(client):
    make_collection(client, "c", rows=20)
    res = client.search("c", data=[[0.0] * 4], limit=3, group_by_field="n", round_decimal=2)
    ids = [h["id"] for h in res[0]]
    assert ids == [0, 1, 2]
    assert all(h["distance"] == round(h["distance"], 2) for h in res[0])


def test_range_search(client):
    make_collection(client, "c", rows=20)
    res = client.search("c", data=[[0.0] * 4], limit=10, search_params={"params": {"radius": 20.0, "range_filter": 1.0}})
    assert [h["id"] for h in res[0]] == [1, 2]  # L2 distances 4 and 16 (squared) lie in [1, 20)


def test_hybrid_search(client):
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("a", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("b", heron.DataType.SPARSE_FLOAT_VECTOR)
    idx = client.prepare_index_params()
    idx.add_index("a", metric_type="IP", index_type="FLAT")
    idx.add_index("b", metric_type="IP", index_type="SPARSE_INVERTED_INDEX")
    client.create_collection("h", schema=s, index_params=idx)
    client.insert("h", [{"id": i, "a": [float(i), 1.0], "b": {i: 1.0, 100: float(i)}} for i in range(10)])
    ra = heron.AnnSearchRequest([[1.0, 0.0]], "a", {"metric_type": "IP"}, limit=3)
    rb = heron.AnnSearchRequest([{0: 5.0}], "b", {"metric_type": "IP"}, limit=3)
    res = client.hybrid_search("h", [ra, rb], heron.RRFRanker(), limit=3, output_fields=["a"])
    assert len(res) == 1 and len(res[0]) == 3
    # 9 ranks first in 'a' and 0 first in 'b': equal scores, so the smaller key comes first, as in Milvus
    assert [h["id"] for h in res[0][:2]] == [0, 9]
    assert [h["distance"] for h in res[0][:2]] == pytest.approx([1 / 61, 1 / 61])
    w = client.hybrid_search("h", [ra, rb], heron.WeightedRanker(0.0, 1.0), limit=1)
    assert w[0][0]["id"] == 0  # only the sparse request counts
    with pytest.raises(heron.ParamError):
        client.hybrid_search("h", [ra, rb], heron.WeightedRanker(1.0), limit=1)


def test_flush_keeps_everything_searchable(client):
    make_collection(client, "c", rows=50)
    client.flush("c")
    client.insert("c", [{"id": 1000, "vec": [0.5] * 4, "name": "late", "n": 1}])
    assert client.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 51
    assert client.search("c", data=[[0.5] * 4], limit=1)[0][0]["id"] == 1000


def test_context_manager_and_idempotent_close(tmp_path):
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("x", dimension=2)
    c.close()
    with pytest.raises(heron.ClientClosedError):
        c.list_collections()


def test_two_clients_in_one_process_share_the_engine(tmp_path):
    path = str(tmp_path / "d")
    a, b = heron.Client(path), heron.Client(path)
    a.create_collection("x", dimension=2)
    a.insert("x", [{"id": 1, "vector": [1, 0]}])
    assert b.get("x", ids=[1])[0]["id"] == 1
    a.close()
    assert b.query("x", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1
    b.close()


def test_create_schema_and_prepare_index_params_are_plain_calls():
    import inspect

    for cls in (heron.Client, heron.AsyncClient):
        assert not inspect.iscoroutinefunction(cls.create_schema)
        assert not inspect.iscoroutinefunction(cls.prepare_index_params)


def test_both_clients_have_the_same_methods():
    import inspect

    def public(cls):
        return {n: list(inspect.signature(getattr(cls, n)).parameters.values())
                for n in dir(cls) if not n.startswith("_")}

    assert public(heron.Client).keys() == public(heron.AsyncClient).keys()
    for name, params in public(heron.Client).items():
        assert params == public(heron.AsyncClient)[name], name


def test_public_names_are_sorted_and_complete():
    assert heron.__all__ == sorted(heron.__all__)
    for name in heron.__all__:
        assert hasattr(heron, name)


def test_query_iterator_walks_every_row_once_in_key_order(client):
    make_collection(client, "c", rows=0)
    client.insert("c", [{"id": i, "vec": [float(i)] * 4, "name": f"n{i}", "n": i % 5} for i in range(47, -1, -1)])
    it = client.query_iterator("c", batch_size=10, output_fields=["name"])
    seen = []
    while True:
        batch = it.next()
        if not batch:
            break
        seen.extend(r["id"] for r in batch)
    assert seen == list(range(48))
    limited = client.query_iterator("c", batch_size=7, limit=9)
    assert [len(limited.next()), len(limited.next()), len(limited.next())] == [7, 2, 0]


def test_search_iterator_pages_through_hits_best_first(client):
    make_collection(client, "c", rows=30)
    it = client.search_iterator("c", data=[[0.0] * 4], batch_size=4, limit=13)
    ids, dists = [], []
    while batch := it.next():
        ids.extend(h["id"] for h in batch)
        dists.extend(h["distance"] for h in batch)
    assert ids == list(range(13))
    assert dists == sorted(dists)


def test_async_iterators_support_async_for(tmp_path):
    import asyncio

    async def main():
        async with heron.AsyncClient(str(tmp_path / "d")) as c:
            await c.create_collection("x", dimension=2)
            await c.insert("x", [{"id": i, "vector": [1.0, float(i)]} for i in range(25)])
            got = [r["id"] async for batch in c.query_iterator("x", batch_size=10) for r in batch]
            hits = [h["id"] async for batch in c.search_iterator("x", data=[[1.0, 0.0]], batch_size=8) for h in batch]
            return got, hits

    got, hits = asyncio.run(main())
    assert got == list(range(25))
    assert sorted(hits) == list(range(25)) and len(hits) == 25
