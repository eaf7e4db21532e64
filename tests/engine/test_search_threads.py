"""A search of a few queries runs faiss and numpy's BLAS on the calling thread alone, and gives the settings back."""

from __future__ import annotations

import threading

import numpy as np
from threadpoolctl import threadpool_info

from heron.engine.index import _exact, _faiss, _top_one
from heron.engine.index._faiss import faiss, threads_for


def _per_thread_blas_expected() -> bool:
    """Whether an OpenBLAS with per-thread counts (0.3.27 on) is loaded: numpy's wheels have had one since 2.1."""
    for lib in threadpool_info():
        if lib.get("internal_api") == "openblas" and lib.get("version"):
            parts = [int(p) for p in lib["version"].split(".")[:3] if p.isdigit()]
            if parts >= [0, 3, 27]:
                return True
    return False


def _blas_counts() -> list[int]:
    before = _faiss._set_blas(7)  # read by setting; put back at once
    _faiss._restore_blas(before)
    return before


def test_blas_threads_are_set_per_thread_and_given_back():
    assert bool(_faiss._blas_local_setters()) == _per_thread_blas_expected()
    assert _per_thread_blas_expected()  # numpy's OpenBLAS in this environment: the setting is exercised
    outside = _blas_counts()
    omp = faiss.omp_get_max_threads()
    with threads_for(1):
        assert _blas_counts() == [1] * len(outside)
        assert faiss.omp_get_max_threads() == 1
    assert _blas_counts() == outside and faiss.omp_get_max_threads() == omp
    with threads_for(_faiss.SINGLE_THREAD_BELOW_NQ):  # a batch keeps the thread's own settings
        assert _blas_counts() == outside


def test_heron_worker_threads_keep_the_setting_between_searches():
    seen: dict[str, list[int]] = {}
    outside = _blas_counts()

    def work() -> None:
        with threads_for(1):
            seen["small"] = _blas_counts()
        seen["after"] = _blas_counts()  # kept for the next search on this thread
        with threads_for(64):
            seen["batch"] = _blas_counts()

    t = threading.Thread(target=work, name="heron-search-test")
    t.start()
    t.join()
    assert seen["small"] == seen["after"] == [1] * len(outside)
    assert seen["batch"] == outside
    assert _blas_counts() == outside  # another thread's setting never reached this one


def test_single_query_products_run_under_the_one_thread_setting(monkeypatch):
    counts: list[list[int]] = []

    def spy(real):
        class Spy:
            def __init__(self, nq: int) -> None:
                self.cm = real(nq)

            def __enter__(self) -> None:
                self.cm.__enter__()
                counts.append(_blas_counts())

            def __exit__(self, *exc: object) -> None:
                self.cm.__exit__(*exc)

        return Spy

    monkeypatch.setattr(_exact, "threads_for", spy(_exact.threads_for))
    monkeypatch.setattr(_top_one, "blas_threads_for", spy(_top_one.blas_threads_for))
    rng = np.random.default_rng(3)
    n = _exact._SORT_ALL_BELOW  # more rows are scored by faiss, one query on one thread (`_top_one._faiss_top_one`)
    x = rng.standard_normal((n, 32)).astype(np.float32)
    q = rng.standard_normal(32).astype(np.float32)
    s, r = _top_one.ip_top_one(x, np.arange(n), q, 10)
    np.testing.assert_array_equal(r[0], np.argsort(-(x @ q), kind="stable")[:10])
    assert counts and all(c == [1] * len(c) for c in counts)


def test_one_query_faiss_scans_of_gathered_rows_run_on_one_thread_and_give_it_back(monkeypatch):
    """faiss splits one query's scan of a few thousand rows over its threads, twice as slow: one thread, then back."""
    seen: list[tuple[str, int]] = []

    class Spy:
        def __getattr__(self, name: str):
            real = getattr(faiss, name)
            if not name.startswith("knn_"):
                return real

            def call(*args):
                seen.append((name, faiss.omp_get_max_threads()))
                return real(*args)

            return call

    monkeypatch.setattr(_top_one, "faiss", Spy())
    rng = np.random.default_rng(4)
    n = _exact._SORT_ALL_BELOW * 8
    x = rng.standard_normal((n, 32)).astype(np.float32)
    ids = np.arange(n)
    q = rng.standard_normal(32).astype(np.float32)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        s, r = _top_one.ip_top_one(x, ids, q, 10)
        np.testing.assert_array_equal(r[0], np.argsort(-(x @ q), kind="stable")[:10])
        got = _top_one.l2_top_one(x, ids, q, 10, np.einsum("ij,ij->i", x, x))
        assert got is not None
        np.testing.assert_array_equal(got[1][0], np.argsort(((x - q) ** 2).sum(1), kind="stable")[:10])
        assert sorted(seen) == [("knn_L2sqr", 1), ("knn_inner_product", 1)]
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
