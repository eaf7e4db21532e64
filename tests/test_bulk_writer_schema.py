"""pymilvus's ``LocalBulkWriter`` takes a Heron schema, and Heron imports the files it writes."""

from __future__ import annotations

import pytest

import heron
from tests.conftest import require_module
from tests.test_cli_export import _import, everything, full_schema, rows_of


@pytest.mark.parametrize("kind", ["PARQUET", "JSON", "CSV"])
def test_local_bulk_writer_files_from_a_heron_schema_import_into_heron(tmp_path, kind):
    bw = require_module("pymilvus.bulk_writer")
    ft = getattr(bw.BulkFileType, kind)
    schema = full_schema()
    rows = rows_of(300)
    dst = tmp_path / "dst"
    with heron.Client(str(dst)) as c:
        c.create_collection("c", schema=schema)
    with bw.LocalBulkWriter(schema=schema, local_path=str(tmp_path / "w"), file_type=ft) as w:
        for r in rows:
            w.append_row(dict(r))
        w.commit()
        files = [f for batch in w.batch_files for f in batch]
    state = _import(str(dst), files)
    assert state["state_name"] == "Completed", state["reason"]
    got = everything(str(dst))
    assert sorted(got) == sorted(r["id"] for r in rows)
    sample = got[30]
    assert sample["j"] == {"k": 10, "s": "é10"} and sample["extra"] == 20 and sample["h"] == [1.5, -2.0, 10.0, 0.25]
    assert sample["b"] == bytes([10, 70]) and sample["sp"] == {10: 0.5, 110: 1.25} and sample["tag"] == "t10"


def test_heron_fields_answer_what_the_bulk_writer_reads():
    s = full_schema()
    by = {f.name: f for f in s.fields}
    assert by["v"].params["dim"] == 4 and by["name"].params["max_length"] == 20 and by["a"].params["max_capacity"] == 5
    assert "dim" not in by["v"].params and by["v"].params.get("dim") is None  # the stored params are unchanged
    assert not any(f.is_function_output for f in s.fields)
    with pytest.raises(KeyError):
        by["id"].params["dim"]
