"""A region read equals the same slice of the full decode, for random regions and chunk grids."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mzc
from mzc.errors import MzcError
from tests.conftest import write_tiff

SHAPE = (3, 2, 45, 61)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roi")
    data = np.random.default_rng(5).integers(0, 4096, SHAPE, dtype=np.uint16)
    src = write_tiff(tmp / "in.tif", data, "ZCYX")
    out = {}
    for name, kwargs in {"lossless": {"chunks": (2, 1, 16, 24)}, "j2k": {"codec": "j2k", "quality": "3x",
                                                                        "chunks": (1, 1, 32, 32)}}.items():
        path = tmp / f"{name}.mzc"
        mzc.encode(str(src), str(path), **kwargs)
        with mzc.open(str(path)) as mz:
            out[name] = (path, mz.read())
    return data, out


def slice_strategy(n):
    return st.tuples(st.integers(0, n - 1), st.integers(1, n)).map(lambda t: (min(t), max(t) + (t[0] == t[1])))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounds=st.tuples(*[slice_strategy(n) for n in SHAPE]), which=st.sampled_from(["lossless", "j2k"]))
def test_roi_equals_full_decode_slice(encoded, bounds, which):
    data, files = encoded
    path, full = files[which]
    bounds = [(a, min(b, n)) for (a, b), n in zip(bounds, SHAPE)]
    roi = ",".join(f"{a}:{b}" for a, b in bounds)
    with mzc.open(str(path)) as mz:
        part = mz.read(roi)
    np.testing.assert_array_equal(part, full[tuple(slice(a, b) for a, b in bounds)])
    if which == "lossless":
        np.testing.assert_array_equal(part, data[tuple(slice(a, b) for a, b in bounds)])


def test_roi_reads_only_needed_chunks(encoded, monkeypatch):
    path, _ = encoded[1]["lossless"]
    with mzc.open(str(path)) as mz:
        seen = []
        original = mz.container.chunk_payload
        monkeypatch.setattr(mz.container, "chunk_payload", lambda i, cap: seen.append(i) or original(i, cap))
        mz.read("0:1,1:2,0:10,0:10")
        assert seen == [mz.grid.index((0, 1, 0, 0))]


def test_integer_index_drops_axis(encoded):
    path, full = encoded[1]["lossless"]
    with mzc.open(str(path)) as mz:
        np.testing.assert_array_equal(mz.read("1,0,:,:"), full[1, 0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bounds=st.tuples(*[slice_strategy(n) for n in SHAPE]), steps=st.tuples(*[st.integers(1, 5)] * len(SHAPE)),
       which=st.sampled_from(["lossless", "j2k"]))
def test_stepped_roi_equals_numpy_slicing(encoded, bounds, steps, which):
    """`--roi 0:10,::2,...` is what numpy and the API's slicing give (it was refused while mz[::2] worked)."""
    _, files = encoded
    path, full = files[which]
    bounds = [(a, min(b, n)) for (a, b), n in zip(bounds, SHAPE)]
    with mzc.open(str(path)) as mz:
        part = mz.read(",".join(f"{a}:{b}:{s}" for (a, b), s in zip(bounds, steps)))
        want = full[tuple(slice(a, b, s) for (a, b), s in zip(bounds, steps))]
        np.testing.assert_array_equal(part, want)
        np.testing.assert_array_equal(part, mz[tuple(slice(a, b, s) for (a, b), s in zip(bounds, steps))])
        np.testing.assert_array_equal(mz.read("1,::2,:,::3"), full[1, ::2, :, ::3])


@pytest.mark.parametrize("roi", ["0:10,:,:", "0:4,:,:,:", "0:1,0:1,0:46,:", "2:1,:,:,:", "a:b,:,:,:",
                                 "0:1:0,:,:,:", "0:3:-1,:,:,:", "0:3:x,:,:,:", "0:9:2,:,:,:", "5,:,:,:"])
def test_bad_roi_rejected(encoded, roi):
    path, _ = encoded[1]["lossless"]
    with mzc.open(str(path)) as mz, pytest.raises(MzcError, match="--roi"):
        mz.read(roi)
