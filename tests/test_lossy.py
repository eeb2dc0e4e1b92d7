"""Lossy targets on real data: `-q Nx` within ±10% of the real file ratio, `-q NdB` met, `auto` chooses by measuring."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

import mzc
from mzc.codecs.base import LibraryCodec
from mzc.codecs.registry import providing
from mzc.errors import MzcError
from mzc.metrics import psnr
from tests.conftest import real_file, write_tiff

CODECS = [cls.id for cls in providing(LibraryCodec)]  # the classic library codecs, as registered


def data_range_psnr(a: np.ndarray, b: np.ndarray) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    return psnr(float(np.mean(d * d)), float(a.max()) - float(a.min()))


@pytest.mark.parametrize("codec", CODECS)
def test_ratio_target_met_on_real_file(tmp_path, codec):
    src = real_file("nuclei2d_hoechst_u16.tif")
    out = tmp_path / "x.mzc"
    rep = mzc.encode(str(src), str(out), codec=codec, quality="50x")
    real_ratio = tifffile.imread(src).nbytes / out.stat().st_size
    assert abs(real_ratio / 50 - 1) <= 0.10, real_ratio
    with mzc.open(str(out)) as mz:
        back = mz.read()
    measured = data_range_psnr(tifffile.imread(src), back)
    assert abs(measured - rep["psnr_db"]) < 1e-3  # the report is the truth about the file
    assert measured > 40


def test_psnr_target_met_on_real_3d_stack(tmp_path):
    src = real_file("stack3d_stp_brain_u16.tif")
    out = tmp_path / "x.mzc"
    rep = mzc.encode(str(src), str(out), codec="j2k", quality="45dB")
    with mzc.open(str(out)) as mz:
        achieved = data_range_psnr(tifffile.imread(src), mz.read())
    assert 45.0 <= achieved <= 46.0  # met, and not by spending bits far beyond the target
    assert rep["ratio"] > 20


def test_auto_picks_the_best_measured_codec(tmp_path):
    src = real_file("foci2d_h2ax_u16.tif")
    reps = {c: mzc.encode(str(src), str(tmp_path / f"{c}.mzc"), codec=c, quality="100x") for c in ["j2k", "avif", "sperr"]}
    auto = mzc.encode(str(src), str(tmp_path / "auto.mzc"), codec="auto", quality="100x")
    assert auto["codec"] in reps
    assert auto["psnr_db"] >= max(r["psnr_db"] for r in reps.values()) - 0.3


def test_psnr_is_on_data_range_not_dtype(tmp_path):
    data = (np.random.default_rng(0).normal(1000, 50, (128, 128))).astype(np.uint16)
    src = write_tiff(tmp_path / "in.tif", data, "YX")
    rep = mzc.encode(str(src), str(tmp_path / "x.mzc"), codec="j2k", quality="10x")
    assert rep["psnr_dtype_db"] - rep["psnr_db"] == pytest.approx(20 * np.log10(65535 / (int(data.max()) - int(data.min()))), abs=1e-2)


@pytest.mark.parametrize("quality,match", [("100000x", "cannot be met"), ("190dB", "cannot be met"), ("0.5x", "above 1x"),
                                           ("fast", "expected a ratio")])
def test_unmeetable_or_bad_targets_rejected(tmp_path, nuclei_path, quality, match):
    with pytest.raises(MzcError, match=match):
        mzc.encode(str(nuclei_path), str(tmp_path / "x.mzc"), codec="j2k", quality=quality)
    assert list(tmp_path.iterdir()) == []


def test_lossy_rejects_float_data(tmp_path):
    src = write_tiff(tmp_path / "f.tif", np.ones((16, 16), np.float32), "YX")
    with pytest.raises(MzcError, match=r"j2k codec takes uint8/uint16 data, not float32 \(use --lossless\)"):
        mzc.encode(str(src), str(tmp_path / "x.mzc"), codec="j2k", quality="10x")
