"""``heron copy``: collections with schema, partitions, indexes, aliases and rows, URI to URI, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import heron
from heron import DataType
from heron._cli import _copy, main
from heron._cli._copy_checks import check_target, target_version
from heron._errors import HeronError
from tests.conftest import HERON_SRC, ROOT
from tests.test_bulk_roundtrip_property import collections
from tests.test_cli_export import WIRE_INT8

#: Index definitions per vector type: (index_type, metric_type, params).
INDEXES: dict[DataType, list[tuple[str, str, dict[str, Any]]]] = {
    DataType.FLOAT_VECTOR: [("FLAT", "L2", {}), ("HNSW", "COSINE", {"M": 8, "efConstruction": 40}),
                            ("IVF_FLAT", "IP", {"nlist": 4})],
    DataType.FLOAT16_VECTOR: [("FLAT", "L2", {}), ("HNSW", "IP", {"M": 4, "efConstruction": 16})],
    DataType.BFLOAT16_VECTOR: [("FLAT", "COSINE", {}), ("HNSW", "L2", {"M": 6, "efConstruction": 20})],
    DataType.BINARY_VECTOR: [("BIN_FLAT", "HAMMING", {}), ("BIN_IVF_FLAT", "JACCARD", {"nlist": 2})],
    DataType.INT8_VECTOR: [("HNSW", "L2", {"M": 4, "efConstruction": 16})],
    DataType.SPARSE_FLOAT_VECTOR: [("SPARSE_INVERTED_INDEX", "IP", {"drop_ratio_build": 0.0})],
}
VOLATILE = ("created_timestamp", "update_timestamp", "collection_id")


def described(uri: str, name: str) -> dict[str, Any]:
    """What a copy must keep: the description (without ids and times), partitions, indexes, aliases."""
    with heron.Client(uri) as c:
        d = {k: v for k, v in c.describe_collection(name).items() if k not in VOLATILE}
        indexes = {}
        for i in c.list_indexes(name):
            x = dict(c.describe_index(name, i))
            indexes[i] = {k: v for k, v in x.items() if k not in ("total_rows", "indexed_rows", "pending_index_rows",
                                                                  "state")}
        return {"collection": d, "partitions": sorted(c.list_partitions(name)), "indexes": indexes,
                "aliases": sorted(c.list_aliases(name)["aliases"])}


def rows_by_partition(uri: str, name: str) -> dict[str, dict[Any, dict[str, Any]]]:
    with heron.Client(uri) as c:
        out = {}
        for p in c.list_partitions(name):
            got = c.query(name, filter="", output_fields=["*"], partition_names=[p], limit=16384)
            out[p] = {r["id"]: dict(r) for r in got}
            assert len(out[p]) == len(got)  # no key twice
        return out


@st.composite
def layouts(draw: Any) -> tuple[Any, list[dict[str, Any]], list[str], list[int], list[tuple[str, ...]]]:
    """A random collection (schema, rows) with random partitions, a partition per row and vector indexes."""
    schema, rows, _ = draw(collections())
    if not WIRE_INT8 and any(f.dtype is DataType.INT8_VECTOR for f in schema.fields):
        schema.fields[:] = [f for f in schema.fields if f.dtype is not DataType.INT8_VECTOR]
        rows = [{k: v for k, v in r.items() if k != "v_int8_vector"} for r in rows]
    partitions = draw(st.lists(st.sampled_from(["p1", "p_two", "third"]), max_size=2, unique=True))
    where = [draw(st.integers(0, len(partitions))) for _ in rows]
    indexes = []
    for f in schema.fields:
        if f.dtype in INDEXES and draw(st.booleans()):
            kind, metric, params = draw(st.sampled_from(INDEXES[f.dtype]))
            indexes.append((f.name, kind, metric, json.dumps(params)))
    return schema, rows, partitions, where, indexes


def make_source(path: str, schema: Any, rows: list[dict[str, Any]], partitions: list[str], where: list[int],
                indexes: list[tuple[str, ...]]) -> None:
    with heron.Client(path) as c:
        params = c.prepare_index_params()
        for field, kind, metric, extra in indexes:
            params.add_index(field, index_type=kind, metric_type=metric, index_name=f"ix_{field}",
                             params=json.loads(extra))
        c.create_collection("c", schema=schema, index_params=params if indexes else None,
                            properties={"collection.ttl.seconds": 0}, consistency_level="Bounded")
        for p in partitions:
            c.create_partition("c", p)
        c.create_alias("c", "c_alias")
        names = ["_default", *partitions]
        for i, p in enumerate(names):
            part = [r for r, w in zip(rows, where) if w == i]
            if part:
                c.insert("c", part, partition_name=p)


def test_embedded_to_serve_to_embedded_keeps_rows_partitions_and_indexes_over_random_schemas(start_server):
    server = start_server()
    seen = [0]

    @settings(max_examples=10, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(layouts(), st.integers(1, 9))
    def round_trip(case: Any, batch: int) -> None:
        schema, rows, partitions, where, indexes = case
        seen[0] += 1
        with tempfile.TemporaryDirectory() as root:
            src, back = os.path.join(root, "src"), os.path.join(root, "back")
            make_source(src, schema, rows, partitions, where, indexes)
            state = os.path.join(root, "to-server.json")
            with heron.Client(server.uri) as s:  # one server for every example: start from an empty one
                for name in s.list_collections():
                    for a in s.list_aliases(name)["aliases"]:
                        s.drop_alias(a)
                    s.drop_collection(name)
            assert main(["copy", src, server.uri, "--batch", str(batch), "--state", state, "--quiet"]) == 0
            assert main(["copy", server.uri, back, "--batch", str(batch + 3), "--quiet"]) == 0
            assert described(back, "c") == described(src, "c")
            assert described(server.uri, "c") == described(src, "c")
            assert rows_by_partition(back, "c") == rows_by_partition(src, "c")

    round_trip()
    assert seen[0] >= 5


def many(path: str, n: int, *, varchar: bool = False) -> None:
    s = heron.Client.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.VARCHAR if varchar else DataType.INT64, is_primary=True, max_length=12)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=8)
    s.add_field("tag", DataType.VARCHAR, max_length=16)
    rng = np.random.default_rng(1)
    with heron.Client(path) as c:
        idx = c.prepare_index_params()
        idx.add_index("v", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
        c.create_collection("c", schema=s, index_params=idx)
        c.create_partition("c", "p")
        vecs = rng.random((n, 8), dtype=np.float32)
        for lo in range(0, n, 5000):
            hi = min(n, lo + 5000)
            ids = [f"{i:08d}" if varchar else i for i in range(lo, hi)]
            c.insert("c", [{"id": ids[j - lo], "v": vecs[j], "tag": f"t{j % 7}", "k": j}
                           for j in range(lo, hi)], partition_name="p" if lo % 10000 else "_default")


def test_a_copy_killed_mid_way_goes_on_when_rerun_and_no_row_is_lost_or_doubled(tmp_path):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    many(src, 20000)
    cmd = [sys.executable, "-m", "heron", "copy", src, dst, "--batch", "100", "--quiet"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERON_SRC, str(ROOT)])}
    child = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state = Path(dst) / "copy-state.json"
    end = time.monotonic() + 120
    copied = 0
    while time.monotonic() < end and child.poll() is None:
        try:
            parts = json.loads(state.read_text())["collections"]["c"]["partitions"]
            copied = sum(p["rows"] for p in parts.values())
        except (OSError, ValueError, KeyError):
            copied = 0
        if copied >= 3000:
            break
        time.sleep(0.02)
    assert child.poll() is None, "the copy ended before it could be killed: " + child.stderr.read().decode()
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    parts = json.loads(state.read_text())["collections"]["c"]["partitions"]
    assert 3000 <= sum(p["rows"] for p in parts.values()) < 20000
    assert main(["copy", src, dst, "--batch", "700", "--quiet"]) == 0
    assert rows_by_partition(dst, "c") == rows_by_partition(src, "c")
    assert described(dst, "c") == described(src, "c")


def test_a_crash_between_an_insert_and_its_record_leaves_no_row_doubled(tmp_path, monkeypatch):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    many(src, 12000, varchar=True)
    real = _copy.CopyState.save
    calls = [0]

    def crash_after_some(self: Any) -> None:
        calls[0] += 1
        if calls[0] == 9:  # the 9th record: an insert landed whose key is not recorded
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr(_copy.CopyState, "save", crash_after_some)
    assert main(["copy", src, dst, "--batch", "1000", "--quiet"]) == 130
    monkeypatch.setattr(_copy.CopyState, "save", real)
    with heron.Client(dst) as c:
        stored = int(c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"])
    recorded = sum(p["rows"] for p in json.loads((Path(dst) / "copy-state.json").read_text())
                   ["collections"]["c"]["partitions"].values())
    assert stored == recorded + 1000  # the page whose record was lost is there
    assert main(["copy", src, dst, "--batch", "1000", "--quiet"]) == 0
    assert rows_by_partition(dst, "c") == rows_by_partition(src, "c")


def test_functions_partition_key_auto_id_and_properties_are_copied(tmp_path, capsys):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    with heron.Client(src) as c:
        s = c.create_schema(auto_id=True)
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
        s.add_field("group", DataType.INT64, is_partition_key=True)
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(heron.Function(name="bm25", function_type=heron.FunctionType.BM25,
                                      input_field_names=["text"], output_field_names=["sparse"]))
        idx = c.prepare_index_params()
        idx.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 1.5})
        c.create_collection("docs", schema=s, index_params=idx, num_partitions=4,
                            properties={"collection.ttl.seconds": 3600})
        c.insert("docs", [{"text": f"word{i % 13} shared text", "group": i % 5} for i in range(300)])
        c.create_collection("other", dimension=4)
        c.insert("other", [{"id": i, "vector": [i, 0, 0, 1]} for i in range(10)])
    assert main(["copy", src, dst, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "docs: 300 rows" in out and "no rows compared" in out and "other: 10 rows" in out
    for name in ("docs", "other"):
        want, got = described(src, name), described(dst, name)
        assert got == want
    with heron.Client(src) as a, heron.Client(dst) as b:
        hits = [c.search("docs", data=["word3"], anns_field="sparse", limit=30, output_fields=["text", "group"])
                for c in (a, b)]
        assert sorted((h["entity"]["text"], h["entity"]["group"]) for h in hits[0][0]) == \
            sorted((h["entity"]["text"], h["entity"]["group"]) for h in hits[1][0])


# -- refusals ----------------------------------------------------------------------------------------------


def test_a_collection_the_source_lacks_is_refused_in_one_line(tmp_path, capsys):
    many(str(tmp_path / "src"), 10)
    assert main(["copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--collection", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("heron copy: collection 'nope' does not exist on") and err.count("\n") == 1


def test_a_collection_already_on_the_destination_is_not_touched(tmp_path, capsys):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    many(src, 50)
    with heron.Client(dst) as c:
        c.create_collection("c", dimension=8)
        c.insert("c", [{"id": 1, "vector": [0.0] * 8}])
    assert main(["copy", src, dst, "--quiet"]) == 1
    assert "collection 'c' already exists on the destination" in capsys.readouterr().err
    with heron.Client(dst) as c:
        assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == 1


def test_a_state_file_of_another_copy_is_refused(tmp_path, capsys):
    many(str(tmp_path / "src"), 10)
    state = tmp_path / "s.json"
    state.write_text(json.dumps({"src": "/elsewhere", "dst": str(tmp_path / "dst"), "db": "default",
                                 "collections": {}}))
    assert main(["copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--state", str(state)]) == 1
    assert "is of a copy with src '/elsewhere'" in capsys.readouterr().err
    state.write_text("{not json")
    assert main(["copy", str(tmp_path / "src"), str(tmp_path / "dst"), "--state", str(state)]) == 1
    assert "is not valid JSON" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value"), [("--batch", "0"), ("--batch", "20000"), ("--sample", "-1")])
def test_bad_numbers_are_refused(tmp_path, capsys, option, value):
    many(str(tmp_path / "src"), 10)
    assert main(["copy", str(tmp_path / "src"), str(tmp_path / "dst"), option, value]) == 1
    assert f"{option}: got {value}" in capsys.readouterr().err
    assert not (tmp_path / "dst").exists()


def test_a_destination_that_is_not_a_data_directory_is_refused(tmp_path, capsys):
    many(str(tmp_path / "src"), 10)
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "notes.txt").write_text("mine")
    assert main(["copy", str(tmp_path / "src"), str(tmp_path / "dst")]) == 1
    assert "exists and is not a Heron data directory" in capsys.readouterr().err


class _Version:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get_server_version(self, detail: bool = False) -> Any:
        if detail and isinstance(self.answer, Exception):
            raise self.answer
        return {"version": self.answer} if detail else "v2.3.5"


def test_the_destination_version_is_read_from_its_answer(tmp_path):
    assert target_version(_Version("heron-0.1.0")) is None
    assert target_version(_Version("v2.4.13")) == (2, 4)
    assert target_version(_Version(RuntimeError("no Connect"))) == (2, 3)
    with heron.Client(str(tmp_path / "d")) as c:
        assert target_version(c) is None


@pytest.mark.parametrize(("field", "kwargs", "said"), [
    ("sp", {"datatype": DataType.SPARSE_FLOAT_VECTOR}, "field 'sp' is SPARSE_FLOAT_VECTOR"),
    ("h", {"datatype": DataType.FLOAT16_VECTOR, "dim": 4}, "field 'h' is FLOAT16_VECTOR"),
    ("n", {"datatype": DataType.INT32, "nullable": True}, "field 'n' is nullable"),
    ("w", {"datatype": DataType.FLOAT_VECTOR, "dim": 4}, "fields 'v', 'w' are 2 vector fields"),
    ("d", {"datatype": DataType.INT32, "default_value": 3}, "field 'd' has a default value"),
])
def test_what_milvus_2_3_cannot_hold_is_refused_naming_the_field(field, kwargs, said):
    s = heron.Client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field(field, **kwargs)
    indexes = [{"field_name": f.name} for f in s.fields if f.dtype >= DataType.BINARY_VECTOR]
    with pytest.raises(HeronError, match=said) as e:
        check_target(s, indexes, (2, 3), "c")
    assert "Milvus 2.3" in str(e.value) and "nothing was copied" in str(e.value)
    check_target(s, indexes, (2, 6), "c")
    check_target(s, indexes, None, "c")


def test_an_unindexed_vector_field_is_refused_for_milvus(tmp_path):
    s = heron.Client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    with pytest.raises(HeronError, match="vector field 'v' has no index"):
        check_target(s, [], (2, 3), "c")


def test_every_collection_is_checked_before_the_first_is_written(tmp_path, capsys):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    with heron.Client(src) as c:
        for name in ("a", "b"):
            c.create_collection(name, dimension=4)
            c.insert(name, [{"id": 1, "vector": [1.0, 0, 0, 0]}])
    with heron.Client(dst) as c:
        c.create_collection("b", dimension=4)
    assert main(["copy", src, dst, "--quiet"]) == 1
    assert "collection 'b' already exists on the destination" in capsys.readouterr().err
    with heron.Client(dst) as c:
        assert c.list_collections() == ["b"]


def test_a_database_is_created_on_the_destination_and_copied_into(tmp_path):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    with heron.Client(src) as c:
        c.create_database("shop")
        c.create_collection("items", dimension=4, db_name="shop")
        c.insert("items", [{"id": i, "vector": [i, 1.0, 0, 0]} for i in range(30)], db_name="shop")
    assert main(["copy", src, dst, "--db", "shop", "--batch", "7", "--quiet"]) == 0
    with heron.Client(src) as a, heron.Client(dst) as b:
        assert "shop" in b.list_databases()
        assert b.list_collections(db_name="shop") == ["items"]
        want, got = (sorted((r["id"], r["vector"]) for r in c.query("items", filter="", output_fields=["*"],
                                                                      limit=100, db_name="shop")) for c in (a, b))
        assert got == want


def test_a_collection_left_half_made_by_a_stopped_copy_is_made_again(tmp_path):
    src, dst = str(tmp_path / "src"), str(tmp_path / "dst")
    many(src, 300)
    assert main(["copy", src, dst, "--quiet"]) == 0
    path = Path(dst) / "copy-state.json"
    doc = json.loads(path.read_text())
    doc["collections"]["c"] = {"creating": True}  # as a run stopped before its record of "made"
    path.write_text(json.dumps(doc))
    with heron.Client(dst) as c:
        c.delete("c", filter="id < 100")  # what was there is not trusted: it is made again whole
    assert main(["copy", src, dst, "--batch", "64", "--quiet"]) == 0
    assert rows_by_partition(dst, "c") == rows_by_partition(src, "c")
