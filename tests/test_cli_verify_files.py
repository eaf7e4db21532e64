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


def _with_snapshot(tmp_path: Path) -> Path:
    data = tmp_path / "snap"
    with heron.Client(str(data)) as c:
        c.create_collection("c", dimension=2)
        c.insert("c", [{"id": i, "vector": [float(i), 1.0]} for i in range(300)])
        c.flush("c")
        c.delete("c", filter="id < 5")  # the snapshot keeps a mask of the rows it keeps
        c.insert("c", [{"id": 1000 + i, "vector": [float(i), 2.0]} for i in range(7)])  # growing: written out
        c.create_snapshot("s1", "c")
    return data


def test_a_flipped_byte_in_a_snapshot_file_is_damage_naming_the_snapshot(tmp_path) -> None:
    data = _with_snapshot(tmp_path)
    clean = _verify(data)
    assert clean.returncode == 0 and "snapshot files" in clean.stdout, clean.stdout + clean.stderr
    files = sorted((data / "snapshots").glob("c*/s1/*.arrow"))
    assert len(files) == 2
    for f in files:  # the linked segment file is also the collection's own: flip a copy of the snapshot's
        raw = f.read_bytes()
        f.unlink()
        f.write_bytes(raw)
    _flip(files[-1], files[-1].stat().st_size // 2)
    out = _verify(data)
    assert out.returncode == 1, out.stdout + out.stderr
    assert any(files[-1].name in line and "snapshot 's1' cannot be restored" in line
               for line in out.stdout.splitlines()), out.stdout


def test_a_damaged_snapshot_manifest_or_mask_is_damage(tmp_path) -> None:
    data = _with_snapshot(tmp_path)
    (mask,) = (data / "snapshots").glob("c*/s1/*.keep.npy")
    mask.write_bytes(mask.read_bytes()[:-3])
    out = _verify(data)
    assert out.returncode == 1 and "keep-mask" in out.stdout, out.stdout
    (manifest,) = (data / "snapshots").glob("c*/s1/manifest.json")
    manifest.write_bytes(manifest.read_bytes()[:40])
    out = _verify(data)
    assert out.returncode == 1 and "manifest.json" in out.stdout and "unreadable" in out.stdout, out.stdout
