"""GEOMETRY fields: WKT in, WKB stored, WKT out; the ST_* predicates in filters.

Through both Heron clients, embedded and served (the ``client`` fixture). The
expected rows of each predicate are computed one geometry at a time with
shapely's scalar methods and plain-Python great-circle distances.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pytest
import shapely
from shapely.ops import nearest_points

import heron
from heron._schema import FieldSchema
from heron.data._column import DictColumnSource
from heron.data._scalars import convert_scalars
from heron.engine.filter import _geo_eval as geo_eval
from heron.engine.filter import compile_filter

WKTS = [
    "POINT (13.39971 52.51801)",
    "POINT (1.5 2)",
    "LINESTRING (0 0, 2 2)",
    "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0))",
    "POLYGON ((1 1, 2 1, 2 2, 1 2, 1 1))",
    "MULTIPOINT ((1 1), (3 3))",
    "GEOMETRYCOLLECTION (POINT (40 10), LINESTRING (10 10, 20 20))",
    None,
]


def _schema(**kwargs: Any) -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("g", heron.DataType.GEOMETRY, nullable=True, **kwargs)
    s.add_field("home", heron.DataType.GEOMETRY, default_value="POINT (0 0)")
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    return s


def _make(c: Any, rows: list[str | None] = WKTS) -> None:
    c.create_collection("t", schema=_schema())
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_index("t", idx)
    c.load_collection("t")
    c.insert("t", [{"id": i, "g": w, "v": [float(i), 0.0]} for i, w in enumerate(rows)])


def test_wkt_round_trips_normalised(client):
    given = ["POINT(13.399710 52.518010)", "polygon((0 0,1 0,1 1,0 0))", None]
    _make(client, given)
    got = {r["id"]: r for r in client.query("t", "id >= 0", output_fields=["g", "home"])}
    assert [got[i]["g"] for i in range(3)] == ["POINT (13.39971 52.51801)", "POLYGON ((0 0, 1 0, 1 1, 0 0))", None]
    assert {r["home"] for r in got.values()} == {"POINT (0 0)"}
    hits = client.search("t", [[0.0, 0.0]], limit=3, output_fields=["g"])[0]
    assert {h["id"]: h["entity"]["g"] for h in hits} == {i: got[i]["g"] for i in range(3)}


def _expected(op: str, literal: str, distance: float = 0.0) -> list[int]:
    q = shapely.from_wkt(literal)
    out = []
    for i, w in enumerate(WKTS):
        if w is None:
            continue
        g = shapely.from_wkt(w)
        if op == "ST_DWITHIN":
            a, b = nearest_points(g, q)
            lon1, lat1, lon2, lat2 = map(math.radians, (a.x, a.y, b.x, b.y))
            h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
            ok = 2 * 6_371_008.8 * math.asin(math.sqrt(h)) <= distance
        else:
            ok = getattr(g, op[3:].lower())(q)
        if ok:
            out.append(i)
    return out


PREDICATES = [
    ("ST_INTERSECTS", "POLYGON ((0 0, 3 0, 3 3, 0 3, 0 0))"),
    ("ST_CONTAINS", "POINT (1.5 1.5)"),
    ("ST_WITHIN", "POLYGON ((-1 -1, 5 -1, 5 5, -1 5, -1 -1))"),
    ("ST_EQUALS", "POINT (1.5 2)"),
    ("ST_TOUCHES", "POINT (0 0)"),
    ("ST_OVERLAPS", "POLYGON ((1.5 1.5, 3 1.5, 3 3, 1.5 3, 1.5 1.5))"),
    ("ST_CROSSES", "LINESTRING (0 2, 2 0)"),
    ("st_within", "POLYGON ((13.39 52.5, 13.41 52.5, 13.41 52.53, 13.39 52.53, 13.39 52.5))"),
]


@pytest.mark.parametrize("op, literal", PREDICATES, ids=[p[0] + str(i) for i, p in enumerate(PREDICATES)])
def test_predicates_match_shapely_row_by_row(client, op, literal):
    _make(client)
    want = _expected(op.upper(), literal)
    got = sorted(r["id"] for r in client.query("t", f"{op}(g, '{literal}')", output_fields=["id"]))
    assert got == want
    assert want  # each case selects some rows and leaves others
    negated = sorted(r["id"] for r in client.query("t", f"not {op}(g, '{literal}')", output_fields=["id"]))
    assert negated == [i for i in range(len(WKTS)) if i not in want]  # a null geometry: false, so `not` keeps it


@pytest.mark.parametrize("literal, metres", [
    ("POINT (13.403683 52.520711)", 500.0), ("POINT (1 1)", 200_000.0), ("POINT (0 0)", 0.0),
    ("POLYGON ((0 0, 1 0, 1 1, 0 0))", 60_000.0),
])
def test_dwithin_is_a_great_circle_distance_in_metres(client, literal, metres):
    _make(client)
    got = sorted(r["id"] for r in client.query("t", f"ST_DWITHIN(g, '{literal}', {metres})", output_fields=["id"]))
    assert got == _expected("ST_DWITHIN", literal, metres)


@pytest.mark.parametrize("rows", [
    ["POINT (1 1)", "POINT(1"],
    ["POINT (1 1)", "NOT WKT AT ALL"],
    [42],
])
def test_malformed_wkt_is_refused_and_nothing_is_written(client, rows):
    _make(client, [])
    with pytest.raises(heron.HeronError) as e:
        client.insert("t", [{"id": i, "g": w, "v": [0.0, 0.0]} for i, w in enumerate(rows)])
    assert e.value.code == 1100
    assert "'g'" in e.value.message
    assert client.query("t", "", output_fields=["count(*)"])[0]["count(*)"] == 0


@pytest.mark.parametrize("expr", [
    "ST_WITHIN(g, 'POLYGON((')",
    "ST_WITHIN(id, 'POINT (1 1)')",
    "ST_DWITHIN(g, 'POINT (1 1)', -1)",
    "ST_DWITHIN(g, 'POINT (1 1)')",
    "ST_CONTAINS(g, 5)",
    "g > 1",
    "ST_NEARBY(g, 'POINT (1 1)')",
])
def test_bad_spatial_filters_are_refused(client, expr):
    _make(client)
    with pytest.raises(heron.HeronError) as e:
        client.query("t", expr)
    assert e.value.code == 1100


def test_bad_default_is_refused(client):
    with pytest.raises(heron.HeronError) as e:
        client.create_collection("t", schema=_schema(default_value="POINT("))
    assert e.value.code == 1100
    assert "t" not in client.list_collections()


def test_geometries_survive_reopen_from_the_log_and_from_segments(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _make(c)
        c.flush("t")
        c.insert("t", [{"id": 100, "g": "POINT (9 9)", "v": [0.0, 0.0]}])
        before = c.query("t", "id >= 0", output_fields=["g", "home"])
    with heron.Client(path) as c:
        c.load_collection("t")
        assert c.query("t", "id >= 0", output_fields=["g", "home"]) == before
        assert [r["id"] for r in c.query("t", "ST_DWITHIN(g, 'POINT (9 9)', 1)")] == [100]


def test_the_rtree_path_selects_what_the_whole_column_scan_selects():
    """Above TREE_ROWS rows an STRtree narrows the rows first; the answer is the same as testing every row."""
    rng = np.random.default_rng(3)
    n = geo_eval.TREE_ROWS + 500
    xy = rng.uniform(-10, 10, (n, 2)).round(1)
    kinds = rng.integers(0, 3, n)
    wkts: list[str | None] = []
    for (x, y), k in zip(xy, kinds):
        if k == 0:
            wkts.append(f"POINT ({x} {y})")
        elif k == 1:
            wkts.append(f"LINESTRING ({x} {y}, {x + 1} {y + 0.5})")
        else:
            wkts.append(f"POLYGON (({x} {y}, {x + 1} {y}, {x + 1} {y + 1}, {x} {y + 1}, {x} {y}))")
    wkts[::17] = [None] * len(wkts[::17])
    f = FieldSchema("g", heron.DataType.GEOMETRY, nullable=True)
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    s.fields.append(f)
    col = convert_scalars(f, wkts, n)
    for expr in [f"{op}(g, '{lit}')" for op, lit in PREDICATES[:7]] + ["ST_DWITHIN(g, 'POINT (2 3)', 150000)"]:
        plan = compile_filter(expr, s)
        big = plan.evaluate(DictColumnSource({"g": col}, n)).tolist()
        old = geo_eval.TREE_ROWS
        geo_eval.TREE_ROWS = n + 1
        try:
            flat = plan.evaluate(DictColumnSource({"g": col}, n)).tolist()
        finally:
            geo_eval.TREE_ROWS = old
        assert big == flat, expr
        assert any(big) or expr.startswith(("ST_EQUALS", "ST_TOUCHES", "ST_CONTAINS")), expr


def test_an_rtree_index_answers_as_the_scan_without_decoding_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "4")  # the rows fill sealed segments, which carry scalar indexes
    with heron.Client(str(tmp_path / "db")) as c:
        _make(c)
        idx = c.prepare_index_params()
        idx.add_index("g", index_type="RTREE")
        c.create_index("t", idx)
        assert c.describe_index("t", "g")["index_type"] == "RTREE"

        decoded = []
        real = geo_eval.from_wkb

        def counted(values: Any) -> Any:
            decoded.append(len(values))
            return real(values)

        monkeypatch.setattr(geo_eval, "from_wkb", counted)
        deadline = time.monotonic() + 60
        tries = 0
        while True:  # the index is built in the background; once it serves, a filter decodes nothing
            decoded.clear()
            tries += 1  # a new filter each time: a segment remembers the rows of one it has seen
            c.query("t", f"ST_INTERSECTS(g, 'POINT (1 1)') and id > -{tries}")
            if not decoded:
                break
            assert time.monotonic() < deadline, "the RTREE index was never used"
            time.sleep(0.05)
        for op, literal in PREDICATES:
            got = sorted(r["id"] for r in c.query("t", f"{op}(g, '{literal}')", output_fields=["id"]))
            assert got == _expected(op.upper(), literal), op
        got = sorted(r["id"] for r in c.query("t", "ST_DWITHIN(g, 'POINT (1 1)', 200000)", output_fields=["id"]))
        assert got == _expected("ST_DWITHIN", "POINT (1 1)", 200_000)
        assert not decoded
        for field, kind in (("home", "STL_SORT"), ("id", "RTREE")):
            bad = c.prepare_index_params()
            bad.add_index(field, index_type=kind)
            with pytest.raises(heron.HeronError) as e:
                c.create_index("t", bad)
            assert e.value.code == 1100


def test_rows_written_before_a_crash_come_back_from_the_log(tmp_path):
    """A process inserts TIMESTAMPTZ and GEOMETRY rows and dies without closing; a new one replays its log."""
    import os
    import subprocess
    import sys

    path = str(tmp_path / "db")
    child = f"""
import os, heron
c = heron.Client({path!r})
s = heron.Client.create_schema()
s.add_field("id", heron.DataType.INT64, is_primary=True)
s.add_field("ts", heron.DataType.TIMESTAMPTZ, nullable=True)
s.add_field("g", heron.DataType.GEOMETRY, nullable=True)
s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
c.create_collection("t", schema=s)
c.insert("t", [{{"id": 1, "ts": "2025-01-01T08:00:00+08:00", "g": "POLYGON ((0 0, 1 0, 1 1, 0 0))", "v": [0, 0]}},
               {{"id": 2, "ts": None, "g": None, "v": [1, 1]}}])
os._exit(0)  # no close, no flush: only the insert log holds the rows
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", child], check=True, env=env, timeout=120)
    with heron.Client(path) as c:
        c.load_collection("t")
        rows = c.query("t", "id > 0", output_fields=["ts", "g"])
        assert rows == [{"id": 1, "ts": "2025-01-01T00:00:00Z", "g": "POLYGON ((0 0, 1 0, 1 1, 0 0))"},
                        {"id": 2, "ts": None, "g": None}]
        assert [r["id"] for r in c.query("t", "ST_CONTAINS(g, 'POINT (0.75 0.25)')")] == [1]


def test_shapely_geometries_and_wkb_are_taken_too(client):
    _make(client, [])
    client.insert("t", [{"id": 1, "g": shapely.Point(1, 2), "v": [0.0, 0.0]},
                        {"id": 2, "g": shapely.to_wkb(shapely.box(0, 0, 1, 1)), "v": [0.0, 0.0]}])
    got = {r["id"]: r["g"] for r in client.query("t", "id > 0", output_fields=["g"])}
    assert got == {1: "POINT (1 2)", 2: shapely.to_wkt(shapely.box(0, 0, 1, 1), rounding_precision=-1)}
    with pytest.raises(heron.HeronError) as e:
        client.insert("t", [{"id": 3, "g": b"not wkb", "v": [0.0, 0.0]}])
    assert e.value.code == 1100
