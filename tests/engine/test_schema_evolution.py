"""Schema evolution on a live collection: fields added, altered and dropped, through both clients and both transports.

A field added later reads its default (or null) for the rows stored
before, in growing and sealed segments alike and after a reopen; new rows
carry their values; filters on it work. Changes that Milvus refuses are
refused with its messages and code 1100, and change nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import heron
from heron import DataType, wire
from tests.conftest import make_collection


def _rows(lo: int, hi: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": i, "vec": [float(i)] * 4, "name": f"n{i}", "n": i % 5,
             **{k: (v(i) if callable(v) else v) for k, v in extra.items()}} for i in range(lo, hi)]


def refused_for_old_pymilvus(client: Any, rpc: str, call: Any) -> bool:
    """Whether ``client`` is remote and the installed pymilvus protocol modules lack ``rpc``.

    Then ``call()`` must be refused naming the RPC (what a remote client does
    with older modules), and the caller stops there.
    """
    if not str(client._uri).startswith("http") or wire.has_rpc(rpc):
        return False
    with pytest.raises(heron.ParamError, match=rpc):
        call()
    return True


def test_added_field_reads_default_or_null_for_old_rows_and_values_for_new(client: Any) -> None:
    make_collection(client, rows=10)
    client.flush("c")  # some rows sealed in a file, some growing
    client.insert("c", _rows(10, 15))
    client.add_collection_field("c", "age", DataType.INT32, nullable=True)
    client.add_collection_field("c", "tag", DataType.VARCHAR, max_length=8, default_value="none")
    client.insert("c", _rows(15, 20, age=lambda i: i * 2, tag="new"))
    got = {r["id"]: (r["age"], r["tag"]) for r in client.query("c", filter="id >= 0", output_fields=["age", "tag"])}
    assert got == {**{i: (None, "none") for i in range(15)}, **{i: (i * 2, "new") for i in range(15, 20)}}
    assert sorted(r["id"] for r in client.query("c", filter="age > 33", output_fields=["id"])) == [17, 18, 19]
    assert client.query("c", filter="tag == 'none'", output_fields=["count(*)"])[0]["count(*)"] == 15
    assert client.query("c", filter="age is null", output_fields=["count(*)"])[0]["count(*)"] == 15
    fields = {f["name"]: f for f in client.describe_collection("c")["fields"]}
    assert fields["age"]["nullable"] is True and fields["age"]["type"] == DataType.INT32
    assert fields["tag"]["default_value"] == "none" and fields["tag"]["params"]["max_length"] == 8
    assert fields["age"]["field_id"] > max(f["field_id"] for f in fields.values() if f["name"] != "age" and
                                          f["name"] != "tag")
    hits = client.search("c", [[16.0] * 4], limit=1, output_fields=["age", "tag"])
    assert hits[0][0]["entity"] == {"age": 32, "tag": "new"}


def test_rows_without_the_added_field_take_its_default(client: Any) -> None:
    make_collection(client, rows=3)
    client.add_collection_field("c", "score", DataType.DOUBLE, default_value=1.5)
    client.add_collection_field("c", "doc", DataType.JSON, nullable=True)
    client.insert("c", _rows(3, 5))  # no value for either
    got = client.query("c", filter="", output_fields=["score", "doc"], limit=10)
    assert [(r["score"], r["doc"]) for r in sorted(got, key=lambda r: r["id"])] == [(1.5, None)] * 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"field_name": "x", "data_type": DataType.INT64}, "added field must be nullable"),
        ({"field_name": "name", "data_type": DataType.INT64, "nullable": True}, "duplicate field name"),
        ({"field_name": "v2", "data_type": DataType.FLOAT_VECTOR, "dim": 4, "nullable": True},
         "not support to add vector field"),
        ({"field_name": "pk2", "data_type": DataType.INT64, "is_primary": True, "nullable": True},
         "not support to add pk field"),
        ({"field_name": "s", "data_type": DataType.VARCHAR, "nullable": True}, "max_length"),
        ({"field_name": "bad name", "data_type": DataType.INT64, "nullable": True}, "bad name"),
    ],
)
def test_refused_additions_change_nothing(client: Any, kwargs: dict[str, Any], message: str) -> None:
    make_collection(client, rows=2)
    before = client.describe_collection("c")["fields"]
    with pytest.raises(heron.HeronError, match=message) as err:
        client.add_collection_field("c", **kwargs)
    assert err.value.code == 1100
    assert client.describe_collection("c")["fields"] == before
    assert len(client.query("c", filter="", limit=10)) == 2


def test_alter_collection_field_grows_max_length_and_sets_mmap(client: Any) -> None:
    make_collection(client, rows=2)
    with pytest.raises(heron.DataError):
        client.insert("c", _rows(2, 3, name="x" * 40))
    client.alter_collection_field("c", "name", {"max_length": 64, "mmap.enabled": True})
    f = next(f for f in client.describe_collection("c")["fields"] if f["name"] == "name")
    assert f["params"]["max_length"] == 64 and f["params"]["mmap_enabled"] is True
    client.insert("c", _rows(2, 3, name="x" * 40))
    assert client.query("c", ids=[2], output_fields=["name"])[0]["name"] == "x" * 40
    with pytest.raises(heron.ParamError, match="can only grow"):
        client.alter_collection_field("c", "name", {"max_length": 10})
    with pytest.raises(heron.ParamError, match="cannot be changed"):
        client.alter_collection_field("c", "name", {"nullable": True})
    with pytest.raises(heron.ParamError, match="applies to VARCHAR"):
        client.alter_collection_field("c", "n", {"max_length": 10})


def test_dropped_field_leaves_the_schema_and_can_come_back_empty(client: Any) -> None:
    make_collection(client, rows=4)
    client.flush("c")
    if refused_for_old_pymilvus(client, "AlterCollectionSchema", lambda: client.drop_collection_field("c", "n")):
        return
    client.drop_collection_field("c", "n")
    assert [f["name"] for f in client.describe_collection("c")["fields"]] == ["id", "vec", "name"]
    assert set(client.query("c", ids=[1])[0]) == {"id", "vec", "name"}
    client.insert("c", [{"id": 9, "vec": [9.0] * 4, "name": "n9"}])
    client.add_collection_field("c", "n", DataType.INT32, nullable=True)  # the old values do not come back
    assert {r["n"] for r in client.query("c", filter="", output_fields=["n"], limit=10)} == {None}
    with pytest.raises(heron.ParamError, match="primary key"):
        client.drop_collection_field("c", "id")
    with pytest.raises(heron.ParamError, match="last vector field"):
        client.drop_collection_field("c", "vec")
    with pytest.raises(heron.ParamError, match="no field"):
        client.drop_collection_field("c", "nothing")


def test_index_properties_show_in_describe_index_and_can_be_dropped(client: Any) -> None:
    make_collection(client, rows=2)
    client.alter_index_properties("c", "vec", {"mmap.enabled": True})
    d = client.describe_index("c", "vec")
    assert d["mmap.enabled"] is True and d["index_type"] == "FLAT"
    client.drop_index_properties("c", "vec", ["mmap.enabled"])
    assert "mmap.enabled" not in client.describe_index("c", "vec")
    with pytest.raises(heron.ParamError, match="not a configable index property"):
        client.alter_index_properties("c", "vec", {"M": 4})
    with pytest.raises(heron.IndexNotFoundError):
        client.alter_index_properties("c", "nope", {"mmap.enabled": False})


def test_schema_changes_survive_reopen(tmp_path: Any) -> None:
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        make_collection(c, rows=6)
        c.flush("c")
        c.insert("c", _rows(6, 8))  # still in the log at close
        c.add_collection_field("c", "age", DataType.INT64, nullable=True)
        c.add_collection_field("c", "flag", DataType.BOOL, default_value=True)
        c.insert("c", _rows(8, 10, age=lambda i: i, flag=False))
        c.drop_collection_field("c", "n")
        c.alter_index_properties("c", "vec", {"mmap.enabled": True})
    with heron.Client(path) as c:
        got = sorted(c.query("c", filter="", output_fields=["age", "flag"], limit=20), key=lambda r: r["id"])
        assert [(r["age"], r["flag"]) for r in got] == [(None, True)] * 8 + [(8, False), (9, False)]
        assert "n" not in got[0]
        assert c.describe_index("c", "vec")["mmap.enabled"] is True
        c.insert("c", [{"id": 10, "vec": [1.0] * 4, "name": "x", "age": 10, "flag": False}])
        assert c.query("c", filter="age >= 9", output_fields=["id"]) == [{"id": 9}, {"id": 10}]


def test_added_field_survives_sealing_and_merging(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_SEAL_ROWS", "50")
    path = str(tmp_path / "db")
    rng = np.random.default_rng(3)
    with heron.Client(path) as c:
        make_collection(c, rows=0)
        c.insert("c", [{"id": i, "vec": rng.random(4).tolist(), "name": "a", "n": 1} for i in range(120)])
        c.add_collection_field("c", "w", DataType.FLOAT, nullable=True)
        c.insert("c", [{"id": i, "vec": rng.random(4).tolist(), "name": "b", "n": 2, "w": 0.5}
                       for i in range(120, 240)])
        c.flush("c")
        assert c.query("c", filter="w is null", output_fields=["count(*)"])[0]["count(*)"] == 120
    with heron.Client(path) as c:
        assert c.query("c", filter="w == 0.5", output_fields=["count(*)"])[0]["count(*)"] == 120
        assert c.query("c", filter="w is null", output_fields=["count(*)"])[0]["count(*)"] == 120


def test_a_client_that_has_not_seen_the_new_field_still_writes(tmp_path: Any) -> None:
    path = str(tmp_path / "db")
    with heron.Client(path) as old, heron.Client(path) as new:
        make_collection(old, rows=2)
        old.insert("c", _rows(2, 3))  # the schema is in this client's cache now
        new.add_collection_field("c", "score", DataType.DOUBLE, default_value=0.25)
        old.insert("c", _rows(3, 4))
        new.insert("c", _rows(4, 5, score=2.0))
        got = {r["id"]: r["score"] for r in new.query("c", filter="", output_fields=["score"], limit=10)}
        assert got == {0: 0.25, 1: 0.25, 2: 0.25, 3: 0.25, 4: 2.0}


def test_a_segment_made_before_the_field_was_added_reads_its_default(tmp_path: Any) -> None:
    """A merge under way while a field is added builds its segment for the old schema: readers get the default."""
    from heron.engine._segment import Segment

    with heron.Client(str(tmp_path / "db")) as c:
        make_collection(c, rows=3)
        coll = c._transport._engine.collection("default", "c")
        early = Segment(10_000, 1, coll.schema)
        early.append(*_batch_of_three(coll.schema))
        c.add_collection_field("c", "w", DataType.INT16, default_value=7)
        col = early.snapshot().column("w")
        assert col.values.tolist() == [7, 7, 7] and col.valid is None
        with pytest.raises(KeyError):
            early.snapshot().column("not_a_field")


def _batch_of_three(schema: Any) -> tuple[Any, Any]:
    from heron.data._batch import build_batch

    batch = build_batch(schema, _rows(50, 53))
    return batch, np.arange(1, 4, dtype=np.int64)
