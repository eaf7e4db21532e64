"""Sealed segments and dense indexes are read in place from their mapped files after a restart.

After reopening, a segment's fixed-width columns and vectors are views of
the mapped segment file (their ``base`` chain ends in the file's mapping,
and they own no memory), a dense index's vectors point into its mapped
index file, the process's anonymous memory grows by far less than the
files hold, answers are the same as before, and damage to a mapped file is
still found, named and refused.
"""

from __future__ import annotations

import json
import mmap
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import heron
from heron import CorruptionError
from heron.engine._engine import open_engine, release_engine
from heron.engine.index._vector_index import build_index, load_index
from heron.engine.storage import _mapped
from heron.engine.storage._files import CHECKSUM_BLOCK, FileChecksum
from heron.engine.storage._mapped import MappedFile

DIM = 32


def _schema(with_json: bool = True) -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("name", heron.DataType.VARCHAR, max_length=32)
    s.add_field("score", heron.DataType.DOUBLE)
    if with_json:
        s.add_field("meta", heron.DataType.JSON, nullable=True)
    return s


def _fill(path: Path, n: int, index_type: str, params: dict[str, Any] | None = None,
          with_json: bool = True) -> np.ndarray:
    rng = np.random.default_rng(7)
    vecs = rng.random((n, DIM), dtype=np.float32)
    with heron.Client(str(path)) as c:
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type=index_type, metric_type="L2", params=params or {})
        c.create_collection("m", schema=_schema(with_json), index_params=idx)
        for lo in range(0, n, 20_000):
            hi = min(n, lo + 20_000)
            rows = [{"id": i, "vec": vecs[i], "name": f"n{i}", "score": i / 4} for i in range(lo, hi)]
            if with_json:
                for r in rows:
                    r["meta"] = {"k": r["id"] % 5} if r["id"] % 2 else None
            c.insert("m", rows)
        c.flush("m")
        e = open_engine(str(path))
        try:
            e.wait_background()
        finally:
            release_engine(e)
    return vecs


def _answers(c: heron.Client, vecs: np.ndarray) -> Any:
    hits = c.search("m", vecs[:5].tolist(), limit=5, output_fields=["name", "score"],
                    search_params={"params": {"ef": 64}})
    rows = c.query("m", filter="id in [0, 1, 7, 300]", output_fields=["id", "name", "score", "meta", "vec"])
    return json.loads(json.dumps([[[(h["id"], round(h["distance"], 4), h["entity"]["name"]) for h in q]
                                   for q in hits], sorted(rows, key=lambda r: r["id"])], default=float))


def _reaches_mapping(arr: np.ndarray) -> bool:
    """The array owns no memory and its ``base`` chain ends in a file mapping (pyarrow's or Python's)."""
    if arr.flags.owndata:
        return False
    base: Any = arr
    while isinstance(base, np.ndarray):
        if base.flags.owndata:
            return False
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, (pa.Buffer, mmap.mmap))


def _sealed(e: Any) -> list[Any]:
    coll = e.collections[("default", "m")]
    return [s for p in coll.partitions.values() for s in p.sealed]


def _segment_file(path: Path) -> tuple[Path, FileChecksum, int]:
    con = sqlite3.connect(path / "catalog.db")
    try:
        (cid,) = con.execute("SELECT id FROM collections WHERE name='m'").fetchone()
        rel, raw, n = con.execute("SELECT path, checksum, num_rows FROM segments WHERE collection_id=?",
                                  (cid,)).fetchone()
    finally:
        con.close()
    return path / "segments" / f"c{cid}" / rel, FileChecksum.from_bytes(raw), n


@pytest.fixture(scope="module")
def hnsw_dir(tmp_path_factory) -> tuple[Path, np.ndarray, Any]:
    path = tmp_path_factory.mktemp("mmap") / "db"
    vecs = _fill(path, 20_000, "HNSW", {"M": 8, "efConstruction": 32})  # a 3-block segment file
    with heron.Client(str(path)) as c:
        want = _answers(c, vecs)
    return path, vecs, want


def test_after_a_restart_columns_and_index_are_views_of_the_files_and_answers_are_unchanged(hnsw_dir) -> None:
    path, vecs, want = hnsw_dir
    with heron.Client(str(path)) as c:
        e = open_engine(str(path))
        try:
            (seg,) = _sealed(e)
            view = seg.snapshot()
            for arr in (view.vectors("vec"), seg.pk_values(seg.n), view.column("score").values, view.seqs):
                assert _reaches_mapping(arr), arr
            assert not view.vectors("vec").flags.writeable
            meta = seg.cols["meta"]
            assert meta._values is None  # JSON is decoded by its first reader, not at open
            names = view.column("name").values
            assert isinstance(names, pa.ChunkedArray) and names.num_chunks == 1
            (_sig, idx) = seg.vindex["vec"]
            blob = idx._mapped
            assert blob is not None and _reaches_mapping(blob.view)
            flat = idx._flat_storage()  # HNSW's own copy of the vectors lies inside the mapped index file
            lo = blob.view.ctypes.data
            assert lo <= flat.ctypes.data and flat.ctypes.data + flat.nbytes <= lo + blob.view.size
            assert _answers(c, vecs) == want
            assert meta._values is not None and seg.valid["meta"].view(4).tolist() == [False, True, False, True]
        finally:
            release_engine(e)


def test_a_flat_index_file_is_mapped_too(tmp_path) -> None:
    vecs = _fill(tmp_path / "db", 1000, "FLAT")
    with heron.Client(str(tmp_path / "db")) as c:
        want = _answers(c, vecs)
    with heron.Client(str(tmp_path / "db")) as c:
        e = open_engine(str(tmp_path / "db"))
        try:
            (seg,) = _sealed(e)
            idx = seg.vindex["vec"][1]
            assert idx._xb is not None and _reaches_mapping(idx._xb)
            assert _answers(c, vecs) == want
        finally:
            release_engine(e)


def test_a_mapped_index_grows_from_an_owned_copy(tmp_path) -> None:
    rng = np.random.default_rng(3)
    x = rng.random((2000, DIM), dtype=np.float32)
    built = build_index(heron.DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", {"M": 8, "efConstruction": 40}, x[:1500])
    path = str(tmp_path / "i.index")
    built.save(path)
    idx = load_index(path)
    assert idx._mapped is not None
    before = idx.search(x[:20], 3, params={"ef": 64})
    grown = idx.extended(x[1500:])  # faiss cannot grow arrays it does not own: a copy is grown
    assert grown is idx and idx._mapped is None and idx.ntotal == 2000
    _scores, rows = idx.search(x[1500:1520], 1, params={"ef": 64})
    assert (rows[:, 0] == np.arange(1500, 1520)).mean() >= 0.9
    assert np.array_equal(load_index(path).search(x[:20], 3, params={"ef": 64})[1], before[1])


def test_damage_in_a_large_file_is_found_when_its_column_is_first_used(hnsw_dir, tmp_path) -> None:
    path, _vecs, _want = hnsw_dir
    seg_path, checksum, n = _segment_file(path)
    work = tmp_path / "s.arrow"
    work.write_bytes(seg_path.read_bytes())
    with pa.memory_map(str(work)) as src:
        buf = src.read_buffer()
        table = pa.ipc.open_file(buf).read_all()
        vec_buffers = [b for b in table.column("vec").chunk(0).buffers() if b is not None and b.size]
        offset = vec_buffers[-1].address - buf.address + vec_buffers[-1].size // 2  # a block of vectors only
        del table, vec_buffers, buf
    data = bytearray(work.read_bytes())
    data[offset] ^= 0x10
    work.write_bytes(bytes(data))

    mf = MappedFile(str(work), checksum, n, check_whole_bytes=0)  # opens: only the metadata is checked
    assert not mf.checked
    mf.check_array(mf.table.column("id"))  # intact columns answer
    with pytest.raises(CorruptionError) as ei:
        mf.check_array(mf.table.column("vec"))
    assert ei.value.path == str(work) and ei.value.offset is not None
    assert ei.value.offset <= offset < ei.value.offset + CHECKSUM_BLOCK
    assert "checksum mismatch" in str(ei.value)
    with pytest.raises(CorruptionError):  # once damaged, the file answers nothing more
        mf.check_array(mf.table.column("id"))
    mf.close()

    whole = MappedFile(str(seg_path), checksum, n, check_whole_bytes=0)
    whole.check_all(stop=lambda: True)  # a dropped collection or a closing engine stops the pass
    assert not whole.checked
    whole.check_all()
    assert whole.checked and whole._fd == -1  # all known good: the descriptor used to check is released


def test_damage_in_a_large_file_makes_its_collection_unavailable_after_a_restart(
    hnsw_dir, tmp_path, monkeypatch
) -> None:
    import shutil

    path, _vecs, _want = hnsw_dir
    work = tmp_path / "db"
    shutil.copytree(path, work)
    seg_path, _ck, _n = _segment_file(work)
    with pa.memory_map(str(seg_path)) as src:
        buf = src.read_buffer()
        col = pa.ipc.open_file(buf).read_all().column("vec").chunk(0)
        b = [x for x in col.buffers() if x is not None and x.size][-1]
        offset = b.address - buf.address + b.size // 2
        del col, b, buf
    with open(seg_path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([byte ^ 1]))
    monkeypatch.setattr(_mapped, "CHECK_WHOLE_BYTES", 0)  # as if the file were large: checked as used
    with heron.Client(str(work)) as c:
        e = open_engine(str(work))
        try:
            e.wait_background()  # the background pass finds what no query touched
        finally:
            release_engine(e)
        for call in (lambda: c.query("m", filter="id >= 0", limit=3),
                     lambda: c.search("m", [[0.5] * DIM], limit=3),
                     lambda: c.describe_collection("m")):
            with pytest.raises(CorruptionError) as ei:
                call()
            assert ei.value.path == str(seg_path) and ei.value.offset is not None
            assert ei.value.offset <= offset < ei.value.offset + CHECKSUM_BLOCK
            assert "'m'" in str(ei.value)


_RSS_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import heron

    def anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

    before = anon()
    c = heron.Client(sys.argv[1])
    opened = anon()
    hits = c.search("m", np.full((1, int(sys.argv[2])), 0.5, dtype=np.float32).tolist(), limit=5)
    after = anon()
    print(json.dumps({"before": before, "opened": opened, "after": after, "hits": len(hits[0])}))
    c.close()
""")


def test_reopening_does_not_copy_the_files_into_memory(tmp_path) -> None:
    n = 250_000  # 32 MB of vectors in the segment file, 32 MB more in the FLAT index file
    _fill(tmp_path / "db", n, "FLAT", with_json=False)  # JSON values are decoded into objects at open
    files = sum(f.stat().st_size for f in (tmp_path / "db" / "segments").rglob("*") if f.is_file())
    assert files > 60 << 20
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(tmp_path / "db"), str(DIM)], env=env,
                         capture_output=True, text=True, timeout=300, check=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["hits"] == 5
    grown = m["after"] - m["before"]
    # Loaded as before, the files would be copied whole (> 64 MB); mapped, the heap keeps deletion marks
    # (8 bytes a row) and what opening an engine costs.
    print("anonymous memory grown on open and first search:", grown, "of", files, "bytes of files")
    assert grown < files // 2, (grown, files, m)


def test_a_mapped_segment_and_index_merge_with_new_rows_after_a_restart(tmp_path, monkeypatch) -> None:
    from heron.engine.index import _grow

    copies: list[int] = []
    real_copy = _grow.owned_copy
    monkeypatch.setattr(_grow, "owned_copy", lambda blob: copies.append(1) or real_copy(blob))
    path = tmp_path / "db"
    vecs = _fill(path, 3000, "HNSW", {"M": 8, "efConstruction": 64})
    more = np.random.default_rng(11).random((3000, DIM), dtype=np.float32)
    with heron.Client(str(path)) as c:
        e = open_engine(str(path))
        try:
            (seg,) = _sealed(e)
            assert seg.vindex["vec"][1]._mapped is not None
            c.insert("m", [{"id": 3000 + i, "vec": more[i], "name": f"n{3000 + i}", "score": 0.0}
                           for i in range(3000)])
            c.flush("m")
            e.wait_background()  # the new segment merges into the mapped one, its index grown from a copy
            (merged,) = _sealed(e)
            assert merged.n == 6000 and merged.vindex["vec"][1]._mapped is None
            assert copies == [1]  # grown (faiss aborts growing a mapped index), not rebuilt
        finally:
            release_engine(e)
        for q, want in ((vecs[:10], np.arange(10)), (more[:10], np.arange(3000, 3010))):
            hits = c.search("m", q.tolist(), limit=1, search_params={"params": {"ef": 128}})
            assert [h[0]["id"] for h in hits] == want.tolist()
