"""What code written for pymilvus reads from Heron's clients: hit keys, empty writes, property
strings, replicas, collection properties dropped, and the codes of refusals pymilvus makes itself."""

from __future__ import annotations

import pymilvus.client.search_result as pm_results
import pytest

import heron
from tests.conftest import make_collection


def _varchar_pk(client, name: str = "v") -> None:
    s = client.create_schema()
    s.add_field("pk", heron.DataType.VARCHAR, is_primary=True, max_length=8)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    s.add_field("tag", heron.DataType.INT64)
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=s, index_params=idx)
    client.insert(name, [{"pk": f"k{i}", "vec": [float(i), 0.0], "tag": i * 10} for i in range(5)])


def test_search_hits_are_keyed_by_the_primary_key_field_as_pymilvus_keys_them(client):
    _varchar_pk(client)
    hit = client.search("v", [[1.0, 0.0]], limit=2, output_fields=["tag"])[0][0]
    want = pm_results.Hit({"pk": "k1", "distance": 0.0, "entity": {"tag": 10}}, pk_name="pk")
    assert dict(hit) == dict(want)
    assert (hit.id, hit.pk, hit["pk"], hit["tag"]) == (want.id, want.pk, want["pk"], want["tag"]) == ("k1", "k1", "k1", 10)
    assert "id" not in hit and hit.get("id") is None and want.get("id") is None
    with pytest.raises(KeyError):
        hit["id"]
    hits = client.hybrid_search("v", [heron.AnnSearchRequest([[3.0, 0.0]], "vec", {}, limit=2)], heron.RRFRanker(), limit=2)
    assert hits[0].ids == ["k3", "k2"] or hits[0].ids == ["k3", "k4"]
    assert set(hits[0][0]) == {"pk", "distance", "entity"}


def test_a_primary_key_called_id_keeps_hit_id(client):
    make_collection(client, "c", rows=3)
    hit = client.search("c", [[1.0] * 4], limit=1)[0][0]
    assert set(hit) == {"id", "distance", "entity"} and hit["id"] == hit.id == hit.pk == 1


def test_search_iterator_pages_by_a_primary_key_of_any_name(client):
    _varchar_pk(client)
    it = client.search_iterator("v", [[0.0, 0.0]], batch_size=2)
    got = []
    while batch := it.next():
        got.extend(h.id for h in batch)
    assert got == ["k0", "k1", "k2", "k3", "k4"]


def test_inserting_or_upserting_no_rows_counts_zero_and_writes_nothing(client):
    make_collection(client, "c", rows=3)
    assert client.insert("c", []) == {"insert_count": 0, "ids": []}
    assert client.upsert("c", []) == {"upsert_count": 0, "ids": []}
    assert client.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 3


def test_described_property_values_are_strings_as_milvus_gives_them(client):
    make_collection(client, "c", rows=0)
    client.alter_collection_properties("c", {"collection.ttl.seconds": 3600, "note": "x"})
    assert client.describe_collection("c")["properties"] == {"collection.ttl.seconds": "3600", "note": "x"}


def test_a_boolean_property_is_described_as_pymilvus_sends_it(client):
    make_collection(client, "c", rows=0)
    client.alter_collection_properties("c", {"mmap.enabled": True})
    assert client.describe_collection("c")["properties"] == {"mmap.enabled": "True"}


def test_drop_collection_properties_removes_only_the_named_keys(client):
    make_collection(client, "c", rows=0)
    client.alter_collection_properties("c", {"collection.ttl.seconds": 60, "mmap.enabled": False})
    client.drop_collection_properties("c", ["collection.ttl.seconds", "not.there"])
    assert client.describe_collection("c")["properties"] == {"mmap.enabled": "False"}


def test_drop_collection_properties_refuses_a_bare_string(client):
    make_collection(client, "c", rows=0)
    with pytest.raises(heron.ParamError, match="property_keys: got 'collection.ttl.seconds', expected a list"):
        client.drop_collection_properties("c", "collection.ttl.seconds")


def test_describe_replica_gives_one_replica_on_one_node_while_loaded(client):
    make_collection(client, "c", rows=2)
    cid = client.describe_collection("c")["collection_id"]
    (replica,) = client.describe_replica("c")
    assert replica.id == cid and replica.group_nodes == (1,) and replica.resource_group == "__default_resource_group"
    (shard,) = replica.shards
    assert shard.shard_leader == 1 and shard.shard_nodes == {1} and str(cid) in shard.channel_name
    client.release_collection("c")
    with pytest.raises(heron.HeronError, match="replica not found") as e:
        client.describe_replica("c")
    assert e.value.code == 400
    with pytest.raises(heron.CollectionNotFoundError):
        client.describe_replica("nope")


def test_refusals_pymilvus_makes_itself_carry_its_code_1(client):
    make_collection(client, "c", rows=2)
    for limit in (0, -1):
        with pytest.raises(heron.ParamError, match=f"limit: got {limit}, expected a positive integer") as e:
            client.search("c", [[1.0] * 4], limit=limit)
        assert e.value.code == 1
    with pytest.raises(heron.ParamError, match="data: got an empty list") as e:
        client.search("c", [], limit=1)
    assert e.value.code == 1
    s = client.create_schema()
    s.add_field("id", heron.DataType.INT64)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(heron.SchemaError, match="exactly one primary key field; found none") as e:
        client.create_collection("np", schema=s)
    assert e.value.code == 1 and not client.has_collection("np")
