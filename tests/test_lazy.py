"""Arrays: numpy slicing of a reader, np.asarray, mzc.imread, lazy dask arrays over the file's chunks (picklable,
on a real dask cluster) and the multiscale pyramid."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile

import mzc
from mzc.errors import MzcError
from mzc.io import reader as reader_module
from tests.conftest import write_tiff


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A 4-D stack (T, Z, Y, X) in 2 x 2 tiles per plane, and its .mzc."""
    folder = tmp_path_factory.mktemp("lazy")
    rng = np.random.default_rng(7)
    data = rng.integers(0, 3000, (2, 3, 150, 170)).astype(np.uint16)
    src = write_tiff(folder / "s.tif", data, "TZYX")
    out = folder / "s.mzc"
    mzc.encode(str(src), str(out), chunks=(1, 1, 80, 96))
    return data, out


KEYS = [0, -1, (1, 2), (0, slice(None), slice(10, 90), slice(-50, None)), (Ellipsis, 5), (slice(None, None, -1),),
        (1, Ellipsis, slice(3, 160, 7), slice(None, None, 3)), (slice(0, 1), -3, slice(100, 2, -9), 0),
        (slice(5, 5),), (slice(0, 100),), (np.int64(1), 0, 149, 169)]


@pytest.mark.parametrize("key", KEYS, ids=[repr(k) for k in KEYS])
def test_slicing_is_numpy_slicing(stack, key):
    data, path = stack
    with mzc.open(str(path)) as f:
        got = f[key]
    expected = data[key]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_slicing_decodes_only_the_chunks_it_touches(stack, decodes):
    data, path = stack
    with mzc.open(str(path)) as f:
        np.testing.assert_array_equal(f[1, 2, 10:20, 100:], data[1, 2, 10:20, 100:])
    assert len(decodes) == 1


@pytest.mark.parametrize("key", [(0, 0, 150), (2,), (0, 0, 0, 0, 0), (None,), ([0, 1],)])
def test_bad_indices_raise_index_error(stack, key):
    with mzc.open(str(stack[1])) as f, pytest.raises(IndexError):
        f[key]


def test_asarray_is_the_whole_array(stack):
    data, path = stack
    with mzc.open(str(path)) as f:
        whole = np.asarray(f)
        assert isinstance(whole, np.ndarray) and whole.dtype == np.uint16 and whole.shape == data.shape
        np.testing.assert_array_equal(whole, data)
        assert np.asarray(f, dtype=np.float32).dtype == np.float32
        assert len(f) == 2 and f.ndim == 4 and f.size == data.size


def test_imread(stack):
    data, path = stack
    np.testing.assert_array_equal(mzc.imread(str(path)), data)
    np.testing.assert_array_equal(mzc.imread(str(path), roi="1, :, 10:20, -5:"), data[1, :, 10:20, -5:])
    with mzc.open(str(path)) as f:
        np.testing.assert_array_equal(mzc.imread(str(path), scale=0.5), f.read(scale=0.5))


def test_to_dask_is_lazy_and_chunked_like_the_file(stack, decodes):
    data, path = stack
    with mzc.open(str(path)) as f:
        lazy = f.to_dask()
    assert lazy.shape == data.shape and lazy.dtype == data.dtype
    assert lazy.chunks == ((1, 1), (1, 1, 1), (80, 70), (96, 74))
    assert decodes == []  # building the graph decodes nothing
    np.testing.assert_array_equal(lazy[1, 2, 90:, :50].compute(scheduler="sync"), data[1, 2, 90:, :50])
    assert len(decodes) == 1
    np.testing.assert_array_equal(lazy.compute(scheduler="threads"), data)  # threads: one file handle each


def test_to_dask_pickles_and_runs_on_a_dask_cluster(stack):
    distributed = pytest.importorskip("distributed")
    data, path = stack
    with mzc.open(str(path)) as f:
        lazy = f.to_dask()
    again = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(again[0, 1].compute(scheduler="sync"), data[0, 1])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as lc, \
            distributed.Client(lc) as client:
        total = client.compute(lazy.astype(np.int64).sum(axis=(2, 3))).result()
    np.testing.assert_array_equal(total, data.astype(np.int64).sum(axis=(2, 3)))


def test_levels_and_pyramid_are_the_scale_renderings(stack):
    data, path = stack
    with mzc.open(str(path)) as f:
        assert f.levels == [1.0, 0.5]  # 150 -> 75 -> (38 < 64 stops)
        pyramid = f.pyramid()
        assert [level.shape for level in pyramid] == [data.shape, (2, 3, 75, 85)]
        np.testing.assert_array_equal(pyramid[1].compute(), f.read(scale=0.5))
        np.testing.assert_array_equal(f.to_dask(0.25)[1, 0].compute(), f.read("1, 0, :, :", scale=0.25))


def test_a_reader_on_a_stream_has_no_lazy_array(stack):
    with open(stack[1], "rb") as fh:
        f = reader_module.MzcFile(fh)
        assert f[0, 0, 0, 0] == stack[0][0, 0, 0, 0]
        with pytest.raises(MzcError, match="file path"):
            f.to_dask()


def test_a_lazy_array_refuses_a_file_changed_under_it(tmp_path, nuclei_path):
    out = tmp_path / "n.mzc"
    mzc.encode(str(nuclei_path), str(out))
    with mzc.open(str(out)) as f:
        lazy = f.to_dask()
    mzc.encode(str(nuclei_path), str(out), max_error=3)
    with pytest.raises(MzcError, match="changed"):
        lazy.compute(scheduler="sync")
    assert tifffile.imread(nuclei_path).shape == lazy.shape
