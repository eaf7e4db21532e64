"""A missing, emptied or damaged catalog is refused while data remains, and ids are never handed out twice."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import heron


def _make(path: Path, *, seal: bool) -> None:
    """A collection with a ``secret`` field: rows in a sealed segment file (``seal``) or in the insert log."""
    schema = heron.Client.create_schema() if hasattr(heron.Client, "create_schema") else None
    with heron.Client(str(path)) as c:
        if schema is not None:
            schema.add_field("id", heron.DataType.INT64, is_primary=True)
            schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=2)
            schema.add_field("secret", heron.DataType.VARCHAR, max_length=64)
            c.create_collection("old", schema=schema)
            c.insert("old", [{"id": i, "vector": [1.0, float(i)], "secret": f"s{i}"} for i in range(20)])
        else:
            c.create_collection("old", dimension=2)
            c.insert("old", [{"id": i, "vector": [1.0, float(i)]} for i in range(20)])
        if seal:
            c.flush("old")


@pytest.mark.parametrize("seal", [False, True], ids=["rows-in-log", "rows-in-segments"])
@pytest.mark.parametrize("how", ["deleted", "zero-bytes", "no-tables", "no-rows"])
def test_a_catalog_that_lost_its_contents_is_refused_while_data_remains(tmp_path, seal, how, monkeypatch):
    monkeypatch.setenv("HERON_SEAL_ROWS", "10")
    path = tmp_path / "db"
    _make(path, seal=seal)
    cat = path / "catalog.db"
    if how == "deleted":
        cat.unlink()
    elif how == "zero-bytes":
        cat.write_bytes(b"")
    elif how == "no-tables":
        cat.unlink()
        sqlite3.connect(str(cat)).close()
        cat.write_bytes(cat.read_bytes())
    else:
        with sqlite3.connect(str(cat)) as db:
            for table in ("collections", "partitions", "segments", "indexes", "log_retired", "log"):
                db.execute(f"DELETE FROM {table}")
    with pytest.raises(heron.CorruptionError, match="(?i)restore catalog.db from a backup") as info:
        heron.Client(str(path))
    text = str(info.value)
    assert "segments/c1" in text or "insert log" in text or "log/" in text, text
    if how == "deleted":
        assert "is missing" in text
        assert not cat.exists(), "a refused open created a catalog"


def test_ids_are_not_handed_out_again_after_a_drop_and_a_restart(tmp_path):
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        for name in ("a", "b"):
            c.create_collection(name, dimension=2)
        c.create_partition("b", "p")
        c.insert("b", [{"id": 1, "vector": [1.0, 2.0]}])
        c.flush("b")
        with sqlite3.connect(os.path.join(path, "catalog.db")) as db:
            b_segments = [r[0] for r in db.execute("SELECT id FROM segments")]
        c.drop_collection("b")
    with heron.Client(path) as c:
        c.create_collection("c", dimension=2)
        c.create_partition("c", "q")
        c.insert("c", [{"id": 7, "vector": [1.0, 2.0]}])
        c.flush("c")
        assert [r["id"] for r in c.query("c", filter="", output_fields=["id"], limit=10)] == [7]
    with sqlite3.connect(os.path.join(path, "catalog.db")) as db:
        colls = dict(db.execute("SELECT name, id FROM collections"))
        parts = [r[0] for r in db.execute("SELECT id FROM partitions ORDER BY id")]
        segs = [r[0] for r in db.execute("SELECT id FROM segments")]
    assert colls == {"a": 1, "c": 3}
    assert parts == [1, 4, 5]  # b had 2 and 3
    assert b_segments and segs and min(segs) > max(b_segments)


def test_a_drop_cut_short_by_a_crash_leaves_no_files_behind(tmp_path):
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        c.create_collection("gone", dimension=2)
        c.insert("gone", [{"id": 1, "vector": [1.0, 2.0]}])
        c.flush("gone")
        files = os.listdir(path / "segments" / "c1")
        c.drop_collection("gone")
    (path / "segments" / "c1").mkdir()  # as a crash between the catalog's commit and the removal leaves it
    for name in files:
        (path / "segments" / "c1" / name).write_bytes(b"left over")
    with heron.Client(str(path)) as c:
        assert c.list_collections() == []
        c.create_collection("new", dimension=2)
        assert c.query("new", filter="", output_fields=["id"], limit=10) == []
    assert not (path / "segments" / "c1").exists()


def test_a_damaged_catalog_is_refused(tmp_path):
    path = tmp_path / "db"
    _make(path, seal=False)
    cat = path / "catalog.db"
    data = bytearray(cat.read_bytes())
    page = 65536
    assert len(data) >= 2 * page
    data[page : page + 64] = os.urandom(64)  # the header of the second b-tree page
    cat.write_bytes(bytes(data))
    with pytest.raises(heron.CorruptionError, match="catalog .* is damaged") as info:
        heron.Client(str(path))
    assert info.value.path == str(cat)


def test_the_catalog_check_at_open_is_cheap(tmp_path):
    """A figure: SQLite's quick_check over a catalog with a few thousand logged deletes."""
    import time

    from heron.engine.storage._catalog import Catalog

    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        c.create_collection("x", dimension=2)
        for i in range(2000):
            c.delete("x", ids=[i])
    size = os.path.getsize(os.path.join(path, "catalog.db"))
    t0 = time.perf_counter()
    Catalog(os.path.join(path, "catalog.db")).close()
    took = time.perf_counter() - t0
    print(f"catalog open with quick_check ({size / 2**20:.1f} MiB): {took * 1000:.1f} ms")
    assert took < 30
