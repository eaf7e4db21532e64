"""Heron's client against a Milvus server's answers (a fake that answers as Milvus 2.3.5 did).

Each test stands for a break seen against a real Milvus 2.3.5 standalone:
load returned while Milvus still loaded, the version was the client's own,
Milvus's generic error code became `AlreadyExistsError`, a dynamic field
went as an explicit ``$meta`` field, and no ``guarantee_timestamp`` went
with reads. ``scripts/against-milvus`` runs the whole program against the
real server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

import heron
from heron import wire
from heron._errors import AlreadyExistsError, CollectionNotFoundError, FilterError, HeronError, ParamError
from heron.wire._schema import index_description_from_pb, kv_pairs
from tests.portability._fake_milvus import FIRST_WRITE_TS, PARSE_ERROR, VERSION, FakeMilvus


@pytest.fixture
def milvus() -> Iterator[FakeMilvus]:
    fake = FakeMilvus().start()
    yield fake
    fake.stop()


def test_load_collection_waits_until_milvus_says_loaded(milvus: FakeMilvus) -> None:
    with heron.Client(milvus.uri) as c:
        c.load_collection("c", timeout=30)
    states = milvus.requests("GetLoadState")
    assert len(states) == milvus.loading_polls + 1
    assert all(m.collection_name == "c" for m in states)


def test_load_partitions_waits_for_those_partitions(milvus: FakeMilvus) -> None:
    async def go() -> None:
        c = heron.AsyncClient(milvus.uri)
        try:
            await c.load_partitions("c", ["p1", "p2"], timeout=30)
        finally:
            await c.close()

    asyncio.run(go())
    states = milvus.requests("GetLoadState")
    assert len(states) == milvus.loading_polls + 1 and list(states[-1].partition_names) == ["p1", "p2"]


def test_load_that_does_not_finish_in_time_raises() -> None:
    fake = FakeMilvus(loading_polls=10**6).start()
    try:
        with heron.Client(fake.uri) as c, pytest.raises(HeronError, match=r"did not finish within timeout=0.3s"):
            c.load_collection("c", timeout=0.3)
    finally:
        fake.stop()


def test_server_version_is_the_servers(milvus: FakeMilvus) -> None:
    with heron.Client(milvus.uri) as c:
        assert c.get_server_version() == VERSION
        detail = c.get_server_version(detail=True)
    assert detail["version"] == VERSION and detail["git_commit"] == "9aceff5a6"
    assert detail["deploy_mode"] == "STANDALONE"


def test_embedded_version_is_what_heron_serve_answers(tmp_path) -> None:
    with heron.Client(str(tmp_path / "db")) as c:
        assert c.get_server_version() == f"v{heron.__version__}"
        assert c.get_server_version(detail=True)["version"] == f"heron-{heron.__version__}"


def test_milvus_generic_code_is_mapped_by_message(milvus: FakeMilvus) -> None:
    with heron.Client(milvus.uri) as c:
        c.create_collection("c", dimension=4)
        with pytest.raises(FilterError, match="cannot parse expression"):
            c.query("c", filter="n >>> 3")
        with pytest.raises(HeronError) as caught:
            c.query("c", filter="bm25(x)")
    assert type(caught.value) is HeronError and caught.value.code == 65535
    assert "bm25 not supported" in str(caught.value)


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (65535, PARSE_ERROR, FilterError),
        (65535, "unsupported feature: sparse float vector", HeronError),
        (65535, "something went wrong", HeronError),
        (65535, "collection already exists: books", AlreadyExistsError),
        (1100, "invalid parameter[expected=disable]", ParamError),
        (100, "collection not found[collection=x]", CollectionNotFoundError),
        (0, "can't find collection: x", CollectionNotFoundError),  # a reply with only the legacy code
    ],
)
def test_error_of_a_milvus_status(code: int, reason: str, expected: type) -> None:
    legacy = common_pb2.UnexpectedError if code != 100 else common_pb2.CollectionNotExists
    err = wire.error_of(common_pb2.Status(code=code, error_code=legacy, reason=reason))
    assert type(err) is expected
    assert reason in str(err)


def test_dynamic_field_is_not_sent_as_a_field(milvus: FakeMilvus) -> None:
    """Milvus refuses an explicit dynamic field ("cannot explicitly set a field as a dynamic field")."""
    with heron.Client(milvus.uri) as c:
        c.create_collection("quick", dimension=8)
        schema = c.create_schema(enable_dynamic_field=True)
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
        c.create_collection("explicit", schema=schema)
    for m in milvus.requests("CreateCollection"):
        s = schema_pb2.CollectionSchema()
        s.ParseFromString(m.schema)
        assert s.enable_dynamic_field
        assert [f.name for f in s.fields if f.is_dynamic or f.name == "$meta"] == []


@pytest.mark.parametrize(
    ("level", "expected_ts", "default"),
    [
        (None, FIRST_WRITE_TS + 1, True),  # the collection's level; pymilvus sends the client's last write
        ("Session", FIRST_WRITE_TS + 1, False),
        ("Strong", 0, False),
        (0, 0, False),
        ("Bounded", 2, False),
        ("Eventually", 1, False),
    ],
)
def test_reads_carry_the_guarantee_timestamp_pymilvus_sends(milvus: FakeMilvus, level, expected_ts, default):
    with heron.Client(milvus.uri) as c:
        c.create_collection("c", dimension=4)
        c.insert("c", [{"id": 1, "vector": [0.1, 0.2, 0.3, 0.4]}])
        kwargs = {} if level is None else {"consistency_level": level}
        c.query("c", filter="id > 0", **kwargs)
        c.search("c", [[0.1, 0.2, 0.3, 0.4]], limit=1, **kwargs)
    for m in (milvus.requests("Query")[-1], milvus.requests("Search")[-1]):
        assert m.guarantee_timestamp == expected_ts
        assert m.use_default_consistency is default
        if not default:
            assert m.consistency_level == heron.wire._schema.consistency_number(
                ["Strong", "Session", "Bounded", "Eventually"][level] if isinstance(level, int) else level)


def test_customized_level_sends_the_timestamp_given(milvus: FakeMilvus) -> None:
    with heron.Client(milvus.uri) as c:
        c.create_collection("c", dimension=4)
        c.query("c", filter="id > 0", consistency_level="Customized", guarantee_timestamp=12345)
    assert milvus.requests("Query")[-1].guarantee_timestamp == 12345


def test_collection_consistency_level_is_sent(milvus: FakeMilvus) -> None:
    with heron.Client(milvus.uri) as c:
        c.create_collection("strong", dimension=4, consistency_level="Strong")
        c.create_collection("plain", dimension=4)
    levels = {m.collection_name: m.consistency_level for m in milvus.requests("CreateCollection")}
    assert levels == {"strong": common_pb2.Strong, "plain": common_pb2.Bounded}


@pytest.mark.parametrize("bad", ["Strongest", -1, 7, 1.5, True])
def test_bad_consistency_level_is_refused_before_sending(milvus: FakeMilvus, bad) -> None:
    with heron.Client(milvus.uri) as c:
        with pytest.raises(ParamError, match="consistency_level: got"):
            c.query("c", filter="id > 0", consistency_level=bad)
        with pytest.raises(ParamError, match="guarantee_timestamp: got"):
            c.query("c", filter="id > 0", guarantee_timestamp=-5)
    assert milvus.requests("Query") == []


def test_creating_a_released_collection_again_does_not_wait_for_a_load(client) -> None:
    """Creating it again with the same schema returns: embedded Heron leaves it released (nothing to wait
    for), a server loads it again as it loads any collection created with index params."""
    client.create_collection("again", dimension=4)
    client.release_collection("again")
    client.create_collection("again", dimension=4, timeout=60)
    assert client.get_load_state("again")["state"] in (heron.LoadState.NotLoad, heron.LoadState.Loaded)


@pytest.mark.parametrize("nested", [True, False], ids=["params-json", "flat"])
def test_describe_index_keeps_milvus_build_params(nested: bool) -> None:
    """Milvus 2.3.5 describes an index with its build params as one ``params`` JSON; later ones list them flat."""
    build = {"M": 16, "efConstruction": 128}
    kv = {"index_type": "HNSW", "metric_type": "L2"}
    kv |= {"params": '{"M": 16, "efConstruction": 128}'} if nested else {k: str(v) for k, v in build.items()}
    d = index_description_from_pb(milvus_pb2.IndexDescription(
        index_name="vector", field_name="vector", params=kv_pairs(kv), state=common_pb2.Finished))
    assert {k: d[k] for k in ("index_type", "metric_type", *build)} == {"index_type": "HNSW", "metric_type": "L2",
                                                                        **build}
