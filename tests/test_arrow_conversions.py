"""Heron's own Arrow conversions (`heron.data._pa`) agree with pyarrow's, slices and nulls included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from heron.data import _pa


@pytest.mark.parametrize(
    "values",
    [[], ["a", "bc", ""], ["x", None, "yz", None], ["héllo", "日本", None, "a"], np.array(["p", "qq"]), [None, None]],
)
def test_strings_match_pyarrow(values):
    got = _pa.strings(values)
    want = pa.array(list(values), type=pa.string())
    assert got.equals(want)
    got.validate(full=True)


def test_strings_refuse_non_strings_naming_the_position():
    with pytest.raises(pa.ArrowTypeError, match="position 2"):
        _pa.strings(["a", "b", 3])
    with pytest.raises(pa.ArrowInvalid):
        _pa.strings(["ok", "\ud800"])  # a lone surrogate is not UTF-8


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.float16, np.float32, np.float64, np.bool_])
def test_numpy_round_trip_with_nulls_and_slices(dtype):
    rng = np.random.default_rng(1)
    a = (rng.random(37) * 100).astype(dtype)
    valid = rng.random(37) < 0.7
    arr = _pa.from_numpy(a, valid=valid)
    arr.validate(full=True)
    assert arr.equals(pa.array(a, mask=~valid))
    assert (_pa.valid_mask(arr) == valid).all()
    back = _pa.to_numpy(arr, fill=0)
    assert (back[valid] == a[valid]).all() and (back[~valid] == 0).all()
    part = arr.slice(5, 20)
    assert (_pa.to_numpy(part, fill=0) == np.where(valid, a, 0)[5:25]).all()
    assert (_pa.valid_mask(part) == valid[5:25]).all()
    assert _pa.to_numpy(pa.chunked_array([arr, part])).shape == (57,)
    assert _pa.valid_mask(_pa.from_numpy(a)) is None


def test_lists_match_pyarrow():
    vals = [[1, 2], None, [], [3]]
    assert _pa.lists(vals, pa.int64()).equals(pa.array(vals, type=pa.list_(pa.int64())))
    svals = [["a"], None, ["b", "cd"]]
    assert _pa.lists(svals, pa.string()).equals(pa.array(svals, type=pa.list_(pa.string())))


def test_scalars_and_objects():
    assert _pa.string_scalar("abc").equals(pa.scalar("abc"))
    arr = pa.array(["a", None, "b"])
    got = _pa.objects(arr)
    assert got.dtype == object and got.tolist() == ["a", None, "b"]


@pytest.mark.parametrize("values", [[], ["a", None, "héllo", ""], [None]])
@pytest.mark.parametrize("type", [pa.large_string(), pa.string_view(), pa.string()])
def test_small_strings_keep_values_nulls_and_slices(values, type):
    arr = pa.array(values * 3, type=type)
    for part in (arr, arr.slice(1), arr.slice(2, 3)):
        got = _pa.small_strings(part)
        got.validate(full=True)
        assert got.type == pa.string() and got.to_pylist() == part.to_pylist()
