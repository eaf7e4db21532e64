"""Concurrent searches with the same key are answered by one batched call, each caller its own slice."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import heron
from heron import _requests as rq
from heron.engine._coalesce import SearchCoalescer, batch_key


def _search(data, **kw) -> rq.Search:
    return rq.Search("default", "c", np.asarray(data, dtype=np.float32), **kw)


class _Gate:
    """A run function whose first call blocks until released, recording every call."""

    def __init__(self, fail_on: float | None = None) -> None:
        self.calls: list[np.ndarray] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def __call__(self, r: rq.Search):
        with self._lock:
            self.calls.append(r.data.copy())
            first = len(self.calls) == 1
        if first:
            self.first_started.set()
            assert self.release.wait(60)
        if self.fail_on is not None and (r.data[:, 0] == self.fail_on).any():
            raise ValueError(f"bad query {self.fail_on}")
        return [[float(q[0])] for q in r.data]  # one "hit" per query: its first value


def _waiting(co: SearchCoalescer, n: int) -> bool:
    with co._lock:
        return sum(g.queries for g in co._pending.values()) >= n


def _run_blocked(co: SearchCoalescer, gate: _Gate, later: list[rq.Search]):
    with ThreadPoolExecutor(len(later) + 1) as ex:
        first = ex.submit(co.search, _search([[0.0, 0.0]]))
        assert gate.first_started.wait(10)
        futs = [ex.submit(co.search, r) for r in later]
        total = sum(len(r.data) for r in later if batch_key(r) == batch_key(later[0]))
        deadline = time.monotonic() + 60
        while not _waiting(co, total):
            assert time.monotonic() < deadline, "the later searches never queued behind the first"
            time.sleep(0.005)
        gate.release.set()
        return first.result(10), [f for f in futs]


def test_waiting_searches_run_as_one_batch_and_get_their_own_rows():
    gate = _Gate()
    co = SearchCoalescer(gate, parallel=1)
    later = [_search([[float(i), 0.0]] * (1 + i % 2)) for i in range(1, 6)]
    first, futs = _run_blocked(co, gate, later)
    assert first == [[0.0]]
    for i, f in enumerate(futs, start=1):
        assert f.result(10) == [[float(i)]] * (1 + i % 2)
    assert len(gate.calls) == 2  # the blocked one, then all the others in one call
    assert len(gate.calls[1]) == sum(len(r.data) for r in later)
    assert not co._pending and co._running == 0  # nothing left behind


def test_a_failing_batch_is_rerun_one_by_one_so_only_the_bad_request_fails():
    gate = _Gate(fail_on=3.0)
    co = SearchCoalescer(gate, parallel=1)
    later = [_search([[float(i), 0.0]]) for i in range(1, 5)]
    _, futs = _run_blocked(co, gate, later)
    for i, f in enumerate(futs, start=1):
        if i == 3:
            with pytest.raises(ValueError, match="bad query 3"):
                f.result(10)
        else:
            assert f.result(10) == [[float(i)]]


def test_searches_that_differ_in_more_than_their_vectors_are_not_batched():
    base = _search([[1.0, 2.0]])
    assert batch_key(base) == batch_key(_search([[3.0, 4.0], [5.0, 6.0]]))
    for other in (
        _search([[1.0, 2.0]], filter="x > 1"),
        _search([[1.0, 2.0]], limit=5),
        _search([[1.0, 2.0]], params={"ef": 32}),
        _search([[1.0, 2.0]], output_fields=("x",)),
        _search([[1.0, 2.0, 3.0]]),
    ):
        assert batch_key(other) != batch_key(base)
    assert batch_key(_search([[1.0, 2.0]], filter="random_sample(0.5)")) is None
    assert batch_key(_search([[1.0, 2.0]], params={"radius": 0.5})) is None
    gate = _Gate()
    co = SearchCoalescer(gate, parallel=1)
    later = [_search([[1.0, 0.0]], limit=3), _search([[2.0, 0.0]], limit=4)]
    _, futs = _run_blocked(co, gate, later)
    assert [f.result(10) for f in futs] == [[[1.0]], [[2.0]]]
    assert len(gate.calls) == 3


def test_concurrent_client_searches_match_serial_ones(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    q = rng.standard_normal((64, 16)).astype(np.float32)
    with heron.Client(str(tmp_path / "c.db")) as c:
        c.create_collection("c", dimension=16, metric_type="L2")
        c.insert("c", [{"id": i, "vector": x[i], "tag": i % 7} for i in range(len(x))])
        c.flush("c")
        kw = {"limit": 5, "filter": "tag != 3", "output_fields": ["tag"]}
        serial = [c.search("c", data=[v], **kw)[0] for v in q]
        with ThreadPoolExecutor(8) as ex:
            for _ in range(3):
                together = list(ex.map(lambda v: c.search("c", data=[v], **kw)[0], q))
                for a, b in zip(serial, together):
                    assert [h["id"] for h in a] == [h["id"] for h in b]
                    np.testing.assert_allclose([h["distance"] for h in a], [h["distance"] for h in b], rtol=1e-5)
                    assert all(h["entity"]["tag"] != 3 for h in b)
