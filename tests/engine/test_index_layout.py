"""A large HNSW index's rows renumbered by place (`index._layout`): the same hits, filters, reads and files.

The layout changes where faiss keeps each row, never what a search answers:
every test compares a laid-out index with the very same graph in the order
the rows came (a clone of it, left as built), hit for hit.
"""

from __future__ import annotations

import errno
import io
import time
import tracemalloc
from typing import Any

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine.index import _dense, _layout
from heron.engine.index._base import IndexFileError
from heron.engine.index._dense import DenseIndex
from heron.engine.index._faiss import faiss
from heron.engine.index._grow import grown_copy
from heron.engine.index._layout import Layout, lay_out
from heron.engine.index._vector_index import build_index, load_index

DIM = 16
ROWS = 3000
PARAMS = {"M": 8, "efConstruction": 40}
SP = {"ef": 64}


def _data(seed: int, n: int) -> np.ndarray:
    centres = np.random.default_rng(0).standard_normal((12, DIM)).astype(np.float32) * 3  # one mixture
    rng = np.random.default_rng(seed)
    return (centres[rng.integers(0, 12, n)] + rng.standard_normal((n, DIM))).astype(np.float32)


def _pair(metric: str, monkeypatch: Any) -> tuple[DenseIndex, DenseIndex]:
    """One HNSW index twice: as built (rows in the order they came) and laid out."""
    monkeypatch.setattr(_layout, "LAYOUT_MIN_ROWS", 10**9)
    plain = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", metric, PARAMS, _data(1, ROWS))
    assert isinstance(plain, DenseIndex) and plain.layout is None
    monkeypatch.setattr(_layout, "LAYOUT_MIN_ROWS", 1000)
    raw = faiss.clone_index(plain._index)
    laid = DenseIndex(DataType.FLOAT_VECTOR, DIM, "HNSW", metric, PARAMS, index=raw, layout=lay_out(raw, None))
    assert laid.layout is not None
    order = laid.layout.order
    assert sorted(order.tolist()) == list(range(ROWS)) and (order != np.arange(ROWS)).mean() > 0.9
    return plain, laid


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["COSINE", "L2", "IP"])
def test_a_laid_out_index_answers_as_the_index_built(metric, monkeypatch):
    plain, laid = _pair(metric, monkeypatch)
    q = _data(2, 40)
    _same(laid.search(q, 10, params=SP), plain.search(q, 10, params=SP))
    for i in range(5):  # the one-query way the quick lane takes
        one = np.ascontiguousarray(q[i : i + 1])
        _same(laid.search_one(one, 10, SP, ROWS), plain.search_one(one, 10, SP, ROWS))
    if metric != "IP":  # each row finds itself (by inner product a longer row may come first)
        rows = laid.search(_data(1, ROWS)[:50], 1, params=SP)[1][:, 0]
        assert (rows == np.arange(50)).mean() >= 0.96


@pytest.mark.parametrize("through", ["index", "scan"])
def test_filters_name_rows_not_places(through, monkeypatch):
    """A filter's rows reach faiss as a bitmap of the index's numbers, and a scan reads the rows' own vectors."""
    plain, laid = _pair("COSINE", monkeypatch)
    if through == "index":  # no exact scan of the kept rows: faiss's search with a selector
        monkeypatch.setattr(_dense, "EXACT_SCAN_BUDGET", {"HNSW": 0, "IVF": 0})
        monkeypatch.setattr(_dense, "FILTER_CROSSOVER", {"HNSW": 0.0, "IVF": 0.0})
        monkeypatch.setattr(_dense, "CACHED_SCAN_BUDGET", 0)
    allow = np.zeros(ROWS, dtype=bool)
    allow[np.random.default_rng(3).choice(ROWS, ROWS // 3, replace=False)] = True
    q = _data(4, 30)
    for mask in (allow, allow.copy()):  # writable, then read-only (its bitmap kept)
        mask.flags.writeable = mask is not allow
        got = laid.search(q, 10, allow=mask, params=SP)
        assert allow[got[1][got[1] >= 0]].all()
        _same(got, plain.search(q, 10, allow=mask, params=SP))
    for r in range(3):  # the kept bitmap is the mask's, not an earlier one's
        other = np.roll(allow, r + 1)
        other.flags.writeable = False
        got = laid.search(q[:5], 10, allow=other, params=SP)
        assert other[got[1][got[1] >= 0]].all()
    radius = 0.6  # COSINE: similarity above 0.6
    found = 0
    for a, b in zip(laid.range_search(q, radius=radius, allow=allow, params=SP),
                    plain.range_search(q, radius=radius, allow=allow, params=SP)):
        assert sorted(a[1].tolist()) == sorted(b[1].tolist()) and allow[a[1]].all()
        found += a[1].size
    assert found > 100


@pytest.mark.parametrize("written", [np.int32, np.int64])
def test_an_index_file_keeps_the_layout(written, tmp_path, monkeypatch):
    """The order is 4 bytes a row; a file whose order is 8 bytes a row (written so before) reads the same."""
    plain, laid = _pair("L2", monkeypatch)
    assert laid.layout.order.dtype == np.int32
    laid.layout = Layout(laid.layout.order.astype(written))
    path = str(tmp_path / "vec.idx")
    laid.save(path)
    back = load_index(path)
    assert isinstance(back, DenseIndex) and back.layout is not None
    assert back.layout.order.dtype == written
    np.testing.assert_array_equal(back.layout.order, laid.layout.order)
    q = _data(5, 20)
    _same(back.search(q, 10, params=SP), plain.search(q, 10, params=SP))
    flt = np.zeros(ROWS, dtype=bool)
    flt[::3] = True
    _same(back.search(q, 10, params=SP, allow=flt), plain.search(q, 10, params=SP, allow=flt))


def test_an_order_that_does_not_name_each_row_once_is_damage(tmp_path, monkeypatch):
    _, laid = _pair("L2", monkeypatch)
    bad = laid.layout.order.copy()
    bad[7] = bad[8]  # a row twice, another never
    laid.layout = Layout(bad)
    path = str(tmp_path / "vec.idx")
    laid.save(path)  # a file whose bytes match their checksums, its order wrong
    with pytest.raises(IndexFileError, match="row order"):
        load_index(path)


def test_rows_added_later_are_laid_out_with_the_others(monkeypatch):
    plain, laid = _pair("COSINE", monkeypatch)
    more = _data(6, 1500)
    grown = grown_copy(laid, more)
    assert isinstance(grown, DenseIndex) and grown.ntotal == ROWS + 1500 and grown.layout is not None
    assert grown.layout is not laid.layout and laid.layout.order.shape == (ROWS,)  # the original is untouched
    order = grown.layout.order
    assert sorted(order.tolist()) == list(range(ROWS + 1500))
    assert (order[-1500:] != np.arange(ROWS, ROWS + 1500)).any()  # the new rows are not just appended
    both = np.concatenate([_data(1, ROWS), more])
    rows = grown.search(both[ROWS - 40 : ROWS + 40], 1, params=SP)[1][:, 0]
    assert (rows == np.arange(ROWS - 40, ROWS + 40)).mean() >= 0.95  # old rows and new find themselves
    q = _data(2, 10)
    _same(laid.search(q, 10, params=SP), plain.search(q, 10, params=SP))


def test_a_collection_answers_the_same_before_and_after_a_reopen(tmp_path, monkeypatch):
    """Through the client: the segment's index is laid out, its hits are the rows' keys, a reopen reads the order."""
    monkeypatch.setattr(_layout, "LAYOUT_MIN_ROWS", 1000)
    x = _data(7, ROWS)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        idx = c.prepare_index_params()
        idx.add_index("vec", index_type="HNSW", metric_type="COSINE", params=PARAMS)
        c.create_collection("c", dimension=DIM, vector_field_name="vec", index_params=idx)
        c.insert("c", {"id": np.arange(ROWS) + 10_000, "vec": x, "tag": (np.arange(ROWS) % 3).tolist()})
        c.flush("c")
        while c.describe_index("c", "vec")["pending_index_rows"]:
            time.sleep(0.05)
        engine = c._transport._engine
        coll = engine.collection("default", "c")
        views = [v for _, v in coll.snapshot(list(coll.partitions.values())).views if v.n]
        laid = [v.segment.vindex["vec"][1] for v in views if "vec" in v.segment.vindex]
        assert laid and all(i.layout is not None for i in laid)
        first = [c.search("c", data=x[i : i + 1], limit=1)[0][0]["id"] for i in range(20)]
        tagged = c.search("c", data=x[:5], limit=10, filter="tag == 1", output_fields=["tag"])
    assert np.mean(np.array(first) == np.arange(20) + 10_000) >= 0.95
    assert all(h["entity"]["tag"] == 1 and (h["id"] - 10_000) % 3 == 1 for hits in tagged for h in hits)
    with heron.Client(path) as c:
        again = [c.search("c", data=x[i : i + 1], limit=1)[0][0]["id"] for i in range(20)]
        assert again == first
        assert c.search("c", data=x[:5], limit=10, filter="tag == 1", output_fields=["tag"]) == tagged


def _graph(raw: Any) -> list[Any]:
    """An HNSW index's vectors, links, link offsets, levels and entry point, copied."""
    h = raw.hnsw
    return [faiss.vector_to_array(faiss.downcast_index(raw.storage).codes)] + [
        faiss.vector_to_array(v) for v in (h.neighbors, h.offsets, h.levels)] + [h.entry_point]


def _same_graph(a: list[Any], b: list[Any]) -> None:
    for x, y in zip(a[:-1], b[:-1]):
        np.testing.assert_array_equal(x, y)
    assert a[-1] == b[-1]


def test_the_renumbering_leaves_the_graph_as_faiss_own_does(monkeypatch):
    """Vectors, links, offsets, levels and entry point come out as faiss's ``permute_entries`` leaves them."""
    plain, _ = _pair("L2", monkeypatch)
    monkeypatch.setattr(_layout, "STEP_BYTES", 4096)  # many pieces, their edges inside rows' links
    perm = np.random.default_rng(3).permutation(ROWS).astype(np.int64)
    theirs, ours = faiss.clone_index(plain._index), faiss.clone_index(plain._index)
    theirs.permute_entries(perm)
    _layout._renumber(faiss.rev_swig_ptr(faiss.downcast_index(ours.storage).get_xb(), ROWS * DIM).reshape(ROWS, DIM),
                      ours.hnsw, perm)
    assert int(np.diff(faiss.vector_to_array(ours.hnsw.offsets)).max()) > 2 * PARAMS["M"]  # upper levels' rows too
    _same_graph(_graph(ours), _graph(theirs))
    assert not np.array_equal(_graph(ours)[1], _graph(plain._index)[1])


def test_the_renumbering_holds_pieces_not_a_second_graph(monkeypatch):
    """Beside the index, the renumbering holds arrays of a few numbers per row and pieces of `STEP_BYTES`."""
    n, d = 20_000, 4
    raw = faiss.IndexHNSWFlat(d, 16)
    raw.add(np.random.default_rng(4).standard_normal((n, d)).astype(np.float32))
    links = int(raw.hnsw.neighbors.size()) * 4
    monkeypatch.setattr(_layout, "STEP_BYTES", 16 << 10)
    xb = faiss.rev_swig_ptr(faiss.downcast_index(raw.storage).get_xb(), n * d).reshape(n, d)
    perm = np.random.default_rng(5).permutation(n).astype(np.int64)
    tracemalloc.start()
    try:
        _layout._renumber(xb, raw.hnsw, perm)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < links / 2, (peak, links)  # a second copy of the links (or of the vectors) would be more


def test_the_renumbering_reuses_its_arrays_from_piece_to_piece(monkeypatch):
    """Each piece is renumbered into the same arrays: no temporaries of a piece's size, made anew each piece.

    Temporaries of a new size each piece land on fresh pages of the heap's free space; over the rebuild of a
    1M-row load that held 20 MB more until the next trim.
    """
    n, d = 20_000, 4
    raw = faiss.IndexHNSWFlat(d, 16)
    raw.add(np.random.default_rng(6).standard_normal((n, d)).astype(np.float32))
    monkeypatch.setattr(_layout, "STEP_BYTES", 64 << 10)
    xb = faiss.rev_swig_ptr(faiss.downcast_index(raw.storage).get_xb(), n * d).reshape(n, d)
    perm = np.random.default_rng(7).permutation(n).astype(np.int64)
    passing: list[int] = []  # per piece: the most memory held at once beyond what is held after it

    def between_pieces() -> None:
        now, peak = tracemalloc.get_traced_memory()
        passing.append(peak - now)
        tracemalloc.reset_peak()

    monkeypatch.setattr(_layout, "trim_heap_often", between_pieces)
    tracemalloc.start()
    try:
        _layout._renumber(xb, raw.hnsw, perm)
    finally:
        tracemalloc.stop()
    row_pieces = -(-n * d * 4 // (64 << 10))
    links_pass = passing[row_pieces + 1 :]  # the first links piece also sees the rows pass's arrays go
    assert len(links_pass) > 100
    # the typical piece, since another thread of the process may allocate during a few (arrays made anew each
    # piece held ~32 KB in every one)
    pieces = sorted(passing[1:row_pieces] + links_pass)
    assert pieces[len(pieces) // 2] < 4 << 10, passing  # a piece's links alone are ~64 KB


@pytest.mark.parametrize("full_at", [0, 1, 2])
def test_no_room_for_the_temporary_copy_leaves_the_index_as_built(full_at, monkeypatch):
    """The rows and links pass through temporary files (no second copy in memory); a full disk renumbers nothing."""
    plain, _ = _pair("L2", monkeypatch)

    class Full(io.BytesIO):
        def write(self, b: Any) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    made: list[int] = []  # the first file (the rows'), the second (the links') or the third (levels) finds the disk full

    def temporary(**_: Any) -> io.BytesIO:
        made.append(1)
        return Full() if len(made) - 1 == full_at else io.BytesIO()

    monkeypatch.setattr(_layout.tempfile, "TemporaryFile", temporary)
    raw = faiss.clone_index(plain._index)
    before = _graph(raw)
    assert lay_out(raw, None) is None
    _same_graph(_graph(raw), before)
    same = DenseIndex(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", PARAMS, index=raw)
    q = _data(8, 20)
    _same(same.search(q, 10, params=SP), plain.search(q, 10, params=SP))


def test_links_that_their_levels_do_not_give_leave_the_index_as_built(monkeypatch):
    """The new offsets come from the levels: a graph whose link slots do not follow them is not renumbered."""
    plain, _ = _pair("L2", monkeypatch)
    raw = faiss.clone_index(plain._index)
    levels = faiss.rev_swig_ptr(raw.hnsw.levels.data(), ROWS)
    base = int(np.flatnonzero(levels == 1)[0])
    levels[base] = 2  # its slots are still those of a row of the base level only
    before = _graph(raw)
    assert lay_out(raw, None) is None
    _same_graph(_graph(raw), before)


def test_a_link_past_the_last_row_leaves_the_index_as_built(monkeypatch):
    """A link naming no row of the index stops the renumbering before anything is read back."""
    plain, _ = _pair("L2", monkeypatch)
    raw = faiss.clone_index(plain._index)
    links = faiss.rev_swig_ptr(raw.hnsw.neighbors.data(), raw.hnsw.neighbors.size())
    links[int(np.flatnonzero(links >= 0)[-1])] = ROWS
    before = _graph(raw)
    assert lay_out(raw, None) is None
    _same_graph(_graph(raw), before)


def test_a_large_build_adds_the_upper_levels_rows_first(monkeypatch):
    """Rows go to faiss highest level first, each with the level drawn for it; hits still name the rows."""
    monkeypatch.setattr(_layout, "LAYOUT_MIN_ROWS", 1000)
    x = _data(9, ROWS)
    raw = faiss.IndexHNSWFlat(DIM, 8)
    hubs = _layout.hubs_first(raw, ROWS)
    assert hubs is not None and sorted(hubs.order.tolist()) == list(range(ROWS))
    assert (np.diff(hubs.levels) <= 0).all() and hubs.levels[0] > 1 and hubs.levels[-1] == 1
    _dense._add_in_slices(raw, x, False, "a test build", hubs=hubs)
    np.testing.assert_array_equal(faiss.vector_to_array(raw.hnsw.levels), hubs.levels)  # faiss kept the levels
    stored = faiss.rev_swig_ptr(faiss.downcast_index(raw.storage).get_xb(), ROWS * DIM).reshape(ROWS, DIM)
    np.testing.assert_array_equal(stored, x[hubs.order])
    assert _layout.hubs_first(faiss.IndexHNSWFlat(DIM, 8), 999) is None  # small: in the order the rows came
    built = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", PARAMS, x)
    assert isinstance(built, DenseIndex) and built.layout is not None
    drawn = np.empty(ROWS, dtype=np.int32)  # the build drew the same levels (its draw is seeded) and kept them
    drawn[hubs.order] = hubs.levels
    by_row = np.empty(ROWS, dtype=np.int32)
    by_row[built.layout.order] = faiss.vector_to_array(built._index.hnsw.levels)
    np.testing.assert_array_equal(by_row, drawn)
    q = _data(10, 30)
    dist, rows = built.search(q, 10, params=SP)
    np.testing.assert_allclose(dist, np.square(q[:, None, :] - x[rows]).sum(axis=2), rtol=1e-4, atol=1e-3)
    assert (built.search(x[:50], 1, params=SP)[1][:, 0] == np.arange(50)).mean() >= 0.96


@pytest.mark.parametrize("busy", [True, False])
def test_renumbering_leaves_callers_a_core_while_they_are_busy(busy, monkeypatch):
    """As the build's slices do (`build_threads`); the thread count is back to what it was afterwards."""
    monkeypatch.setattr(_layout, "LAYOUT_MIN_ROWS", 1000)
    seen: list[int] = []
    real = _layout._renumber
    monkeypatch.setattr(_layout, "_renumber", lambda xb, h, perm: (seen.append(faiss.omp_get_max_threads()),
                                                                   real(xb, h, perm))[1])
    monkeypatch.setattr(_layout, "build_threads", lambda full, b: 1 if b else full + 1)
    before = faiss.omp_get_max_threads()
    built = build_index(DataType.FLOAT_VECTOR, DIM, "HNSW", "L2", PARAMS, _data(1, ROWS), busy=lambda: busy)
    assert isinstance(built, DenseIndex) and built.layout is not None
    grown = built.extended(_data(6, 500), busy=lambda: busy)
    assert grown is not None and grown.layout is not None
    assert seen == [1 if busy else before + 1] * 2  # a build's renumbering, then a growth's
    assert faiss.omp_get_max_threads() == before


@pytest.mark.parametrize("before", [None, 0, 5_000])
def test_the_layout_holds_about_twelve_bytes_a_row_beside_the_index(before, monkeypatch):
    """The order (8 bytes a row) and each row's new number (4), whether or not the index had a layout `before`.

    A layout before may stop short of the index's last rows (added since, at their own numbers).

    Each row's cell comes a piece at a time, a byte a row (faiss's search
    answers 12 bytes a row), and no other row-sized array is made: each new
    number's first link slot comes from its level a piece at a time, the
    levels pass through a temporary file as the rows and links do, and the
    order so far is applied to the new one in place. The whole renumbering
    held 36 bytes a row, then 20.6.
    """
    n, d = 60_000, 4
    raw = faiss.IndexHNSWFlat(d, 16)
    raw.add(np.random.default_rng(4).standard_normal((n, d)).astype(np.float32))
    plain = faiss.clone_index(raw)
    monkeypatch.setattr(_layout, "STEP_BYTES", 16 << 10)
    monkeypatch.setattr(_layout, "CELL_STEP", 4096)
    so_far = None if before is None else Layout(np.random.default_rng(6).permutation(n - before).astype(np.int64))
    tracemalloc.start()
    try:
        layout = _layout._lay_out(raw, so_far, n)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 14 * n, peak / n
    assert layout is not None and sorted(layout.order.tolist()) == list(range(n))
    q = np.random.default_rng(5).standard_normal((50, d)).astype(np.float32)
    ours, theirs = raw.search(q, 10), plain.search(q, 10)
    rows = theirs[1] if so_far is None else so_far.grown(n).order[theirs[1]]
    np.testing.assert_array_equal(layout.order[ours[1]], rows)  # the same graph: the same hits
    np.testing.assert_array_equal(ours[0], theirs[0])


@pytest.mark.parametrize(("n", "k"), [(1, 1), (999, 3), (12_345, 256), (5_000, 1)])
def test_rows_sorted_by_cell_a_piece_at_a_time_come_as_a_stable_sort_gives(n, k, monkeypatch):
    monkeypatch.setattr(_layout, "CELL_STEP", 1000)  # pieces of 1,000 rows, the last one short
    cell = np.random.default_rng(n).integers(0, k, n).astype(np.uint8)
    np.testing.assert_array_equal(_layout._by_cell(cell, k), np.argsort(cell, kind="stable"))
