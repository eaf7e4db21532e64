"""pymilvus 3's own clients against ``heron serve``, and beside Milvus Lite where it answers the same program.

Each test drives the real ``pymilvus.MilvusClient`` (and, where the call
differs, ``AsyncMilvusClient``) against a ``heron serve`` process, as code
written for Milvus does. Where Milvus Lite answers the same program, its
answer is the reference (a ``milvus-lite server`` process started once for
the module); the differences kept are Milvus Lite's own, named where they
are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.conftest import Server, require_module


@pytest.fixture
def server(wiped_server: Server) -> Server:
    """The module's one ``heron serve``, wiped before each test: these tests leave only collections behind."""
    return wiped_server


pymilvus = require_module("pymilvus")
MilvusClient = pymilvus.MilvusClient
AsyncMilvusClient = pymilvus.AsyncMilvusClient
DataType = pymilvus.DataType


@pytest.fixture(autouse=True)
def _quiet_pymilvus() -> Iterator[None]:
    """pymilvus logs every refused call at ERROR with a traceback; the tests check the refusals themselves."""
    log = logging.getLogger("pymilvus")
    level = log.level
    log.setLevel(logging.CRITICAL)
    yield
    log.setLevel(level)


@pytest.fixture(scope="module")
def lite() -> Iterator[Any]:
    """A Milvus Lite server for the module (the reference answers)."""
    require_module("milvus_lite")
    import tempfile

    from tests.server.test_milvus_lite_interop import start_milvus_lite

    with tempfile.TemporaryDirectory(prefix="heron-lite-") as data:
        server = start_milvus_lite(data)
        try:
            yield server
        finally:
            server.stop()


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in result]


def _by_id(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def _close(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Rows equal, vectors within float32 rounding."""
    if set(a) != set(b):
        return False
    for k, v in a.items():
        w = b[k]
        if isinstance(v, list) and v and isinstance(v[0], float):
            if not np.allclose(v, w, atol=1e-6):
                return False
        elif v != w:
            return False
    return True


# -- 1. dynamic fields -------------------------------------------------------------------------

DYN_ROWS = [
    {"id": i, "vector": [float((i * 7 + j) % 11) / 10 for j in range(8)], "color": f"c{i % 3}", "n": i}
    for i in range(12)
]


def _dynamic_program(c: Any) -> dict[str, Any]:
    """pymilvus's quick setup (dynamic field on), then every data call with keys outside the schema."""
    if c.has_collection("q"):
        c.drop_collection("q")
    c.create_collection("q", dimension=8)
    out: dict[str, Any] = {"describe": c.describe_collection("q")}
    out["insert"] = c.insert("q", DYN_ROWS)
    out["upsert"] = c.upsert("q", [{"id": 1, "vector": DYN_ROWS[1]["vector"], "color": "zz", "extra": [1, 2]}])
    out["query_star"] = _rows(c.query("q", filter="id in [0, 2, 5]", output_fields=["*"]))
    out["query_dyn"] = _rows(c.query("q", filter="color == 'c1'", output_fields=["id", "color", "n"]))
    out["query_upserted"] = _rows(c.query("q", filter="id == 1", output_fields=["color", "extra"]))
    out["get"] = _rows(c.get("q", ids=[2, 4], output_fields=["color", "n"]))
    hits = c.search("q", [DYN_ROWS[2]["vector"]], limit=3, output_fields=["color", "n"])
    out["search"] = [(h["id"], dict(h["entity"])) for h in hits[0]]
    out["filter_dyn"] = sorted(r["id"] for r in c.query("q", filter="n >= 9", output_fields=["id"]))
    return out


def _check_dynamic(out: dict[str, Any]) -> None:
    desc = out["describe"]
    assert desc["enable_dynamic_field"] is True
    assert [f["name"] for f in desc["fields"]] == ["id", "vector"]  # no "$meta": Milvus keeps it implicit
    assert out["insert"]["insert_count"] == len(DYN_ROWS)
    assert out["upsert"]["upsert_count"] == 1
    star = _by_id(out["query_star"])
    assert set(star) == {0, 2, 5}
    assert _close(star[5], DYN_ROWS[5])
    assert _by_id(out["query_dyn"]) == {i: {"id": i, "color": "c1", "n": i} for i in (4, 7, 10)}
    assert out["query_upserted"] == [{"id": 1, "color": "zz", "extra": [1, 2]}]
    assert _by_id(out["get"]) == {2: {"id": 2, "color": "c2", "n": 2}, 4: {"id": 4, "color": "c1", "n": 4}}
    assert out["search"][0] == (2, {"color": "c2", "n": 2})
    assert out["filter_dyn"] == [9, 10, 11]


def test_dynamic_fields_through_milvus_client(server: Server, lite: Any) -> None:
    out = _dynamic_program(MilvusClient(server.uri))
    _check_dynamic(out)
    ref = _dynamic_program(MilvusClient(lite.uri))
    _check_dynamic(ref)
    for key in ("query_star", "query_dyn", "get"):
        assert sorted(map(repr, out[key])) == sorted(map(repr, ref[key])) or all(
            _close(a, b) for a, b in zip(sorted(out[key], key=repr), sorted(ref[key], key=repr))
        ), key
    assert [h[0] for h in out["search"]] == [h[0] for h in ref["search"]]


def test_dynamic_fields_through_async_milvus_client(server: Server) -> None:
    async def program() -> dict[str, Any]:
        c = AsyncMilvusClient(server.uri)
        try:
            await c.create_collection("aq", dimension=8)
            desc = await c.describe_collection("aq")
            await c.insert("aq", DYN_ROWS)
            await c.upsert("aq", [{"id": 3, "vector": DYN_ROWS[3]["vector"], "tag": "new"}])
            rows = await c.query("aq", filter="id in [3, 4]", output_fields=["color", "tag", "n"])
            got = await c.get("aq", ids=[4], output_fields=["*"])
            hits = await c.search("aq", [DYN_ROWS[4]["vector"]], limit=1, output_fields=["color"])
            return {"desc": desc, "rows": _rows(rows), "get": _rows(got), "hits": hits}
        finally:
            await c.close()

    out = asyncio.run(program())
    assert [f["name"] for f in out["desc"]["fields"]] == ["id", "vector"]
    assert out["desc"]["enable_dynamic_field"] is True
    assert _by_id(out["rows"]) == {3: {"id": 3, "tag": "new"}, 4: {"id": 4, "color": "c1", "n": 4}}
    assert _close(out["get"][0], DYN_ROWS[4])
    assert out["hits"][0][0]["id"] == 4
    assert dict(out["hits"][0][0]["entity"]) == {"color": "c1"}


def test_heron_remote_client_keeps_dynamic_fields(server: Server) -> None:
    """Heron's own remote client reads the implicit dynamic field from the description, as pymilvus does."""
    import heron

    with heron.Client(server.uri) as c:
        c.create_collection("hq", dimension=8)
        assert c.describe_collection("hq")["enable_dynamic_field"] is True
        c.insert("hq", DYN_ROWS[:3])
        assert _by_id(_rows(c.query("hq", filter="n < 2", output_fields=["color"]))) == {
            0: {"id": 0, "color": "c0"},
            1: {"id": 1, "color": "c1"},
        }
    assert _by_id(_rows(MilvusClient(server.uri).get("hq", ids=[2], output_fields=["n"]))) == {2: {"id": 2, "n": 2}}


# -- 2. nullable fields omitted by rows ------------------------------------------------------------

_NULLABLE = [
    ("b", DataType.BOOL, {}),
    ("i8", DataType.INT8, {}),
    ("i32", DataType.INT32, {}),
    ("i64", DataType.INT64, {}),
    ("f", DataType.FLOAT, {}),
    ("d", DataType.DOUBLE, {}),
    ("s", DataType.VARCHAR, {"max_length": 10}),
    ("j", DataType.JSON, {}),
    ("a", DataType.ARRAY, {"element_type": DataType.INT64, "max_capacity": 4}),
]
NULL_ROWS = [
    {"id": 1, "v": [1.0, 2.0], "b": True, "i8": 3, "s": "x"},
    {"id": 2, "v": [1.0, 3.0]},
    {"id": 3, "v": [0.0, 0.0], "b": False, "a": [1], "j": {"k": 1}, "dflt": None, "f": 1.5},
]


def _nullable_program(c: Any, name: str) -> dict[str, Any]:
    if c.has_collection(name):
        c.drop_collection(name)
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    for field, dtype, kw in _NULLABLE:
        s.add_field(field, dtype, nullable=True, **kw)
    s.add_field("dflt", DataType.INT32, nullable=True, default_value=7)
    ip = c.prepare_index_params()
    ip.add_index("v", metric_type="L2", index_type="FLAT")
    c.create_collection(name, schema=s, index_params=ip)
    out = {"insert": c.insert(name, NULL_ROWS)}
    out["after_insert"] = _rows(c.query(name, "id > 0", output_fields=["*"]))
    out["upsert"] = c.upsert(name, [NULL_ROWS[1], {**NULL_ROWS[0], "b": None, "i8": None}])
    out["after_upsert"] = _rows(c.query(name, "id > 0", output_fields=["*"]))
    return out


def test_nullable_fields_omitted_from_rows_insert_and_upsert_as_nulls(server: Server, lite: Any) -> None:
    out = _nullable_program(MilvusClient(server.uri), "nul")
    ref = _nullable_program(MilvusClient(lite.uri), "nul")
    assert out["insert"]["insert_count"] == 3 and out["upsert"]["upsert_count"] == 2
    for key in ("after_insert", "after_upsert"):
        mine, theirs = _by_id(out[key]), _by_id(ref[key])
        assert set(mine) == set(theirs) == {1, 2, 3}
        for k in mine:
            assert _close(mine[k], theirs[k]), (key, mine[k], theirs[k])
    row2 = _by_id(out["after_upsert"])[2]
    assert {k: v for k, v in row2.items() if k not in ("id", "v")} == {
        **{f: None for f, _, _ in _NULLABLE},
        "dflt": 7,
    }
    assert _by_id(out["after_upsert"])[1]["b"] is None


def test_filler_values_at_nulls_are_ignored_for_every_type(server: Server) -> None:
    """A column sent whole, with placeholders where valid_data is False (as some clients send it)."""
    import grpc
    from pymilvus.grpc_gen import milvus_pb2, schema_pb2

    c = MilvusClient(server.uri)
    _nullable_program(c, "fill")
    fields = [
        schema_pb2.FieldData(field_name="id", type=DataType.INT64, scalars={"long_data": {"data": [10, 11]}}),
        schema_pb2.FieldData(
            field_name="v", type=DataType.FLOAT_VECTOR, vectors={"dim": 2, "float_vector": {"data": [1, 1, 2, 2]}}
        ),
    ]
    fillers = {
        "b": ("bool_data", [True, False]),
        "i8": ("int_data", [5, 999]),  # 999 does not fit INT8: it must not be read
        "i32": ("int_data", [6, 0]),
        "i64": ("long_data", [7, 0]),
        "f": ("float_data", [1.5, 0]),
        "d": ("double_data", [2.5, 0]),
        "s": ("string_data", ["ok", "far too long a filler"]),
        "j": ("json_data", [b'{"a": 1}', b"not json"]),
        "dflt": ("int_data", [3, 0]),
    }
    dtypes = {f: t for f, t, _ in _NULLABLE} | {"dflt": DataType.INT32}
    for name, (attr, values) in fillers.items():
        fd = schema_pb2.FieldData(field_name=name, type=dtypes[name], valid_data=[True, False])
        getattr(fd.scalars, attr).data.extend(values)
        fields.append(fd)
    arr = schema_pb2.FieldData(field_name="a", type=DataType.ARRAY, valid_data=[True, False])
    arr.scalars.array_data.element_type = DataType.INT64
    arr.scalars.array_data.data.add().long_data.data.extend([1, 2])
    arr.scalars.array_data.data.add().string_data.data.extend(["x"])  # a filler of the wrong element type
    fields.append(arr)
    for rpc, cls in (("Insert", milvus_pb2.InsertRequest), ("Upsert", milvus_pb2.UpsertRequest)):
        req = cls(collection_name="fill", fields_data=fields, num_rows=2)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            reply = ch.unary_unary(
                f"/milvus.proto.milvus.MilvusService/{rpc}",
                request_serializer=cls.SerializeToString,
                response_deserializer=milvus_pb2.MutationResult.FromString,
            )(req, timeout=30)
        assert reply.status.code == 0, (rpc, reply.status.reason)
    rows = _by_id(_rows(c.query("fill", "id >= 10", output_fields=["*"])))
    assert {k: v for k, v in rows[10].items() if k != "v"} == {
        "id": 10, "b": True, "i8": 5, "i32": 6, "i64": 7, "f": 1.5, "d": 2.5, "s": "ok", "j": {"a": 1},
        "a": [1, 2], "dflt": 3,
    }
    assert {k: v for k, v in rows[11].items() if k != "v"} == {
        "id": 11, **{f: None for f, _, _ in _NULLABLE}, "dflt": 7,
    }


def test_valid_data_that_does_not_match_the_values_is_refused_naming_the_field(server: Server) -> None:
    import grpc
    from pymilvus.grpc_gen import milvus_pb2, schema_pb2

    c = MilvusClient(server.uri)
    _nullable_program(c, "bad")
    fd = schema_pb2.FieldData(field_name="i64", type=DataType.INT64, valid_data=[True, True, False])
    fd.scalars.long_data.data.extend([1])  # neither 3 values (full) nor 2 (compact)
    req = milvus_pb2.InsertRequest(
        collection_name="bad",
        num_rows=3,
        fields_data=[
            schema_pb2.FieldData(field_name="id", type=DataType.INT64, scalars={"long_data": {"data": [7, 8, 9]}}),
            schema_pb2.FieldData(
                field_name="v", type=DataType.FLOAT_VECTOR, vectors={"dim": 2, "float_vector": {"data": [0] * 6}}
            ),
            fd,
        ],
    )
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        reply = ch.unary_unary(
            "/milvus.proto.milvus.MilvusService/Insert",
            request_serializer=milvus_pb2.InsertRequest.SerializeToString,
            response_deserializer=milvus_pb2.MutationResult.FromString,
        )(req, timeout=30)
    assert reply.status.code != 0
    assert "'i64'" in reply.status.reason and "1 values" in reply.status.reason
    assert c.query("bad", "", output_fields=["count(*)"])[0]["count(*)"] == 3  # nothing of the batch written


# -- 4. iterators ----------------------------------------------------------------------------------


def _drain(it: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        batch = it.next()
        if not batch:
            it.close()
            return out
        out.extend(batch)


def test_query_iterator_returns_every_row_once_in_key_order(server: Server) -> None:
    c = MilvusClient(server.uri)
    c.create_collection("it", dimension=4)
    rng = np.random.default_rng(0)
    n = 20_000
    keys = rng.permutation(n)  # inserted out of key order, in several batches (several segments)
    vecs = rng.random((n, 4)).astype(np.float32)
    for s in range(0, n, 4000):
        part = keys[s : s + 4000]
        c.insert("it", [{"id": int(k), "vector": vecs[k].tolist()} for k in part])
    got = [r["id"] for r in _drain(c.query_iterator("it", batch_size=1000, output_fields=["id"]))]
    assert len(got) == n and got == list(range(n))
    evens = [r["id"] for r in _drain(c.query_iterator("it", batch_size=333, filter="id % 2 == 0", offset=250,
                                                      limit=900, output_fields=["id"]))]
    assert evens == list(range(500, 500 + 2 * 900, 2))


def test_query_iterator_sees_upserted_rows_once(server: Server, lite: Any) -> None:
    def program(uri: str) -> list[tuple[int, str]]:
        c = MilvusClient(uri)
        if c.has_collection("up"):
            c.drop_collection("up")
        c.create_collection("up", dimension=2)
        c.insert("up", [{"id": i, "vector": [i, 1.0], "tag": "old"} for i in range(500)])
        c.upsert("up", [{"id": 7, "vector": [0.0, 1.0], "tag": "new"}])
        c.upsert("up", [{"id": 7, "vector": [0.0, 2.0], "tag": "newer"}, {"id": 300, "vector": [3, 3], "tag": "new"}])
        rows = _drain(c.query_iterator("up", batch_size=64, output_fields=["tag"]))
        return [(r["id"], r["tag"]) for r in rows]

    mine = program(server.uri)
    assert mine == program(lite.uri)
    assert [k for k, _ in mine] == list(range(500))
    assert dict(mine)[7] == "newer" and dict(mine)[300] == "new"


def test_search_iterator_pages_through_the_nearest_rows_once(server: Server, lite: Any) -> None:
    def program(uri: str) -> tuple[str, list[int], list[float]]:
        c = MilvusClient(uri)
        if c.has_collection("sit"):
            c.drop_collection("sit")
        c.create_collection("sit", dimension=4, metric_type="L2")
        vecs = np.random.default_rng(1).random((3000, 4)).astype(np.float32)
        c.insert("sit", [{"id": i, "vector": vecs[i].tolist()} for i in range(3000)])
        it = c.search_iterator("sit", [vecs[0].tolist()], batch_size=100, limit=1000, output_fields=["id"])
        hits = _drain(it)
        return type(it).__name__, [h["id"] for h in hits], [h["distance"] for h in hits]

    kind, ids, dist = program(server.uri)
    assert kind == "SearchIteratorV2"  # Heron answers the server-side iterator; Milvus Lite does not (v1)
    assert len(ids) == 1000 and len(set(ids)) == 1000 and ids[0] == 0
    assert dist == sorted(dist)
    _, ref_ids, _ = program(lite.uri)
    assert set(ids) == set(ref_ids)


@pytest.mark.parametrize("metric", ["L2", "COSINE"])
def test_search_iterator_v2_returns_every_match_once_through_runs_of_equal_distances(server: Server,
                                                                                      metric: str) -> None:
    c = MilvusClient(server.uri)
    c.create_collection("ties", dimension=4, metric_type=metric)
    rng = np.random.default_rng(1)
    base = rng.random((50, 4)).astype(np.float32)
    vecs = base[rng.integers(0, 50, 2000)]  # about 40 rows share each vector: runs longer than a page
    c.insert("ties", [{"id": i, "vector": vecs[i].tolist(), "g": i % 4} for i in range(2000)])
    it = c.search_iterator("ties", [base[0].tolist()], batch_size=37, filter="g != 1", output_fields=["g"])
    assert type(it).__name__ == "SearchIteratorV2"
    hits = _drain(it)
    ids = [h["id"] for h in hits]
    assert len(ids) == len(set(ids)) and set(ids) == {i for i in range(2000) if i % 4 != 1}
    dist = [h["distance"] for h in hits]
    assert dist == sorted(dist, reverse=metric == "COSINE")


def test_search_iterator_v2_covers_sealed_indexed_rows(server: Server) -> None:
    """Rows in sealed HNSW segments and in the growing one, each exactly once, nearest first."""
    c = MilvusClient(server.uri)
    c.create_collection("sealed", dimension=8, metric_type="IP", index_type="HNSW")
    vecs = np.random.default_rng(2).random((5000, 8)).astype(np.float32)
    c.insert("sealed", [{"id": i, "vector": vecs[i].tolist()} for i in range(5000)])
    c.flush("sealed")
    c.insert("sealed", [{"id": 5000 + i, "vector": vecs[i].tolist()} for i in range(500)])
    hits = _drain(c.search_iterator("sealed", [vecs[3].tolist()], batch_size=400))
    ids = [h["id"] for h in hits]
    assert len(ids) == len(set(ids)) == 5500
    dist = [h["distance"] for h in hits]
    assert dist == sorted(dist, reverse=True)
