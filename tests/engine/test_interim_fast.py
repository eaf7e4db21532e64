"""The copy of settled interim lists as 4-bit codes (`engine/_interim_fast.py`)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import heron
from heron import DataType
from heron.engine import _interim_fast, _interim_ivf, _interim_merged, _interim_one
from heron.engine._interim_assign import TWO_STEP_LISTS
from heron.engine.index._faiss import faiss
from tests.engine._held import held_builds

DIM = 256


def _clustered(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    centres = np.random.default_rng(12345).standard_normal((48, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    return np.ascontiguousarray(x * rng.uniform(0.5, 2.0, (n, 1)).astype(np.float32))


def _parts(metric: str, bounds: list[int], x: np.ndarray) -> list[tuple[_interim_ivf.GrowingIVF, np.ndarray, int]]:
    trained = _interim_ivf.train_lists(x.shape[1], metric, _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, x[:3200]))
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        ivf = _interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, x.shape[1], metric, trained)
        for s in range(lo, hi, 700):  # grown a step at a time, as rows arrive
            ivf.grow(x[s:min(hi, s + 700)])
        out.append((ivf, x[lo:hi], hi - lo))
    return out


@pytest.fixture
def merge_at_once(monkeypatch):
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0)
    monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
    monkeypatch.setattr(_interim_merged, "_MERGED", {})


def _list_codes(inv, lst: int) -> tuple[np.ndarray, bytes]:
    n = inv.list_size(lst)
    blocks = -(-n // _interim_fast.BLOCK_ROWS)
    ids = faiss.rev_swig_ptr(inv.get_ids(lst), n).copy()
    codes = bytes(faiss.rev_swig_ptr(inv.get_codes(lst), blocks * inv.block_size)) if n else b""
    return ids, codes


@pytest.mark.parametrize("metric", ["COSINE", "IP"])
def test_the_copy_holds_what_faiss_holds_for_the_same_rows_in_the_same_lists(metric: str) -> None:
    """Per list, the same ids in the same order and the same packed codes as faiss holds once given the rows.

    Under `TWO_STEP_LISTS` lists an interim index assigns rows by its
    quantizer, so faiss, given the same centres, puts every row in the same
    list; each list's codes are packed by faiss's own packer, a block at a time.
    """
    x = _clustered(5000, 1)
    bounds = [0, 1800, 1810, 5000]
    parts = _parts(metric, bounds, x)
    ivfs = [ivf for ivf, _, _ in parts]
    assert ivfs[0].lists.nlist < TWO_STEP_LISTS
    copy = _interim_merged.Merged(ivfs, [v for _, v, _ in parts])
    assert copy.fast and copy.counts == (1800, 10, 3190)
    _, template, coder = _interim_fast._TEMPLATES[id(ivfs[0].lists)]
    ref = faiss.clone_index(template)
    rows = _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, x)
    _, lists = ref.quantizer.search(rows, 1)
    codes = coder.codes(rows)
    ref_inv = faiss.downcast_InvertedLists(ref.invlists)
    block, per = int(ref_inv.packer.block_size), _interim_fast.BLOCK_ROWS
    for lst in range(ref.nlist):
        ids = np.flatnonzero(lists[:, 0] == lst)
        flat = np.zeros((-(-len(ids) // per) * per, codes.shape[1]), dtype=np.uint8)
        flat[: len(ids)] = codes[ids]
        packed = np.empty(len(flat) // per * block, dtype=np.uint8)
        for b in range(len(flat) // per):
            ref_inv.packer.pack_all(faiss.swig_ptr(flat[b * per :]), faiss.swig_ptr(packed[b * block :]))
        ref_inv.add_entries(lst, len(ids), faiss.swig_ptr(ids), faiss.swig_ptr(packed))
    ref.ntotal = 5000
    got_inv = faiss.downcast_InvertedLists(copy._index.invlists)
    code_size = copy._index.pq.code_size
    assert copy.nbytes == 5000 * code_size == 5000 * DIM // (2 * _interim_fast.SUB_DIMS)
    for lst in range(ref.nlist):
        g_ids, g_codes = _list_codes(got_inv, lst)
        r_ids, r_codes = _list_codes(ref_inv, lst)
        assert np.array_equal(g_ids, r_ids) and g_codes == r_codes, lst
    q = _interim_ivf.prepared(DataType.FLOAT_VECTOR, metric, _clustered(5, 2))
    for qi in q:
        coarse, assign = ivfs[0].assign(qi[None])
        at, rows = copy.search(qi[None], 60, assign[0], coarse[0])
        ref.nprobe = assign.shape[1]
        _, want = ref.search(qi[None], 60)
        assert np.array_equal(np.array(bounds)[at] + rows, want[0])  # each hit named by its segment and row


@pytest.mark.parametrize("dim", [256, 258, 384, 768])
def test_blocks_are_packed_as_faiss_packs_them(dim: int) -> None:
    """`pack_blocks` gives, for every block, the bytes of faiss's own packer, odd sub-quantizer counts included."""
    index = faiss.IndexIVFPQFastScan(faiss.IndexFlatIP(dim), dim, 4, dim // _interim_fast.SUB_DIMS, 4,
                                     faiss.METRIC_INNER_PRODUCT, _interim_fast.BLOCK_ROWS)
    packer = faiss.downcast_InvertedLists(index.invlists).packer
    code_size = int(index.pq.code_size)
    blocks = 7
    codes = np.random.default_rng(dim).integers(0, 256, (blocks * _interim_fast.BLOCK_ROWS, code_size), dtype=np.uint8)
    if (dim // _interim_fast.SUB_DIMS) % 2:
        codes[:, -1] &= 15  # an odd count's last byte holds one code
    want = np.empty(blocks * int(packer.block_size), dtype=np.uint8)
    for b in range(blocks):
        packer.pack_all(faiss.swig_ptr(codes[b * _interim_fast.BLOCK_ROWS :]),
                        faiss.swig_ptr(want[b * int(packer.block_size) :]))
    got = _interim_fast.pack_blocks(codes)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


@pytest.mark.parametrize("metric", ["COSINE", "IP"])
def test_one_query_through_the_copy_finds_the_exact_top_hits(metric: str, merge_at_once) -> None:
    x = _clustered(6000, 3)
    bounds = [0, 2500, 6000]
    parts = _parts(metric, bounds, x)
    queries = np.concatenate([_clustered(30, 4), x[[3, 2600, 5999]]])
    starts = np.array(bounds[:-1])
    recall = []
    for qi in queries:
        got = _interim_one.together_one(parts, qi[None], 10)
        assert got is not None
        (copy,) = _interim_merged._MERGED.values()
        assert copy.fast
        ids = starts[got[1][0]] + got[2][0]
        if metric == "IP":
            exact = x @ qi
        else:
            exact = (x @ qi) / np.linalg.norm(x, axis=1) / np.linalg.norm(qi)
        np.testing.assert_allclose(got[0][0], exact[ids], rtol=1e-4, atol=1e-5)  # the exact scores, best first
        assert list(got[0][0]) == sorted(got[0][0], reverse=True) and len(set(ids.tolist())) == 10
        recall.append(len(set(ids.tolist()) & set(np.argsort(-exact)[:10].tolist())) / 10)
    assert np.mean(recall) >= 0.95


def test_narrow_rows_and_l2_lists_keep_the_8bit_copy(merge_at_once) -> None:
    for metric, dim in (("COSINE", 16), ("L2", DIM)):
        x = _clustered(4000, 5, dim)
        parts = _parts(metric, [0, 2000, 4000], x)
        ivfs = [ivf for ivf, _, _ in parts]
        assert not _interim_fast.fast_eligible(ivfs[0].lists, dim)
        copy = _interim_merged.Merged(ivfs, [v for _, v, _ in parts])
        assert not copy.fast and copy.nbytes == 4000 * ivfs[0]._index.code_size


def test_the_product_quantizer_is_trained_once_per_set_of_lists(merge_at_once, monkeypatch) -> None:
    x = _clustered(5000, 6)
    parts = _parts("COSINE", [0, 2000, 5000], x)
    ivfs = [ivf for ivf, _, _ in parts]
    trained: list[int] = []
    real = _interim_fast._template

    def counted(lists, sample):
        if id(lists) not in _interim_fast._TEMPLATES:
            trained.append(sample().shape[0])
        return real(lists, sample)

    monkeypatch.setattr(_interim_fast, "_template", counted)
    monkeypatch.setattr(_interim_fast, "_TEMPLATES", {})
    one = _interim_merged.Merged(ivfs, [v for _, v, _ in parts])
    two = _interim_merged.Merged(ivfs[1:], [v for _, v, _ in parts[1:]])
    assert len(trained) == 1 and abs(trained[0] - _interim_fast.TRAIN_ROWS) <= 2
    assert one._index.pq.code_size == two._index.pq.code_size
    np.testing.assert_array_equal(faiss.vector_to_array(one._index.pq.centroids),
                                  faiss.vector_to_array(two._index.pq.centroids))


def test_rows_encoded_by_one_copy_are_not_encoded_again(merge_at_once, monkeypatch) -> None:
    """A later copy encodes only the rows that came since; a joined index keeps both indexes' codes."""
    x = _clustered(6000, 7)
    parts = _parts("COSINE", [0, 2000, 3000], x)
    ivfs = [ivf for ivf, _, _ in parts]
    encoded: list[int] = []
    real = _interim_fast.prepared

    def counted(dtype, metric, vectors):
        out = real(dtype, metric, vectors)
        encoded.append(out.shape[0])
        return out

    first = _interim_merged.Merged(ivfs, [x[:2000], x[2000:3000]])
    assert [ivf.fast_codes.shape[0] for ivf in ivfs] == [2000, 1000]
    kept = ivfs[1].fast_codes.copy(), ivfs[1].fast_codes
    monkeypatch.setattr(_interim_fast, "prepared", counted)
    ivfs[1].grow(x[3000:3500])  # its segment took 500 more rows
    second = _interim_merged.Merged(ivfs, [x[:2000], x[2000:3500]])
    assert sum(encoded) == 500 and ivfs[1].fast_codes.shape[0] == 1500
    np.testing.assert_array_equal(kept[1], kept[0])  # the codes an earlier copy read stay as they were
    np.testing.assert_array_equal(ivfs[1].fast_codes[:1000], kept[0])
    # the same codes as a copy that encodes every row
    fresh = [_interim_ivf.GrowingIVF(DataType.FLOAT_VECTOR, DIM, "COSINE", ivfs[0].lists) for _ in range(2)]
    fresh[0].grow(x[:2000])
    fresh[1].grow(x[2000:3500])
    whole = _interim_merged.Merged(fresh, [x[:2000], x[2000:3500]])
    inv_a = faiss.downcast_InvertedLists(second._index.invlists)
    inv_b = faiss.downcast_InvertedLists(whole._index.invlists)
    for lst in range(second._index.nlist):
        got_ids, got_codes = _list_codes(inv_a, lst)
        want_ids, want_codes = _list_codes(inv_b, lst)
        assert np.array_equal(got_ids, want_ids) and got_codes == want_codes, lst
    joined = _interim_merged.joined(ivfs[0], ivfs[1])
    assert joined.fast_codes is not None
    np.testing.assert_array_equal(joined.fast_codes, np.concatenate([ivfs[0].fast_codes, ivfs[1].fast_codes]))
    encoded.clear()
    _interim_merged.Merged([joined], [x[:3500]])
    assert encoded == []  # a merged segment's copy encodes nothing again
    del first


def _small_segments(monkeypatch) -> None:
    """Segments sealed at 2,000 rows, never merged nor sealed for being idle; interim lists from 1,024 rows."""
    monkeypatch.setenv("HERON_SEAL_ROWS", "2000")
    monkeypatch.setenv("HERON_MERGE_ROWS", "0")
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    monkeypatch.setenv("HERON_INTERIM_ROWS", "1024")


def _loaded(c: heron.Client, x: np.ndarray) -> None:
    """Collection "x" (a COSINE HNSW index defined first) with the rows of `x` inserted 1,000 at a time."""
    schema = c.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 64})
    c.create_collection("x", schema=schema, index_params=idx)
    for lo in range(0, len(x), 1000):
        c.insert("x", {"id": np.arange(lo, lo + 1000), "vector": x[lo:lo + 1000]})


def test_rows_are_encoded_ahead_of_the_copy_as_they_arrive(tmp_path, monkeypatch) -> None:
    """While a load goes on each interim index's rows get their 4-bit codes; the copy made later encodes none."""
    _small_segments(monkeypatch)
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 1e9)  # no copy is made meanwhile
    x = _clustered(11000, 5)
    release = held_builds(monkeypatch)
    with heron.Client(str(tmp_path / "d")) as c:
        try:
            _loaded(c, x)
            segs = c._transport._engine.collection("default", "x").partitions["_default"].segments()
            assert [s.n for s in segs] == [2000] * 5 + [1000]
            _until(lambda: all("vector" in s.interim and s.interim["vector"][1].ntotal == s.n for s in segs))
            ivfs = [s.interim["vector"][1] for s in segs]
            _until(lambda: all(i.fast_codes is not None and i.fast_codes.shape[0] == i.ntotal for i in ivfs))
            assert _interim_merged._MERGED == {}
            coder = _interim_fast._TEMPLATES[id(ivfs[0].lists)][2]
            for k, ivf in enumerate(ivfs):  # each row's codes, in its segment's order
                rows = _interim_ivf.prepared(DataType.FLOAT_VECTOR, "COSINE", x[2000 * k : 2000 * k + ivf.ntotal])
                np.testing.assert_array_equal(ivf.fast_codes, coder.codes(rows))
            encoded: list[int] = []
            real = _interim_fast.prepared

            def counted(dtype, metric, vectors):
                encoded.append(len(vectors))
                return real(dtype, metric, vectors)

            monkeypatch.setattr(_interim_fast, "prepared", counted)
            monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0)
            monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
            made = _interim_merged.merged_for(ivfs, vectors=[s.view_store("vector", s.n) for s in segs])
            assert made is not None and made.fast and encoded == []
            got = c.search("x", data=x[[7, 10999]], limit=3)
            assert [h[0]["id"] for h in got] == [7, 10999]
        finally:
            release.set()  # before the close, which waits for the held builds


def test_copies_are_made_ahead_only_of_lists_a_search_read_lately(tmp_path, monkeypatch) -> None:
    """A load nobody searches holds no copy of its lists; once a search reads them, the sealer's thread makes it."""
    _small_segments(monkeypatch)
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "_SEARCHED", {})
    monkeypatch.setattr(_interim_merged, "SETTLED_AFTER", 0.0)
    monkeypatch.setattr(_interim_merged, "BACKGROUND", False)
    x = _clustered(11000, 6)
    release = held_builds(monkeypatch)
    with heron.Client(str(tmp_path / "d")) as c:
        try:
            _loaded(c, x)
            e = c._transport._engine
            e.idle_sealer.stop()  # its thread asks for copies too: here the test asks, once at a time
            coll = e.collection("default", "x")
            segs = coll.partitions["_default"].segments()
            _until(lambda: all("vector" in s.interim and s.interim["vector"][1].ntotal == s.n for s in segs))
            e.interim.copy_ahead(coll)
            assert _interim_merged._MERGED == {}  # not searched: no copy
            got = c.search("x", data=x[[7]], limit=3)
            assert got[0][0]["id"] == 7
            _interim_merged._MERGED.clear()  # the one the search asked for: the sealer's is looked at next
            e.interim.copy_ahead(coll)
            assert len(_interim_merged._MERGED) == 1
            _interim_merged._MERGED.clear()
            monkeypatch.setattr(_interim_merged, "SEARCHED_WITHIN", 0.0)  # that search was too long ago
            e.interim.copy_ahead(coll)
            assert _interim_merged._MERGED == {}
        finally:
            release.set()  # before the close, which waits for the held builds


def _until(check, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)
    return got


def test_a_queued_encoding_reads_the_rows_of_the_latest_growth(monkeypatch) -> None:
    """Growth while an index's encoding waits in the queue: the one call queued encodes every row."""
    monkeypatch.setattr(_interim_merged, "_MERGED", {})
    monkeypatch.setattr(_interim_merged, "_AHEAD", {})
    x = _clustered(3000, 9)
    (ivf, _, _), = _parts("COSINE", [0, 1000], x)
    gate = threading.Event()
    _interim_merged._submit(gate.wait, 30)  # the copies' thread is busy meanwhile
    calls: list[int] = []
    real = _interim_fast.encode_ahead
    monkeypatch.setattr(_interim_merged, "encode_ahead", lambda i, v: (calls.append(len(v)), real(i, v)))
    _interim_merged.encode_soon(ivf, x[:1000])
    ivf.grow(x[1000:3000])
    _interim_merged.encode_soon(ivf, x[:3000])
    gate.set()
    _until(lambda: ivf.fast_codes is not None and ivf.fast_codes.shape[0] == 3000)
    assert calls == [3000]
    coder = _interim_fast._TEMPLATES[id(ivf.lists)][2]
    np.testing.assert_array_equal(ivf.fast_codes, coder.codes(_interim_ivf.prepared(DataType.FLOAT_VECTOR, "COSINE", x)))
