"""Import jobs read the next chunks on a thread of their own: same items, same order, errors in their place."""

from __future__ import annotations

import threading

import pytest

from heron.engine._import_readers import read_ahead


def test_items_come_in_order_and_an_error_comes_in_the_place_of_its_item():
    def items():
        yield from range(5)
        raise ValueError("row 5: bad")

    got = []
    with pytest.raises(ValueError, match="row 5: bad"):
        for x in read_ahead(items(), depth=2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]


def test_a_caller_that_stops_early_stops_the_reading_thread_and_closes_the_source():
    made, closed = [], threading.Event()

    def items():
        try:
            for i in range(1_000_000):
                made.append(i)
                yield i
        finally:
            closed.set()

    it = read_ahead(items(), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed.is_set()
    assert len(made) <= 3 + 2 + 2  # never more than depth items ahead, plus the ones in hand
    assert not any(t.name == "heron-import-read" and t.is_alive() for t in threading.enumerate())
