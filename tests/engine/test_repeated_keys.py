"""A primary key written more than once: inserts accept it, every read sees one row per key, the latest.

Milvus and Milvus Lite accept an insert batch that repeats a key and an
insert of a key that exists; their reads reduce to the latest write of each
key (and Milvus Lite counts and filters that version only). An upsert batch
that repeats a key is refused by Milvus with code 1100.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import heron
from heron.engine._latest import key_prints
from tests.conftest import require_module

Q = [[0.0, 0.0, 0.0, 0.0]]


def _count(c, name="c", flt=""):
    return c.query(name, filter=flt, output_fields=["count(*)"])[0]["count(*)"]


def _row(key, x, tag):
    return {"id": key, "vector": [float(x), 0.0, 0.0, 0.0], "t": tag}


def _schema(str_keys: bool) -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    if str_keys:
        s.add_field("id", heron.DataType.VARCHAR, is_primary=True, max_length=32)
    else:
        s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("t", heron.DataType.VARCHAR, max_length=16)
    return s


def _create(c, name="c", str_keys=False):
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=_schema(str_keys), index_params=idx)


def _answers(c, k1, name="c"):
    """What a client says about key ``k1``, whose older version is nearest Q and tagged 'old'."""
    hits = c.search(name, Q, limit=10, output_fields=["t"])[0]
    return {
        "get": [(r["id"], r["t"]) for r in c.get(name, ids=[k1], output_fields=["t"])],
        "old": [r["id"] for r in c.query(name, filter='t == "old"', output_fields=["t"])],
        "new": [r["id"] for r in c.query(name, filter='t == "new"', output_fields=["t"])],
        "count": _count(c, name),
        "count_old": _count(c, name, 't == "old"'),
        "all": sorted((r["id"], r["t"]) for r in c.query(name, filter="", limit=100, output_fields=["t"])),
        "search": [(h["id"], round(h["distance"], 3), h["entity"]["t"]) for h in hits],
        "search_old": [h["id"] for h in c.search(name, Q, limit=10, filter='t == "old"')[0]],
    }


@pytest.mark.parametrize("str_keys", [False, True], ids=["int", "str"])
def test_an_insert_batch_repeating_a_key_reads_as_its_last_row(client, str_keys):
    k = (lambda i: f"k{i}") if str_keys else (lambda i: i)
    _create(client, str_keys=str_keys)
    got = client.insert("c", [_row(k(1), 0, "old"), _row(k(2), 1, "x"), _row(k(1), 5, "new")])
    assert got["insert_count"] == 3 and list(got["ids"]) == [k(1), k(2), k(1)]
    a = _answers(client, k(1))
    assert a["get"] == [(k(1), "new")]
    assert a["old"] == [] and a["new"] == [k(1)]
    assert a["count"] == 2 and a["count_old"] == 0
    assert a["all"] == sorted([(k(1), "new"), (k(2), "x")])
    assert a["search"] == [(k(2), 1.0, "x"), (k(1), 25.0, "new")]
    assert a["search_old"] == []


@pytest.mark.parametrize("str_keys", [False, True], ids=["int", "str"])
def test_a_key_inserted_again_reads_as_its_latest_insert(client, str_keys):
    k = (lambda i: f"k{i}") if str_keys else (lambda i: i)
    _create(client, str_keys=str_keys)
    client.insert("c", [_row(k(1), 0, "old"), _row(k(2), 1, "x")])
    client.insert("c", [_row(k(1), 5, "new")])
    a = _answers(client, k(1))
    assert a["get"] == [(k(1), "new")] and a["old"] == [] and a["new"] == [k(1)]
    assert a["count"] == 2 and a["count_old"] == 0
    assert a["search"] == [(k(2), 1.0, "x"), (k(1), 25.0, "new")] and a["search_old"] == []
    assert client.get_collection_stats("c")["row_count"] == 2


def test_pages_of_a_query_hold_one_row_per_key_and_are_never_short(client):
    _create(client)
    client.insert("c", [_row(i, i, "old") for i in range(10)])
    client.insert("c", [_row(i, i, "new") for i in range(0, 10, 2)] + [_row(4, 4, "newest")])
    seen = []
    for offset in range(0, 10, 3):
        page = client.query("c", filter="id >= 0", offset=offset, limit=3, output_fields=["t"])
        assert len(page) == min(3, 10 - offset)
        seen.extend((r["id"], r["t"]) for r in page)
    assert sorted(seen) == [(i, "newest" if i == 4 else "new" if i % 2 == 0 else "old") for i in range(10)]
    hits = client.search("c", Q, limit=10, output_fields=["t"])[0]
    assert sorted(h["id"] for h in hits) == list(range(10))


def test_an_upsert_batch_repeating_a_key_is_refused_and_writes_nothing(client):
    _create(client)
    client.insert("c", [_row(1, 0, "x")])
    with pytest.raises(heron.DataError, match="duplicate primary keys are not allowed in the same batch") as err:
        client.upsert("c", [_row(2, 0, "a"), _row(1, 1, "b"), _row(2, 2, "c")])
    assert err.value.code == 1100
    assert _count(client) == 1 and client.get("c", ids=[1, 2], output_fields=["t"]) == [{"id": 1, "t": "x"}]


def test_delete_and_upsert_act_on_every_version_of_a_repeated_key(client):
    _create(client)
    client.insert("c", [_row(1, 0, "old"), _row(2, 1, "x"), _row(1, 5, "new"), _row(3, 2, "y")])
    client.insert("c", [_row(3, 3, "y2")])
    assert client.delete("c", filter='t == "old"')["delete_count"] == 0  # the older version is not there
    assert _count(client) == 3
    client.delete("c", ids=[1])
    assert client.get("c", ids=[1]) == [] and _count(client) == 2
    client.upsert("c", [_row(3, 9, "up")])
    assert client.get("c", ids=[3], output_fields=["t"]) == [{"id": 3, "t": "up"}] and _count(client) == 2
    client.insert("c", [_row(1, 7, "again")])
    assert client.get("c", ids=[1], output_fields=["t"]) == [{"id": 1, "t": "again"}] and _count(client) == 3


def test_a_partition_sees_the_latest_version_it_holds(client):
    _create(client)
    client.create_partition("c", "p")
    client.insert("c", [_row(1, 0, "in-default")])
    client.insert("c", [_row(1, 5, "in-p")], partition_name="p")
    assert client.get("c", ids=[1], output_fields=["t"]) == [{"id": 1, "t": "in-p"}]
    assert client.query("c", filter="", limit=5, output_fields=["t"], partition_names=["_default"]) == [
        {"id": 1, "t": "in-default"}]
    client.delete("c", ids=[1], partition_name="p")
    assert client.get("c", ids=[1], output_fields=["t"]) == [{"id": 1, "t": "in-default"}]


# -- restarts, sealing, merging, compaction ---------------------------------------------------


def _model_check(c, model: dict, name="c"):
    """Every read against the reference ``model`` (key -> (x, tag)) of the latest writes."""
    want = sorted((k, t) for k, (_, t) in model.items())
    assert _count(c, name) == len(model)
    got = c.query(name, filter="", limit=16384, output_fields=["t"])
    assert sorted((r["id"], r["t"]) for r in got) == want
    keys = sorted(model)[:50]
    assert sorted((r["id"], r["t"]) for r in c.get(name, ids=keys, output_fields=["t"])) == [
        (k, model[k][1]) for k in keys]
    tag = "b"
    assert sorted(r["id"] for r in c.query(name, filter=f't == "{tag}"', limit=16384)) == sorted(
        k for k, (_, t) in model.items() if t == tag)
    assert _count(c, name, f't == "{tag}"') == sum(t == tag for _, t in model.values())
    hits = c.search(name, Q, limit=min(100, len(model)), output_fields=["t"])[0]
    ids = [h["id"] for h in hits]
    assert len(set(ids)) == len(ids)
    for h in hits:
        x, t = model[h["id"]]
        assert h["entity"]["t"] == t and h["distance"] == pytest.approx(x * x, rel=1e-5)
    best = sorted(x * x for x, _ in model.values())[: len(hits)]
    assert [h["distance"] for h in hits] == pytest.approx(best, rel=1e-5)


def _random_writes(c, rng, model: dict, rounds: int, keys: int, name="c", str_keys=False):
    """Inserts that repeat keys (in a batch and across batches), upserts and deletes; ``model`` follows."""
    for _ in range(rounds):
        what = rng.random()
        ks = rng.integers(0, keys, size=int(rng.integers(1, 60))).tolist()
        if str_keys:
            ks = [f"key-{k}" for k in ks]
        if what < 0.15:
            c.delete(name, ids=ks)
            for k in ks:
                model.pop(k, None)
            continue
        if what < 0.3:
            ks = list(dict.fromkeys(ks))
        rows = [_row(k, float(rng.integers(0, 1000)) / 10, "abc"[int(rng.integers(0, 3))]) for k in ks]
        (c.upsert if what < 0.3 else c.insert)(name, rows)
        for r in rows:
            model[r["id"]] = (r["vector"][0], r["t"])


@pytest.mark.heron_env(HERON_SEAL_ROWS="150", HERON_MERGE_ROWS="0")
def test_random_writes_read_as_a_model_of_latest_writes(client):
    rng = np.random.default_rng(7)
    model: dict = {}
    _create(client)
    _random_writes(client, rng, model, rounds=40, keys=300)
    _model_check(client, model)
    client.flush("c")
    _random_writes(client, rng, model, rounds=20, keys=300)
    _model_check(client, model)


@pytest.mark.parametrize("str_keys", [False, True], ids=["int", "str"])
@pytest.mark.parametrize("merge", ["0", "400"], ids=["sealed", "merged"])
def test_repeated_keys_survive_restart_seal_merge_and_compaction(tmp_path, monkeypatch, merge, str_keys):
    monkeypatch.setenv("HERON_SEAL_ROWS", "100")
    monkeypatch.setenv("HERON_MERGE_ROWS", merge)
    path = str(tmp_path / "db")
    rng = np.random.default_rng(11)
    model: dict = {}
    with heron.Client(path) as c:
        _create(c, str_keys=str_keys)
        _random_writes(c, rng, model, rounds=30, keys=250, str_keys=str_keys)
    with heron.Client(path) as c:  # growing rows come back from the log
        _model_check(c, model)
        c.flush("c")
        _model_check(c, model)
        _random_writes(c, rng, model, rounds=15, keys=250, str_keys=str_keys)
        c.compact("c")
        _model_check(c, model)
    with heron.Client(path) as c:  # sealed files, and the log past them
        _model_check(c, model)


def test_string_keys_repeated_across_segments_after_restart(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "64")
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _create(c, str_keys=True)
        for rnd in range(4):
            c.insert("c", [_row(f"key-{i}", rnd * 10 + i % 7, f"r{rnd}") for i in range(50)])
        c.flush("c")
        c.insert("c", [_row("key-3", 0.5, "last")])
    with heron.Client(path) as c:
        assert _count(c) == 50
        got = c.get("c", ids=["key-3", "key-4"], output_fields=["t"])
        assert sorted((r["id"], r["t"]) for r in got) == [("key-3", "last"), ("key-4", "r3")]
        assert _count(c, flt='t == "r0"') == 0 and _count(c, flt='t == "r3"') == 49
        hits = c.search("c", Q, limit=3, output_fields=["t"])[0]
        assert [(h["id"], h["entity"]["t"]) for h in hits][0] == ("key-3", "last")
        assert all(h["entity"]["t"] in ("last", "r3") for h in hits)


# -- against Milvus Lite ----------------------------------------------------------------------


def test_repeated_keys_read_as_milvus_lite_reads_them(tmp_path):
    """Both repeat cases, the same pymilvus-shaped calls against Milvus Lite and embedded Heron."""
    require_module("milvus_lite")
    from pymilvus import MilvusClient

    lite = MilvusClient(str(tmp_path / "lite.db"))
    ours = heron.Client(str(tmp_path / "heron"))
    try:
        results = []
        for c in (lite, ours):
            for name in ("batch", "again"):
                c.create_collection(name, dimension=4, metric_type="L2", consistency_level="Strong")
            c.insert("batch", [_row(1, 0, "old"), _row(2, 1, "x"), _row(1, 5, "new")])
            c.insert("again", [_row(1, 0, "old"), _row(2, 1, "x")])
            c.insert("again", [_row(1, 5, "new")])
            results.append({name: _answers(c, 1, name) for name in ("batch", "again")})
        assert results[1] == results[0]
        assert results[0]["batch"]["count"] == 2  # the rows are as this file says, not two matching errors
    finally:
        lite.close()
        ours.close()


def test_pymilvus_through_heron_serve_reads_repeated_keys_as_milvus_lite(tmp_path, start_server):
    """pymilvus against ``heron serve`` and against Milvus Lite; an upsert batch repeating a key is refused
    as the Milvus server refuses it (Milvus Lite accepts it: a listed difference, Heron follows Milvus)."""
    require_module("milvus_lite")
    from pymilvus import DataType, MilvusClient
    from pymilvus.exceptions import MilvusException

    server = start_server()
    lite = MilvusClient(str(tmp_path / "lite.db"))
    theirs = MilvusClient(server.uri)
    try:
        results = []
        for c in (lite, theirs):
            schema = MilvusClient.create_schema(enable_dynamic_field=False)  # a dynamic field is another matter
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
            schema.add_field("t", DataType.VARCHAR, max_length=16)
            idx = c.prepare_index_params()
            idx.add_index("vector", index_type="FLAT", metric_type="L2")
            c.create_collection("batch", schema=schema, index_params=idx, consistency_level="Strong")
            got = c.insert("batch", [_row(1, 0, "old"), _row(2, 1, "x"), _row(1, 5, "new")])
            results.append((got["insert_count"], list(got["ids"]), _answers(c, 1, "batch")))
        assert results[1] == results[0]
        with pytest.raises(MilvusException, match="duplicate primary keys are not allowed in the same batch") as err:
            theirs.upsert("batch", [_row(7, 0, "a"), _row(7, 1, "b")])
        assert err.value.code == 1100
        assert _count(theirs, "batch") == 2
    finally:
        lite.close()
        theirs.close()


# -- key prints -------------------------------------------------------------------------------


def test_string_key_prints_are_equal_exactly_for_equal_keys():
    keys = ["", "a", "b", "ab", "ba", "é", "e\u0301", "a" * 300, "x\x00", "x", "key-1", "key-10", "日本"]
    arr = pa.array(keys + keys[::-1])
    prints = key_prints(pa.chunked_array([arr]))
    assert len(set(prints[: len(keys)].tolist())) == len(keys)
    assert prints[: len(keys)].tolist() == prints[len(keys):][::-1].tolist()
    sliced = key_prints(pa.chunked_array([arr.slice(3, 10), arr.slice(13)]))
    assert sliced.tolist() == prints[3:].tolist()
    many = [f"k{i}" for i in range(200_000)]  # hashed in several steps
    assert len(np.unique(key_prints(pa.chunked_array([pa.array(many)])))) == len(many)
    long = "x" * 100_000  # longer than a step
    other = long[:-1] + "y"
    p = key_prints(pa.chunked_array([pa.array(["a", long, "b", other, long, "a"])])).tolist()
    assert p[1] == p[4] and p[0] == p[5] and len({p[0], p[1], p[2], p[3]}) == 4
