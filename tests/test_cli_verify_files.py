"""``heron verify`` finds a byte flipped on disk in the files the other verify tests leave alone:
auth.db (raw bytes, not rows changed through SQLite) and the insert log's MANIFEST."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import heron
from tests._sqlite_damage import auth_store_with_alice


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "heron", "verify", str(path)], capture_output=True, text=True,
                          timeout=300, env=env)


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    with heron.Client(str(data)) as c:
        c.create_collection("c", dimension=2)
        c.insert("c", [{"id": i, "vector": [float(i), 1.0]} for i in range(20)])
    auth_store_with_alice(str(data / "auth.db"), "root-pw-1")
    return data


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_value_of_auth_db_is_damage(tmp_path) -> None:
    data = _data(tmp_path)
    assert _verify(data).returncode == 0
    raw = (data / "auth.db").read_bytes()
    offset = raw.rindex(b"reader") + 2  # inside a stored value, as bit rot would change it
    _flip(data / "auth.db", offset)
    out = _verify(data)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "auth.db" in out.stdout and "damaged" in out.stdout.splitlines()[-1], out.stdout


def test_a_flipped_byte_in_the_insert_log_manifest_is_damage(tmp_path) -> None:
    data = _data(tmp_path)
    manifest = data / "log" / "MANIFEST"
    assert manifest.exists()
    _flip(manifest, manifest.stat().st_size // 2)
    out = _verify(data)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "MANIFEST" in out.stdout, out.stdout
