"""`AsyncClient` on an event loop: it never blocks the loop, works across loops, and stays correct under load.

"Never blocks" is checked by its mechanism: the engine's work and the conversion of user data
run in threads other than the loop's, which spies on those functions record. A ticker on the
loop adds only a loose sanity bound (seconds), so a busy machine cannot fail these tests.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time

import numpy as np
import pytest

import heron
from heron.data import _batch
from heron.engine._engine import Engine

DIM = 128
#: A loop stall past this means something blocked it for good (a loaded machine stalls ~0.2 s at worst).
STALL_SANITY_S = 2.0


@pytest.fixture(autouse=True)
def _remove_data_dirs(tmp_path):
    """Data directories are large; remove them when the test ends instead of keeping them around."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


class ThreadSpy:
    """Records which threads the watched functions ran in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.threads: dict[str, set[int]] = {}

    def watch(self, owner: object, name: str) -> None:
        real = getattr(owner, name)
        seen = self.threads.setdefault(name, set())

        def spy(*args: object, **kwargs: object) -> object:
            seen.add(threading.get_ident())
            return real(*args, **kwargs)

        self._monkeypatch.setattr(owner, name, spy)

    def assert_never_on(self, loop_thread: int) -> None:
        for name, threads in self.threads.items():
            assert threads, f"{name} never ran: the spy watches the wrong function"
            assert loop_thread not in threads, f"{name} ran on the event loop's thread"


def _columns(ids: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"id": ids, "vector": rng.random((len(ids), DIM), dtype=np.float32)}


async def _tick(stop: asyncio.Event, gaps: list[float]) -> None:
    """Wake every 5 ms and record how long each wake-up really took."""
    last = time.perf_counter()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        gaps.append(now - last)
        last = now


async def _insert_and_search(path: str, data_of: list[dict[str, np.ndarray]]) -> tuple[int, float, int]:
    """Insert every batch and search after each one, with a ticker running.

    Returns the loop's thread, the worst gap between ticks and the row count.
    """
    loop_thread = threading.get_ident()
    gaps: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_tick(stop, gaps))
    await asyncio.sleep(0.02)
    async with heron.AsyncClient(path) as client:
        await client.create_collection("big", dimension=DIM)
        for b, data in enumerate(data_of):
            ids = data["id"]
            if b % 2:
                # Row dicts with numpy vectors, the other common shape of input, next to a column insert.
                rows = [{"id": int(i), "vector": v} for i, v in zip(ids[:2000], data["vector"][:2000])]
                rest = {k: v[2000:] for k, v in data.items()}
                res = await asyncio.gather(client.insert("big", rows), client.insert("big", rest))
                assert sum(r["insert_count"] for r in res) == len(ids)
            else:
                assert (await client.insert("big", data))["insert_count"] == len(ids)
            # The probes are the newest rows, still in the growing segment: an exact scan finds them.
            probe = data["vector"][:5]
            for hits in await asyncio.gather(*(client.search("big", data=probe, limit=3) for _ in range(4))):
                assert [h[0]["id"] for h in hits] == ids[:5].tolist()
        count = await client.query("big", filter="id >= 0", output_fields=["count(*)"])
    stop.set()
    await ticker
    assert len(gaps) > 20
    return loop_thread, max(gaps), count[0]["count(*)"]


def test_engine_and_conversions_stay_off_the_loop_while_100k_rows_go_in(tmp_path, monkeypatch):
    """Inserting (rows and columns) and searching 100,000 rows runs no engine work on the loop's thread."""
    rng = np.random.default_rng(7)
    batches, size = 10, 10_000
    # Made up front: only the client's work should run while the ticker is measured.
    data_of = [_columns(np.arange(b * size, (b + 1) * size, dtype=np.int64), rng) for b in range(batches)]

    # Every row stays in the growing segment: sealing would build an HNSW index in the background,
    # seconds of CPU here and minutes on a loaded machine, and that is not what this test is about.
    monkeypatch.setenv("HERON_SEAL_ROWS", str(2 * batches * size))
    spy = ThreadSpy(monkeypatch)
    spy.watch(Engine, "execute")
    spy.watch(_batch, "convert_vectors")
    spy.watch(_batch, "convert_scalars")
    loop_thread, gap, count = asyncio.run(_insert_and_search(str(tmp_path / "db"), data_of))
    assert count == batches * size
    spy.assert_never_on(loop_thread)
    assert gap < STALL_SANITY_S, f"the event loop stalled for {gap:.2f} s"


def test_rows_with_list_vectors_are_converted_off_the_loop(tmp_path, monkeypatch):
    """Rows as plain lists (what most embedding APIs return) are converted off the loop too."""
    rng = np.random.default_rng(11)
    rows = [
        {"id": i, "vector": v.tolist()} for i, v in enumerate(rng.random((30_000, DIM), dtype=np.float32))
    ]

    spy = ThreadSpy(monkeypatch)
    spy.watch(Engine, "execute")
    spy.watch(_batch, "_rows_access")
    spy.watch(_batch, "convert_vectors")

    async def main() -> tuple[int, float]:
        gaps: list[float] = []
        stop = asyncio.Event()
        async with heron.AsyncClient(str(tmp_path / "db")) as client:
            await client.create_collection("lists", dimension=DIM)
            ticker = asyncio.create_task(_tick(stop, gaps))
            await asyncio.sleep(0.02)
            assert (await client.insert("lists", rows))["insert_count"] == len(rows)
            stop.set()
            await ticker
        return threading.get_ident(), max(gaps)

    loop_thread, worst = asyncio.run(main())
    spy.assert_never_on(loop_thread)
    assert worst < STALL_SANITY_S, f"the event loop stalled for {worst:.2f} s"


def test_client_made_outside_a_loop_serves_two_asyncio_runs(tmp_path):
    client = heron.AsyncClient(str(tmp_path / "db"))

    async def first() -> None:
        await client.create_collection("c", dimension=4)
        res = await client.insert("c", [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(10)])
        assert res["insert_count"] == 10

    async def second() -> int:
        await client.insert("c", [{"id": i, "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(10, 15)])
        hits = await client.search("c", data=[[3.0, 1.0, 0.0, 0.0]], limit=1)
        assert hits[0][0]["id"] == 3
        return (await client.query("c", filter="id >= 0", output_fields=["count(*)"]))[0]["count(*)"]

    asyncio.run(first())
    assert asyncio.run(second()) == 15
    asyncio.run(client.close())
    asyncio.run(client.close())  # idempotent
    with pytest.raises(heron.ClientClosedError):
        asyncio.run(client.has_collection("c"))


def test_async_with_closes_the_client_and_close_is_idempotent(tmp_path):
    path = str(tmp_path / "db")

    async def main() -> heron.AsyncClient:
        async with heron.AsyncClient(path) as client:
            await client.create_collection("c", dimension=4)
        with pytest.raises(heron.ClientClosedError):
            await client.list_collections()
        await client.close()
        await client.close()
        return client

    asyncio.run(main())
    # Closed means released: the directory opens again, here and in a blocking client.
    with heron.Client(path) as again:
        assert again.list_collections() == ["c"]


def test_concurrent_inserts_upserts_and_searches_lose_and_duplicate_nothing(tmp_path):
    """60 inserts, 20 upserts of the same keys and 60 searches at once on one client."""
    rng = np.random.default_rng(3)
    base = rng.random((500, 16), dtype=np.float32)

    async def main() -> None:
        async with heron.AsyncClient(str(tmp_path / "db")) as client:
            schema = client.create_schema()
            schema.add_field("id", heron.DataType.INT64, is_primary=True)
            schema.add_field("ver", heron.DataType.INT64)
            schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=16)
            idx = client.prepare_index_params()
            idx.add_index("vector", index_type="FLAT", metric_type="L2")
            await client.create_collection("c", schema=schema, index_params=idx)
            await client.insert("c", {"id": np.arange(500), "ver": np.zeros(500, np.int64), "vector": base})

            async def insert(k: int) -> dict:
                ids = np.arange(1000 + k * 100, 1100 + k * 100)
                vecs = rng.random((100, 16), dtype=np.float32) + 10
                return await client.insert("c", {"id": ids, "ver": np.zeros(100, np.int64), "vector": vecs})

            async def upsert(k: int) -> dict:
                # Every upsert rewrites the same 100 keys; whichever lands last must win whole.
                ids = np.arange(100)
                return await client.upsert("c", {"id": ids, "ver": np.full(100, k + 1), "vector": base[:100]})

            async def search(k: int) -> list[int]:
                probe = list(range(100 + k, 500, 100))
                hits = await client.search("c", data=base[probe], limit=1)
                return [h[0]["id"] for h in hits] == probe

            jobs = (
                [insert(k) for k in range(60)]
                + [upsert(k) for k in range(20)]
                + [search(k) for k in range(60)]
            )
            order = np.random.default_rng(5).permutation(len(jobs))
            results = await asyncio.gather(*(jobs[i] for i in order))
            by_job = [None] * len(jobs)
            for pos, i in enumerate(order):
                by_job[i] = results[pos]
            assert [r["insert_count"] for r in by_job[:60]] == [100] * 60
            assert [r["upsert_count"] for r in by_job[60:80]] == [100] * 20
            assert all(by_job[80:]), "a search missed a row that was there before it started"

            rows = await client.query("c", filter="id >= 0", output_fields=["ver"])
            ids = sorted(r["id"] for r in rows)
            assert ids == list(range(500)) + list(range(1000, 7000))
            count = await client.query("c", filter="id >= 0", output_fields=["count(*)"])
            assert count[0]["count(*)"] == 6500
            vers = {r["ver"] for r in rows if r["id"] < 100}
            assert len(vers) == 1 and vers.pop() in range(1, 21), "upserts interleaved row by row"

    asyncio.run(main())
