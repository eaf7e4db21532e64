"""A process killed in the middle of an import: a plain job leaves none of its rows, `heron import` resumes.

Either way, rerunning the import gives each row once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import heron
from tests.conftest import ROOT
from tests.test_cli_export import _import

N = 40_000

CHILD = textwrap.dedent("""
    import os, signal, sys, time
    import heron
    import heron.engine._import as imp
    from heron import _requests as rq
    imp.CHUNK = 1000  # many small inserts: the kill lands between two of them
    c = heron.Client(sys.argv[1])
    job = c._call(rq.ImportFiles("default", "c", (sys.argv[2],)), None)
    while c._call(rq.GetImportProgress(job), None)["imported_rows"] < int(sys.argv[3]):
        time.sleep(0.001)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def count(c) -> int:
    return c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"]


def _with_an_older_row(tmp_path) -> str:
    """A data directory whose collection "c" (int64 keys, 4-d vectors) holds one row from before an import: id -1."""
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=s)
        c.insert("c", [{"id": -1, "v": [0.0] * 4}])
    return data


def test_sigkill_mid_import_leaves_no_rows_and_a_rerun_imports_each_row_once(tmp_path):
    data = _with_an_older_row(tmp_path)
    vecs = np.random.default_rng(3).random((N, 4), dtype=np.float32)
    path = str(tmp_path / "rows.parquet")
    pq.write_table(pa.table({"id": np.arange(N), "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 4)}),
                   path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", CHILD, data, path, str(N // 4)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert os.listdir(os.path.join(data, "imports")), "the killed job left no journal"
    with heron.Client(data) as c:
        assert count(c) == 1  # the interrupted job's rows are gone, the older row kept
        assert not os.listdir(os.path.join(data, "imports"))
    state = _import(data, [path])
    assert state["state_name"] == "Completed", state["reason"]
    with heron.Client(data) as c:
        assert count(c) == N + 1
        ids = [r["id"] for r in c.query("c", filter="id >= 0", output_fields=["id"], limit=N)]
    assert sorted(ids) == list(range(N))


def test_a_journal_whose_last_line_a_crash_tore_still_rolls_back_every_whole_line(tmp_path):
    """A SIGKILL can land while a chunk's keys are written: that chunk was never inserted, the ones before were."""
    data = _with_an_older_row(tmp_path)
    with heron.Client(data) as c:
        c.insert("c", {"id": np.arange(2000), "v": np.ones((2000, 4), dtype=np.float32)})  # the job's two chunks
    os.makedirs(os.path.join(data, "imports"))
    with open(os.path.join(data, "imports", "7.journal"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps({"db": "default", "collection": "c", "partition": "_default"}) + "\n")
        fh.write(json.dumps(list(range(1000))) + "\n" + json.dumps(list(range(1000, 2000))) + "\n")
        fh.write(json.dumps(list(range(2000, 3000)))[:2500])  # the third chunk's keys, cut short
    with heron.Client(data) as c:
        assert count(c) == 1
        assert c.query("c", filter="", output_fields=["id"], limit=10) == [{"id": -1}]
    assert not os.listdir(os.path.join(data, "imports"))


def test_closing_the_engine_during_an_import_stops_it_and_the_next_open_removes_its_rows(tmp_path):
    import time

    import heron.engine._import as imp
    from heron import _requests as rq

    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    data = str(tmp_path / "data")
    path = str(tmp_path / "rows.parquet")
    vecs = np.random.default_rng(3).random((N, 4), dtype=np.float32)
    pq.write_table(pa.table({"id": np.arange(N), "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 4)}),
                   path)
    chunk, imp.CHUNK = imp.CHUNK, 500
    try:
        c = heron.Client(data)
        c.create_collection("c", schema=s)
        job = c._call(rq.ImportFiles("default", "c", (path,)), None)
        while c._call(rq.GetImportProgress(job), None)["imported_rows"] < 2000:
            time.sleep(0.001)
        c.close()  # returns once the job has stopped
    finally:
        imp.CHUNK = chunk
    with heron.Client(data) as c:
        assert count(c) == 0
    assert not os.listdir(os.path.join(data, "imports"))


# -- `heron import` is resumable: a SIGKILL at any moment, then the same command again, gives each row once --------


def _heron(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "heron", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _rows(fmt: str, tmp_path, vecs: np.ndarray, auto_id: bool, text_keys: bool = False) -> str:
    ids = np.arange(len(vecs))
    cols: dict[str, Any] = {} if auto_id else {"id": ids.astype(str) if text_keys else ids}
    cols["n"] = ids * 7
    if fmt == "parquet":
        path = str(tmp_path / "rows.parquet")
        pq.write_table(pa.table({**cols, "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 4)}),
                       path, row_group_size=4096)
    else:
        path = str(tmp_path / "rows.json")
        rows = [{**{k: c[i].item() for k, c in cols.items()}, "v": vecs[i].tolist()} for i in range(len(vecs))]
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"rows": rows}, fh)
    return path


def _records(data: str) -> list[str]:
    folder = os.path.join(data, "imports")
    return [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".resume")] if os.path.isdir(folder) else []


def _chunk_lines(data: str) -> int:
    for path in _records(data):
        with open(path, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.startswith('{"chunk"'))
    return 0


def _kill_after(data: str, args: list[str], chunks: int, pause: float) -> str:
    """Run `heron import ARGS`, SIGKILL it ``pause`` seconds after its record names ``chunks`` chunks; its stderr."""
    proc = _heron("import", *args)
    try:
        while _chunk_lines(data) < chunks and proc.poll() is None:
            time.sleep(0.0005)
        time.sleep(pause)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the import ended before the kill: {err[-2000:]}"
    return err


def _schema(auto_id: bool, text_keys: bool = False) -> heron.CollectionSchema:
    s = heron.Client.create_schema(auto_id=auto_id)
    if text_keys:
        s.add_field("id", heron.DataType.VARCHAR, is_primary=True, max_length=16)
    else:
        s.add_field("id", heron.DataType.INT64, is_primary=True, auto_id=auto_id)
    s.add_field("n", heron.DataType.INT64)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    return s


def _all_rows(data: str) -> list[dict[str, Any]]:
    with heron.Client(data) as c:
        return c.query("c", filter="n >= 0", output_fields=["id", "n", "v"], limit=100_000)


@pytest.mark.parametrize(("fmt", "auto_id", "seed"), [
    ("parquet", False, 1), ("parquet", False, 2), ("parquet", False, 3), ("parquet", True, 4),
    ("json", False, 5), ("json", False, 6), ("json", True, 7),
])
def test_heron_import_killed_at_a_random_moment_resumes_with_each_row_once(tmp_path, fmt, auto_id, seed):
    rng = np.random.default_rng(seed)
    n, chunk = 30_000, 500
    vecs = rng.random((n, 4), dtype=np.float32)
    path = _rows(fmt, tmp_path, vecs, auto_id)
    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(auto_id))
        c.insert("c", [{**({} if auto_id else {"id": -1}), "n": -1, "v": [0.0] * 4}])  # a row from before, kept
    args = [data, "c", path, "--quiet", "--chunk-rows", str(chunk)]
    _kill_after(data, args, int(rng.integers(2, n // chunk // 2)), float(rng.choice([0.0, rng.random() * 0.01])))
    assert _records(data), "the killed import left no record"
    proc = _heron("import", *args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "resumed:" in out and "rows already imported skipped" in out, out
    skipped = int(out.split("resumed: ")[1].split(" rows")[0].replace(",", ""))
    assert skipped > 0 and skipped % chunk == 0
    assert not _records(data), "the finished import left its record"
    rows = _all_rows(data)
    ns = sorted(r["n"] for r in rows)
    assert ns == list(range(0, 7 * n, 7)), "a row lost or doubled"
    for r in rows:
        i = r["n"] // 7
        assert auto_id or r["id"] == i
        assert np.array_equal(np.asarray(r["v"], dtype=np.float32), vecs[i])
    with heron.Client(data) as c:
        assert c.query("c", filter="n == -1", output_fields=["count(*)"])[0]["count(*)"] == 1


def test_a_file_changed_since_the_interrupted_import_is_refused_and_abort_drops_the_record(tmp_path):
    vecs = np.random.default_rng(8).random((20_000, 4), dtype=np.float32)
    path = _rows("parquet", tmp_path, vecs, False)
    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(False))
    args = [data, "c", path, "--quiet", "--chunk-rows", "500"]
    _kill_after(data, args, 4, 0.0)
    pq.write_table(pq.read_table(path).slice(0, 19_000), path)  # the file changed
    proc = _heron("import", *args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "rows.parquet" in err and "changed since the interrupted import" in err, err
    assert _records(data), "a refused resume dropped the record"
    proc = _heron("import", *args, "--abort")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    kept = len(_all_rows(data))
    assert kept > 0 and f"its {kept:,} rows stay" in out, out
    assert not _records(data)


def test_a_bad_row_stops_the_import_keeping_earlier_chunks_and_the_fixed_file_resumes(tmp_path):
    n = 20_000
    vecs = np.random.default_rng(9).random((n, 4), dtype=np.float32)
    good = _rows("parquet", tmp_path, vecs, False)
    t = pq.read_table(good)
    vs = t.column("v").to_pylist()
    vs[17_123] = [1.0, 2.0]  # a vector of the wrong dimension, in chunk 34 of 500 rows
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(t.set_column(t.schema.get_field_index("v"), "v", pa.array(vs, pa.list_(pa.float32()))), bad)
    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(False))
    args = [data, "c", bad, "--quiet", "--chunk-rows", "500"]
    proc = _heron("import", *args)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "bad.parquet" in err and "'v'" in err and "row 17123" in err and "rerun the import to resume" in err, err
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * 17_000, 7))  # the chunks before it
    pq.write_table(t, bad)  # fixed
    proc = _heron("import", *args)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resumed: 17,000 rows already imported skipped" in out, out
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * n, 7))


KILLER = textwrap.dedent("""
    import os, signal, sys
    import heron.engine._import_resume as res
    from heron import _requests as rq
    from heron._cli import main
    from heron.engine._engine import Engine
    where, at = sys.argv[1], int(sys.argv[2])
    begun = [0]
    begin, execute = res.ResumeRecord.begin, Engine.execute

    engines = []

    def counted_begin(self, *a):
        begun[0] += 1
        if where == "after_insert" and begun[0] == at + 1:  # chunk AT inserted, the next not yet recorded
            engines[0].wait_background()  # full segments written: the rerun finds chunk AT in a sealed one
            os.kill(os.getpid(), signal.SIGKILL)
        begin(self, *a)

    def killing_execute(self, r):
        engines[:] = [self]
        if where == "before_insert" and isinstance(r, rq.Insert) and begun[0] == at:  # chunk AT recorded only
            os.kill(os.getpid(), signal.SIGKILL)
        return execute(self, r)

    res.ResumeRecord.begin, Engine.execute = counted_begin, killing_execute
    main(["import", *sys.argv[3:]])
""")


@pytest.mark.parametrize("keys", ["int", "auto_id", "text"])
@pytest.mark.parametrize("where", ["before_insert", "after_insert"])
def test_the_chunk_in_flight_at_the_kill_is_imported_once_whether_or_not_its_insert_was_done(tmp_path, where, keys):
    n, chunk, at = 6_000, 500, 5
    auto_id, text = keys == "auto_id", keys == "text"
    vecs = np.random.default_rng(10).random((n, 4), dtype=np.float32)
    path = _rows("parquet", tmp_path, vecs, auto_id, text)
    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(auto_id, text))
        if not auto_id:  # an older row with the first key of the chunk in flight: not taken for that chunk
            key = (at - 1) * chunk
            c.insert("c", [{"id": str(key) if text else key, "n": -1, "v": [0.0] * 4}])
    args = [data, "c", path, "--quiet", "--chunk-rows", str(chunk)]
    seal = {"HERON_SEAL_ROWS": str(chunk)}  # each chunk sealed once inserted: the in-flight one is looked up there
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]), **seal}
    proc = subprocess.run([sys.executable, "-c", KILLER, where, str(at), *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(_all_rows(data)) == (at if where == "after_insert" else at - 1) * chunk
    proc2 = _heron("import", *args, extra_env=seal)
    out, err = proc2.communicate(timeout=300)
    assert proc2.returncode == 0, err[-2000:]
    assert f"resumed: {(at if where == 'after_insert' else at - 1) * chunk:,} rows" in out, out
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * n, 7))


def test_starting_a_resumable_import_that_is_still_running_follows_the_running_job(tmp_path):
    from heron import _requests as rq

    n = 30_000
    path = _rows("parquet", tmp_path, np.random.default_rng(12).random((n, 4), dtype=np.float32), False)
    data = str(tmp_path / "data")
    options = {"resume": "1", "chunk_rows": "100"}
    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(False))
        first = c._call(rq.ImportFiles("default", "c", (path,), "", options), None)
        again = c._call(rq.ImportFiles("default", "c", (path,), "", options), None)
        assert again == first
        with pytest.raises(heron.ParamError, match="is running"):
            c._call(rq.ImportFiles("default", "c", (path,), "", {"resume": "abort"}), None)
        while c._call(rq.GetImportProgress(first), None)["state_name"] not in ("Completed", "Failed"):
            time.sleep(0.01)
        assert c._call(rq.GetImportProgress(first), None)["state_name"] == "Completed"
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * n, 7))


def test_resuming_into_a_collection_dropped_and_created_again_is_refused(tmp_path):
    from heron import _requests as rq

    t = pq.read_table(_rows("parquet", tmp_path, np.random.default_rng(13).random((3_000, 4), dtype=np.float32), False))
    vs = t.column("v").to_pylist()
    vs[2_500] = [1.0]
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(t.set_column(t.schema.get_field_index("v"), "v", pa.array(vs, pa.list_(pa.float32()))), bad)
    data = str(tmp_path / "data")
    options = {"resume": "1", "chunk_rows": "1000"}

    def run(c) -> dict[str, Any]:
        job = c._call(rq.ImportFiles("default", "c", (bad,), "", options), None)
        while (state := c._call(rq.GetImportProgress(job), None))["state_name"] not in ("Completed", "Failed"):
            time.sleep(0.01)
        return state

    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(False))
        state = run(c)
        assert state["state_name"] == "Failed" and "row 2500" in state["reason"] and state["imported_rows"] == 2_000
        c.drop_collection("c")
        c.create_collection("c", schema=_schema(False))
        with pytest.raises(heron.ParamError, match="dropped and created again"):
            run(c)
        c._call(rq.ImportFiles("default", "c", (bad,), "", {"resume": "abort"}), None)
        assert run(c)["imported_rows"] == 2_000  # started over from the first row


def test_the_same_command_with_create_from_resumes_into_the_collection_it_made(tmp_path):
    from heron._cli import main

    n, chunk = 5_000, 500
    src = str(tmp_path / "src")
    with heron.Client(src) as c:
        c.create_collection("c", schema=_schema(False))
        c.insert("c", {"id": np.arange(n), "n": np.arange(n) * 7,
                       "v": np.random.default_rng(14).random((n, 4), dtype=np.float32)})
        params = c.prepare_index_params()
        params.add_index("v", "IVF_FLAT", "v_idx", "L2", params={"nlist": 8})
        c.create_index("c", params)
    out = tmp_path / "out"
    assert main(["export", src, "c", str(out), "--quiet"]) == 0
    data = str(tmp_path / "data")
    heron.Client(data).close()
    args = [data, "c", str(out), "--create-from", str(out / "schema.json"), "--quiet", "--chunk-rows", str(chunk)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", KILLER, "after_insert", "4", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    again = _heron("import", *args)
    stdout, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-2000:]
    assert "resumed: 2,000 rows already imported skipped" in stdout, stdout
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * n, 7))
    with heron.Client(data) as c:
        assert c.list_indexes("c") == ["v_idx"]
        assert c.describe_index("c", "v_idx")["index_type"] == "IVF_FLAT"


def test_rows_the_insert_itself_refuses_stop_the_import_like_a_bad_row_and_the_fixed_file_resumes(tmp_path, monkeypatch):
    from heron import _requests as rq
    from heron._errors import DataError
    from heron.engine._writes import Writer

    n = 3_000
    path = _rows("parquet", tmp_path, np.random.default_rng(15).random((n, 4), dtype=np.float32), False)
    check = Writer._check_batch

    def refusing(self, coll, batch, upsert):
        if int(batch.columns["id"].values[0]) == 1_500:
            raise DataError("field 'n': refused")
        check(self, coll, batch, upsert)

    def run(c) -> dict[str, Any]:
        job = c._call(rq.ImportFiles("default", "c", (path,), "", {"resume": "1", "chunk_rows": "500"}), None)
        while (state := c._call(rq.GetImportProgress(job), None))["state_name"] not in ("Completed", "Failed"):
            time.sleep(0.01)
        return state

    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=_schema(False))
        monkeypatch.setattr(Writer, "_check_batch", refusing)
        state = run(c)
        assert state["state_name"] == "Failed"
        assert "rows.parquet" in state["reason"] and "rows 1500 to 1999: field 'n': refused" in state["reason"]
        assert state["imported_rows"] == 1_500
        monkeypatch.setattr(Writer, "_check_batch", check)
        os.utime(path, ns=(time.time_ns(), time.time_ns()))  # "fixed": the file that stopped it may change
        state = run(c)
        assert state["state_name"] == "Completed", state["reason"]
        assert (state["imported_rows"], state["skipped_rows"]) == (1_500, 1_500)
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * n, 7))
