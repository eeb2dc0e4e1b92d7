"""Cases found in review: each once lost data, broke a promise of the spec, or raised past the error handling."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import mzc
from mzc.errors import MzcError
from mzc.format.container import REPORT, Writer
from mzc.io.reader import MzcFile
from tests.conftest import real_file, write_tiff


def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr.decode()


def test_rm_with_output_equal_to_input_is_refused_and_keeps_the_file(tmp_path, nuclei_path):
    same = tmp_path / "same.tif"
    shutil.copy(nuclei_path, same)
    code, _, err = cli("encode", str(same), "-o", str(same), "-f", "--rm")
    assert code == 1 and "is the input file" in err
    np.testing.assert_array_equal(tifffile.imread(same), tifffile.imread(nuclei_path))


def test_multi_series_tiff_refused_not_truncated(tmp_path):
    path = tmp_path / "multi.tif"
    with tifffile.TiffWriter(path) as tw:
        tw.write(np.zeros((3, 20, 30), np.uint16), photometric="minisblack")
        tw.write(np.ones((5, 8, 9), np.uint8), photometric="minisblack")
    with pytest.raises(MzcError, match="2 image series"):
        mzc.encode(str(path), str(tmp_path / "x.mzc"))
    code, _, err = cli("encode", "--rm", str(path))
    assert code == 1 and path.exists()


def test_float_nan_inf_and_negative_zero_are_lossless(tmp_path):
    data = np.random.default_rng(0).normal(size=(8, 9)).astype(np.float32)
    data[0, 0], data[1, 1], data[2, 2], data[3, 3] = np.nan, np.inf, -np.inf, -0.0
    src = write_tiff(tmp_path / "n.tif", data, "YX")
    rep = mzc.encode(str(src), str(tmp_path / "n.mzc"))
    with mzc.open(str(tmp_path / "n.mzc")) as mz:
        back = mz.read()
    assert back.tobytes() == data.tobytes() and rep["max_abs_error"] == 0
    code, out, _ = cli("verify", "--json", "--against", str(src), str(tmp_path / "n.mzc"))
    assert code == 0 and json.loads(out)["max_abs_error"] == 0  # strict JSON even with inf in the data


def test_psnr_target_is_judged_against_the_users_value(tmp_path):
    em = tifffile.imread(real_file("em_isbi2012_u8.tif"))[:3, :70, :90].copy()
    em[:, :, 80:] = 7
    src = write_tiff(tmp_path / "e.tif", em, "ZYX")
    rep = mzc.encode(str(src), str(tmp_path / "e.mzc"), codec="j2k", quality="40dB", chunks=(2, 33, 41))
    assert rep["psnr_db"] >= 40 and rep["target"] == "40dB"


@pytest.fixture
def small(tmp_path):
    data = np.random.default_rng(1).integers(0, 4000, (4, 37, 53), dtype=np.uint16)
    src = write_tiff(tmp_path / "s.tif", data, "ZYX")
    mzc.encode(str(src), str(tmp_path / "s.mzc"), chunks=(3, 10, 16))
    return tmp_path / "s.mzc", data


@pytest.mark.parametrize("region", [(slice(0, 1), slice(0, 10), slice(0, 70)), (slice(0, 1), slice(0, 10), slice(0, 53, 5)),
                                    (slice(0, 1), slice(0, 10)), (slice(0, 1), slice(0, 10), "x")])
def test_tuple_regions_are_validated(small, region):
    path, _ = small
    with mzc.open(str(path)) as mz, pytest.raises(MzcError, match="--roi"):
        mz.read(region)


def test_tuple_regions_follow_numpy(small):
    path, data = small
    with mzc.open(str(path)) as mz:
        np.testing.assert_array_equal(mz.read((slice(None), slice(-5, None), -1)), data[:, -5:, -1])
        np.testing.assert_array_equal(mz.read("-1,:,-3:"), data[-1, :, -3:])


def test_max_error_on_uint32_and_absurd_bounds(tmp_path):
    data = np.random.default_rng(2).integers(0, 1 << 20, (20, 30), dtype=np.uint32)
    src = write_tiff(tmp_path / "u.tif", data, "YX")
    mzc.encode(str(src), str(tmp_path / "u.mzc"), max_error=3)
    with mzc.open(str(tmp_path / "u.mzc")) as mz:
        assert np.abs(mz.read().astype(np.int64) - data.astype(np.int64)).max() <= 3
    for bad in (float("inf"), float("nan")):
        with pytest.raises(MzcError, match="finite"):
            mzc.encode(str(src), str(tmp_path / "v.mzc"), max_error=bad)
    mzc.encode(str(src), str(tmp_path / "w.mzc"), max_error=1e30)  # capped at the dtype's range
    with mzc.open(str(tmp_path / "w.mzc")) as mz:
        assert mz.header["codec"]["max_error"] == np.iinfo(np.uint32).max
        assert len(mz.container.chunk_payload(0, 1 << 20)[1]) < 100  # everything quantizes to one value


def test_rgb_region_decodes_to_an_rgb_tiff(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    mzc.encode(str(tmp_path / "rgb.tif"), str(tmp_path / "rgb.mzc"))
    mzc.decode(str(tmp_path / "rgb.mzc"), str(tmp_path / "part.tif"), roi="0:20,0:30,:")
    with tifffile.TiffFile(tmp_path / "part.tif") as tif:
        assert tif.pages[0].photometric == 2 and len(tif.pages) == 1
        np.testing.assert_array_equal(tif.asarray(), rgb[:20, :30])


def test_palette_colormap_extrasamples_and_default_unit_kept(tmp_path):
    pal = np.random.default_rng(4).integers(0, 255, (30, 40), dtype=np.uint8)
    cmap = np.random.default_rng(5).integers(0, 65535, (3, 256), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", pal, photometric="palette", colormap=cmap)
    rgba = np.random.default_rng(6).integers(0, 255, (30, 40, 4), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a.tif", rgba, photometric="rgb", extrasamples=["assocalpha"])
    for name in ("p", "a"):
        mzc.encode(str(tmp_path / f"{name}.tif"), str(tmp_path / f"{name}.mzc"))
        mzc.decode(str(tmp_path / f"{name}.mzc"), str(tmp_path / f"{name}_b.tif"))
        with tifffile.TiffFile(tmp_path / f"{name}.tif") as a, tifffile.TiffFile(tmp_path / f"{name}_b.tif") as b:
            for code in (262, 320, 338):
                ta, tb = a.pages[0].tags.get(code), b.pages[0].tags.get(code)
                assert (ta is None) == (tb is None)
                if ta is not None:
                    assert np.array_equal(np.asarray(ta.value), np.asarray(tb.value))
            np.testing.assert_array_equal(a.asarray(), b.asarray())


def crafted(codec: dict, params: dict, body: bytes, shape=(4, 4), dtype="<u2", extra=()) -> bytes:
    buf = io.BytesIO()
    w = Writer(buf, {"shape": list(shape), "dtype": dtype, "axes": "YX", "chunks": list(shape), "n_chunks": 1,
                     "codec": codec, "tiff": {}})
    w.write_chunk(0, params, body)
    for rtype, payload in extra:
        w.write_record(rtype, payload)
    w.close()
    return buf.getvalue()


@pytest.mark.parametrize("codec,params,body,dtype", [
    ({"id": "j2k"}, {"const": 300}, b"", "|u1"),
    ({"id": "j2k"}, {"const": "a"}, b"", "<u2"),
    ({"id": "j2k"}, {"raw": 1}, b"\0" * 31, "<u2"),
    ({"id": "nearlossless", "max_error": 2}, {"b": "quant", "o": "x", "qb": "raw"}, b"\0" * 32, "<u2"),
    ({"id": "nearlossless", "max_error": 2}, {"b": "quant", "o": 1 << 63, "qb": "raw"}, b"\0" * 32, "<u2"),
    ({"id": "lossless", "ranks": "abc"}, {"b": "raw"}, b"\0" * 32, "<u2"),
    ({"id": "lossless", "ranks": b"\1\0\2"}, {"b": "raw"}, b"\0" * 32, "<u2"),
    ({"id": "nearlossless", "max_error": "x"}, {"b": "raw"}, b"\0" * 32, "<u2"),
])
def test_checksum_valid_hostile_chunks_raise_mzc_errors(codec, params, body, dtype):
    with pytest.raises(MzcError):
        MzcFile(io.BytesIO(crafted(codec, params, body, dtype=dtype))).read()


def test_transposed_stream_of_the_same_size_is_rejected():
    import imagecodecs
    body = imagecodecs.jpegls_encode(np.zeros((8, 2), np.uint16))
    with pytest.raises(MzcError, match="declares 8x2 pixels"):  # refused from its header, before decoding
        MzcFile(io.BytesIO(crafted({"id": "lossless"}, {"b": "jpegls"}, body))).read()


def test_second_report_record_rejected():
    with pytest.raises(MzcError, match="second"):
        MzcFile(io.BytesIO(crafted({"id": "lossless"}, {"b": "raw"}, b"\0" * 32,
                                   extra=[(REPORT, b"\x80"), (REPORT, b"\x80")])))


def test_bare_command_prints_help_and_succeeds():
    code, out, _ = cli()
    assert code == 0 and b"encode" in out
