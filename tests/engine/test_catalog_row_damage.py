"""A catalog row whose values were changed behind SQLite's back fails its CRC: named, never answered around.

Damage is made two ways: by flipping a byte of the catalog file where a
row's value lies (found by searching the file for the value), and by a raw
``sqlite3`` connection that changes a value and keeps the row's old CRC
(what a flip inside a number looks like to SQLite).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import heron
from heron.engine.storage import _row_checksums as rc
from heron.engine.storage._catalog import ROW_CRC_KEY, TABLES
from tests._sqlite_damage import keep_crc


def _make(path: Path, *, seal_a: bool = True) -> None:
    with heron.Client(str(path)) as c:
        for name in ("a", "b"):
            schema = heron.Client.create_schema()
            schema.add_field("id", heron.DataType.INT64, is_primary=True)
            schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=2)
            schema.add_field(f"marker_{name}_field", heron.DataType.VARCHAR, max_length=32)
            index = c.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="L2")
            c.create_collection(name, schema=schema, index_params=index)
            c.insert(name, [{"id": i, "vector": [1.0, float(i)], f"marker_{name}_field": f"v{i}"}
                            for i in range(20)])
        if seal_a:
            c.flush("a")
        c.delete("a", filter="id in [3]")
        c.create_alias("b", "b_alias")


def _change(path: Path, sql: str, args: tuple[object, ...] = ()) -> None:
    """Run ``sql`` on the catalog keeping the changed rows' old CRCs, as damage would."""
    keep_crc(str(path / "catalog.db"), sql, args)


def _count(c: heron.Client, name: str) -> int:
    return len(c.query(name, filter="", output_fields=["id"], limit=100))



def _flip(path: Path, needle: bytes, delta: int = 1) -> int:
    """Change one byte of ``needle`` (found once) in the catalog file; its offset."""
    cat = path / "catalog.db"
    assert not os.path.exists(str(cat) + "-wal") or os.path.getsize(str(cat) + "-wal") == 0
    data = bytearray(cat.read_bytes())
    at = data.find(needle)
    assert at >= 0 and data.find(needle, at + 1) < 0, needle
    at += len(needle) // 2
    data[at] = (data[at] + delta) % 256
    cat.write_bytes(bytes(data))
    return at


def test_a_flipped_byte_in_a_schema_refuses_the_open_naming_table_row_and_file(tmp_path):
    path = tmp_path / "db"
    _make(path)
    _flip(path, b"marker_b_field")
    with pytest.raises(heron.CorruptionError) as info:
        heron.Client(str(path))
    msg = str(info.value)
    assert "table 'collections'" in msg and "id=2" in msg and "name='b'" in msg, msg
    assert str(path / "catalog.db") in msg and info.value.path == str(path / "catalog.db")


def test_a_damaged_segment_row_makes_its_collection_unavailable_and_the_other_answers(tmp_path, monkeypatch):
    path = tmp_path / "db"
    _make(path)
    _change(path, "UPDATE segments SET num_rows=num_rows-1 WHERE collection_id=1")
    with heron.Client(str(path)) as c:
        with pytest.raises(heron.CorruptionError) as info:
            c.query("a", filter="", output_fields=["id"], limit=100)
        msg = str(info.value)
        assert "table 'segments'" in msg and "collection 'a'" in msg and "catalog.db" in msg, msg
        assert _count(c, "b") == 20
        assert _count(c, "b_alias") == 20
        c.insert("b", [{"id": 99, "vector": [0.0, 1.0], "marker_b_field": "x"}])
        assert _count(c, "b") == 21


def test_a_damaged_delete_in_the_log_table_is_detected(tmp_path):
    path = tmp_path / "db"
    _make(path)
    db = sqlite3.connect(str(path / "catalog.db"))
    (payload,) = db.execute("SELECT payload FROM log WHERE collection_id=1 AND kind='delete'").fetchone()
    db.close()
    _flip(path, bytes(payload)[-24:])
    with heron.Client(str(path)) as c:
        with pytest.raises(heron.CorruptionError, match="table 'log'"):
            c.query("a", filter="", output_fields=["id"], limit=100)
        assert _count(c, "b") == 20


def test_a_row_whose_collection_id_was_damaged_is_charged_to_its_real_collection(tmp_path):
    path = tmp_path / "db"
    _make(path)
    _change(path, "UPDATE segments SET collection_id=2 WHERE collection_id=1")
    with heron.Client(str(path)) as c:
        with pytest.raises(heron.CorruptionError, match="table 'segments'.*collection 'a'"):
            c.query("a", filter="", output_fields=["id"], limit=100)
        assert _count(c, "b") == 20


@pytest.mark.parametrize("sql", [
    "UPDATE aliases SET collection_id=1",
    "UPDATE databases SET properties='{\"x\": 1}'",
    "UPDATE meta SET value='123' WHERE key='insert_log_manifest'",
    "UPDATE log_retired SET collection_id=77, lo=lo+1",  # its collection cannot be told
])
def test_damage_to_rows_that_route_everything_refuses_the_open(tmp_path, sql):
    path = tmp_path / "db"
    _make(path)
    if "log_retired" in sql:
        assert sqlite3.connect(str(path / "catalog.db")).execute("SELECT COUNT(*) FROM log_retired").fetchone()[0]
    _change(path, sql)
    with pytest.raises(heron.CorruptionError, match=r"(?i)catalog '.*catalog\.db'.*is damaged.*restore catalog.db"):
        heron.Client(str(path))


def test_a_catalog_without_row_crcs_gets_them_once_and_then_a_missing_crc_is_damage(tmp_path):
    path = tmp_path / "db"
    _make(path)
    db = sqlite3.connect(str(path / "catalog.db"), isolation_level=None)
    for t in TABLES:  # as an older version left it: no triggers, no CRCs, no record of them
        db.execute(f"DROP TRIGGER {t.name}_crc_insert")
        db.execute(f"DROP TRIGGER {t.name}_crc_update")
        db.execute(f"UPDATE {t.name} SET crc=NULL")
    db.execute("DELETE FROM meta WHERE key=?", (ROW_CRC_KEY,))
    db.close()
    with heron.Client(str(path)) as c:
        assert _count(c, "a") == 19 and _count(c, "b") == 20
    db = sqlite3.connect(str(path / "catalog.db"))
    (value,) = db.execute("SELECT value FROM meta WHERE key=?", (ROW_CRC_KEY,)).fetchone()
    assert json.loads(value)["filled"]["collections"] == 2
    assert db.execute("SELECT COUNT(*) FROM segments WHERE crc IS NULL").fetchone()[0] == 0
    db.close()
    with heron.Client(str(path)) as c:
        assert _count(c, "a") == 19
    _change(path, "UPDATE partitions SET loaded=loaded WHERE collection_id=2")
    db = sqlite3.connect(str(path / "catalog.db"), isolation_level=None)
    db.execute("DROP TRIGGER partitions_crc_update")
    db.execute("UPDATE partitions SET crc=NULL WHERE collection_id=2")
    db.close()
    with heron.Client(str(path)) as c:
        with pytest.raises(heron.CorruptionError, match="table 'partitions'.*no CRC"):
            c.query("b", filter="", output_fields=["id"], limit=100)
        assert _count(c, "a") == 19


def test_every_write_path_keeps_the_crcs_true(tmp_path):
    path = tmp_path / "db"
    _make(path)
    with heron.Client(str(path)) as c:
        c.create_database("other")
        c.rename_collection("b", "b2")
        c.alter_alias("a", "b_alias")
        c.create_partition("a", "p")
        c.upsert("a", [{"id": 1, "vector": [2.0, 2.0], "marker_a_field": "u"}])
        c.release_collection("b2")
        c.drop_index("b2", "vector")
        index = c.prepare_index_params()
        index.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8})
        c.create_index("b2", index)
        c.release_collection("a")
        c.load_collection("a")
        c.release_partitions("a", ["p"])
        c.drop_partition("a", "p")
    db = sqlite3.connect(str(path / "catalog.db"))
    rc.register(db)
    assert rc.bad_rows(db, TABLES) == []
    db.close()


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "heron", "verify", str(path)], capture_output=True, text=True,
                          timeout=120)


def test_verify_names_a_damaged_row_and_repair_refuses_changing_nothing(tmp_path):
    path = tmp_path / "db"
    _make(path)
    assert _verify(path).returncode == 0
    _change(path, "UPDATE indexes SET metric_type='IP' WHERE collection_id=1")
    out = _verify(path)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "table 'indexes'" in out.stdout and "collection id 1 is unavailable" in out.stdout, out.stdout
    before = (path / "catalog.db").read_bytes()
    rep = subprocess.run([sys.executable, "-m", "heron", "repair", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert rep.returncode == 1 and "table 'indexes'" in rep.stdout and "restore catalog.db" in rep.stdout, rep.stdout
    assert (path / "catalog.db").read_bytes() == before


def test_checking_thousands_of_rows_at_open_is_cheap(tmp_path):
    """Not a timing assertion: prints the open time with and without the row check, for the record."""
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        c.create_collection("a", dimension=2)
        for i in range(300):
            c.create_partition("a", f"p{i}")
        c.insert("a", [{"id": i, "vector": [1.0, 0.0]} for i in range(10)])
        for i in range(2000):
            c.delete("a", ids=[i])
    db = sqlite3.connect(str(path / "catalog.db"))
    rows = sum(db.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0] for t in TABLES)
    rc.register(db)
    t0 = time.perf_counter()
    assert rc.bad_rows(db, TABLES) == []
    check = time.perf_counter() - t0
    db.close()
    t0 = time.perf_counter()
    heron.Client(str(path)).close()
    print(f"\n{rows} catalog rows: CRC check {check * 1000:.1f} ms, whole open {(time.perf_counter() - t0) * 1000:.0f} ms")
    assert rows > 2000
