"""A process killed in the middle of an import job leaves none of its rows; rerunning the import gives each row once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

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


def test_sigkill_mid_import_leaves_no_rows_and_a_rerun_imports_each_row_once(tmp_path):
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=4)
    data = str(tmp_path / "data")
    with heron.Client(data) as c:
        c.create_collection("c", schema=s)
        c.insert("c", [{"id": -1, "v": [0.0] * 4}])  # a row from before, kept
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
