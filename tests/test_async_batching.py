"""AsyncClient searches from many coroutines are batched on the loop and answered as if alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import heron
from heron import _requests as rq
from heron.client._batching import LoopSearchBatcher


def _req(q: np.ndarray, flt: str = "") -> rq.Search:
    return rq.Search("default", "c", np.atleast_2d(q).astype(np.float32), filter=flt)


class _FakeEngine:
    """Answers each query row with its first value; records the batch sizes it saw."""

    def __init__(self, fail_batches: bool = False) -> None:
        self.sizes: list[int] = []
        self.fail_batches = fail_batches

    def submit(self, r: rq.Search) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.sizes.append(len(r.data))

        def finish() -> None:
            if self.fail_batches and len(r.data) > 1:
                fut.set_exception(RuntimeError("batch failed"))
            elif r.filter == "bad":
                fut.set_exception(ValueError("bad filter"))
            else:
                fut.set_result([[float(row[0])] for row in r.data])

        loop.call_later(0.01, finish)
        return fut


def test_waiting_searches_go_as_one_batch_and_each_gets_its_own_rows():
    async def main():
        eng = _FakeEngine()
        b = LoopSearchBatcher(eng.submit, parallel=1)
        futs = [b.search(_req(np.full(4, i))) for i in range(6)]
        got = await asyncio.gather(*futs)
        assert got == [[[float(i)]] for i in range(6)]
        assert eng.sizes == [1, 5]  # the first ran at once, the other five waited together

    asyncio.run(main())


def test_a_lone_search_never_waits_and_different_filters_never_share_a_batch():
    async def main():
        eng = _FakeEngine()
        b = LoopSearchBatcher(eng.submit, parallel=1)
        assert await b.search(_req(np.ones(4))) == [[1.0]]
        futs = [b.search(_req(np.full(4, i), flt=f"x == {i % 2}")) for i in range(5)]
        assert await asyncio.gather(*futs) == [[[float(i)]] for i in range(5)]
        assert eng.sizes == [1, 1, 2, 2]

    asyncio.run(main())


def test_callers_of_a_finished_batch_search_again_as_one_group():
    async def main():
        eng = _FakeEngine()
        b = LoopSearchBatcher(eng.submit, parallel=1)

        async def caller(i: int) -> list:
            out = []
            for _ in range(3):  # each caller searches again as soon as it has its answer
                out.append(await b.search(_req(np.full(4, i))))
            return out

        got = await asyncio.gather(*(caller(i) for i in range(4)))
        assert got == [[[[float(i)]]] * 3 for i in range(4)]
        # 1 alone, then the 3 that waited; when they finish, all four search together, and again
        assert eng.sizes == [1, 3, 4, 4]

    asyncio.run(main())


def test_a_failed_batch_is_rerun_one_by_one():
    async def main():
        eng = _FakeEngine(fail_batches=True)
        b = LoopSearchBatcher(eng.submit, parallel=1)
        futs = [b.search(_req(np.full(4, i), flt="bad" if i == 3 else "")) for i in range(5)]
        res = await asyncio.gather(*futs, return_exceptions=True)
        assert res[0] == [[0.0]] and res[1] == [[1.0]] and res[2] == [[2.0]] and res[4] == [[4.0]]
        assert isinstance(res[3], ValueError)

    asyncio.run(main())


def test_a_caller_that_gives_up_is_dropped_from_its_batch():
    async def main():
        eng = _FakeEngine()
        b = LoopSearchBatcher(eng.submit, parallel=1)
        first = b.search(_req(np.zeros(4)))
        futs = [b.search(_req(np.full(4, i))) for i in range(1, 4)]
        futs[1].cancel()
        await first
        assert await futs[0] == [[1.0]] and await futs[2] == [[3.0]]
        assert eng.sizes == [1, 2]

    asyncio.run(main())


@pytest.mark.parametrize("callers", [8, 32])
def test_concurrent_async_searches_match_the_blocking_client(tmp_path, callers):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    qs = rng.standard_normal((64, 16)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        c.create_collection("c", dimension=16, metric_type="L2")
        c.insert("c", [{"id": i, "vector": x[i], "g": i % 3} for i in range(3000)])
        want = [c.search("c", data=[q], limit=5, filter="g != 1", output_fields=["g"])[0] for q in qs]

    async def main():
        async with heron.AsyncClient(path) as ac:
            sem = asyncio.Semaphore(callers)

            async def one(q):
                async with sem:
                    return (await ac.search("c", data=[q], limit=5, filter="g != 1", output_fields=["g"]))[0]

            return await asyncio.gather(*[one(q) for q in qs])

    got = asyncio.run(main())
    for g, w in zip(got, want):
        assert [h["id"] for h in g] == [h["id"] for h in w]
        assert [h["entity"]["g"] for h in g] == [h["entity"]["g"] for h in w]
        assert np.allclose([h["distance"] for h in g], [h["distance"] for h in w], rtol=1e-5, atol=1e-5)


def test_waiting_searches_hear_it_when_the_pool_refuses_work():
    async def main():
        eng = _FakeEngine()
        refused = []

        def submit(r):
            if refused:
                raise RuntimeError("the worker pool is shut down")
            return eng.submit(r)

        b = LoopSearchBatcher(submit, parallel=1)
        first = b.search(_req(np.zeros(4)))
        waiting = [b.search(_req(np.full(4, i))) for i in range(1, 3)]
        refused.append(True)
        assert await first == [[0.0]]
        for f in waiting:
            with pytest.raises(RuntimeError, match="shut down"):
                await asyncio.wait_for(f, 1)
        with pytest.raises(RuntimeError):
            b.search(_req(np.ones(4)))

    asyncio.run(main())
