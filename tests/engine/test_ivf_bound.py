"""Filtered IVF_FLAT and IVF_SQ8 searches that stop probing at the lists' bounds (`_ivf_bound`).

The bounds must hold for every row faiss put in a list, whatever the data:
each list's limit is checked against the scores faiss gives its rows (IVF_SQ8's
decoded ones). Where
the bounds stop the search early, its answer is an exact scan's of the kept
rows; where they do not, it holds every row the usual search finds.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import heron
from heron._types import DataType
from heron.engine.index import _dense, _ivf_bound
from heron.engine.index._dense import DenseIndex
from heron.engine.index._exact import exact_search
from heron.engine.index._faiss import faiss
from heron.engine.index._grow import grown_copy
from heron.engine.index._ivf_bound import ListBounds, _Ranked, bounded_search, list_limits
from heron.engine.index._vector_index import load_index

F32 = DataType.FLOAT_VECTOR


def clustered(n: int, dim: int, centres: int, spread: float, seed: int, offset: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(0, 1, (centres, dim)) * 10 + offset
    x = c[rng.integers(0, centres, n)] + rng.normal(0, spread, (n, dim))
    return x.astype(np.float32)


def build(x: np.ndarray, metric: str, nlist: int, kind: str = "IVF_FLAT") -> DenseIndex:
    return DenseIndex.build(F32, x.shape[1], kind, metric, {"nlist": nlist}, x)


@pytest.fixture
def through_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    """Filtered searches go to faiss, however few rows are kept (no exact scan of gathered rows)."""
    monkeypatch.setattr(_dense, "CACHED_SCAN_BUDGET", 0)
    monkeypatch.setitem(_dense.EXACT_SCAN_BUDGET, "IVF", 0)
    monkeypatch.setitem(_dense.FILTER_CROSSOVER, "IVF", 0.0)
    monkeypatch.setattr(_ivf_bound, "MIN_ROWS", 0)


@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of lists of each faiss scan the bounded search makes, as it makes them."""
    out: list[int] = []
    real = _ivf_bound._probe

    def counting(ivf, q, k, lists, coarse, sel, sc, rw):  # type: ignore[no-untyped-def]
        out.append(len(lists))
        return real(ivf, q, k, lists, coarse, sel, sc, rw)

    monkeypatch.setattr(_ivf_bound, "_probe", counting)
    return out


def rows_of_lists(ivf: object) -> list[np.ndarray]:
    """Per list, the rows faiss put in it."""
    out = []
    lists = ivf.invlists
    for j in range(ivf.nlist):
        n = lists.list_size(j)
        out.append(faiss.rev_swig_ptr(lists.get_ids(j), n).copy() if n else np.zeros(0, np.int64))
    return out


def faiss_scores(ivf: object, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """faiss's own scores of `rows` for `q` (one query scanning every list, all rows kept)."""
    k = ivf.ntotal
    params = faiss.SearchParametersIVF(nprobe=ivf.nlist)
    d, r = ivf.search(q[None, :], k, params=params)
    at = np.empty(ivf.ntotal, np.float32)
    at[r[0]] = d[0]
    return at[rows]


@pytest.mark.parametrize("kind", ["IVF_FLAT", "IVF_SQ8"])
@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
@pytest.mark.parametrize("case", ["tight", "loose", "far"])
def test_every_list_limit_holds_for_every_row(kind: str, metric: str, case: str) -> None:
    if case == "tight":
        x = clustered(6000, 16, 40, 0.3, 1)
    elif case == "loose":
        x = np.random.default_rng(2).normal(0, 1, (6000, 16)).astype(np.float32)
    else:  # far from the origin: the products' rounding is large against the distances
        x = clustered(6000, 16, 40, 0.3, 3, offset=1e5)
    idx = build(x, metric, 64, kind)
    ivf = idx._index
    assert idx.list_bounds is not None
    members = rows_of_lists(ivf)
    held = np.array([len(m) > 0 for m in members])
    assert (idx.list_bounds.slack[held] > 0).all() if kind == "IVF_SQ8" else not idx.list_bounds.slack.any()
    rng = np.random.default_rng(4)
    qs = np.concatenate([x[rng.integers(0, len(x), 10)] + rng.normal(0, 0.5, (10, 16)).astype(np.float32),
                         rng.normal(0, 3, (5, 16)).astype(np.float32) + x.mean(0)])
    for q in qs.astype(np.float32):
        q = idx._prep(q[None, :])[0]
        order, limit, _ = list_limits(ivf, idx.list_bounds, q)
        assert sorted(order.tolist()) == list(range(ivf.nlist))
        # the bounded search's own: the radius alone for every list, the whole bound for some lists
        ranked = _Ranked(ivf, idx.list_bounds, q)
        cheap = ranked.cheap()
        some = rng.permutation(ivf.nlist)[: ivf.nlist // 3]
        part = dict(zip(some.tolist(), ranked.limits(some).tolist()))
        assert ranked.head(7).tolist() == order[:7].tolist()
        scores = faiss_scores(ivf, q, np.arange(ivf.ntotal))
        for j, rows in enumerate(members):
            if len(rows) == 0:
                continue
            bounds = [limit[j], cheap[j], part.get(j, limit[j])]
            if metric == "L2":
                assert scores[rows].min() >= max(bounds), (case, j)
            else:
                assert scores[rows].max() <= min(bounds), (case, j)


def exact_kept(x: np.ndarray, metric: str, q: np.ndarray, keep: np.ndarray, k: int) -> np.ndarray:
    rows = np.flatnonzero(keep)
    _, found = exact_search(F32, metric, x[rows], q[None, :], k)
    return rows[found[0]]


@pytest.mark.parametrize(("kind", "metric"), [("IVF_FLAT", "L2"), ("IVF_FLAT", "IP"), ("IVF_FLAT", "COSINE"),
                                            ("IVF_SQ8", "L2")])
def test_tight_lists_stop_early_with_the_exact_answer(kind: str, metric: str, through_faiss: None,
                                                      probed: list[int]) -> None:
    """Exact over the kept rows as faiss scores them: IVF_SQ8's answer is that of faiss scanning every list."""
    x = clustered(40_000, 24, 120, 0.4, 5)
    idx = build(x, metric, 128, kind)
    keep = np.random.default_rng(6).random(len(x)) < 0.1
    keep.flags.writeable = False
    bits = np.packbits(keep, bitorder="little")
    sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
    rng = np.random.default_rng(7)
    stopped = 0
    for _i in range(30):
        q = (x[rng.integers(0, len(x))] + rng.normal(0, 0.3, 24)).astype(np.float32)
        probed.clear()
        scores, rows = idx.search(q[None, :], 10, allow=keep, params={"nprobe": 4})
        if kind == "IVF_SQ8":
            truth = idx._index.search(q[None, :], 10, params=faiss.SearchParametersIVF(nprobe=128, sel=sel))[1][0]
        else:
            truth = exact_kept(x if metric != "COSINE" else x / np.linalg.norm(x, axis=1, keepdims=True), metric,
                               q if metric != "COSINE" else q / np.linalg.norm(q), keep, 10)
        assert rows[0].tolist() == truth.tolist()
        assert keep[rows[0]].all()
        assert probed and probed[0] == min(4, _ivf_bound.FIRST)  # through the bounds: the best lists first
        stopped += sum(probed) < 40  # the usual search probes 4 / 0.1 = 40 lists
    # Inner products of rows of unequal norms bound less tightly (22 of 30 when written; 30 for L2 and COSINE)
    assert stopped >= (15 if metric == "IP" else 25), stopped


def test_loose_lists_find_what_the_usual_search_finds(through_faiss: None, probed: list[int]) -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(0, 1, (20_000, 32)).astype(np.float32)
    idx = build(x, "L2", 128)
    keep = rng.random(len(x)) < 0.2
    keep.flags.writeable = False
    bits = np.packbits(keep, bitorder="little")
    for _i in range(20):
        q = rng.normal(0, 1, 32).astype(np.float32)
        scores, rows = idx.search(q[None, :], 10, allow=keep, params={"nprobe": 8})
        sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
        usual_s, usual_r = idx._index.search(q[None, :], 10, params=faiss.SearchParametersIVF(nprobe=40, sel=sel))
        assert keep[rows[0]].all()
        # a superset of the usual lists was scanned: each place scores at least as well
        assert (scores[0] <= usual_s[0]).all()
    assert probed


def test_bounds_that_do_not_stop_searches_are_skipped_for_a_while(through_faiss: None, probed: list[int]) -> None:
    rng = np.random.default_rng(18)
    x = rng.normal(0, 1, (20_000, 32)).astype(np.float32)  # no clusters: the bounds stop nothing
    idx = build(x, "L2", 128)
    keep = rng.random(len(x)) < 0.2
    keep.flags.writeable = False
    bounded = []
    for _ in range(_ivf_bound.MISSES + _ivf_bound.SKIP + 3):
        probed.clear()
        idx.search(rng.normal(0, 1, (1, 32)).astype(np.float32), 10, allow=keep, params={"nprobe": 8})
        bounded.append(bool(probed))
    m = _ivf_bound.MISSES
    assert all(bounded[:m]) and not any(bounded[m:m + _ivf_bound.SKIP]) and all(bounded[m + _ivf_bound.SKIP:])

@pytest.mark.parametrize(("kind", "metric"), [("IVF_FLAT", "L2"), ("IVF_SQ8", "L2"), ("IVF_SQ8", "IP")])
def test_bounded_search_answers_what_scanning_all_lists_answers(kind: str, metric: str) -> None:
    x = clustered(30_000, 16, 80, 0.5, 9)
    idx = build(x, metric, 100, kind)
    ivf = idx._index
    keep = np.random.default_rng(10).random(len(x)) < 0.3
    bits = np.packbits(keep, bitorder="little")
    sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
    rng = np.random.default_rng(11)
    for _i in range(20):
        q = (x[rng.integers(0, len(x))] + rng.normal(0, 0.5, 16)).astype(np.float32)
        got_s, got_r, early = bounded_search(ivf, idx.list_bounds, q, 10, sel, 2, ivf.nlist)
        all_s, all_r = ivf.search(q[None, :], 10, params=faiss.SearchParametersIVF(nprobe=ivf.nlist, sel=sel))
        assert got_r[0].tolist() == all_r[0].tolist() and early
        if metric == "L2":
            assert np.array_equal(got_s, all_s)
        else:  # faiss adds its quantizer's products with the centres; the bounded search, numpy's
            assert np.allclose(got_s, all_s, rtol=1e-5, atol=1e-4)


def test_fewer_kept_rows_than_k() -> None:
    x = clustered(20_000, 16, 50, 0.5, 12)
    idx = build(x, "L2", 64)
    keep = np.zeros(len(x), bool)
    keep[[5, 900, 19_999]] = True
    ivf = idx._index
    bits = np.packbits(keep, bitorder="little")
    sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
    s, r, _ = bounded_search(ivf, idx.list_bounds, x[7], 5, sel, 4, ivf.nlist)
    assert sorted(r[0][:3].tolist()) == [5, 900, 19_999]
    assert r[0][3:].tolist() == [-1, -1]


def test_bounds_are_saved_grown_and_absent_from_older_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = clustered(20_000, 16, 50, 0.5, 13)
    idx = build(x, "L2", 64)
    path = str(tmp_path / "i.idx")
    idx.save(path)
    back = load_index(path)
    assert isinstance(back, DenseIndex)
    assert back.list_bounds is not None
    assert np.array_equal(back.list_bounds.radii, idx.list_bounds.radii)
    assert np.array_equal(back.list_bounds.norms, idx.list_bounds.norms)
    # rows far from every list widen the radii of the lists they join
    far = (x[:500] * 3).astype(np.float32)
    grown = back.extended(far)
    assert grown is not None and grown.list_bounds is not None
    fresh = ListBounds.of(grown._index, far)
    assert np.array_equal(grown.list_bounds.radii, fresh.radii)
    assert (grown.list_bounds.radii >= idx.list_bounds.radii).all()
    assert (grown.list_bounds.radii > idx.list_bounds.radii).any()
    # a file without them searches the usual way
    no = DenseIndex.from_arrays({**idx._header()}, {"faiss": faiss.serialize_index(idx._index)})
    assert no.list_bounds is None


def test_other_ivf_types_have_no_bounds() -> None:
    x = clustered(5_000, 16, 20, 0.5, 14)
    for t in ("IVF_PQ", "IVF_RABITQ"):
        idx = DenseIndex.build(F32, 16, t, "L2", {"nlist": 32, "m": 4}, x)
        assert idx.list_bounds is None


def test_filtered_ivf_searches_through_the_client_are_exact(tmp_path, through_faiss, probed):  # type: ignore[no-untyped-def]
    x = clustered(12_000, 16, 60, 0.4, 15)
    bucket = np.random.default_rng(16).integers(0, 10, len(x))
    with heron.Client(str(tmp_path / "d")) as c:
        schema = c.create_schema()
        schema.add_field("id", heron.DataType.INT64, is_primary=True)
        schema.add_field("vector", heron.DataType.FLOAT_VECTOR, dim=16)
        schema.add_field("b", heron.DataType.INT64)
        idx = c.prepare_index_params()
        idx.add_index("vector", index_type="IVF_FLAT", metric_type="L2", params={"nlist": 64})
        c.create_collection("x", schema=schema, index_params=idx)
        c.insert("x", {"id": np.arange(len(x)), "vector": x, "b": bucket})
        c.flush("x")
        deadline = time.monotonic() + 120
        while c.describe_index("x", "vector")["pending_index_rows"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.describe_index("x", "vector")["pending_index_rows"] == 0
        rng = np.random.default_rng(17)
        for expr, keep in (("b < 3", bucket < 3), ("b == 7", bucket == 7)):
            kept = np.flatnonzero(keep)
            for _ in range(15):
                q = x[rng.integers(0, len(x))] + rng.normal(0, 0.3, 16).astype(np.float32)
                hits = c.search("x", data=[q.tolist()], limit=10, filter=expr, search_params={"params": {"nprobe": 2}})[0]
                _, found = exact_search(F32, "L2", x[kept], q[None, :].astype(np.float32), 10)
                assert [h["id"] for h in hits] == kept[found[0]].tolist()
    assert probed


def test_a_batch_is_searched_a_query_at_a_time_and_handed_on_when_the_bounds_stop_paying(
        through_faiss: None, probed: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    x = clustered(30_000, 16, 80, 0.4, 19)
    idx = build(x, "L2", 100)
    keep = np.random.default_rng(20).random(len(x)) < 0.1
    keep.flags.writeable = False
    rng = np.random.default_rng(21)
    qs = (x[rng.integers(0, len(x), 12)] + rng.normal(0, 0.3, (12, 16))).astype(np.float32)
    kept = np.flatnonzero(keep)
    _, found = exact_search(F32, "L2", x[kept], qs, 10)
    scores, rows = idx.search(qs, 10, allow=keep, params={"nprobe": 4})
    assert rows.tolist() == kept[found].tolist()
    assert len(probed) >= 12
    # the bounds told to stand aside after the fifth query: the other seven go through faiss in one call
    idx.list_bounds.skip = 0
    calls = []
    real_head = _ivf_bound.bounded_search

    def fifth(*a):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 5:
            idx.list_bounds.skip = 1
        return real_head(*a)

    monkeypatch.setattr(_ivf_bound, "bounded_search", fifth)
    scores2, rows2 = idx.search(qs, 10, allow=keep, params={"nprobe": 4})
    assert len(calls) == 5 and idx.list_bounds.skip == 0
    assert rows2[:5].tolist() == rows[:5].tolist()
    bits = np.packbits(keep, bitorder="little")
    sel = faiss.IDSelectorBitmap(len(keep), faiss.swig_ptr(bits))
    usual_s, usual_r = idx._index.search(qs[5:], 10, params=faiss.SearchParametersIVF(nprobe=40, sel=sel))
    assert rows2[5:].tolist() == usual_r.tolist()



def test_coded_rows_that_cross_their_cell_are_bounded_by_the_coding_error() -> None:
    """IVF_SQ8 scores decoded rows, which may lie across the plane their raw rows' list is bounded by."""
    crossed = 0
    for width in np.linspace(8, 14, 13):
        rng = np.random.default_rng(22)
        x = np.zeros((6000, 8), np.float32)
        # two lists split near x0 = 0, with rows right up to the split; a third, wider list far away sets the
        # coded range, and with it where the codes' grid puts the rows at the split
        x[:, 0] = np.where(np.arange(len(x)) < 4000, rng.uniform(-3, 3, len(x)), rng.uniform(17, 17 + width, len(x)))
        x[:, 1:] = rng.normal(0, 1e-3, (len(x), 7))
        idx = build(x, "L2", 3, "IVF_SQ8")
        ivf, bounds = idx._index, idx.list_bounds
        assert bounds is not None
        centres = faiss.rev_swig_ptr(faiss.downcast_index(ivf.quantizer).get_xb(), 24).reshape(3, 8)
        near, far = np.argsort(centres[:, 0])[:2]
        q = np.zeros(8, np.float32)
        q[0] = centres[near, 0] - 0.5
        scores = faiss_scores(ivf, q, rows_of_lists(ivf)[far])
        _, limit, _ = list_limits(ivf, bounds, q)
        assert scores.min() >= limit[far]
        # without the coding error, the plane bound may promise more than a decoded row keeps
        no_slack = ListBounds(bounds.radii, bounds.norms, np.zeros_like(bounds.slack), ivf)
        _, promised, _ = list_limits(ivf, no_slack, q)
        crossed += scores.min() < promised[far]
    assert crossed


def test_coding_errors_are_saved_and_kept_as_the_index_grows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = clustered(20_000, 16, 50, 0.5, 23)
    idx = build(x, "L2", 64, "IVF_SQ8")
    assert idx.list_bounds is not None
    path = str(tmp_path / "i.idx")
    idx.save(path)
    back = load_index(path)
    assert isinstance(back, DenseIndex) and back.list_bounds is not None
    for a, b in zip(back.list_bounds.array(), idx.list_bounds.array()):
        assert np.array_equal(a, b)
    # rows coded badly (far outside the range the quantiser was trained on) widen the coding error of their lists
    far = (x[:500] * 3).astype(np.float32)
    grown = back.extended(far)
    assert grown is not None and grown.list_bounds is not None
    after, before = grown.list_bounds.slack, idx.list_bounds.slack
    assert (after >= before).all() and (after > 2 * before).any()
    # measured on the rows faiss coded: the rows added before them keep the errors measured then
    assert np.array_equal(ListBounds.of(grown._index, far, idx.list_bounds).slack, after)
    # an index from a file without bounds cannot measure the errors of its older rows: no bounds once grown
    no = DenseIndex.from_arrays({**idx._header()}, {"faiss": faiss.serialize_index(idx._index)})
    assert no.list_bounds is None and no.extended(far).list_bounds is None


@pytest.mark.parametrize("kind", ["IVF_FLAT", "IVF_SQ8"])
def test_bounds_grown_step_by_step_are_those_taken_at_once(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    x = clustered(12_000, 16, 40, 0.5, 27)
    x[-700:] *= 2  # rows far out widen the lists they join
    idx = build(x[:6000], "L2", 64, kind)
    first = idx.list_bounds
    read: list[int] = []
    real = _ivf_bound._decoded

    def counting(ivf, j, start, n, centre):  # type: ignore[no-untyped-def]
        read.append(n - start)
        return real(ivf, j, start, n, centre)

    monkeypatch.setattr(_ivf_bound, "_decoded", counting)
    grown = idx
    for lo in range(6000, 12_000, 1500):
        read.clear()
        grown = grown.extended(x[lo:lo + 1500])
        assert grown is not None and grown.list_bounds is not None
        assert sum(read) == 1500  # the rows added, not the lists' others
    # the radii, norms and coding errors of all the rows, bit for bit; each step keeps what was measured before
    # it as it was (not loosened once more)
    whole = ListBounds.of(grown._index, x[6000:], first)
    assert whole is not None
    for a, b in zip(grown.list_bounds.array(), whole.array()):
        assert np.array_equal(a, b)
    assert (grown.list_bounds.radii > first.radii).any()


def test_a_merge_growing_a_copy_keeps_the_coding_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = clustered(16_000, 16, 40, 0.5, 28)
    idx = build(x[:12_000], "L2", 64, "IVF_SQ8")
    path = str(tmp_path / "i.idx")
    idx.save(path)
    back = load_index(path)  # read from its file: a merge grows a copy of it
    assert isinstance(back, DenseIndex) and back.list_bounds is not None
    kept = back.list_bounds.array().copy()
    grown = grown_copy(back, x[12_000:])
    assert isinstance(grown, DenseIndex) and grown is not back and grown.list_bounds is not None
    assert np.array_equal(grown.list_bounds.slack, ListBounds.of(grown._index, x[12_000:], back.list_bounds).slack)
    assert np.array_equal(back.list_bounds.array(), kept)  # the index it copied is as it was
