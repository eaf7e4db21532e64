"""TIMESTAMPTZ fields: ISO-8601 text and aware datetimes in, microseconds (UTC) stored, text out in the read's zone.

Through both Heron clients, embedded and served (the ``client`` fixture); the
expected values are computed with Python's own datetime and zoneinfo.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import heron
from heron.data._timestamptz import format_micros, parse_interval, to_micros

UTC = dt.timezone.utc


def _schema(**ts_kwargs: Any) -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("ts", heron.DataType.TIMESTAMPTZ, nullable=True, **ts_kwargs)
    s.add_field("d", heron.DataType.TIMESTAMPTZ, default_value="2025-01-01T00:00:00+08:00")
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    return s


def _make(c: Any, name: str = "t", **props: Any) -> None:
    c.create_collection(name, schema=_schema(), properties=props or None)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_index(name, idx)
    c.load_collection(name)


#: (input as given, the instant it names)
INPUTS = [
    ("2025-01-01T08:00:00+08:00", dt.datetime(2025, 1, 1, 0, 0, tzinfo=UTC)),
    ("2025-07-01T12:30:00Z", dt.datetime(2025, 7, 1, 12, 30, tzinfo=UTC)),
    ("2024-02-29T23:59:59.250000-05:00", dt.datetime(2024, 3, 1, 4, 59, 59, 250000, tzinfo=UTC)),
    ("1969-12-31T23:00:00+00:00", dt.datetime(1969, 12, 31, 23, tzinfo=UTC)),
    (dt.datetime(2025, 3, 9, 7, 0, tzinfo=ZoneInfo("America/New_York")), dt.datetime(2025, 3, 9, 11, tzinfo=UTC)),
    (None, None),
]


def _text(d: dt.datetime | None, zone: str = "UTC") -> str | None:
    """Milvus's text for an instant in a zone, made with datetime: 'Z' for UTC, else +HH:MM; microseconds if any."""
    if d is None:
        return None
    local = d.astimezone(ZoneInfo(zone))
    body = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{local.microsecond:06d}" if local.microsecond else "")
    if zone == "UTC":
        return body + "Z"
    off = local.utcoffset()
    assert off is not None
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return body + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _insert(c: Any, name: str = "t") -> None:
    c.insert(name, [{"id": i, "ts": given, "v": [float(i), 0.0]} for i, (given, _) in enumerate(INPUTS)])


def test_values_round_trip_as_utc_text(client):
    _make(client)
    _insert(client)
    rows = {r["id"]: r for r in client.query("t", "id >= 0", output_fields=["ts", "d"])}
    for i, (_, instant) in enumerate(INPUTS):
        assert rows[i]["ts"] == _text(instant), i
        assert rows[i]["d"] == "2024-12-31T16:00:00Z"  # the default, given at +08:00
    fields = {f["name"]: f for f in client.describe_collection("t")["fields"]}
    assert fields["d"]["default_value"] == "2024-12-31T16:00:00Z"  # embedded and served alike


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Asia/Kolkata", "UTC"])
def test_reads_show_the_requested_zone(client, zone):
    _make(client)
    _insert(client)
    want = {i: _text(instant, zone) for i, (_, instant) in enumerate(INPUTS)}
    got = {r["id"]: r["ts"] for r in client.query("t", "id >= 0", output_fields=["ts"], timezone=zone)}
    assert got == want
    hits = client.search("t", [[0.0, 0.0]], limit=len(INPUTS), output_fields=["ts"], timezone=zone)[0]
    assert {h["id"]: h["entity"]["ts"] for h in hits} == want
    assert [r["ts"] for r in client.get("t", [0], output_fields=["ts"], timezone=zone)] == [want[0]]
    req = heron.AnnSearchRequest([[0.0, 0.0]], "v", {}, len(INPUTS))
    fused = client.hybrid_search("t", [req], heron.RRFRanker(), limit=len(INPUTS), output_fields=["ts"],
                                 timezone=zone)[0]
    assert {h["id"]: h["entity"]["ts"] for h in fused} == want
    it = client.query_iterator("t", batch_size=2, output_fields=["ts"], timezone=zone)
    seen: dict[int, Any] = {}
    while batch := it.next():
        seen.update((r["id"], r["ts"]) for r in batch)
    it.close()
    assert seen == want


def test_collection_then_database_zone_apply_when_the_read_names_none(client):
    client.create_database("tzdb", properties={"timezone": "Asia/Tokyo"})
    client.use_database("tzdb")
    _make(client)
    _insert(client)
    _make(client, "own", timezone="America/New_York")
    client.insert("own", [{"id": 0, "ts": INPUTS[0][0], "v": [0.0, 0.0]}])
    first = client.query("t", "id == 0", output_fields=["ts"])[0]["ts"]
    assert first == _text(INPUTS[0][1], "Asia/Tokyo")
    assert client.query("own", "id == 0", output_fields=["ts"])[0]["ts"] == _text(INPUTS[0][1], "America/New_York")
    assert client.query("own", "id == 0", output_fields=["ts"], timezone="UTC")[0]["ts"] == _text(INPUTS[0][1])
    client.use_database("default")


def test_text_without_an_offset_is_read_in_the_collection_zone(client):
    _make(client, "own", timezone="Asia/Kolkata")
    client.insert("own", [{"id": 1, "ts": "2025-05-01T10:00:00", "v": [0.0, 0.0]}])
    got = client.query("own", "id == 1", output_fields=["ts"], timezone="UTC")[0]["ts"]
    assert got == _text(dt.datetime(2025, 5, 1, 10, tzinfo=ZoneInfo("Asia/Kolkata")))


FILTERS = [
    ("ts > ISO '2025-01-01T00:00:00Z'", lambda d: d > dt.datetime(2025, 1, 1, tzinfo=UTC)),
    ("ts == ISO '2025-01-01T08:00:00+08:00'", lambda d: d == dt.datetime(2025, 1, 1, tzinfo=UTC)),
    ("ts != ISO '2025-01-01T08:00:00+08:00'", lambda d: d != dt.datetime(2025, 1, 1, tzinfo=UTC)),
    ("ISO '2024-01-01T00:00:00Z' <= ts < ISO '2025-03-09T11:00:00Z'",
     lambda d: dt.datetime(2024, 1, 1, tzinfo=UTC) <= d < dt.datetime(2025, 3, 9, 11, tzinfo=UTC)),
    ("ts + INTERVAL 'P1DT1H' >= ISO '2025-07-02T13:30:00Z'",
     lambda d: d + dt.timedelta(days=1, hours=1) >= dt.datetime(2025, 7, 2, 13, 30, tzinfo=UTC)),
    ("ts - INTERVAL 'PT0.25S' < ISO '2024-03-01T04:59:59Z'",
     lambda d: d - dt.timedelta(seconds=0.25) < dt.datetime(2024, 3, 1, 4, 59, 59, tzinfo=UTC)),
    ("ts in [ISO '2025-07-01T12:30:00Z', ISO '1969-12-31T23:00:00Z']",
     lambda d: d in (dt.datetime(2025, 7, 1, 12, 30, tzinfo=UTC), dt.datetime(1969, 12, 31, 23, tzinfo=UTC))),
]


@pytest.mark.parametrize("expr, keep", FILTERS, ids=[f for f, _ in FILTERS])
def test_filters_compare_instants(client, expr, keep):
    _make(client)
    _insert(client)
    want = sorted(i for i, (_, d) in enumerate(INPUTS) if d is not None and keep(d))
    assert sorted(r["id"] for r in client.query("t", expr, output_fields=["id"])) == want
    nulls = [i for i, (_, d) in enumerate(INPUTS) if d is None]
    assert sorted(r["id"] for r in client.query("t", "ts is null", output_fields=["id"])) == nulls


@pytest.mark.parametrize("rows", [
    [{"id": 10, "ts": "yesterday"}],
    [{"id": 10, "ts": "2025-01-01T00:00:00Z"}, {"id": 11, "ts": "2025-13-01T00:00:00Z"}],
    [{"id": 10, "ts": 1735689600}],
])
def test_malformed_timestamps_are_refused_and_nothing_is_written(client, rows):
    _make(client)
    with pytest.raises(heron.HeronError) as e:
        client.insert("t", [{**r, "v": [0.0, 0.0]} for r in rows])
    assert e.value.code == 1100
    assert "'ts'" in e.value.message
    assert client.query("t", "", output_fields=["count(*)"])[0]["count(*)"] == 0


@pytest.mark.parametrize("call", [
    lambda c: c.query("t", "id >= 0", timezone="Mars/Olympus_Mons"),
    lambda c: c.search("t", [[0.0, 0.0]], timezone="Not/AZone"),
    lambda c: c.alter_collection_properties("t", {"timezone": "UTC+99"}),
    lambda c: c.create_collection("u", schema=_schema(), properties={"timezone": "Nowhere"}),
    lambda c: c.query("t", "ts > 5"),
    lambda c: c.query("t", "ts > '2025-01-01T00:00:00Z'"),
    lambda c: c.query("t", "ts > ISO 'not a time'"),
    lambda c: c.query("t", "ts + INTERVAL 'P1M' > ISO '2025-01-01T00:00:00Z'"),
    lambda c: c.query("t", "ts * 2 > ISO '2025-01-01T00:00:00Z'"),
    lambda c: c.create_collection("u", schema=_schema(default_value="soon")),
], ids=["query zone", "search zone", "alter zone", "create zone", "number", "plain text", "bad ISO",
        "months", "multiply", "bad default"])
def test_impossible_zones_and_bad_literals_are_refused(client, call):
    _make(client)
    with pytest.raises(heron.HeronError) as e:
        call(client)
    assert e.value.code == 1100
    assert "u" not in client.list_collections()
    assert "timezone" not in client.describe_collection("t").get("properties", {})


def test_values_survive_reopen_from_the_log_and_from_segments(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _make(c)
        _insert(c)
        c.insert("t", [{"id": 100, "ts": "2030-01-01T00:00:00Z", "v": [0.0, 0.0]}])
        c.flush("t")
        c.insert("t", [{"id": 101, "ts": "2031-01-01T00:00:00+01:00", "v": [0.0, 0.0]}])
        before = c.query("t", "id >= 0", output_fields=["ts", "d"])
    with heron.Client(path) as c:
        c.load_collection("t")
        assert c.query("t", "id >= 0", output_fields=["ts", "d"]) == before
        assert [r["id"] for r in c.query("t", "ts >= ISO '2030-01-01T00:00:00Z'")] == [100, 101]


# -- the conversions themselves, against datetime -------------------------------------------------

def test_vectorised_parsing_and_formatting_agree_with_datetime():
    rng = np.random.default_rng(7)
    micros = rng.integers(-2_000_000_000_000_000, 4_000_000_000_000_000, 500)
    micros[::3] -= micros[::3] % 1_000_000  # whole seconds too
    for zone in ("UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"):
        texts = format_micros(micros, zone)
        want = [_text(dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=int(m)), zone) for m in micros]
        assert texts == want, zone
        modern = micros > -1_000_000_000_000_000  # after 1938: offsets in whole minutes, so the text is exact
        back = to_micros(texts, None, "UTC", "ts")
        assert back[modern].tolist() == micros[modern].tolist()


def test_naive_text_in_a_zone_with_daylight_saving():
    naive = ["2025-03-30T01:30:00", "2025-07-01T12:00:00", "2025-10-26T03:30:00"]
    got = to_micros(naive, None, "Europe/Berlin", "ts")
    for text, us in zip(naive, got.tolist()):
        want = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Berlin"))
        assert us == (want - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)


def test_intervals():
    assert parse_interval("P1D") == (0, 1, 0)
    assert parse_interval("PT3H") == (0, 0, 3 * 3_600_000_000)
    assert parse_interval("P2DT6H30M1.5S") == (0, 2, (6 * 3600 + 30 * 60 + 1.5) * 1_000_000)
    assert parse_interval("P1Y2M") == (14, 0, 0)
    assert parse_interval("-P1W") == (0, -7, 0)
    for bad in ("P", "1D", "PT", "P1H", "PXD"):
        with pytest.raises(heron.HeronError):
            parse_interval(bad)


@pytest.mark.parametrize("kind", ["STL_SORT", "INVERTED"])
def test_a_scalar_index_on_timestamps_answers_as_the_scan(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("HERON_SEAL_ROWS", "2")  # sealed segments, which carry scalar indexes
    with heron.Client(str(tmp_path / "db")) as c:
        _make(c)
        _insert(c)
        scans = {expr: sorted(r["id"] for r in c.query("t", expr)) for expr, _ in FILTERS}
        idx = c.prepare_index_params()
        idx.add_index("ts", index_type=kind)
        c.create_index("t", idx)
        assert c.describe_index("t", "ts")["index_type"] == kind
        coll = c._transport._engine.collection("default", "t")
        sealed = [s for p in coll.partitions.values() for s in p.sealed]
        deadline = time.monotonic() + 60
        while not (sealed and all("ts" in s.sindex for s in sealed)):  # built in the background
            assert time.monotonic() < deadline, "the index was never built"
            time.sleep(0.05)
        for expr, keep in FILTERS:
            got = sorted(r["id"] for r in c.query("t", expr + " and id >= 0"))  # a filter the segments have not seen
            assert got == scans[expr] == sorted(i for i, (_, d) in enumerate(INPUTS) if d is not None and keep(d))


@pytest.mark.parametrize("parts, zone", [("year, month, day", "UTC"), ("hour,minute, second,microsecond", "Asia/Kolkata"),
                                         ("year", "America/New_York")])
def test_time_fields_give_the_parts_of_the_wall_clock_time(client, parts, zone):
    _make(client)
    _insert(client)
    names = [p.strip() for p in parts.split(",")]

    def want(d: dt.datetime | None) -> list[int] | None:
        return None if d is None else [getattr(d.astimezone(ZoneInfo(zone)), n) for n in names]

    expected = {i: want(d) for i, (_, d) in enumerate(INPUTS)}
    rows = client.query("t", "id >= 0", output_fields=["ts"], time_fields=parts, timezone=zone)
    assert {r["id"]: r["ts"] for r in rows} == expected
    hits = client.search("t", [[0.0, 0.0]], limit=len(INPUTS), output_fields=["ts"], time_fields=parts, timezone=zone)
    assert {h["id"]: h["entity"]["ts"] for h in hits[0]} == expected
    with pytest.raises(heron.HeronError) as e:
        client.query("t", "id >= 0", output_fields=["ts"], time_fields="decade")
    assert e.value.code == 1100 and "decade" in e.value.message


def test_dataframes_arrow_tables_and_numpy_datetimes(tmp_path):
    import pyarrow as pa

    from tests.conftest import require_module

    pd = require_module("pandas")
    with heron.Client(str(tmp_path / "db")) as c:
        _make(c)
        stamps = pd.to_datetime(["2025-01-01 08:00", "2025-06-01 00:00", None]).tz_localize("Asia/Shanghai")
        c.insert("t", pd.DataFrame({"id": [1, 2, 3], "ts": stamps, "v": [[0.0, 0.0]] * 3}))
        c.insert("t", pa.table({"id": [4, 5], "v": [[0.0, 0.0]] * 2,
                                "ts": pa.array([dt.datetime(2025, 1, 1), None], pa.timestamp("us", tz="UTC"))}))
        c.insert("t", {"id": [6], "v": [[0.0, 0.0]], "ts": np.array(["2025-01-01T00:00:00"], dtype="datetime64[us]")})
        got = {r["id"]: r["ts"] for r in c.query("t", "id > 0", output_fields=["ts"])}
        assert got == {1: "2025-01-01T00:00:00Z", 2: "2025-05-31T16:00:00Z", 3: None, 4: "2025-01-01T00:00:00Z",
                       5: None, 6: "2025-01-01T00:00:00Z"}


def test_iso_literals_without_an_offset_are_read_in_the_collection_zone(client):
    _make(client, "own", timezone="Asia/Tokyo")
    client.insert("own", [{"id": 1, "ts": "2025-01-01T00:00:00Z", "v": [0.0, 0.0]}])
    assert [r["id"] for r in client.query("own", "ts == ISO '2025-01-01T09:00:00'")] == [1]
    client.alter_collection_properties("own", {"timezone": "UTC"})
    assert [r["id"] for r in client.query("own", "ts == ISO '2025-01-01T09:00:00'")] == []
    assert [r["id"] for r in client.query("own", "ts == ISO '2025-01-01T00:00:00'")] == [1]
    client.drop_collection_properties("own", ["timezone"])
    assert [r["id"] for r in client.query("own", "ts == ISO '2025-01-01T00:00:00'")] == [1]
