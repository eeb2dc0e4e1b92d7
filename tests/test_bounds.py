"""--max-error E: no pixel ever differs by more than E, on random data, extremes and real stacks."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mzc
from mzc.codecs.nearlossless import NearLossless
from tests.conftest import REAL_FILES


@settings(max_examples=150, deadline=None)
@given(data=hnp.arrays(st.sampled_from([np.uint8, np.uint16]), hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                       elements=st.integers(0, 255)),
       stretch=st.sampled_from([1, 17, 257]), error=st.integers(0, 300))
def test_bound_holds_on_random_blocks(data, stretch, error):
    if data.dtype == np.uint16:
        data = (data.astype(np.uint32) * stretch).clip(0, 65535).astype(np.uint16)
    codec = NearLossless(max_error=error)
    body, params = codec.encode(data)
    back = codec.decode(body, data.shape, data.dtype, params)
    assert np.abs(back.astype(np.int64) - data.astype(np.int64)).max(initial=0) <= error
    for end in (data.min(initial=0), data.max(initial=0)):  # zeros and saturation come back exactly
        assert np.array_equal(back[data == end], data[data == end])


@pytest.mark.parametrize("value", [1, 200])
def test_constant_block_keeps_its_value(value):
    """A constant chunk is its own lowest and highest value: JPEG-LS NEAR moves it, the range-end map puts it back
    (hypothesis found a 7 x 11 block of ones whose map marked pixels as both ends, which its decoder refused)."""
    data = np.full((7, 11), value, np.uint8)
    codec = NearLossless(max_error=1)
    body, params = codec.encode(data)
    assert np.array_equal(codec.decode(body, data.shape, data.dtype, params), data)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("error", [1, 4, 16])
def test_bound_holds_at_dtype_limits(dtype, error):
    info = np.iinfo(dtype)
    data = np.array([[0, 1, info.max, info.max - 1], [info.max, 0, error, info.max - error]] * 3, dtype)
    codec = NearLossless(max_error=error)
    body, params = codec.encode(data)
    back = codec.decode(body, data.shape, data.dtype, params)
    assert np.abs(back.astype(np.int64) - data.astype(np.int64)).max() <= error


@pytest.mark.parametrize("path", REAL_FILES[:4] if REAL_FILES else [None], ids=lambda p: getattr(p, "name", "absent"))
@pytest.mark.parametrize("error", [1, 16])
def test_bound_holds_on_real_files(tmp_path, path, error):
    if path is None:
        pytest.skip("../shared/data is absent")
    out = tmp_path / "x.mzc"
    rep = mzc.encode(str(path), str(out), max_error=error)
    original = tifffile.imread(path)
    with mzc.open(str(out)) as mz:
        back = mz.read()
    assert np.abs(back.astype(np.int64) - original.astype(np.int64)).max() <= error
    assert rep["max_abs_error"] <= error
    lossless = mzc.encode(str(path), str(tmp_path / "l.mzc"))
    assert rep["ratio"] > lossless["ratio"]


def test_fractional_bound_on_integer_data_is_floored(tmp_path, nuclei_path):
    rep = mzc.encode(str(nuclei_path), str(tmp_path / "x.mzc"), max_error=2.5)
    with mzc.open(str(tmp_path / "x.mzc")) as mz:
        back = mz.read()
        assert mz.header["codec"]["max_error"] == 2
    assert np.abs(back.astype(np.int64) - tifffile.imread(nuclei_path).astype(np.int64)).max() <= 2
    assert rep["max_abs_error"] <= 2
