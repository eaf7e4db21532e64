"""``heron export`` and ``heron import``: files in Milvus's bulk-insert layouts, round trips, all-or-nothing jobs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import heron
from heron import DataType
from heron import _requests as rq
from heron._cli import main

#: Whether the installed protocol modules carry INT8_VECTOR data (pymilvus>=2.6): the server tests need it.
WIRE_INT8 = "int8_vector" in __import__("pymilvus.grpc_gen.schema_pb2", fromlist=["x"]).VectorField.DESCRIPTOR.fields_by_name


def full_schema(numpy_ok: bool = False, int8: bool = True) -> Any:
    """A schema of many types; with ``numpy_ok`` only those numpy bulk files can hold."""
    s = heron.Client.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("h", DataType.FLOAT16_VECTOR, dim=4)
    s.add_field("bf", DataType.BFLOAT16_VECTOR, dim=4)
    s.add_field("b", DataType.BINARY_VECTOR, dim=16)
    if int8:
        s.add_field("i8", DataType.INT8_VECTOR, dim=4)
    s.add_field("j", DataType.JSON)
    s.add_field("name", DataType.VARCHAR, max_length=20)
    s.add_field("x", DataType.DOUBLE)
    s.add_field("flag", DataType.BOOL)
    if not numpy_ok:
        s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("a", DataType.ARRAY, element_type=DataType.INT32, max_capacity=5)
        s.add_field("tag", DataType.VARCHAR, max_length=20, nullable=True)
        s.add_field("nj", DataType.JSON, nullable=True)
    return s


def rows_of(n: int, numpy_ok: bool = False, seed: int = 0, int8: bool = True) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        r: dict[str, Any] = {
            "id": i * 3, "v": rng.random(4, dtype=np.float32).tolist(), "h": [1.5, -2.0, float(i % 50), 0.25],
            "bf": [1.0, 2.5, -float(i % 40), 0.5], "b": bytes([i % 256, (7 * i) % 256]),
            "i8": [1, -2, 3, i % 100], "j": {"k": i, "s": f"é{i}"}, "name": f"n{i}", "x": i / 7, "flag": i % 2 == 0,
            "extra": i * 2,
        }
        if not numpy_ok:
            r.update({"sp": {int(i % 97): 0.5, 100 + i: 1.25}, "a": [i, i + 1][: i % 3],
                      "tag": None if i % 4 == 0 else f"t{i}", "nj": None if i % 5 == 0 else [i, {"z": True}]})
        if not int8:
            del r["i8"]
        out.append(r)
    return out


def make(path: Path, rows: list[dict[str, Any]], numpy_ok: bool = False, partitions: bool = False) -> str:
    with heron.Client(str(path)) as c:
        c.create_collection("c", schema=full_schema(numpy_ok))
        if partitions:
            c.create_partition("c", "p1")
            c.insert("c", rows[: len(rows) // 2])
            c.insert("c", rows[len(rows) // 2:], partition_name="p1")
        else:
            c.insert("c", rows)
    return str(path)


def everything(uri: str, name: str = "c", partition: str | None = None) -> dict[Any, dict[str, Any]]:
    with heron.Client(uri) as c:
        kw = {"partition_names": [partition]} if partition else {}
        got = c.query(name, filter="id >= 0", output_fields=["*"], limit=16384, **kw)
    return {r["id"]: dict(r) for r in got}


@pytest.mark.parametrize("fmt", ["parquet", "json", "csv"])
def test_export_then_import_into_a_fresh_directory_gives_the_same_rows_partitions_and_indexes(tmp_path, fmt):
    src = make(tmp_path / "src", rows_of(3000), partitions=True)
    with heron.Client(src) as c:
        params = c.prepare_index_params()
        params.add_index("v", "HNSW", "v_idx", "COSINE", params={"M": 8, "efConstruction": 64})
        c.create_index("c", params)
    out = tmp_path / "out"
    assert main(["export", src, "c", str(out), "--format", fmt, "--quiet"]) == 0
    manifest = json.loads((out / "schema.json").read_text())
    assert manifest["format"] == fmt and sorted(manifest["files"].values()) == ["_default", "p1"]
    dst = tmp_path / "dst"
    heron.Client(str(dst)).close()
    assert main(["import", str(dst), "c", str(out), "--create-from", str(out / "schema.json"), "--quiet"]) == 0
    assert everything(str(dst)) == everything(src)
    for p in ("_default", "p1"):
        assert everything(str(dst), partition=p) == everything(src, partition=p)
    with heron.Client(str(dst)) as c:
        idx = c.describe_index("c", "v_idx")
    assert (idx["index_type"], idx["metric_type"]) == ("HNSW", "COSINE")


def test_parquet_is_laid_out_as_the_bulk_writer_writes_it(tmp_path):
    src = make(tmp_path / "src", rows_of(10))
    assert main(["export", src, "c", str(tmp_path / "out"), "--quiet"]) == 0
    t = pq.read_table(tmp_path / "out" / "_default.parquet")
    types = dict(zip(t.schema.names, t.schema.types, strict=True))
    assert types["v"] == pa.list_(pa.float32()) and types["h"] == pa.list_(pa.uint8())
    assert types["b"] == pa.list_(pa.uint8()) and types["i8"] == pa.list_(pa.int8())
    assert types["j"] == pa.string() and types["sp"] == pa.string() and types["$meta"] == pa.string()
    row = t.slice(1, 1).to_pylist()[0]
    assert np.frombuffer(bytes(row["h"]), "<f2").tolist() == [1.5, -2.0, 1.0, 0.25]
    assert json.loads(row["$meta"]) == {"extra": 2} and json.loads(row["j"]) == {"k": 1, "s": "é1"}


def test_numpy_columns_round_trip_one_npy_per_field(tmp_path):
    rows = rows_of(2500, numpy_ok=True)
    src = make(tmp_path / "src", rows, numpy_ok=True)
    assert main(["export", src, "c", str(tmp_path / "out"), "--format", "numpy", "--quiet"]) == 0
    folder = tmp_path / "out" / "_default"
    assert sorted(os.listdir(folder)) == sorted(f"{n}.npy" for n in
                                                ["id", "v", "h", "bf", "b", "i8", "j", "name", "x", "flag", "$meta"])
    assert np.load(folder / "v.npy").shape == (2500, 4) and np.load(folder / "b.npy").shape == (2500, 2)
    dst = tmp_path / "dst"
    with heron.Client(str(dst)) as c:
        c.create_collection("c", schema=full_schema(numpy_ok=True))
    assert main(["import", str(dst), "c", str(folder), "--quiet"]) == 0
    assert everything(str(dst)) == everything(src)


def test_numpy_refuses_what_numpy_files_cannot_hold(tmp_path, capsys):
    src = make(tmp_path / "src", rows_of(5))
    assert main(["export", src, "c", str(tmp_path / "out"), "--format", "numpy"]) == 1
    assert "field 'sp'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_filter_exports_only_matching_rows(tmp_path):
    src = make(tmp_path / "src", rows_of(400))
    assert main(["export", src, "c", str(tmp_path / "out"), "--format", "json", "--filter", "id < 300", "--quiet"]) == 0
    doc = json.loads((tmp_path / "out" / "_default.json").read_text())
    assert sorted(r["id"] for r in doc["rows"]) == list(range(0, 300, 3))


def _import(uri: str, files: list[str]) -> dict[str, Any]:
    with heron.Client(uri) as c:
        job = c._call(rq.ImportFiles("default", "c", tuple(files)), None)
        for _ in range(600):
            state = c._call(rq.GetImportProgress(job), None)
            if state["state_name"] in ("Completed", "Failed"):
                return dict(state)
            time.sleep(0.05)
    raise AssertionError("import job did not end")


def test_a_bad_row_fails_the_whole_job_naming_file_field_and_row(tmp_path):
    src = make(tmp_path / "src", rows_of(20000))
    assert main(["export", src, "c", str(tmp_path / "out"), "--quiet"]) == 0
    good = str(tmp_path / "out" / "_default.parquet")
    t = pq.read_table(good)
    vs = t.column("v").to_pylist()
    vs[17000] = [1.0, 2.0]  # a vector of the wrong dimension, in the file's third chunk
    bad = str(tmp_path / "bad.parquet")
    pq.write_table(t.set_column(t.schema.get_field_index("v"), "v", pa.array(vs, pa.list_(pa.float32()))), bad)
    dst = tmp_path / "dst"
    with heron.Client(str(dst)) as c:
        c.create_collection("c", schema=full_schema())
    state = _import(str(dst), [good, bad])
    assert state["state_name"] == "Failed", state
    assert "bad.parquet" in state["reason"] and "'v'" in state["reason"] and "row 17000" in state["reason"]
    with heron.Client(str(dst)) as c:
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 0
    assert main(["import", str(dst), "c", bad, "--quiet"]) == 1


def test_missing_files_are_refused_before_a_job_starts(tmp_path):
    src = make(tmp_path / "src", rows_of(3))
    with heron.Client(src) as c, pytest.raises(heron.ParamError, match="does not exist"):
        c._call(rq.ImportFiles("default", "c", (str(tmp_path / "nope.parquet"),)), None)


def test_any_parquet_or_jsonl_imports_with_a_column_map(tmp_path):
    s = heron.Client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=3)
    s.add_field("title", DataType.VARCHAR, max_length=20)
    dst = tmp_path / "dst"
    with heron.Client(str(dst)) as c:
        c.create_collection("c", schema=s)
    pq.write_table(pa.table({"key": [1, 2], "emb": [[0.5, 1.0, 2.0], [1.0, 0.0, 0.25]], "name": ["a", "b"],
                             "junk": [0, 0]}), tmp_path / "other.parquet")
    (tmp_path / "other.jsonl").write_text('{"key": 3, "emb": [1, 2, 3], "name": "c", "junk": 1}\n')
    args = ["--map", "key=id", "--map", "emb=vector", "--map", "name=title", "--map", "junk=", "--quiet"]
    assert main(["import", str(dst), "c", str(tmp_path / "other.parquet"), str(tmp_path / "other.jsonl"), *args]) == 0
    got = everything(str(dst))
    assert got[2] == {"id": 2, "vector": [1.0, 0.0, 0.25], "title": "b"} and got[3]["title"] == "c"
    assert main(["import", str(dst), "c", str(tmp_path / "other.parquet"), "--map", "nonsense", "--quiet"]) == 1


@pytest.mark.parametrize("fmt", ["parquet", "json", "csv", "numpy"])
def test_an_empty_collection_exports_and_imports_as_empty(tmp_path, fmt):
    src = make(tmp_path / "src", [], numpy_ok=True)
    assert main(["export", src, "c", str(tmp_path / "out"), "--format", fmt, "--quiet"]) == 0
    dst = tmp_path / "dst"
    heron.Client(str(dst)).close()
    out = tmp_path / "out"
    assert main(["import", str(dst), "c", str(out), "--create-from", str(out / "schema.json"), "--quiet"]) == 0
    assert everything(str(dst)) == {}


def test_errors_are_one_line(tmp_path, capsys):
    src = make(tmp_path / "src", rows_of(2))
    assert main(["export", src, "nope", str(tmp_path / "out")]) == 1
    assert main(["import", src, "nope", str(tmp_path / "x.parquet")]) == 1
    assert main(["import", src, "c", str(tmp_path / "x.parquet")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "nope" in lines[0] and "nope" in lines[1] and "does not exist" in lines[2], lines
