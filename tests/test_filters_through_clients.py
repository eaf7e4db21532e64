"""Filters give the same answers through query, search and delete, with and without scalar indexes.

Expected row sets come from the plain-Python reference evaluator over the
rows as inserted; the data spans sealed segments (where scalar indexes are
used) and a growing tail (where they are not).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

import heron
from heron.engine.filter import evaluate_reference
from tests.conftest import AsyncAsSync, Server, launch_server

CITIES = ["paris", "parma", "rome", "oslo", "lima", "pune"]
EXPRS = [
    "age == 30",
    "age != 30",
    "20 < age <= 40",
    "age in [21, 22, 23, 99]",
    "age not in [21, 22]",
    'city == "rome"',
    'city like "par%"',
    'city in ["oslo", "lima"] or score > 0.9',
    "age is null",
    "age is not null and score < 0.2",
    'array_contains(tags, "b")',
    'meta["k"] >= 5 and not (city == "pune")',
    'kind == "x"',
    "(age + 5) % 7 == 0",
    "",
]
INDEXES = {
    "none": [],
    "inverted": [("age", "INVERTED"), ("city", "INVERTED"), ("tags", "INVERTED")],
    "stl_sort": [("age", "STL_SORT"), ("score", "STL_SORT")],
    "bitmap": [("city", "BITMAP"), ("age", "BITMAP")],
    "trie": [("city", "TRIE")],
}


def schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema(enable_dynamic_field=True)
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=4)
    s.add_field("age", heron.DataType.INT32, nullable=True)
    s.add_field("city", heron.DataType.VARCHAR, max_length=10)
    s.add_field("score", heron.DataType.DOUBLE)
    s.add_field("tags", heron.DataType.ARRAY, element_type=heron.DataType.VARCHAR, max_capacity=3, max_length=4)
    s.add_field("meta", heron.DataType.JSON)
    return s


def make_rows(n: int, start: int = 0) -> list[dict]:
    rnd = random.Random(start + 7)
    rows = []
    for i in range(start, start + n):
        row = {
            "id": i,
            "vec": [rnd.random() for _ in range(4)],
            "age": None if rnd.random() < 0.1 else rnd.randint(18, 45),
            "city": rnd.choice(CITIES),
            "score": rnd.random(),
            "tags": rnd.sample(["a", "b", "c", "d"], rnd.randint(0, 3)),
            "meta": {"k": rnd.randint(0, 9)} if rnd.random() < 0.8 else {},
        }
        if rnd.random() < 0.3:
            row["kind"] = rnd.choice(["x", "y"])
        rows.append(row)
    return rows


def as_reference(rows: list[dict]) -> list[dict]:
    names = set(schema().field_names())
    return [{**{k: v for k, v in r.items() if k in names}, "$meta": {k: v for k, v in r.items() if k not in names}}
            for r in rows]


#: Tests on `loaded` data: small segments, so that the rows span sealed segments and the growing one.
SMALL_SEGMENT_ENV = {"HERON_SEAL_ROWS": "100"}
SMALL_SEGMENTS = pytest.mark.heron_env(**SMALL_SEGMENT_ENV)
VARIANTS = ["sync-embedded", "async-embedded", "sync-server", "async-server"]


def load(client: Any, index: str) -> list[dict]:
    """Collection "f" with scalar indexes ``INDEXES[index]``: 250 rows over sealed segments, 40 growing."""
    idx = client.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    for field, kind in INDEXES[index]:
        idx.add_index(field, index_type=kind)
    client.create_collection("f", schema=schema(), index_params=idx)
    rows = make_rows(250)
    for i in range(0, 250, 50):
        client.insert("f", rows[i : i + 50])
    client.flush("f")
    tail = make_rows(40, start=250)
    client.insert("f", tail)
    return rows + tail


@pytest.fixture(params=list(INDEXES))
def loaded(request, client):
    return client, load(client, request.param)


@pytest.fixture(scope="module")
def small_segment_server(tmp_path_factory) -> Iterator[Server]:
    """A server of this module's own: tests on the `client` fixture wipe the shared ones between tests."""
    server = launch_server(str(tmp_path_factory.mktemp("filters") / "data"), env=SMALL_SEGMENT_ENV)
    yield server
    server.stop()


@pytest.fixture(scope="module", params=[(i, v) for i in INDEXES for v in VARIANTS], ids="-".join)
def loaded_for_reading(request, tmp_path_factory) -> Iterator[tuple[Any, list[dict]]]:
    """`loaded`'s collection built once for all the tests that only read it, per index and client.

    Built as `loaded` builds it, through the same four clients as the `client` fixture.
    """
    index, variant = request.param
    style, where = variant.split("-")
    server: Server | None = None
    with pytest.MonkeyPatch.context() as mp:
        if where == "embedded":
            for k, v in SMALL_SEGMENT_ENV.items():
                mp.setenv(k, v)  # read when the engine opens
            uri = str(tmp_path_factory.mktemp("filters") / "db")
        else:
            server = request.getfixturevalue("small_segment_server")
            uri = server.uri
        c: Any = heron.Client(uri) if style == "sync" else AsyncAsSync(lambda: heron.AsyncClient(uri))
        try:
            rows = load(c, index)
        except BaseException:
            c.close()
            raise
    try:
        yield c, rows
    finally:
        if server is not None:
            c.drop_collection("f")
        c.close()
        if server is not None:
            assert server.proc.poll() is None, f"heron serve died during the tests:\n{server.output()[-3000:]}"


def expected(expr: str, rows: list[dict]) -> set[int]:
    hits = evaluate_reference(expr, schema(), as_reference(rows))
    return {r["id"] for r, ok in zip(rows, hits) if ok}


@pytest.mark.parametrize("expr", EXPRS)
def test_query_search_and_count_agree_with_the_reference(loaded_for_reading, expr):
    client, rows = loaded_for_reading
    want = expected(expr, rows)
    got = {r["id"] for r in client.query("f", filter=expr, output_fields=["id"], limit=1000)}
    assert got == want
    count = client.query("f", filter=expr, output_fields=["count(*)"])[0]["count(*)"]
    assert count == len(want)
    hits = client.search("f", data=[[0.5] * 4], filter=expr, limit=len(rows))[0]
    assert {h["id"] for h in hits} == want


@SMALL_SEGMENTS
def test_delete_by_filter_removes_exactly_the_matching_rows(loaded):
    client, rows = loaded
    expr = 'city like "par%" and age > 25'
    want = expected(expr, rows)
    assert client.delete("f", filter=expr)["delete_count"] == len(want)
    left = {r["id"] for r in client.query("f", filter="", limit=1000)}
    assert left == {r["id"] for r in rows} - want


def test_template_parameters_through_the_client(client):
    client.create_collection("t", schema=schema())
    client.load_collection("t")
    rows = make_rows(60)
    client.insert("t", rows)
    expr = "age > {a} and city in {cs}"
    params = {"a": 30, "cs": ["rome", "oslo"]}
    want = {r["id"] for r, ok in zip(rows, evaluate_reference(expr, schema(), as_reference(rows), params)) if ok}
    got = {r["id"] for r in client.query("t", filter=expr, filter_params=params, limit=100)}
    assert got == want and want
