"""A program's end: threads that outlive the main thread, and clients never closed.

Each scenario runs as a real child process (``python -c``), so the interpreter's
own exit sequence is the one under test: threading's exit hooks (where
concurrent.futures stops its pools), the joining of non-daemon threads, then
``atexit`` (where Heron closes the engines clients left open).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import heron
from heron._pool import Pool

ROWS = 150_000  # enough for full segments to seal and merge while the program ends
DIM = 8


@pytest.fixture(autouse=True)
def _remove_data_dirs(tmp_path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


#: What every child starts with: ``c``, a client of the data directory ``sys.argv[1]`` with an empty
#: collection ``t``, and ``insert_all(c)``.
_PRELUDE = f"""
import sys, threading, time
import numpy as np
import heron

def insert_all(c):
    for lo in range(0, {ROWS}, 10_000):
        c.insert("t", {{"id": np.arange(lo, lo + 10_000),
                        "vector": np.random.default_rng(lo).random((10_000, {DIM}), dtype=np.float32)}})

c = heron.Client(sys.argv[1])
c.create_collection("t", dimension={DIM})
"""


def _run_child(code: str, path: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _PRELUDE + textwrap.dedent(code), path], capture_output=True,
                          text=True, timeout=300)


def _check_reopened(path: str) -> None:
    with heron.Client(path) as c:
        assert c.get_collection_stats("t")["row_count"] == ROWS
        got = c.get("t", ids=[0, ROWS // 2, ROWS - 1], output_fields=["vector"])
        assert [r["id"] for r in got] == [0, ROWS // 2, ROWS - 1]
        want = np.random.default_rng(ROWS - 10_000).random((10_000, DIM), dtype=np.float32)[-1]
        assert np.array_equal(np.asarray(got[2]["vector"], dtype=np.float32), want)
        q = np.random.default_rng(70_000).random((1, DIM), dtype=np.float32)
        assert c.search("t", data=q, limit=1, search_params={"params": {"interim": False}})[0][0]["id"] == 70_000


def test_a_thread_outliving_the_main_thread_writes_and_searches(tmp_path):
    """The main thread returns at once; its worker thread then inserts (sealing and merging) and searches."""
    path = str(tmp_path / "db")
    done = _run_child(f"""
        def work():
            time.sleep(0.2)  # the main thread has returned by now
            insert_all(c)
            print("inserted", c.get_collection_stats("t")["row_count"], flush=True)
            time.sleep(1.5)  # idle: the growing rows get sealed meanwhile
            print("hits", len(c.search("t", data=np.ones((1, {DIM}), np.float32), limit=3)[0]), flush=True)

        threading.Thread(target=work).start()
    """, path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.split() == ["inserted", str(ROWS), "hits", "3"]
    _check_reopened(path)


@pytest.mark.parametrize("idle", [0.0, 1.0, 1.2])
def test_a_program_that_never_closes_its_client_ends_quietly(tmp_path, idle):
    """Exit while a seal of idle rows, a merge or an index build may be under way: no traceback, every row kept."""
    path = str(tmp_path / "db")
    done = _run_child(f"""
        insert_all(c)
        time.sleep({idle})
    """, path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    _check_reopened(path)


def test_an_exit_waits_a_bounded_time_for_background_work(tmp_path):
    """A background task that never ends holds the exit up for `EXIT_WAIT_SECONDS`, then is left behind."""
    path = str(tmp_path / "db")
    t0 = time.monotonic()
    done = _run_child("""
        import heron.engine._engine as engine_module
        engine_module.EXIT_WAIT_SECONDS = 0.5
        c.insert("t", {"id": np.arange(10), "vector": np.ones((10, 8), dtype=np.float32)})
        c._transport._engine.submit(threading.Event().wait)  # never set
    """, path)
    assert done.returncode == 0, done.stderr
    assert "gave up waiting 0.5 s for background work at exit" in done.stderr
    assert time.monotonic() - t0 < 60
    with heron.Client(path) as c:
        assert c.get_collection_stats("t")["row_count"] == 10


def test_the_exit_waits_for_the_filter_warm_up_rather_than_stopping_it_in_pyarrow(tmp_path):
    """The warm-up thread runs pyarrow kernels; stopped inside them as the interpreter ends, the process aborted."""
    marker = tmp_path / "warmed"
    code = textwrap.dedent("""
        import sys
        import heron
        from heron.engine.filter import _warm

        real = _warm.exercise

        def slow() -> None:  # a warm-up still running when the program ends (a loaded machine, a short CLI run)
            for _ in range(200):
                real()
            open(sys.argv[2], "w").write("done")

        _warm.exercise = slow
        heron.Client(sys.argv[1]).close()
    """)
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "db"), str(marker)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "done"  # a daemon thread would have been stopped halfway


# -- the pool itself ---------------------------------------------------------------------


def test_pool_runs_in_order_and_maps():
    with Pool(1, "heron-test") as pool:
        seen: list[int] = []
        futs = [pool.submit(seen.append, i) for i in range(20)]
        assert [f.result(timeout=10) for f in futs] == [None] * 20
        assert seen == list(range(20))
        assert list(pool.map(lambda a, b: a * b, range(5), range(5))) == [0, 1, 4, 9, 16]
        boom = pool.submit(int, "x")
        with pytest.raises(ValueError):
            boom.result(timeout=10)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(int)


def test_pool_threads_are_daemons_started_as_needed():
    pool = Pool(2, "heron-test", initializer=lambda: None)
    gate = threading.Event()
    try:
        first = pool.submit(gate.wait, 10)
        second = pool.submit(gate.wait, 10)
        deadline = time.monotonic() + 10
        while len([t for t in threading.enumerate() if t.name.startswith("heron-test_")]) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        threads = [t for t in threading.enumerate() if t.name.startswith("heron-test_")]
        assert sorted(t.name for t in threads) == ["heron-test_0", "heron-test_1"]
        assert all(t.daemon for t in threads)
        third = pool.submit(int, "7")  # both busy and at the limit: it waits for one of them
        gate.set()
        assert first.result(timeout=10) and second.result(timeout=10) and third.result(timeout=10) == 7
    finally:
        gate.set()
        pool.shutdown(wait=True)
    assert not any(t.is_alive() for t in threads)


def test_pool_shutdown_runs_or_cancels_what_is_queued():
    gate = threading.Event()
    pool = Pool(1, "heron-test")
    running = pool.submit(gate.wait, 10)
    queued = [pool.submit(int, str(i)) for i in range(3)]
    pool.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    gate.set()
    assert running.result(timeout=10) is True
    pool.shutdown(wait=True)

    pool = Pool(1, "heron-test")
    gate.clear()
    running = pool.submit(gate.wait, 10)
    queued = [pool.submit(int, str(i)) for i in range(3)]
    threading.Timer(0.1, gate.set).start()
    pool.shutdown(wait=True)  # the queued tasks run before the threads end
    assert [f.result(timeout=0) for f in queued] == [0, 1, 2]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_a_pool_works_in_a_forked_child():
    """A child forked while a pool's thread is busy, with work queued, gets a pool that works."""
    gate = threading.Event()
    pool = Pool(1, "heron-test")
    try:
        busy = pool.submit(gate.wait, 10)
        queued = pool.submit(int, "1")
        deadline = time.monotonic() + 10
        while not busy.running():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pid = os.fork()
        if pid == 0:  # the child: the parent's thread is not here, and it must not wait for it
            code = 1
            try:
                if queued.cancelled() and pool.submit(int, "42").result(timeout=10) == 42:
                    code = 0
            finally:
                os._exit(code)
        gate.set()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert busy.result(timeout=10) is True and queued.result(timeout=10) == 1
    finally:
        gate.set()
        pool.shutdown(wait=True)
