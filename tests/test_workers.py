"""The asyncio hand-off pool behind AsyncClient and the server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from heron._workers import Workers


def test_results_errors_and_thread_names():
    pool = Workers(3, "heron-test")

    async def main():
        names = await asyncio.gather(*[pool.submit(lambda: threading.current_thread().name) for _ in range(20)])
        assert {n.rsplit("-", 1)[0] for n in names} == {"heron-test"}
        assert len(set(names)) <= 3
        assert await pool.submit(lambda a, b: a + b, 2, 3) == 5
        with pytest.raises(ZeroDivisionError):
            await pool.submit(lambda: 1 / 0)

    asyncio.run(main())
    pool.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        asyncio.run(_submit_noop(pool))


async def _submit_noop(pool):
    await pool.submit(lambda: None)


def test_a_caller_that_stops_waiting_does_not_break_the_pool():
    pool = Workers(1, "heron-test")
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return "late"

    async def main():
        call = pool.submit(slow)
        assert started.wait(30)  # running, and held there until released: the wait below must time out
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(call, 0.05)
        release.set()
        assert await pool.submit(lambda: "next") == "next"  # the same single thread, free again

    asyncio.run(main())
    pool.shutdown(wait=True)


def test_usable_from_several_loops_one_after_another_and_loop_closed_meanwhile():
    # One thread: the call after the abandoned one runs only once that thread has tried to hand
    # the abandoned result to its closed loop, so it shows the thread survived that.
    pool = Workers(1, "heron-test")
    for i in range(3):
        assert asyncio.run(_value(pool, i)) == i

    gate = threading.Event()

    async def abandon():
        pool.submit(lambda: gate.wait(30))  # the loop closes before this call ends

    asyncio.run(abandon())
    gate.set()
    assert asyncio.run(_value(pool, 7)) == 7
    pool.shutdown(wait=True)


async def _value(pool, v):
    return await asyncio.wait_for(pool.submit(lambda: v), 60)
