"""A resumed import reads its files from a chunk on: the same chunks, with the same rows, as a read from row 0."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

import heron
from heron.engine._import_readers import read_group


def _schema() -> heron.CollectionSchema:
    s = heron.Client.create_schema()
    s.add_field("id", heron.DataType.INT64, is_primary=True)
    s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
    return s


def _files(tmp_path, n: int) -> dict[str, list[str]]:
    ids = np.arange(n)
    vecs = np.stack([ids, -ids], axis=1).astype(np.float32)
    table = pa.table({"id": ids, "v": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 2)})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=1_234)
    rows = [{"id": int(i), "v": vecs[i].tolist()} for i in ids]
    (tmp_path / "a.json").write_text(json.dumps({"rows": rows}))
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pcsv.write_csv(pa.table({"id": ids, "v": [json.dumps(v) for v in vecs.tolist()]}), tmp_path / "a.csv")
    np.save(tmp_path / "id.npy", ids)
    np.save(tmp_path / "v.npy", vecs)
    return {"parquet": [str(tmp_path / "a.parquet")], "json": [str(tmp_path / "a.json")],
            "jsonl": [str(tmp_path / "a.jsonl")], "csv": [str(tmp_path / "a.csv")],
            "numpy": [str(tmp_path / "id.npy"), str(tmp_path / "v.npy")]}


def _chunks(group: list[str], chunk: int, start: int = 0) -> list[tuple[int, int, list[int], list[float]]]:
    out = []
    for first, cols, n in read_group(_schema(), group, ",", "", chunk, start):
        ids = np.asarray(cols["id"]).tolist() if not hasattr(cols["id"], "to_pylist") else cols["id"].to_pylist()
        out.append((first, n, ids, np.asarray(cols["v"], dtype=np.float32)[:, 0].tolist()))
    return out


@pytest.mark.parametrize("fmt", ["parquet", "json", "jsonl", "csv", "numpy"])
def test_reading_from_a_chunk_gives_the_chunks_from_there_of_a_read_from_row_zero(tmp_path, fmt):
    n, chunk = 5_000, 300
    group = _files(tmp_path, n)[fmt]
    whole = _chunks(group, chunk)
    assert [r for c in whole for r in c[2]] == list(range(n))
    for i in [1, 4, 5, 8, 16, len(whole) - 1, len(whole)]:
        start = whole[i][0] if i < len(whole) else n
        assert _chunks(group, chunk, start) == whole[i:], (fmt, start)
