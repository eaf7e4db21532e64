"""Damage seen through ``heron serve``: a damaged auth.db refuses, a damaged collection answers with its damage.

Damage is made as in tests/engine/test_catalog_row_damage.py: a byte flipped
where a value lies in the file, or a value changed by a raw ``sqlite3``
connection that keeps the row's old CRC.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pymilvus import MilvusClient, MilvusException

import heron
from heron import DataType
from heron.server._auth import AuthStore
from tests._sqlite_damage import auth_store_with_alice, keep_crc
from tests.conftest import HERON_SRC, ROOT

PASSWORD = "s3cret-Root"




def test_a_flipped_byte_in_a_password_hash_refuses_to_open_the_auth_store(tmp_path):
    path = str(tmp_path / "auth.db")
    auth_store_with_alice(path, PASSWORD)
    db = sqlite3.connect(path)
    (digest,) = db.execute("SELECT hash FROM users WHERE name='alice'").fetchone()
    db.close()
    data = bytearray(Path(path).read_bytes())
    at = data.find(digest) + 5
    data[at] ^= 0x10
    Path(path).write_bytes(bytes(data))
    with pytest.raises(heron.CorruptionError, match="table 'users'") as info:
        AuthStore(path, PASSWORD)
    assert info.value.path == path and path in str(info.value) and "name='alice'" in str(info.value)


def test_an_auth_store_without_row_crcs_gets_them_once(tmp_path):
    path = str(tmp_path / "auth.db")
    auth_store_with_alice(path, PASSWORD)
    db = sqlite3.connect(path, isolation_level=None)
    for t in ("users", "roles", "user_roles", "grants", "meta"):
        db.execute(f"DROP TRIGGER {t}_crc_insert")
        db.execute(f"DROP TRIGGER {t}_crc_update")
        db.execute(f"UPDATE {t} SET crc=NULL")
    db.execute("DELETE FROM meta")
    db.close()
    store = AuthStore(path, PASSWORD)
    assert store.verify("alice", "alice-pw") and store.allowed("alice", "Collection", "c", "default", "Query")
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM users WHERE crc IS NULL").fetchone()[0] == 0
    db.close()
    keep_crc(path, "UPDATE grants SET privilege='Insert'")
    with pytest.raises(heron.CorruptionError, match="table 'grants'"):
        AuthStore(path, PASSWORD)


def test_a_damaged_grant_row_makes_the_server_refuse_to_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    auth_store_with_alice(str(data / "auth.db"), PASSWORD)
    keep_crc(str(data / "auth.db"), "UPDATE grants SET object_name='*'")  # would grant every collection
    res = subprocess.run(
        [sys.executable, "-m", "heron", "serve", "--data", str(data), "--auth", "--root-password", PASSWORD,
         "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (HERON_SRC, os.environ.get("PYTHONPATH", ""))
                                                          if p)},
    )
    assert res.returncode != 0
    assert "auth.db" in res.stderr and "table 'grants'" in res.stderr and "restore auth.db" in res.stderr, res.stderr


def test_an_auth_row_damaged_while_serving_refuses_the_login_naming_the_file(start_server):
    server = start_server("--auth", "--root-password", PASSWORD)
    admin = MilvusClient(server.uri, token=f"root:{PASSWORD}")
    admin.create_user("alice", "alice-pw")
    admin.close()
    keep_crc(os.path.join(server.data, "auth.db"), "UPDATE users SET description='x' WHERE name='alice'")
    with heron.Client(server.uri, token="alice:alice-pw") as alice:
        with pytest.raises(heron.CorruptionError, match="auth.db.*table 'users'"):
            alice.list_collections()
    with heron.Client(server.uri, token=f"root:{PASSWORD}") as root:
        assert isinstance(root.list_collections(), list)


def _collection(c: heron.Client, name: str) -> None:
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    idx = c.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection(name, schema=schema, index_params=idx)
    c.insert(name, [{"id": i, "v": [float(i)] * 4} for i in range(50)])
    c.flush(name)


def test_a_damaged_segment_file_answers_remote_clients_with_its_damage_and_others_keep_answering(
    start_server, tmp_path
):
    data = str(tmp_path / "served")
    server = start_server(data=data)
    with heron.Client(server.uri) as c:
        _collection(c, "hurt")
        _collection(c, "fine")
    assert server.stop() == 0
    seg_dir = Path(data) / "segments" / "c1"
    (segment,) = [p for p in seg_dir.iterdir() if p.suffix == ".arrow"]
    raw = bytearray(segment.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    segment.write_bytes(bytes(raw))
    server = start_server(data=data)
    with heron.Client(server.uri) as c:
        with pytest.raises(heron.CorruptionError) as info:
            c.query("hurt", filter="id >= 0", output_fields=["id"], limit=10)
        assert info.value.code == heron.CorruptionError.code
        assert str(segment) in str(info.value) and "'hurt'" in str(info.value), str(info.value)
        assert len(c.query("fine", filter="id >= 0", output_fields=["id"], limit=100)) == 50
    m = MilvusClient(server.uri)
    with pytest.raises(MilvusException) as minfo:
        m.search("hurt", data=[[0.0] * 4], limit=3)
    assert minfo.value.code == heron.CorruptionError.code, (minfo.value.code, minfo.value.message)
    assert "segment file" in minfo.value.message and "'hurt'" in minfo.value.message, minfo.value.message
    hits = m.search("fine", data=[[0.0] * 4], limit=3)
    assert [h["id"] for h in hits[0]] == [0, 1, 2]
    m.close()
