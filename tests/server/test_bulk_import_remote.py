"""Bulk insert through ``heron serve``: pymilvus's do_bulk_insert / get_bulk_insert_state / list_bulk_insert_tasks,
and ``heron export`` / ``heron import`` given the server's URI."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pymilvus import connections, utility
from pymilvus.client.types import BulkInsertState

import heron
from heron._cli import main
from tests.test_cli_export import WIRE_INT8, everything
from tests.test_cli_export import full_schema as _full_schema
from tests.test_cli_export import rows_of as _rows_of


def full_schema() -> Any:
    """The schema of many types, without INT8_VECTOR where the protocol modules cannot carry its data."""
    return _full_schema(int8=WIRE_INT8)


def rows_of(n: int) -> list[dict[str, Any]]:
    return _rows_of(n, int8=WIRE_INT8)


def _wait(task: int, alias: str) -> BulkInsertState:
    for _ in range(600):
        state = utility.get_bulk_insert_state(task, using=alias)
        if state.state in (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed):
            return state
        time.sleep(0.05)
    raise AssertionError(f"import task {task} did not end")


def test_pymilvus_do_bulk_insert_imports_an_export_through_the_server(server, tmp_path):
    with heron.Client(server.uri) as c:
        c.create_collection("src", schema=full_schema())
        c.insert("src", rows_of(1500))
        c.create_collection("c", schema=full_schema())
    assert main(["export", server.uri, "src", str(tmp_path / "out"), "--quiet"]) == 0
    alias = uuid.uuid4().hex
    connections.connect(alias, uri=server.uri)
    try:
        task = utility.do_bulk_insert("c", files=[str(tmp_path / "out" / "_default.parquet")], using=alias)
        state = _wait(task, alias)
        assert state.state == BulkInsertState.ImportCompleted, state.infos
        assert state.row_count == 1500 and state.progress == 100
        listed = utility.list_bulk_insert_tasks(collection_name="c", using=alias)
        assert [t.task_id for t in listed] == [task]
    finally:
        connections.disconnect(alias)
    assert everything(server.uri, "c") == everything(server.uri, "src")


def test_a_failed_bulk_insert_reports_its_reason_and_writes_nothing(server, tmp_path):
    with heron.Client(server.uri) as c:
        c.create_collection("c", schema=full_schema())
    rows = [{k: v for k, v in r.items() if k != "name"} for r in rows_of(10)]  # a required field left out
    t = pa.table({"id": [r["id"] for r in rows], "v": [r["v"] for r in rows]})
    pq.write_table(t, tmp_path / "thin.parquet")
    alias = uuid.uuid4().hex
    connections.connect(alias, uri=server.uri)
    try:
        task = utility.do_bulk_insert("c", files=[str(tmp_path / "thin.parquet")], using=alias)
        state = _wait(task, alias)
    finally:
        connections.disconnect(alias)
    assert state.state == BulkInsertState.ImportFailed
    assert "thin.parquet" in state.failed_reason and "'h'" in state.failed_reason
    with heron.Client(server.uri) as c:
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_heron_import_cli_against_a_server(server, tmp_path):
    src = tmp_path / "src"
    with heron.Client(str(src)) as c:
        c.create_collection("c", schema=full_schema())
        c.insert("c", rows_of(700))
    assert main(["export", str(src), "c", str(tmp_path / "out"), "--format", "json", "--quiet"]) == 0
    out = tmp_path / "out"
    assert main(["import", server.uri, "c", str(out), "--create-from", str(out / "schema.json"), "--quiet"]) == 0
    assert everything(server.uri) == everything(str(src))


def test_rest_import_jobs_with_pymilvus_bulk_import(start_server, tmp_path):
    from tests.conftest import require_module
    from tests.server.http_helpers import http_url, post

    bw = require_module("pymilvus.bulk_writer")
    # pymilvus < 2.6's bulk writer looks bfloat16 up by its name (np.dtype("bfloat16")), which only
    # importing ml_dtypes registers (pymilvus 2.6 and 3 import it themselves).
    require_module("ml_dtypes")
    server = start_server("--http-port", "0")
    url = http_url(server)
    with heron.Client(server.uri) as c:
        c.create_collection("c", schema=full_schema())
    with bw.LocalBulkWriter(schema=full_schema(), local_path=str(tmp_path / "w"),
                            file_type=bw.BulkFileType.PARQUET) as w:
        for r in rows_of(400):
            w.append_row(r)
        w.commit()
        files = [list(batch) for batch in w.batch_files]
    job = bw.bulk_import(url, collection_name="c", files=files).json()["data"]["jobId"]
    for _ in range(600):
        progress = bw.get_import_progress(url, job_id=job).json()["data"]
        if progress["state"] in ("Completed", "Failed"):
            break
        time.sleep(0.05)
    assert progress["state"] == "Completed" and progress["progress"] == 100, progress
    assert progress["importedRows"] == 400
    listed = bw.list_import_jobs(url, collection_name="c").json()["data"]["records"]
    assert [r["jobId"] for r in listed] == [job]
    assert sorted(everything(server.uri)) == [r["id"] for r in rows_of(400)]
    bad = post(f"{url}/v2/vectordb/jobs/import/create", {"collectionName": "c", "files": [[str(tmp_path / "no.parquet")]]})
    assert bad["code"] != 0 and "does not exist" in bad["message"]


def test_import_needs_the_import_privilege_on_the_collection(start_server, tmp_path):
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    server = start_server("--auth", "--root-password", "Root-pw-123")
    root = MilvusClient(server.uri, token="root:Root-pw-123")
    with heron.Client(server.uri, token="root:Root-pw-123") as c:
        c.create_collection("c", schema=full_schema())
    pq.write_table(pa.table({"id": [1]}), tmp_path / "one.parquet")
    root.create_user("loader", "pw-123456")
    root.create_role("loaders")
    root.grant_role("loader", "loaders")
    alias = uuid.uuid4().hex
    connections.connect(alias, uri=server.uri, token="loader:pw-123456")
    try:
        try:
            utility.do_bulk_insert("c", files=[str(tmp_path / "one.parquet")], using=alias)
            raise AssertionError("an import without the Import privilege was accepted")
        except MilvusException as exc:
            assert "Import" in str(exc)
        root.grant_privilege("loaders", "Collection", "Import", "c")
        task = utility.do_bulk_insert("c", files=[str(tmp_path / "one.parquet")], using=alias)
        assert _wait(task, alias).state == BulkInsertState.ImportFailed  # admitted; the file lacks fields
    finally:
        connections.disconnect(alias)
        root.close()


def test_heron_import_resumes_after_the_server_is_killed_mid_import(start_server, tmp_path):
    import signal

    import numpy as np

    from tests.test_import_crash import _all_rows, _chunk_lines, _heron, _records, _schema
    from tests.test_import_crash import _rows as _file

    n = 30_000
    vecs = np.random.default_rng(11).random((n, 4), dtype=np.float32)
    path = _file("parquet", tmp_path, vecs, False)
    data = str(tmp_path / "served")
    server = start_server(data=data)
    with heron.Client(server.uri) as c:
        c.create_collection("c", schema=_schema(False))
    cli = _heron("import", server.uri, "c", path, "--quiet", "--chunk-rows", "500")
    try:
        while _chunk_lines(data) < 10 and cli.poll() is None:
            time.sleep(0.0005)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 1, err[-2000:]
    assert _records(data)
    server = start_server(data=data)
    cli = _heron("import", server.uri, "c", path, "--quiet")
    out, err = cli.communicate(timeout=300)
    assert cli.returncode == 0, err[-2000:]
    assert "resumed:" in out, out
    server.stop()
    assert sorted(r["n"] for r in _all_rows(data)) == list(range(0, 7 * n, 7))
    assert not _records(data)
