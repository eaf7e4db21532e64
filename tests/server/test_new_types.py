"""TIMESTAMPTZ and GEOMETRY through pymilvus against ``heron serve``, differentially against Milvus Lite.

The same calls go to Milvus Lite (``milvus_lite``, which implements both
types), to ``heron serve`` and to the embedded engine. Where Lite answers, Heron
answers the same; where Lite refuses, Heron refuses too, with Milvus's code
(1100, invalid parameter; Lite answers the legacy IllegalArgument, 6). Known
differences, where Heron follows Milvus's documented behaviour:

* Lite shows TIMESTAMPTZ values in UTC whatever ``timezone`` a read gives;
  Milvus (and Heron) show them in that zone.
* Lite returns WKT as it was inserted; Milvus (and Heron) return it
  normalised from WKB (``POINT(1.50 2)`` comes back ``POINT (1.5 2)``). The
  rows here are written in that normal form, so the two agree.
* ST_DWITHIN's distance is in metres on the Earth in Milvus (and Heron); Lite
  measures it in the coordinates' own units, so 500 from a point in Berlin
  reaches everything within 500 degrees. Heron's metres are checked here
  against great-circle distances instead.
* ST_CONTAINS and ST_WITHIN follow OGC in Milvus (GEOS): a point on a
  polygon's boundary is neither contained nor within; Lite counts it. The
  literals here keep rows off the boundaries.
* Lite stores POINT and POLYGON only, and knows ST_CONTAINS, ST_WITHIN,
  ST_INTERSECTS and ST_DWITHIN only; the other shapes and predicates are
  compared with shapely in tests/engine/test_geometry.py.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import heron
from tests.conftest import launch_server, require_module

pm = require_module("pymilvus")
require_module("milvus_lite")
from tests.server.test_milvus_lite_interop import start_milvus_lite  # noqa: E402

DataType = pm.DataType

ROWS = [
    {"id": 1, "ts": "2025-01-01T08:00:00+08:00", "g": "POINT (13.39971 52.51801)"},
    {"id": 2, "ts": "2025-01-02T00:00:00Z", "g": "POINT (13.403934 52.522877)"},
    {"id": 3, "ts": "2025-01-03T00:00:00.250000-05:00", "g": "POLYGON ((0 0, 4 0, 4 4, 0 4, 0 0))"},
    {"id": 4, "ts": "2024-12-31T23:59:59Z", "g": "POLYGON ((1 1, 2 1, 2 2, 1 2, 1 1))"},
    {"id": 5, "ts": None, "g": None},
    {"id": 6, "ts": "2025-06-01T12:00:00+05:30", "g": "POINT (1.5 2)"},
]

FILTERS = [
    "ts > ISO '2025-01-01T00:00:00Z'",
    "ts >= ISO '2025-01-01T08:00:00+08:00'",
    "ts == ISO '2025-01-02T00:00:00Z'",
    "ts != ISO '2025-01-02T00:00:00Z'",
    "ts < ISO '2025-01-03T05:00:00.25Z' and ts > ISO '2025-01-01T00:00:00Z'",
    "ts + INTERVAL 'P1D' > ISO '2025-01-03T00:00:00Z'",
    "ts - INTERVAL 'PT3H' <= ISO '2025-01-01T21:00:00Z'",
    "ts in [ISO '2025-01-02T00:00:00Z', ISO '2024-12-31T23:59:59Z']",
    "ts is null",
    "ts is not null and id > 2",
    "ST_CONTAINS(g, 'POINT (1.5 1.5)')",
    "not (ts > ISO '2025-01-01T00:00:00Z')",
    "ST_WITHIN(g, 'POLYGON ((13.39 52.5, 13.41 52.5, 13.41 52.53, 13.39 52.53, 13.39 52.5))')",
    "ST_INTERSECTS(g, 'POLYGON ((1 1, 3 1, 3 3, 1 3, 1 1))')",
    "not ST_CONTAINS(g, 'POINT (1.5 1.5)')",
    "g is null",
]

_VEC = [0.0, 0.0]


def _schema(c: Any) -> Any:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("g", DataType.GEOMETRY, nullable=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return s


def _prepare(c: Any) -> None:
    c.create_collection("t", schema=_schema(c))
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_index("t", idx)
    c.load_collection("t")
    c.insert("t", [{**r, "v": [float(r["id"]), 0.0]} for r in ROWS])


REFUSALS: dict[str, Callable[[Any], Any]] = {
    "malformed timestamp": lambda c: c.insert("t", [{"id": 9, "ts": "yesterday", "g": None, "v": _VEC}]),
    "impossible date": lambda c: c.insert("t", [{"id": 9, "ts": "2025-13-01T00:00:00Z", "g": None, "v": _VEC}]),
    "malformed WKT": lambda c: c.insert("t", [{"id": 9, "ts": None, "g": "POINT (1", "v": _VEC}]),
    "a bad row in a batch": lambda c: c.insert("t", [{"id": 9, "ts": None, "g": "POINT (1 1)", "v": _VEC},
                                                     {"id": 10, "ts": None, "g": "POLYGON ((", "v": _VEC}]),
    "impossible zone in a query": lambda c: c.query("t", "id > 0", timezone="Mars/Olympus_Mons"),
    "impossible zone as a property": lambda c: c.alter_collection_properties("t", {"timezone": "Nowhere/X"}),
    "a timestamp against a number": lambda c: c.query("t", "ts > 5"),
    "a timestamp against plain text": lambda c: c.query("t", "ts > '2025-01-01T00:00:00Z'"),
    "a malformed ISO literal": lambda c: c.query("t", "ts > ISO 'garbage'"),
    "an interval in months": lambda c: c.query("t", "ts + INTERVAL 'P1M' > ISO '2025-01-01T00:00:00Z'"),
    "malformed WKT in a filter": lambda c: c.query("t", "ST_WITHIN(g, 'POLYGON((')"),
    "a negative distance": lambda c: c.query("t", "ST_DWITHIN(g, 'POINT (1 1)', -5)"),
    "a geometry against a number": lambda c: c.query("t", "g > 1"),
    "a spatial predicate on a timestamp": lambda c: c.query("t", "ST_WITHIN(ts, 'POINT (1 1)')"),
}


def _outcome(c: Any, call: Callable[[Any], Any]) -> tuple[Any, Any]:
    try:
        return "answers", call(c)
    except (pm.MilvusException, heron.HeronError) as e:
        return int(e.code), str(e.message)


def _ids(rows: Any) -> list[int]:
    return sorted(r["id"] for r in rows)


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Any]]:
    root = tempfile.mkdtemp(prefix="heron-new-types-")
    lite = start_milvus_lite(f"{root}/lite")
    server = None
    clients: dict[str, Any] = {}
    try:
        server = launch_server(f"{root}/heron")
        clients = {"lite": pm.MilvusClient(lite.uri), "served": pm.MilvusClient(server.uri),
                   "embedded": heron.Client(f"{root}/embedded")}
        for c in clients.values():
            _prepare(c)
        yield clients
    finally:
        for c in clients.values():
            c.close()
        lite.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_values_come_back_as_lite_gives_them(backends):
    want = backends["lite"].query("t", "id > 0", output_fields=["ts", "g"])
    assert [r["ts"] for r in sorted(want, key=lambda r: r["id"])][:2] == ["2025-01-01T00:00:00Z",
                                                                          "2025-01-02T00:00:00Z"]
    for where in ("served", "embedded"):
        got = backends[where].query("t", "id > 0", output_fields=["ts", "g"])
        assert sorted(map(dict, got), key=lambda r: r["id"]) == sorted(map(dict, want), key=lambda r: r["id"]), where


@pytest.mark.parametrize("expr", FILTERS)
def test_filters_select_what_lite_selects(backends, expr):
    want = _ids(backends["lite"].query("t", expr, output_fields=["id"]))
    for where in ("served", "embedded"):
        assert _ids(backends[where].query("t", expr, output_fields=["id"])) == want, where
    hits = backends["served"].search("t", [_VEC], limit=10, filter=expr, output_fields=["ts", "g"])[0]
    assert sorted(h["id"] for h in hits) == want


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refused_where_lite_refuses_with_milvus_code(backends, name):
    lite = _outcome(backends["lite"], REFUSALS[name])
    assert lite[0] != "answers", lite
    for where in ("served", "embedded"):
        code, message = _outcome(backends[where], REFUSALS[name])
        assert code == 1100, (where, code, message)
    counts = {w: c.query("t", "", output_fields=["count(*)"])[0]["count(*)"] for w, c in backends.items()}
    assert set(counts.values()) == {len(ROWS)}, counts  # a refused batch writes nothing anywhere
    assert "timezone" not in (backends["served"].describe_collection("t").get("properties") or {})


def test_pymilvus_reads_in_the_zone_it_asks_for(backends):
    """Milvus shows TIMESTAMPTZ in the read's zone (Lite shows UTC): served and embedded agree with each other."""
    for zone, first in [("Asia/Shanghai", "2025-01-01T08:00:00+08:00"), ("America/New_York", "2024-12-31T19:00:00-05:00")]:
        served = backends["served"].query("t", "id == 1", output_fields=["ts"], timezone=zone)
        embedded = backends["embedded"].query("t", "id == 1", output_fields=["ts"], timezone=zone)
        assert served[0]["ts"] == embedded[0]["ts"] == first
        hits = backends["served"].search("t", [_VEC], limit=1, filter="id == 1", output_fields=["ts"], timezone=zone)
        assert hits[0][0]["entity"]["ts"] == first
        req = pm.AnnSearchRequest([_VEC], "v", {}, 10, expr="id == 1")
        fused = backends["served"].hybrid_search("t", [req], pm.RRFRanker(), limit=1, output_fields=["ts"],
                                                 timezone=zone)
        assert fused[0][0]["entity"]["ts"] == first
        parts = backends["served"].query("t", "id == 1", output_fields=["ts"], timezone=zone, time_fields="hour")
        assert parts[0]["ts"] == [int(first[11:13])]


@pytest.mark.parametrize("point, metres, want", [
    ("POINT (13.403683 52.520711)", 500, [1, 2]),  # Berlin: 402 m and 258 m away; the rest is far
    ("POINT (13.403683 52.520711)", 300, [2]),
    ("POINT (1 1)", 200_000, [3, 4, 6]),  # the polygons hold it or touch it; POINT (1.5 2) is 124 km off
    ("POINT (1 1)", 100_000, [3, 4]),
])
def test_dwithin_measures_metres_on_the_earth(backends, point, metres, want):
    for where in ("served", "embedded"):
        got = _ids(backends[where].query("t", f"ST_DWITHIN(g, '{point}', {metres})", output_fields=["id"]))
        assert got == want, where


@pytest.mark.parametrize("parts, zone", [("year, month, day", None), ("year, hour, minute", "Asia/Tokyo"),
                                         ("second, microsecond", "America/New_York")])
def test_time_fields_as_lite_gives_them(backends, parts, zone):
    """``time_fields`` turns each value into the parts of its wall-clock time (in the read's zone, in Lite too)."""
    kw = {"time_fields": parts, **({"timezone": zone} if zone else {})}
    want = sorted(map(dict, backends["lite"].query("t", "id > 0", output_fields=["ts"], **kw)), key=lambda r: r["id"])
    assert any(isinstance(r["ts"], list) for r in want)
    for where in ("served", "embedded"):
        got = backends[where].query("t", "id > 0", output_fields=["ts"], **kw)
        assert sorted(map(dict, got), key=lambda r: r["id"]) == want, where
    assert _outcome(backends["lite"], lambda c: c.query("t", "id > 0", time_fields="decade"))[0] != "answers"
    assert _outcome(backends["served"], lambda c: c.query("t", "id > 0", time_fields="decade"))[0] == 1100


def test_text_without_an_offset_is_read_in_the_collection_zone(backends):
    """Lite refuses such text unless a zone is configured; with the collection's, it reads it there."""
    got = {}
    for where, c in backends.items():
        c.create_collection("tz", schema=_schema(c), properties={"timezone": "Asia/Tokyo"})
        idx = c.prepare_index_params()
        idx.add_index("v", index_type="FLAT", metric_type="L2")
        c.create_index("tz", idx)
        c.load_collection("tz")
        c.insert("tz", [{"id": 1, "ts": "2025-01-01T09:00:00", "g": None, "v": _VEC}])
        got[where] = c.query("tz", "id == 1", output_fields=["ts"], timezone="UTC")[0]["ts"]
        assert [r["id"] for r in c.query("tz", "ts == ISO '2025-01-01T09:00:00'")] == [1], where
        c.drop_collection("tz")
    assert got == {"lite": "2025-01-01T00:00:00Z", "served": "2025-01-01T00:00:00Z", "embedded": "2025-01-01T00:00:00Z"}


def test_describe_shows_the_types(backends):
    for where in ("lite", "served"):
        types = {f["name"]: f["type"] for f in backends[where].describe_collection("t")["fields"]}
        assert types["ts"] == DataType.TIMESTAMPTZ and types["g"] == DataType.GEOMETRY, where


def test_defaults_are_described_as_lite_describes_them(backends):
    """A TIMESTAMPTZ default travels as microseconds (``timestamptz_data``), a GEOMETRY one as WKT."""
    described = {}
    for where in ("lite", "served"):
        c = backends[where]
        s = c.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        s.add_field("d", DataType.TIMESTAMPTZ, default_value="2025-01-01T00:00:00+08:00")
        s.add_field("gd", DataType.GEOMETRY, default_value="POINT (1 1)")
        c.create_collection("defaults", schema=s)
        fields = {f["name"]: f for f in c.describe_collection("defaults")["fields"]}
        described[where] = {n: fields[n]["default_value"] for n in ("d", "gd")}
        c.drop_collection("defaults")
    assert described["served"] == described["lite"]
    assert described["served"]["d"].timestamptz_data == 1_735_660_800_000_000
