"""A search with only plain options is built by a shorter way (`_plain_search_request`): the same request."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import heron
from heron import ParamError
from heron.client._base import ClientBase

_DEFAULTS = {"ranker": None, "function_chains": None, "ids": None, "highlighter": None, "search_aggregation": None}
CASES = [
    ({"data": np.ones((1, 4), np.float32)}, {}),
    ({"data": [[1.0, 2.0, 3.0, 4.0]], "limit": 3, "filter": "a > 1"}, {}),
    ({"data": [0.5, 0.5, 0.5, 0.5], "output_fields": "a", "partition_names": "p"}, {}),
    ({"data": np.ones((2, 4), np.float64), "search_params": {"params": {"ef": 32}, "metric_type": "cosine"}}, {}),
    ({"data": np.ones((1, 4)), "search_params": {"metric_type": None, "params": None}, "anns_field": "v"}, {}),
    ({"data": np.ones((1, 4)), "search_params": {"params": {"nprobe": 8, "radius": 0.2}}}, {}),
    ({"data": np.ones((1, 4)), "output_fields": ["a", "b"], "partition_names": ["p", "q"]}, {}),
    # the general way: options beyond the plain ones
    ({"data": np.ones((1, 4)), "search_params": {"params": {"offset": 2}}}, {}),
    ({"data": np.ones((1, 4)), "search_params": {"ef": 12}}, {}),
    ({"data": np.ones((1, 4))}, {"round_decimal": 2}),
    ({"data": np.ones((1, 4))}, {"offset": 1, "consistency_level": "Strong"}),
    ({"data": np.ones((1, 4))}, {"group_by_field": "a", "group_size": 2}),
    ({"data": np.ones((1, 4))}, {"db_name": "other"}),
    ({"data": np.ones((1, 4))}, {"function_chains": []}),
]


def _request(client, monkeypatch, plain, args, extra):
    if not plain:
        monkeypatch.setattr(ClientBase, "_plain_search_request", lambda *a: None)
    try:
        a = {"filter": "", "limit": 10, "output_fields": None, "search_params": None, "partition_names": None,
             "anns_field": None, **args}
        return client._search_request("c", a["data"], a["filter"], a["limit"], a["output_fields"], a["search_params"],
                                      a["partition_names"], a["anns_field"], {**_DEFAULTS, **extra})
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize(("args", "extra"), CASES)
def test_the_plain_request_is_the_general_one(tmp_path, monkeypatch, args, extra):
    with heron.Client(str(tmp_path / "d")) as c:
        short = _request(c, monkeypatch, True, args, extra)
        full = _request(c, monkeypatch, False, args, extra)
    for f in dataclasses.fields(full):
        a, b = getattr(short, f.name), getattr(full, f.name)
        if isinstance(b, np.ndarray):
            assert isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b), f.name
        else:
            assert type(a) is type(b) and a == b, f.name


@pytest.mark.parametrize(("args", "error"), [
    ({"data": [], "limit": 3}, "empty list"),
    ({"data": np.ones((1, 4)), "limit": 0}, "limit"),
    ({"data": np.ones((1, 4)), "limit": True}, "limit"),
    ({"data": None}, "data="),
])
def test_the_plain_way_refuses_what_the_general_one_refuses(tmp_path, monkeypatch, args, error):
    with heron.Client(str(tmp_path / "d")) as c:
        for plain in (True, False):
            with pytest.raises(ParamError, match=error):
                _request(c, monkeypatch, plain, args, {})


def test_searches_take_the_plain_way(tmp_path, monkeypatch):
    made = []
    real = ClientBase._plain_search_request
    monkeypatch.setattr(ClientBase, "_plain_search_request", lambda *a: made.append(real(*a)) or made[-1])
    with heron.Client(str(tmp_path / "d")) as c:
        c.create_collection("c", dimension=4)
        c.insert("c", [{"id": 1, "vector": [1.0, 0.0, 0.0, 0.0]}])
        assert c.search("c", data=[[1.0, 0.0, 0.0, 0.0]], limit=1)[0][0]["id"] == 1
        assert c.search("c", data=[[1.0, 0.0, 0.0, 0.0]], limit=1, round_decimal=1)[0][0]["id"] == 1
    assert made[0] is not None and made[1] is None
