"""Lossless round trips of every dtype/axes combination, metadata carried through, real data bit-exact."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

import mzc
from mzc.errors import MzcError
from tests.conftest import REAL_FILES, real_file, write_tiff

DTYPES = ["uint8", "uint16", "int16", "uint32", "float32"]
LAYOUTS = [("YX", (37, 53)), ("ZYX", (3, 20, 31)), ("CZYX", (2, 3, 17, 19)), ("TCZYX", (2, 2, 2, 9, 14)),
           ("YX", (1, 1)), ("YX", (1, 300))]


def sample(dtype: str, shape, rng) -> np.ndarray:
    if dtype == "float32":
        return (rng.normal(100, 20, shape)).astype(np.float32)
    info = np.iinfo(dtype)
    smooth = np.cumsum(rng.integers(-3, 4, shape), axis=-1)
    return np.clip(smooth + (info.min + info.max) // 2, info.min, info.max).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes,shape", LAYOUTS)
def test_lossless_round_trip(tmp_path, dtype, axes, shape):
    rng = np.random.default_rng(1)
    data = sample(dtype, shape, rng)
    data.flat[0] = np.iinfo(dtype).max if dtype != "float32" else np.float32(3.4e38)  # extremes survive
    src = write_tiff(tmp_path / "in.tif", data, axes)
    rep = mzc.encode(str(src), str(tmp_path / "x.mzc"), lossless=True)
    assert rep["max_abs_error"] == 0 and rep["psnr_db"] is None  # JSON null: no infinity in JSON
    mzc.decode(str(tmp_path / "x.mzc"), str(tmp_path / "back.tif"))
    with tifffile.TiffFile(tmp_path / "back.tif") as tif:
        back = tif.asarray()
        assert tif.series[0].axes == axes or (axes, shape) == ("YX", (1, 1))
    np.testing.assert_array_equal(back.reshape(data.shape), data)
    assert back.dtype == data.dtype


def test_chunked_tiles_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    data = sample("uint16", (3, 70, 90), rng)
    src = write_tiff(tmp_path / "in.tif", data, "ZYX")
    mzc.encode(str(src), str(tmp_path / "x.mzc"), chunks=(2, 32, 40))
    with mzc.open(str(tmp_path / "x.mzc")) as mz:
        assert mz.grid.n_chunks == 2 * 3 * 3
        np.testing.assert_array_equal(mz.read(), data)


def test_ome_metadata_preserved(tmp_path, ome_path):
    mzc.encode(str(ome_path), str(tmp_path / "x.mzc"))
    mzc.decode(str(tmp_path / "x.mzc"), str(tmp_path / "back.ome.tif"))
    with tifffile.TiffFile(ome_path) as a, tifffile.TiffFile(tmp_path / "back.ome.tif") as b:
        assert b.is_ome and a.ome_metadata == b.ome_metadata
        assert a.series[0].axes == b.series[0].axes and a.series[0].shape == b.series[0].shape
        np.testing.assert_array_equal(a.asarray(), b.asarray())


def test_imagej_metadata_and_resolution_preserved(tmp_path, imagej_path):
    mzc.encode(str(imagej_path), str(tmp_path / "x.mzc"))
    mzc.decode(str(tmp_path / "x.mzc"), str(tmp_path / "back.tif"))
    with tifffile.TiffFile(imagej_path) as a, tifffile.TiffFile(tmp_path / "back.tif") as b:
        assert b.is_imagej and a.imagej_metadata == b.imagej_metadata
        for code in (282, 283, 296):
            assert a.pages[0].tags[code].value == b.pages[0].tags[code].value
        assert a.series[0].axes == b.series[0].axes == "TZYX"
        np.testing.assert_array_equal(a.asarray(), b.asarray())


def test_imagej_labels_and_ranges_tags_kept_verbatim(tmp_path):
    data = np.arange(2 * 3 * 16 * 20, dtype=np.uint16).reshape(2, 3, 16, 20)
    src = tmp_path / "ij.tif"
    tifffile.imwrite(src, data, imagej=True, metadata={"axes": "ZCYX", "Labels": list("abcdef"),
                                                      "Ranges": (0, 100, 0, 200, 0, 300)})
    mzc.encode(str(src), str(tmp_path / "x.mzc"))
    mzc.decode(str(tmp_path / "x.mzc"), str(tmp_path / "back.tif"))
    with tifffile.TiffFile(src) as a, tifffile.TiffFile(tmp_path / "back.tif") as b:
        assert a.imagej_metadata == b.imagej_metadata
        assert b.imagej_metadata["Labels"] == list("abcdef")


def test_rgb_samples_round_trip(tmp_path):
    data = np.random.default_rng(3).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", data, photometric="rgb")
    mzc.encode(str(tmp_path / "rgb.tif"), str(tmp_path / "x.mzc"))
    mzc.decode(str(tmp_path / "x.mzc"), str(tmp_path / "back.tif"))
    with tifffile.TiffFile(tmp_path / "back.tif") as b:
        assert b.pages[0].photometric == 2
        np.testing.assert_array_equal(b.asarray(), data)


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_data_lossless_is_bit_exact_and_compresses(tmp_path, path):
    rep = mzc.encode(str(path), str(tmp_path / "x.mzc"))
    with mzc.open(str(tmp_path / "x.mzc")) as mz:
        np.testing.assert_array_equal(mz.read(), tifffile.imread(path))
    assert rep["ratio"] > 1.1 and rep["bytes_out"] == (tmp_path / "x.mzc").stat().st_size


def test_unsupported_dtype_rejected(tmp_path):
    src = write_tiff(tmp_path / "f64.tif", np.zeros((4, 4), np.float64), "YX")
    with pytest.raises(MzcError, match="unsupported dtype"):
        mzc.encode(str(src), str(tmp_path / "x.mzc"))
    assert not (tmp_path / "x.mzc").exists()


def test_truncated_tiff_rejected(tmp_path):
    real = real_file("nuclei2d_hoechst_u16.tif")
    data = real.read_bytes()
    (tmp_path / "t.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(MzcError, match="truncated"):
        mzc.encode(str(tmp_path / "t.tif"), str(tmp_path / "x.mzc"))
    assert not (tmp_path / "x.mzc").exists() and len(list(tmp_path.iterdir())) == 1


def test_chunked_decode_to_tiff_streams_slabs(tmp_path):
    data = sample("uint16", (5, 70, 90), np.random.default_rng(4))
    src = write_tiff(tmp_path / "in.tif", data, "ZYX")
    mzc.encode(str(src), str(tmp_path / "x.mzc"), chunks=(2, 32, 40))
    mzc.decode(str(tmp_path / "x.mzc"), str(tmp_path / "back.tif"))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "back.tif"), data)


def test_worker_processes_give_identical_bytes(tmp_path):
    """Above the parallel threshold (16 MB) -T 2 runs a process pool; the file must not depend on it."""
    data = sample("uint16", (20, 512, 1024), np.random.default_rng(6))
    src = write_tiff(tmp_path / "big.tif", data, "ZYX")
    mzc.encode(str(src), str(tmp_path / "one.mzc"), workers=1)
    mzc.encode(str(src), str(tmp_path / "two.mzc"), workers=2)
    assert (tmp_path / "one.mzc").read_bytes() == (tmp_path / "two.mzc").read_bytes()  # timings are not stored
    with mzc.open(str(tmp_path / "one.mzc")) as a, mzc.open(str(tmp_path / "two.mzc")) as b:
        for i in range(a.grid.n_chunks):
            assert a.container.chunk_payload(i, 1 << 30)[1].tobytes() == b.container.chunk_payload(i, 1 << 30)[1].tobytes()
        assert a.header == b.header
        np.testing.assert_array_equal(np.concatenate(list(b.slabs(workers=2))), data)


def test_zero_sized_axis_rejected(tmp_path):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tifffile warns that a zero-size array makes a nonconformant TIFF
        tifffile.imwrite(tmp_path / "z.tif", np.zeros((0, 4, 4), np.uint16))
    with pytest.raises(MzcError, match="zero-sized axis"):
        mzc.encode(str(tmp_path / "z.tif"), str(tmp_path / "x.mzc"))
    assert not (tmp_path / "x.mzc").exists()


def test_no_check_lossless_is_still_exact_and_says_so(tmp_path, ome_path):
    rep = mzc.encode(str(ome_path), str(tmp_path / "x.mzc"), check=False)
    assert rep["checked"] is False and rep["max_abs_error"] == 0
    with mzc.open(str(tmp_path / "x.mzc")) as mz:
        np.testing.assert_array_equal(mz.read(), tifffile.imread(ome_path))
    lossy = mzc.encode(str(ome_path), str(tmp_path / "y.mzc"), codec="j2k", quality="10x", check=False)
    assert lossy["checked"] is False  # nothing decoded, so no fidelity is claimed
    assert all(lossy[k] is None for k in ("psnr_db", "ssim", "max_abs_error", "pearson_r"))
    assert mzc.open(str(tmp_path / "y.mzc")).read().shape == tifffile.imread(ome_path).shape
    bounded = mzc.encode(str(ome_path), str(tmp_path / "z.mzc"), max_error=3, check=False)
    assert bounded["checked"] is True and bounded["max_abs_error"] <= 3  # a guarantee is always checked


@pytest.mark.parametrize("kwargs", [{"compression": "zlib"}, {"compression": "lzw", "tile": (32, 32)},
                                    {"compression": "zstd", "predictor": True}])
def test_compressed_tiff_input_read_page_by_page(tmp_path, kwargs):
    from mzc.io.tiff import PagedArray, open_tiff
    data = sample("uint16", (2, 3, 45, 70), np.random.default_rng(7))
    tifffile.imwrite(tmp_path / "c.tif", data, metadata={"axes": "TCYX"}, photometric="minisblack", **kwargs)
    vol = open_tiff(str(tmp_path / "c.tif"))
    try:
        assert isinstance(vol._array, PagedArray)  # no whole-stack decode for compressed inputs
        np.testing.assert_array_equal(vol.block((slice(1, 2), slice(0, 3), slice(5, 40), slice(10, 70))),
                                      data[1:2, :, 5:40, 10:70])
    finally:
        vol.close()
    mzc.encode(str(tmp_path / "c.tif"), str(tmp_path / "x.mzc"), chunks=(1, 2, 20, 30))
    with mzc.open(str(tmp_path / "x.mzc")) as mz:
        np.testing.assert_array_equal(mz.read(), data)
