"""The import RPC codecs translate both ways without loss (pure, no server)."""

from __future__ import annotations

from heron import _requests as rq
from heron import wire


def _no_schema(name: str):
    raise AssertionError("the import codecs read no schema")


def test_import_request_round_trips():
    r = rq.ImportFiles("db1", "c", ("/a/x.parquet", "/b/id.npy", "/b/v.npy"), "p1", {"sep": "|", "column_map": "{}"})
    codec = wire.CODECS["Import"]
    msg = codec.request(r, _no_schema)
    assert codec.decode(msg, "db1", _no_schema) == r
    assert codec.result(codec.encode(123, r, _no_schema), r) == 123


def test_job_descriptions_round_trip_through_get_import_state_and_list():
    job = {"job_id": 77, "db_name": "db1", "collection_name": "c", "partition_name": "p1", "state": 1,
           "state_name": "Failed", "progress": 50, "imported_rows": 0, "skipped_rows": 4096,
           "reason": "file 'x': field 'v' in row 3: bad",
           "files": [["/a/x.parquet"]], "create_ts": 1700000000}
    get, listing = wire.CODECS["GetImportState"], wire.CODECS["ListImportTasks"]
    req = rq.GetImportProgress(77)
    assert get.decode(get.request(req, _no_schema), "", _no_schema) == req
    assert get.result(get.encode(job, req, _no_schema), req) == {**job, "db_name": ""}
    lreq = rq.ListImports("db1", "c", 5)
    assert listing.decode(listing.request(lreq, _no_schema), "db1", _no_schema) == lreq
    assert listing.result(listing.encode([job, job], lreq, _no_schema), lreq) == [job, job]
