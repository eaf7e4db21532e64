"""Damage to segment and index files: one-bit flips at every offset class, truncations, deletions.

A segment file is primary data: any damage must give `CorruptionError`
naming the file, the collection and the rows it holds, while the other
collections of the directory answer exactly as before. An index file is
derived data: damage anywhere must give the same answers as before (the
index is rebuilt from its segment), and opening must never let faiss parse
unchecked bytes (the peak memory of the opening process is measured).

Offsets are drawn from a seeded generator: set ``HERON_DAMAGE_SEED`` to
replay a run (the seed is printed).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import heron
from heron import CorruptionError
from heron.engine._engine import open_engine, release_engine
from heron.engine.index._base import check_index_file

SEED = int(os.environ.get("HERON_DAMAGE_SEED", random.SystemRandom().randrange(1 << 30)))
N = 1500


@pytest.fixture(scope="module")
def rng() -> random.Random:
    print(f"HERON_DAMAGE_SEED={SEED}")
    return random.Random(SEED)


def _flip(path: Path, offset: int, bit: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([b ^ (1 << bit)]))


def _offsets(size: int, rng: random.Random, body: int = 6) -> dict[str, int]:
    """One offset per class of a file's bytes: start, header, body (several), footer, last byte."""
    out = {"start": 0, "padding": 6, "header": rng.randrange(8, min(size, 256)),
           "footer": size - rng.randrange(2, min(size, 96)), "last": size - 1}
    for i in range(body):
        out[f"body{i}"] = rng.randrange(256, size - 96)
    return out


def _schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=8)
    s.add_field("name", heron.DataType.VARCHAR, max_length=32)
    s.add_field("meta", heron.DataType.JSON, nullable=True)
    s.add_field("score", heron.DataType.DOUBLE)
    return s


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    r = np.random.default_rng(seed)
    vecs = r.random((n, 8), dtype=np.float32)
    return [{"id": i, "vector": vecs[i].tolist(), "name": f"row {i}", "meta": {"k": i % 7} if i % 3 else None,
             "score": float(i) / 3} for i in range(n)]


def _observe(c: heron.Client, name: str) -> Any:
    rows = c.query(name, filter="id >= 0", output_fields=["id", "name", "meta", "score", "vector"], limit=N + 10)
    rows = sorted(rows, key=lambda r: r["id"])
    hits = c.search(name, [[0.5] * 8, [0.1] * 8], limit=5, output_fields=["name"])
    return json.loads(json.dumps([rows, [[(h["id"], round(h["distance"], 5)) for h in q] for q in hits]],
                                 default=float))


@pytest.fixture(scope="module")
def segment_dir(tmp_path_factory) -> tuple[Path, Any]:
    """A directory with two flushed collections; returns it and what 'other' answers."""
    path = tmp_path_factory.mktemp("segdamage") / "db"
    with heron.Client(str(path)) as c:
        for name, seed in (("hit", 1), ("other", 2)):
            idx = c.prepare_index_params()
            idx.add_index("vector", index_type="FLAT", metric_type="L2")
            c.create_collection(name, schema=_schema(), index_params=idx)
            c.insert(name, _rows(N, seed))
            c.flush(name)
        want = _observe(c, "other")
    yield path, want
    shutil.rmtree(path.parent, ignore_errors=True)


def _segment_of(path: Path, name: str) -> Path:
    con = sqlite3.connect(path / "catalog.db")
    try:
        (cid,) = con.execute("SELECT id FROM collections WHERE name=?", (name,)).fetchone()
        (rel,) = con.execute("SELECT path FROM segments WHERE collection_id=?", (cid,)).fetchone()
    finally:
        con.close()
    return path / "segments" / f"c{cid}" / rel


def _expect_unavailable(work: Path, seg: Path, want_other: Any) -> CorruptionError:
    with heron.Client(str(work)) as c:
        assert _observe(c, "other") == want_other
        with pytest.raises(CorruptionError) as ei:
            c.query("hit", filter="id >= 0", limit=5)
        for call in (lambda: c.search("hit", [[0.5] * 8], limit=3),
                     lambda: c.insert("hit", _rows(1, 3)),
                     lambda: c.describe_collection("hit")):
            with pytest.raises(CorruptionError):
                call()
        assert "hit" in c.list_collections()
    err = ei.value
    assert err.path == str(seg)
    assert str(seg) in str(err) and "'hit'" in str(err) and f"{N} rows" in str(err)
    return err


def test_a_flipped_bit_anywhere_in_a_segment_file_is_refused_and_other_collections_keep_working(
    segment_dir, rng, tmp_path
) -> None:
    pristine, want_other = segment_dir
    size = _segment_of(pristine, "hit").stat().st_size
    for cls, offset in _offsets(size, rng, body=10).items():
        work = tmp_path / f"flip-{cls}"
        shutil.copytree(pristine, work)
        seg = _segment_of(work, "hit")
        _flip(seg, offset, rng.randrange(8))
        err = _expect_unavailable(work, seg, want_other)
        assert err.offset is not None and err.offset <= offset, (cls, offset, err)
        shutil.rmtree(work)


@pytest.mark.parametrize("damage", ["empty", "half", "one byte short", "deleted", "longer"])
def test_a_truncated_missing_or_extended_segment_file_is_refused(segment_dir, tmp_path, damage) -> None:
    pristine, want_other = segment_dir
    work = tmp_path / "work"
    shutil.copytree(pristine, work)
    seg = _segment_of(work, "hit")
    size = seg.stat().st_size
    if damage == "deleted":
        seg.unlink()
    elif damage == "longer":
        with open(seg, "ab") as f:
            f.write(b"\0" * 100)
    else:
        os.truncate(seg, {"empty": 0, "half": size // 2, "one byte short": size - 1}[damage])
    err = _expect_unavailable(work, seg, want_other)
    assert ("missing" if damage == "deleted" else "truncated" if damage != "longer" else "more") in str(err)
    with heron.Client(str(work)) as c:  # the damaged collection can still be dropped, and its name reused
        c.drop_collection("hit")
        c.create_collection("hit", dimension=8)
        assert c.query("hit", filter="", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_a_segment_written_before_checksums_opens_after_a_structural_check(segment_dir, tmp_path, caplog) -> None:
    pristine, want_other = segment_dir
    work = tmp_path / "work"
    shutil.copytree(pristine, work)
    con = sqlite3.connect(work / "catalog.db")
    for (trigger,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        con.execute(f"DROP TRIGGER {trigger}")  # the catalog as older versions wrote it: no row CRCs ...
    for (table,) in con.execute("SELECT DISTINCT tbl_name FROM sqlite_master WHERE sql LIKE '%crc INTEGER%'"):
        con.execute(f"UPDATE {table} SET crc=NULL")
    con.execute("DELETE FROM meta WHERE key='row_crc'")
    con.execute("ALTER TABLE segments DROP COLUMN checksum")  # ... and no segment checksums
    con.commit()
    con.close()
    with heron.Client(str(pristine)) as c:
        want_hit = _observe(c, "hit")
    with caplog.at_level("WARNING", logger="heron.engine"), heron.Client(str(work)) as c:
        assert _observe(c, "hit") == want_hit
        assert _observe(c, "other") == want_other
    assert "no checksum recorded" in caplog.text
    seg = _segment_of(work, "hit")
    os.truncate(seg, seg.stat().st_size // 2)  # structure still guards such a file
    _expect_unavailable(work, seg, want_other)


def test_a_checksum_places_damage_to_within_one_block() -> None:
    from heron.engine.storage._files import CHECKSUM_BLOCK, FileChecksum, describe_mismatch

    data = bytearray(np.random.default_rng(1).integers(0, 256, int(3.5 * CHECKSUM_BLOCK), dtype=np.uint8).tobytes())
    ck = FileChecksum()
    for i in range(0, len(data), 100_000):  # written in pieces that straddle block boundaries
        ck.update(data[i : i + 100_000])
    ck = FileChecksum.from_bytes(ck.to_bytes())
    assert ck.size == len(data) and len(ck.crcs) == 4 and ck.first_mismatch(data) is None
    data[int(2.3 * CHECKSUM_BLOCK)] ^= 1
    assert ck.first_mismatch(data) == 2 * CHECKSUM_BLOCK
    data[int(2.3 * CHECKSUM_BLOCK)] ^= 1
    short = data[: 3 * CHECKSUM_BLOCK + 5]
    assert describe_mismatch(ck, len(short), ck.first_mismatch(short))[1] == len(short)
    with pytest.raises(ValueError):
        FileChecksum.from_bytes(ck.to_bytes()[:-4])


# -- index files -------------------------------------------------------------------------------

FAMILIES = {
    "HNSW": (heron.DataType.FLOAT_VECTOR, "L2", {"M": 8, "efConstruction": 64}, {"ef": 2048}),
    "IVF_FLAT": (heron.DataType.FLOAT_VECTOR, "L2", {"nlist": 8}, {"nprobe": 8}),
    "FLAT": (heron.DataType.FLOAT_VECTOR, "COSINE", {}, {}),
    "BIN_IVF_FLAT": (heron.DataType.BINARY_VECTOR, "HAMMING", {"nlist": 8}, {"nprobe": 8}),
    "SPARSE_INVERTED_INDEX": (heron.DataType.SPARSE_FLOAT_VECTOR, "IP", {}, {}),
}


def _vectors(dtype: heron.DataType, n: int, seed: int) -> list[Any]:
    r = np.random.default_rng(seed)
    if dtype is heron.DataType.BINARY_VECTOR:
        return [bytes(v) for v in r.integers(0, 256, (n, 8), dtype=np.uint8)]
    if dtype is heron.DataType.SPARSE_FLOAT_VECTOR:
        return [{int(d): float(v) for d, v in zip(r.choice(1000, 6, replace=False), r.random(6))} for _ in range(n)]
    return r.random((n, 16), dtype=np.float32).tolist()


def _index_answers(c: heron.Client, dtype: heron.DataType, sparams: dict[str, Any]) -> Any:
    hits = c.search("v", _vectors(dtype, 8, 99), limit=10, search_params={"params": sparams})
    return [[(h["id"], round(h["distance"], 4)) for h in q] for q in hits]


def _wait_background(path: Path) -> None:
    e = open_engine(str(path))
    try:
        e.wait_background()
    finally:
        release_engine(e)


@pytest.mark.parametrize("index_type", list(FAMILIES))
def test_a_damaged_index_file_is_rebuilt_and_answers_stay_identical(index_type, rng, tmp_path) -> None:
    dtype, metric, params, sparams = FAMILIES[index_type]
    pristine = tmp_path / "pristine"
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", dtype, **({} if dtype is heron.DataType.SPARSE_FLOAT_VECTOR else
                                 {"dim": 64 if dtype is heron.DataType.BINARY_VECTOR else 16}))
    with heron.Client(str(pristine)) as c:
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type=index_type, metric_type=metric, params=params)
        c.create_collection("v", schema=s, index_params=idx)
        c.insert("v", [{"id": i, "vec": v} for i, v in enumerate(_vectors(dtype, N, 5))])
        c.flush("v")
        _wait_background(pristine)
        want = _index_answers(c, dtype, sparams)
    (index_file,) = pristine.glob("segments/*/*.index")
    size = index_file.stat().st_size
    offsets = _offsets(size, rng, body=4)
    if size > 226:
        offsets["faiss header"] = 225
    damage: dict[str, Any] = {f"flip {cls}": (lambda t, o=offset: _flip(t, o, rng.randrange(8)))
                              for cls, offset in offsets.items()}
    damage["cut in half"] = lambda t: os.truncate(t, size // 2)
    damage["emptied"] = lambda t: os.truncate(t, 0)
    damage["deleted"] = lambda t: t.unlink()
    for i, (cls, hurt) in enumerate(damage.items()):
        work = tmp_path / f"damage-{i}"
        shutil.copytree(pristine, work)
        target = work / index_file.relative_to(pristine)
        hurt(target)
        with heron.Client(str(work)) as c:
            _wait_background(work)
            assert _index_answers(c, dtype, sparams) == want, (index_type, cls)
        check_index_file(str(target))  # rebuilt (or never damaged where it matters): whole again
        shutil.rmtree(work)


_MEMORY = """
import json, os, shutil, sys

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def reset_peak():  # the peak starts again from the current size (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

def peak():  # VmHWM, not ru_maxrss: that one starts from the RSS of the process that forked this one
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) * 1024
"""

_LOAD_CHILD = _MEMORY + textwrap.dedent(
    """
    from heron.engine.index._base import IndexFileError
    from heron.engine.index._vector_index import load_index

    src, offsets = sys.argv[1], json.loads(sys.argv[2])
    load_index(src)  # imports and first-use allocations out of the way
    reset_peak()
    base = rss()
    idx = load_index(src)
    clean = peak() - base
    del idx
    reset_peak()
    base = rss()
    refused = 0
    for off in offsets:
        dst = src + ".flip"
        shutil.copyfile(src, dst)
        with open(dst, "r+b") as f:
            f.seek(off); b = f.read(1)[0]; f.seek(off); f.write(bytes([b ^ 0x40]))
        try:
            load_index(dst)
        except IndexFileError:
            refused += 1
        os.unlink(dst)
    print(json.dumps({"clean": clean, "damaged": peak() - base, "refused": refused}))
    """
)

_OPEN_CHILD = _MEMORY + textwrap.dedent(
    """
    import heron
    from heron.engine._engine import open_engine, release_engine

    path, warm = sys.argv[1], sys.argv[2]
    with heron.Client(warm):  # the engine's fixed costs (threads, the filter parser) out of the way
        pass
    reset_peak()
    base = rss()
    e = open_engine(path)
    opened = peak() - base
    e.wait_background()
    rebuilt = peak() - base
    release_engine(e)
    print(json.dumps({"open": opened, "rebuilt": rebuilt}))
    """
)


def _child(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_damaged_hnsw_file_is_refused_before_faiss_reads_it_and_opening_stays_within_twice_the_data(
    tmp_path, rng
) -> None:
    path = tmp_path / "db"
    with heron.Client(str(path)) as c:
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 40})
        c.create_collection("v", dimension=64, index_params=idx)
        x = np.random.default_rng(7).random((20_000, 64), dtype=np.float32)
        c.insert("v", [{"id": i, "vector": x[i]} for i in range(len(x))])
        c.flush("v")
        _wait_background(path)
    (index_file,) = path.glob("segments/*/*.index")
    (segment_file,) = path.glob("segments/*/*.arrow")
    size = index_file.stat().st_size
    data = size + segment_file.stat().st_size
    loose = tmp_path / "hnsw.index"
    shutil.copyfile(index_file, loose)
    # The faiss header (the sizes of what follows) lies in the first few hundred bytes: every one of them.
    offsets = list(range(150, 400)) + [rng.randrange(400, size - 4096) for _ in range(10)]
    r = _child(_LOAD_CHILD, str(loose), json.dumps(offsets))
    print(f"HNSW file {size / 2**20:.1f} MiB: loading it whole raises the peak RSS by {r['clean'] / 2**20:.1f} MiB; "
          f"{len(offsets)} damaged copies (refused: {r['refused']}) by {r['damaged'] / 2**20:.1f} MiB")
    assert r["refused"] == len(offsets)
    assert r["damaged"] <= size
    _flip(index_file, 225, 6)
    r = _child(_OPEN_CHILD, str(path), str(tmp_path / "warm"))
    print(f"opening {data / 2**20:.1f} MiB of data with that file damaged at byte 225: peak RSS "
          f"+{r['open'] / 2**20:.1f} MiB ({r['open'] / data:.2f}x), +{r['rebuilt'] / 2**20:.1f} MiB "
          "once the index is rebuilt")
    assert r["open"] <= 2 * data
    check_index_file(str(index_file))
