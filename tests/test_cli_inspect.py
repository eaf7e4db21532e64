"""``heron inspect`` on a real data directory and on the real server that serves it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import heron


def _heron(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture
def data(tmp_path) -> Path:
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        c.create_collection("books", dimension=4)
        c.create_partition("books", "old")
        c.insert("books", [{"id": i, "vector": [float(i), 1.0, 2.0, 3.0]} for i in range(300)])
        c.insert("books", [{"id": 1000 + i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in range(7)],
                 partition_name="old")
        c.flush("books")
        c.insert("books", [{"id": 2000 + i, "vector": [0.0, 1.0, 0.0, float(i)]} for i in range(11)])
        c.create_database("other")
        c.create_collection("notes", dimension=2, db_name="other")
        c.release_collection("notes", db_name="other")
    return path


def _inspect(uri: str, *extra: str) -> dict:
    out = _heron("inspect", uri, "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_directory_is_described_collection_by_collection(data) -> None:
    report = _inspect(str(data))
    dbs = {d["name"]: {c["name"]: c for c in d["collections"]} for d in report["databases"]}
    assert set(dbs) == {"default", "other"}
    books, notes = dbs["default"]["books"], dbs["other"]["notes"]
    assert books["rows"] == 318 and books["load_state"] == "Loaded" and notes["load_state"] == "NotLoad"
    assert [f["name"] for f in books["fields"]] == ["id", "vector"] and books["fields"][0]["primary"]
    assert {p["name"]: p["rows"] for p in books["partitions"]} == {"_default": 311, "old": 7}
    segs = books["segments"]
    assert sum(s["rows"] for s in segs) == 318 and all(s["bytes"] > 0 for s in segs)
    assert {s["state"] for s in segs} == {"sealed", "growing"}
    assert sum(s["rows"] for s in segs if s["state"] == "growing") == 11
    (index,) = books["indexes"]
    assert (index["field"], index["total_rows"]) == ("vector", 318)
    assert index["indexed_rows"] + index["pending_rows"] == 318
    disk = report["disk"]
    assert disk["catalog.db"] > 0 and disk["segments"] > 0 and disk["total"] == sum(
        v for k, v in disk.items() if k != "total")
    text = _heron("inspect", str(data), "books")
    assert text.returncode == 0, text.stderr
    assert "collection books: 318 rows, Loaded" in text.stdout and "notes" not in text.stdout
    assert "growing" in text.stdout and "sealed" in text.stdout


def test_a_server_answers_as_its_directory_does(data, start_server) -> None:
    local = _inspect(str(data))
    server = start_server(data=str(data))
    remote = _inspect(server.uri)
    assert remote["databases"] == local["databases"]
    assert "disk" not in remote
    served = _inspect(str(data))  # the directory is open in the server: asked through it
    assert served["databases"] == local["databases"] and served["disk"]["catalog.db"] > 0
    assert (data / "SERVING").exists()
    assert server.stop() == 0
    assert not (data / "SERVING").exists()


HOLD = """
import sys, time
import heron
c = heron.Client(sys.argv[1])
print("open", flush=True)
time.sleep(120)
"""


def test_a_directory_another_client_process_holds_is_one_line(data) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(data)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        locked = _heron("inspect", str(data))
    finally:
        holder.kill()
        holder.wait(30)
    assert locked.returncode == 1 and len(locked.stderr.splitlines()) == 1
    assert "another process" in locked.stderr and "server" in locked.stderr


@pytest.mark.parametrize(("uri", "words"), [
    ("{tmp}/missing", "no data directory"),
    ("{tmp}", "not a Heron data directory"),
    ("ftp://host/x", "unsupported URI"),
])
def test_what_is_no_data_directory_is_one_line_and_nothing_is_created(tmp_path, uri, words) -> None:
    target = uri.format(tmp=tmp_path)
    out = _heron("inspect", target)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and words in out.stderr, out.stderr
    assert not os.path.exists(tmp_path / "missing") and not os.path.exists(tmp_path / "catalog.db")


def test_a_missing_collection_is_named(data) -> None:
    out = _heron("inspect", str(data), "nope")
    assert out.returncode == 1 and "'nope'" in out.stderr and out.stderr.count("\n") == 1
