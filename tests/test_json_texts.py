"""JSON columns of dicts are encoded in one pass; the texts kept must be the values, and bad values still refused."""

from __future__ import annotations

import json
import math
import random
from collections import OrderedDict
from datetime import datetime

import pytest

import heron
from heron._schema import FieldSchema
from heron._types import DataType
from heron.data import _json
from tests.conftest import require

JSON_FIELD = FieldSchema("doc", DataType.JSON)


def _value(rnd: random.Random, depth: int = 0):
    r = rnd.random()
    if depth > 3 or r < 0.35:
        return rnd.choice([0, -7, 2**62, 3.5, -0.0, 1e300, True, False, "", "a,b", '"q"', "\\", '\\"', "{[", "]}", "é ✓", "x\ny\t"])
    if r < 0.65:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return {rnd.choice(["k", "a,b", '"', "\\", "{", "é"]) + str(i): _value(rnd, depth + 1) for i in range(rnd.randint(0, 3))}


def test_texts_cut_from_one_encoding_are_each_documents_json():
    require(_json._orjson is not None, "orjson is not installed")
    rnd = random.Random(7)
    for _ in range(300):
        docs = [{"x": _value(rnd)} for _ in range(rnd.randint(1, 6))]
        texts = _json._json_list_texts(docs)
        assert texts is not None
        texts.validate(full=True)
        assert [json.loads(t) for t in texts.to_pylist()] == docs


@pytest.mark.parametrize(
    "docs",
    [
        [{"a": 1}, {"a": math.nan}],  # orjson would write null
        [{"a": math.inf}],
        [{"a": None}],  # a real null: the general path keeps it
        [{1: "int key"}],  # json writes the key as text
        [{"a": 2**70}],  # past 64 bits
        [OrderedDict(a=1)],  # a subclass: encoded as json does
        [{"when": datetime(2024, 1, 1)}],  # not JSON: refused by the general path
    ],
)
def test_what_one_pass_does_not_encode_as_json_would_goes_the_general_way(docs):
    assert _json._json_list_texts(docs) is None


def test_documents_round_trip_and_bad_ones_are_refused_whole(tmp_path):
    with heron.Client(str(tmp_path / "d")) as c:
        s = c.create_schema()
        s.add_field("id", heron.DataType.INT64, is_primary=True)
        s.add_field("v", heron.DataType.FLOAT_VECTOR, dim=2)
        s.add_field("doc", heron.DataType.JSON)
        ip = c.prepare_index_params()
        ip.add_index(field_name="v", index_type="FLAT", metric_type="L2")
        c.create_collection("x", schema=s, index_params=ip)
        docs = [{"s": "a,b}{", "q": '"', "n": [1, {"k": None}], "u": "é"}, {"i": 1}, {}]
        c.insert("x", {"id": [0, 1, 2], "v": [[0.0, 1.0]] * 3, "doc": docs})
        for bad, what in ((math.nan, "JSON-serialisable"), (datetime(2024, 1, 1), "JSON-serialisable")):
            with pytest.raises(heron.DataError, match=what) as err:
                c.insert("x", {"id": [5, 6], "v": [[0.0, 1.0]] * 2, "doc": [{"i": 5}, {"bad": bad}]})
            assert "'doc'" in str(err.value)
        rows = c.query("x", filter="id >= 0", output_fields=["doc"])
        assert {r["id"]: r["doc"] for r in rows} == {0: docs[0], 1: {"i": 1}, 2: {}}
        assert c.query("x", filter='doc["i"] == 1', output_fields=["id"]) == [{"id": 1}]
