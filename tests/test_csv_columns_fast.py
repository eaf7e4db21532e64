"""CSV import converts whole columns at once where that is exact, and value by value (naming the row) elsewhere."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

import heron
from heron import DataType
from heron import _requests as rq
from heron._schema import FieldSchema
from heron.data._text_columns import text_column, vector_texts


def _field(dtype: DataType, **kw: Any) -> FieldSchema:
    s = heron.Client.create_schema()
    s.add_field("f", dtype, **kw)
    return s.fields[0]


def test_vectors_parse_as_one_json_parser_reads_each_value():
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((300, 7)) * 10.0 ** rng.integers(-30, 30, (300, 7))
    texts = [orjson.dumps(v.tolist()).decode() if i % 3 else "[ " + " , ".join(map(repr, v.tolist())) + " ]"
             for i, v in enumerate(vecs)]
    want = np.array([orjson.loads(t) for t in texts], dtype=np.float64)
    compact = [orjson.dumps(v.tolist()).decode() for v in vecs]  # all without spaces: split and cast by pyarrow
    for column in (texts, compact):
        got = vector_texts(pa.array(column), 7)
        assert got is not None and got.dtype == np.float64 and np.array_equal(got, want)
    sliced = pa.array(texts).slice(100, 50)  # an Arrow slice starts its offsets past 0
    assert np.array_equal(vector_texts(sliced, 7), want[100:150])  # type: ignore[arg-type]


@pytest.mark.parametrize("texts", [
    ["[1,2]", "[3]"],  # a row of another length
    ["[1,2,3]", "[4]"],  # two rows whose lengths add up
    ["[1,2]", None],  # a null vector
    ["[1,2]", "[3,NaN]"],  # not JSON
    ["[1,2]", "[3,null]"],
    ["[1,[2]]", "[3,4]"],  # nested
    ['[1,{"a":1}]', "[3,4]"],
    ['[1,"a,b"]', "[3,4]"],
    ["[1,2][3]", "[3,4]"],
    ["[]", "[3,4]"],
    ["1,2", "[3,4]"],
    ["[1,2]", "[3,1e999]"],  # not finite
    ["[1,2]", "[3, 1e999]"],
    ["[1,2]", "[.5,1]"],  # not JSON numbers
    ["[1,2]", "[+5,1]"],
    ["[1,2]", "[ 5,1.]"],
])
def test_vectors_that_are_not_flat_lists_of_dim_numbers_fall_back(texts):
    assert vector_texts(pa.array(texts, pa.string()), 2) is None


def test_numbers_are_taken_whole_only_when_written_as_json_numbers():
    i64, dbl, flag = _field(DataType.INT64), _field(DataType.DOUBLE), _field(DataType.BOOL)
    assert text_column(i64, pa.array(["1", "-20", None, "0"])).to_pylist() == [1, -20, None, 0]
    for bad in (["1", "01"], ["+1"], ["1.0"], ["1e3"], ["x"], ["99999999999999999999"]):
        assert text_column(i64, pa.array(bad)) is None, bad
    assert text_column(dbl, pa.array(["1.5", "-2e-3", "7", None])).to_pylist() == [1.5, -0.002, 7.0, None]
    for bad in (["nan"], ["inf"], [".5"], ["1."], ["1e999"]):
        assert text_column(dbl, pa.array(bad)) is None, bad
    assert list(text_column(flag, pa.array(["True", "false", "true", "False"]))) == [True, False, True, False]
    assert text_column(flag, pa.array(["True", None])).to_pylist() == [True, None]
    assert text_column(flag, pa.array(["1"])) is None
    assert text_column(None, pa.array(["1"])) is None  # a dynamic column: its values are JSON


def _schema() -> Any:
    s = heron.Client.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("i8", DataType.INT8_VECTOR, dim=2)
    s.add_field("name", DataType.VARCHAR, max_length=20)
    s.add_field("x", DataType.DOUBLE, nullable=True)
    s.add_field("small", DataType.INT8)
    s.add_field("flag", DataType.BOOL)
    s.add_field("j", DataType.JSON)
    return s


def _write_csv(path: Path, n: int, bad: dict[int, dict[str, str]] | None = None) -> str:
    rng = np.random.default_rng(5)
    lines = ['"id","v","i8","name","x","small","flag","j","$meta"']
    for i in range(n):
        cells = {"id": str(i), "v": orjson.dumps(rng.random(4, dtype=np.float32).tolist()).decode(),
                 "i8": f"[{i % 100}, -3]", "name": f"n,{i}", "x": "" if i % 7 == 0 else repr(i / 3),
                 "small": str(i % 100), "flag": "True" if i % 2 else "False", "j": orjson.dumps({"k": i}).decode(),
                 "$meta": orjson.dumps({"extra": i}).decode()}
        cells.update((bad or {}).get(i, {}))
        lines.append(",".join('"' + c.replace('"', '""') + '"' if c else "" for c in cells.values()))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _run_import(c: Any, files: list[str]) -> dict[str, Any]:
    job = c._call(rq.ImportFiles("default", "c", tuple(files)), None)
    for _ in range(3000):
        state = c._call(rq.GetImportProgress(job), None)
        if state["state_name"] in ("Completed", "Failed"):
            return state  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise AssertionError("the import job did not finish")


def test_a_csv_import_holds_the_rows_the_file_gives(tmp_path):
    path = _write_csv(tmp_path / "rows.csv", 3000)
    with heron.Client(str(tmp_path / "db")) as c:
        c.create_collection("c", schema=_schema())
        assert _run_import(c, [path])["state_name"] == "Completed"
        got = {r["id"]: r for r in c.query("c", filter="id >= 0", output_fields=["*"], limit=16384)}
    assert len(got) == 3000
    table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={k: pa.string() for k in ("v", "i8", "name", "x", "j", "$meta", "small", "flag", "id")},
        strings_can_be_null=True))
    for r in table.to_pylist():
        g = got[int(r["id"])]
        assert np.array_equal(np.asarray(g["v"], np.float32), np.asarray(orjson.loads(r["v"]), np.float32))
        assert list(g["i8"]) == orjson.loads(r["i8"]) and g["name"] == r["name"]
        assert g["x"] == (None if r["x"] is None else float(r["x"]))
        assert (g["small"], g["flag"]) == (int(r["small"]), r["flag"] == "True")
        assert g["j"] == orjson.loads(r["j"]) and g["extra"] == orjson.loads(r["$meta"])["extra"]


@pytest.mark.parametrize(("bad", "words"), [
    ({"v": "[1.0, 2.0, 3.0]"}, ["'v'", "row 2345", "3 values"]),
    ({"i8": "[1, 300]"}, ["'i8'", "-128..127"]),  # the batch builder checks the range of the whole column
    ({"x": "nan"}, ["'x'", "row 2345", "'nan'"]),
    ({"small": "1000"}, ["'small'", "row 2345"]),
    ({"flag": "maybe"}, ["'flag'", "row 2345"]),
    ({"v": "[1.0, 2.0, x, 4.0]"}, ["'v'", "row 2345"]),
])
def test_a_bad_value_fails_the_job_naming_file_field_and_row_and_writes_nothing(tmp_path, bad, words):
    path = _write_csv(tmp_path / "rows.csv", 3000, {2345: bad})
    with heron.Client(str(tmp_path / "db")) as c:
        c.create_collection("c", schema=_schema())
        state = _run_import(c, [path])
        assert state["state_name"] == "Failed"
        assert "rows.csv" in state["reason"] and all(w in state["reason"] for w in words), state["reason"]
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_a_long_column_is_converted_in_slices_with_the_same_answer_and_the_same_refusals():
    rng = np.random.default_rng(11)
    vecs = rng.standard_normal((9000, 3))
    texts = [orjson.dumps(v.tolist()).decode() for v in vecs]
    want = np.array([orjson.loads(t) for t in texts])
    assert np.array_equal(vector_texts(pa.array(texts), 3), want)  # type: ignore[arg-type]
    spaced = texts[:7000] + [texts[7000].replace(",", ", ")] + texts[7001:]  # one slice has spaces
    assert np.array_equal(vector_texts(pa.array(spaced), 3), want)  # type: ignore[arg-type]
    for bad in ("[1,2]", "[1,2,3,4]", "[1,2,x]", "[1,2,01]"):
        assert vector_texts(pa.array(texts[:8500] + [bad] + texts[8501:]), 3) is None, bad
