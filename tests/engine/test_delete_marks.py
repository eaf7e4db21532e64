"""A segment's delete marks take no memory until one of its rows is deleted (`_marks.DeleteMarks`).

Readers see every row live through a view that owns no memory; the first
delete that hits a segment makes its array; merges and compactions carry
marks over and make an array only where there is one to carry. Answers are
those of marks held as an array from the start, before and after a restart.
"""

from __future__ import annotations

import numpy as np
import pytest

import heron
from heron.engine._engine import open_engine, release_engine
from heron.engine._marks import LIVE, DeleteMarks, carry_marks

DIM = 8


def _owns_nothing(view: np.ndarray) -> bool:
    return view.strides == (0,) and not view.flags.writeable


def test_marks_of_live_rows_take_no_memory_until_one_is_written():
    marks = DeleteMarks()
    marks.append(np.full(5, LIVE, dtype=np.int64))
    marks.append_filled(3, LIVE)
    marks.reserve(1 << 20)
    assert not marks.marked and marks.n == 8
    view = marks.view(8)
    assert _owns_nothing(view) and (view == LIVE).all()
    marks.data[[2, 6]] = 41  # the first write: an array of its own, every other row still live
    assert marks.marked
    np.testing.assert_array_equal(marks.view(8), [LIVE, LIVE, 41, LIVE, LIVE, LIVE, 41, LIVE])
    assert (view == LIVE).all()  # a view taken before is as it was
    marks.append(np.array([LIVE, 7], dtype=np.int64))
    marks.truncate(9)
    np.testing.assert_array_equal(marks.view(9)[-3:], [41, LIVE, LIVE])


def test_a_mark_among_appended_rows_makes_the_array():
    marks = DeleteMarks()
    marks.append_filled(2000, LIVE)
    marks.append(np.array([LIVE, 9], dtype=np.int64))
    assert marks.marked and marks.n == 2002
    assert int(np.count_nonzero(marks.view(2002) != LIVE)) == 1 and marks.view(2002)[-1] == 9


def test_carrying_marks_over_makes_an_array_only_for_marks_set():
    into = DeleteMarks()
    into.append_filled(10, LIVE)
    a, b = DeleteMarks(), DeleteMarks()
    a.append_filled(6, LIVE)
    b.append_filled(4, LIVE)
    assert carry_marks(into, [(0, a.view(6)), (6, b.view(4))]) == 0 and not into.marked
    b.data[1] = 12
    assert carry_marks(into, [(0, a.view(6)), (6, b.view(4))]) == 1
    assert into.marked and np.flatnonzero(into.view(10) != LIVE).tolist() == [7] and into.view(10)[7] == 12


def _sealed(e, name="m"):
    coll = e.collections[("default", name)]
    return [s for p in coll.partitions.values() for s in p.sealed]


def _create(c):
    schema = c.create_schema()
    schema.add_field("id", heron.DataType.INT64, is_primary=True)
    schema.add_field("vec", heron.DataType.FLOAT_VECTOR, dim=DIM)
    idx = c.prepare_index_params()
    idx.add_index("vec", index_type="FLAT", metric_type="L2")
    c.create_collection("m", schema=schema, index_params=idx)


def _count(c):
    return c.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"]


def _deletes_hit_only_their_segment(c, path, vecs):
    e = open_engine(path)
    try:
        e.wait_background()
        segs = _sealed(e)
        assert sum(s.n for s in segs) == 3000
        assert not any(s.deleted_at.marked for s in segs)
        hit = next(s for s in segs if 1500 in s.pk_values(s.n))
        c.delete("m", ids=[1500, 1501])
        assert [s.deleted_at.marked for s in segs] == [s is hit for s in segs]
        got = c.query("m", filter="id in [1499, 1500, 1501, 1502]", output_fields=["id"])
        assert sorted(r["id"] for r in got) == [1499, 1502]
        assert _count(c) == 2998
        c.delete("m", ids=[999_999])  # a key no segment holds: no segment makes an array
        assert [s.deleted_at.marked for s in segs] == [s is hit for s in segs]
        c.upsert("m", {"id": [10], "vec": vecs[10:11] + 1})
        assert _count(c) == 2998
        got = c.query("m", filter="id == 10", output_fields=["vec"])
        np.testing.assert_allclose(got[0]["vec"], vecs[10] + 1, rtol=1e-6)
    finally:
        release_engine(e)


@pytest.mark.parametrize("reopened", [False, True])
def test_segments_hold_marks_only_once_a_row_of_theirs_is_deleted(reopened, tmp_path, monkeypatch):
    """Sealed, merged and persisted segments (or read from their files after a restart) hold no marks array."""
    monkeypatch.setenv("HERON_SEAL_IDLE_SECONDS", "0")
    vecs = np.random.default_rng(1).standard_normal((3000, DIM)).astype(np.float32)
    path = str(tmp_path / "db")
    with heron.Client(path) as c:
        _create(c)
        for lo in (0, 1000, 2000):
            c.insert("m", {"id": np.arange(lo, lo + 1000), "vec": vecs[lo : lo + 1000]})
            c.flush("m")
        if not reopened:
            _deletes_hit_only_their_segment(c, path, vecs)
    if reopened:
        with heron.Client(path) as c:
            _deletes_hit_only_their_segment(c, path, vecs)
    with heron.Client(path) as c:
        assert _count(c) == 2998
        assert c.query("m", filter="id in [1500, 1501]") == []
        hits = c.search("m", vecs[1500:1502], limit=1, output_fields=["id"])
        assert 1500 not in [h[0]["id"] for h in hits] and 1501 not in [h[0]["id"] for h in hits]
