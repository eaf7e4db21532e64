"""`insert`'s docstring names every input shape it takes, and each shape it names is taken."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

import heron
from tests.conftest import require_module

ROWS = [{"id": 1, "vector": [1.0, 2.0]}, {"id": 2, "vector": [3.0, 4.0]}]
COLUMNS = {"id": [1, 2], "vector": [[1.0, 2.0], [3.0, 4.0]]}


def _shapes() -> dict[str, object]:
    pd = require_module("pandas")
    pl = require_module("polars")
    return {
        "row dict": ROWS[0],
        "list of them": ROWS,
        "dict of columns": COLUMNS,
        "pandas": pd.DataFrame(COLUMNS),
        "polars DataFrame": pl.DataFrame(COLUMNS),
        "pyarrow Table": pa.table(COLUMNS),
        "RecordBatch": pa.RecordBatch.from_pydict(COLUMNS),
    }


@pytest.mark.parametrize("cls", [heron.Client, heron.AsyncClient])
def test_the_insert_docstring_names_every_input_shape(cls):
    doc = re.sub(r"\s+", " ", cls.insert.__doc__ or "")
    missing = [name for name in _shapes() if name not in doc]
    assert missing == [], doc


def test_every_input_shape_the_docstring_names_inserts_the_same_rows(tmp_path):
    with heron.Client(str(tmp_path / "db")) as c:
        for i, (name, data) in enumerate(_shapes().items()):
            c.create_collection(f"c{i}", dimension=2)
            res = c.insert(f"c{i}", data)
            want = ROWS[:1] if name == "row dict" else ROWS
            assert res["insert_count"] == len(want), name
            got = c.query(f"c{i}", filter="id > 0", output_fields=["vector"])
            assert sorted((r["id"], r["vector"]) for r in got) == [(r["id"], r["vector"]) for r in want], name
