"""Get by a few keys takes a short path (`heron.engine._point_get`): its answers are the general path's.

Each case builds a random schema (INT64 or VARCHAR keys, nullable fields with
and without defaults, JSON, arrays, several vector types, dynamic fields or
not), writes rows in sealed and growing segments over two partitions, deletes
some keys, writes some keys again, and then asks the same gets twice: through
the short path and with it switched off (`FEW_KEYS` = -1). Rows, their order,
their keys' order and every value's type must be equal.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import heron
from heron.data import _pa
from heron.engine import _point_get

DT = heron.DataType


def _schema(rng: np.random.Generator, str_keys: bool, dynamic: bool) -> tuple[heron.CollectionSchema, list]:
    s = heron.Client.create_schema(enable_dynamic_field=dynamic)
    if str_keys:
        s.add_field("pk", DT.VARCHAR, is_primary=True, max_length=32)
    else:
        s.add_field("pk", DT.INT64, is_primary=True)
    s.add_field("vec", DT.FLOAT_VECTOR, dim=4)
    pool = [
        ("i8", dict(datatype=DT.INT8)),
        ("i32", dict(datatype=DT.INT32, nullable=True)),
        ("i64", dict(datatype=DT.INT64, nullable=True, default_value=7)),
        ("f", dict(datatype=DT.FLOAT)),
        ("d", dict(datatype=DT.DOUBLE, nullable=True)),
        ("b", dict(datatype=DT.BOOL, nullable=True)),
        ("s", dict(datatype=DT.VARCHAR, max_length=20, nullable=True)),
        ("s2", dict(datatype=DT.VARCHAR, max_length=20, default_value="dflt", nullable=True)),
        ("j", dict(datatype=DT.JSON, nullable=True)),
        ("arr", dict(datatype=DT.ARRAY, element_type=DT.INT64, max_capacity=4, nullable=True)),
        ("sarr", dict(datatype=DT.ARRAY, element_type=DT.VARCHAR, max_capacity=3, max_length=8)),
        ("bin", dict(datatype=DT.BINARY_VECTOR, dim=16)),
        ("sparse", dict(datatype=DT.SPARSE_FLOAT_VECTOR)),
        ("f16", dict(datatype=DT.FLOAT16_VECTOR, dim=4)),
    ]
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=int(rng.integers(3, len(pool) + 1)), replace=False))]
    for name, kw in chosen:
        s.add_field(name, **kw)
    return s, chosen


def _value(rng: np.random.Generator, name: str, kw: dict, i: int):
    nullable = kw.get("nullable") or "default_value" in kw
    if nullable and rng.random() < 0.3:
        return None
    dt = kw["datatype"]
    if dt in (DT.INT8, DT.INT32, DT.INT64):
        return int(rng.integers(-100, 100))
    if dt in (DT.FLOAT, DT.DOUBLE):
        return float(rng.random())
    if dt is DT.BOOL:
        return bool(rng.random() < 0.5)
    if dt is DT.VARCHAR:
        return f"v{i}-{int(rng.integers(1000))}"
    if dt is DT.JSON:
        return {"k": int(rng.integers(10)), "t": ["x", i]}
    if dt is DT.ARRAY:
        n = int(rng.integers(0, 3))
        if kw["element_type"] is DT.VARCHAR:
            return [f"a{j}" for j in range(n)]
        return [int(x) for x in rng.integers(0, 50, n)]
    if dt is DT.BINARY_VECTOR:
        return bytes(rng.integers(0, 256, 2, dtype=np.uint8))
    if dt is DT.SPARSE_FLOAT_VECTOR:
        return {int(k): float(rng.random()) + 0.1 for k in rng.choice(50, size=2, replace=False)}
    if dt is DT.FLOAT16_VECTOR:
        return rng.random(4).astype(np.float16)
    raise AssertionError(dt)


def _rows(rng, chosen, keys, dynamic, str_keys):
    out = []
    for k in keys:
        row = {"pk": f"k{k}" if str_keys else int(k), "vec": rng.random(4).astype(np.float32).tolist()}
        for name, kw in chosen:
            v = _value(rng, name, kw, int(k))
            if v is not None or rng.random() < 0.5:
                row[name] = v
        if dynamic and rng.random() < 0.7:
            row["extra"] = int(rng.integers(100))
            if rng.random() < 0.5:
                row["note"] = f"n{k}"
        out.append(row)
    return out


def _typed(rows: list[dict]) -> list[list[tuple]]:
    """Rows as (key, value, type) lists: equal only when keys, their order, values and types all are."""
    def norm(v):
        if isinstance(v, np.ndarray):
            return ("ndarray", str(v.dtype), v.tolist())
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return [(k, norm(x)) for k, x in v.items()]
        return v
    return [[(k, norm(v), type(v).__name__) for k, v in r.items()] for r in rows]


def _both(monkeypatch, c, name, ids, **kw):
    answered = []
    get = _point_get.PointGets.get

    def spy(self, *args):
        out = get(self, *args)
        answered.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(_point_get.PointGets, "get", spy)
        short = c.get(name, ids=ids, **kw)
    assert answered == [True]  # the short path answered
    with monkeypatch.context() as m:
        m.setattr(_point_get, "FEW_KEYS", -1)
        general = c.get(name, ids=ids, **kw)
    return short, general


@pytest.mark.parametrize("seed", range(8))
def test_short_path_answers_as_the_general_path(tmp_path, monkeypatch, seed):
    rng = np.random.default_rng(seed)
    str_keys, dynamic = bool(seed % 2), bool(seed // 2 % 2)
    schema, chosen = _schema(rng, str_keys, dynamic)
    c = heron.Client(str(tmp_path / "db"))
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    for name, kw in chosen:
        if kw["datatype"] is DT.BINARY_VECTOR:
            idx.add_index(name, index_type="BIN_FLAT", metric_type="HAMMING")
        elif kw["datatype"] is DT.SPARSE_FLOAT_VECTOR:
            idx.add_index(name, index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
        elif kw["datatype"] is DT.FLOAT16_VECTOR:
            idx.add_index(name, index_type="FLAT", metric_type="L2")
    c.create_collection("c", schema=schema, index_params=idx)
    c.create_partition("c", "p2")
    c.insert("c", _rows(rng, chosen, range(0, 40), dynamic, str_keys))
    c.flush("c")  # a sealed segment
    c.insert("c", _rows(rng, chosen, range(40, 60), dynamic, str_keys), partition_name="p2")
    c.insert("c", _rows(rng, chosen, range(60, 80), dynamic, str_keys))  # growing
    c.insert("c", _rows(rng, chosen, [3, 45, 70], dynamic, str_keys))  # keys written again
    c.upsert("c", _rows(rng, chosen, [5, 65], dynamic, str_keys))
    key = (lambda k: f"k{k}") if str_keys else int
    c.delete("c", ids=[key(k) for k in (7, 50, 75)])
    names = ["pk", "vec", *[n for n, _ in chosen]]
    outputs: list = [None, ["*"], names[1:3], [names[-1], "pk"], names[::-1]]
    if dynamic:
        outputs += [["extra"], ["extra", "note", names[-1]], ["$meta"], ["*", "extra"]]
    cases = 0
    for _ in range(12):
        ks = [key(int(k)) for k in rng.choice(90, size=int(rng.integers(1, 7)), replace=False)]
        ks += [key(k) for k in (3, 5, 7, 45, 70) if rng.random() < 0.3]  # repeated, upserted, deleted keys
        for of in outputs:
            for parts in (None, ["p2"], ["_default", "p2"]):
                short, general = _both(monkeypatch, c, "c", ks, output_fields=of, partition_names=parts)
                assert _typed(short) == _typed(general), (ks, of, parts)
                cases += 1
    found = c.get("c", ids=[key(k) for k in (3, 5, 7, 45)])
    assert sorted(r["pk"] for r in found) == sorted(key(k) for k in (3, 5, 45))  # 7 was deleted
    assert cases == 12 * len(outputs) * 3
    c.close()


def test_plan_follows_schema_changes(tmp_path, monkeypatch):
    """An added field shows in the short path's `*` rows at once (plans are made per field list)."""
    c = heron.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=2)
    c.insert("c", [{"id": i, "vector": [float(i), 0.0]} for i in range(5)])
    assert list(c.get("c", ids=[1], output_fields=["*"])[0]) == ["id", "vector"]
    c.add_collection_field("c", "extra", DT.INT64, nullable=True)
    short, general = _both(monkeypatch, c, "c", [1], output_fields=["*"])
    assert _typed(short) == _typed(general)
    assert list(short[0]) == ["id", "vector", "extra"] and short[0]["extra"] is None
    c.close()


def test_short_path_errors_as_the_general_path(tmp_path, monkeypatch):
    c = heron.Client(str(tmp_path / "db"))
    s = heron.Client.create_schema(enable_dynamic_field=False)
    s.add_field("id", DT.INT64, is_primary=True)
    s.add_field("vector", DT.FLOAT_VECTOR, dim=2)
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="FLAT", metric_type="L2")
    c.create_collection("c", schema=s, index_params=idx)
    c.insert("c", [{"id": i, "vector": [float(i), 0.0]} for i in range(5)])
    for kw in ({"output_fields": ["nope"]}, {"partition_names": ["nope"]}):
        errors = []
        for few in (_point_get.FEW_KEYS, -1):
            with monkeypatch.context() as m:
                m.setattr(_point_get, "FEW_KEYS", few)
                with pytest.raises(heron.HeronError) as info:
                    c.get("c", ids=[1], **kw)
                errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1]
    c.release_collection("c")
    with pytest.raises(heron.HeronError, match="not loaded"):
        c.get("c", ids=[1])
    c.close()


@pytest.mark.parametrize("n_rows", [0, 1, 3, _pa.FEW_ROWS, _pa.FEW_ROWS + 1, 40])
def test_values_at_few_rows_read_as_take(n_rows):
    """`values_at_rows` reads one by one up to FEW_ROWS rows: the values ``take`` gives, chunked or not."""
    rng = np.random.default_rng(n_rows)
    arrays = [
        pa.array([f"s{i}" if i % 5 else None for i in range(60)]),
        pa.array([[i, i + 1] if i % 4 else None for i in range(60)], pa.list_(pa.int64())),
        pa.array([{"a": i, "b": str(i)} for i in range(60)]),
        pa.array(rng.random(60)),
        pa.array([i % 3 == 0 if i % 7 else None for i in range(60)]),
    ]
    rows = np.sort(rng.choice(60, size=n_rows, replace=False)).astype(np.int64)
    for a in arrays:
        for values in (a, pa.chunked_array([a.slice(0, 25), a.slice(25, 10), a.slice(35)])):
            want = values.take(pa.array(rows, pa.int64())).to_pylist()
            got = _pa.values_at_rows(values, rows)
            assert [(v, type(v)) for v in got] == [(v, type(v)) for v in want]


def test_what_the_short_path_leaves_to_the_general_path(tmp_path, monkeypatch):
    """Counts, pages, key order, a filter with ids and zones: the general path's answers and errors."""
    c = heron.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=2)
    c.insert("c", [{"id": i, "vector": [float(i), 0.0], "x": i} for i in range(6)])
    asks = [
        {"output_fields": ["count(*)"]}, {"output_fields": ["count(*)", "x"]}, {"limit": 1}, {"offset": 1, "limit": 5},
        {"offset": True}, {"filter": "id > 0"}, {"timezone": "Asia/Tokyo"}, {"timezone": "Nowhere/City"},
    ]
    for kw in asks:
        answers = []
        for few in (_point_get.FEW_KEYS, -1):
            with monkeypatch.context() as m:
                m.setattr(_point_get, "FEW_KEYS", few)
                try:
                    answers.append(_typed(c.query("c", ids=[4, 1, 2, 99], **kw)))
                except heron.HeronError as exc:
                    answers.append([[(type(exc).__name__, str(exc), "error")]])
        assert answers[0] == answers[1], kw
    assert c.query("c", ids=[4, 1, 2, 99], output_fields=["count(*)"]) == [{"count(*)": 3}]
    c.close()
