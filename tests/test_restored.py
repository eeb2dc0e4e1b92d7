"""The learned restoration stage (codec `restored`, spec 6.6): exact integer network, per-chunk decision, digests,
bounds, `mzc info`. The real-data test uses an evaluation file (never one the network was trained on)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

import mzc
from mzc.codecs.neural import restore_net as rn
from mzc.codecs.neural.restored import Restored
from mzc.errors import MzcError
from tests.conftest import ROOT, real_file


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """A 256 x 320 crop of real 16-bit nuclei (the evaluation set; the network trained on train16 only)."""
    plane = tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))
    return np.ascontiguousarray(plane[300:556, 400:720])


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10((float(a.max()) - float(a.min())) ** 2 / mse)


def random_weights(seed: int = 0):
    rng = np.random.default_rng(seed)
    return [(np.rint(rng.normal(0, 0.1, (cout, cin, 3, 3)) * 2 ** rn.FW),
             np.rint(rng.normal(0, 0.05, cout) * 2 ** (rn.FW + rn.FA))) for cin, cout, _ in rn.LAYERS]


def test_integer_network_gives_the_same_bits_for_any_strip(monkeypatch):
    """Exact arithmetic: the strip geometry (and so the memory a reader uses) cannot change a single bit."""
    rng = np.random.default_rng(1)
    x = rng.integers(100, 4000, (70, 90)).astype(np.uint16)
    weights = random_weights()
    img, _, _ = rn.features(x, 50)
    whole = rn.residual(img, 50, 1, weights)
    monkeypatch.setattr(rn, "STRIP_PIXELS", 90 * 7)  # 16-row strips
    assert np.array_equal(rn.residual(img, 50, 1, weights), whole)
    assert np.all(whole == np.floor(whole)) and np.abs(whole).max() > 0


def test_restoration_lowers_the_error_and_decodes_to_the_same_samples(crop):
    codec = Restored(base={"id": "j2k"}).bind().with_knob(66.0)  # ~200x on this crop
    body, params, back = codec.encode_checked(crop)
    assert 100 < crop.nbytes / len(body) < 400
    plain = codec.base.decode(body, crop.shape, crop.dtype, params["bp"])
    q, gain = params["r"]
    assert 0 <= q <= 127 and 1 <= gain <= 255
    assert psnr(crop, back) > psnr(crop, plain)
    assert np.array_equal(codec.decode(body, crop.shape, crop.dtype, params), back)
    assert np.array_equal(codec.decode(body, crop.shape, crop.dtype, {"bp": params["bp"]}), plain)  # off = base


def test_a_file_keeps_its_digests_and_info_names_the_restored_chunks(crop, tmp_path):
    tifffile.imwrite(tmp_path / "x.tif", crop, photometric="minisblack")
    rep = mzc.encode(str(tmp_path / "x.tif"), str(tmp_path / "x.mzc"), codec="restored:htj2k", quality="100x",
                     chunks=(128, 320))
    info = mzc.info(str(tmp_path / "x.mzc"))
    assert info["codec"]["id"] == "restored" and info["restoration"].endswith("of 2 chunks")
    assert set(info["restored_chunks"]) <= {"0", "1"} and info["restored_chunks"]
    assert mzc.verify(str(tmp_path / "x.mzc"))["ok"]  # every chunk's digest is of the restored samples
    with mzc.open(str(tmp_path / "x.mzc")) as mz:
        assert abs(psnr(crop, mz.read()) - rep["psnr_db"]) < 0.01


def test_a_bound_holds_on_every_pixel_over_a_restored_base(crop, tmp_path):
    tifffile.imwrite(tmp_path / "x.tif", crop, photometric="minisblack")
    mzc.encode(str(tmp_path / "x.tif"), str(tmp_path / "b.mzc"), codec="restored", max_error=20)
    with mzc.open(str(tmp_path / "b.mzc")) as mz:
        assert mz.header["codec"]["base"]["id"] == "restored"
        assert np.abs(mz.read().astype(np.int64) - crop).max() <= 20


@pytest.mark.parametrize("r", [[128, 64], [40, 0], [40, 256], [40], "x", [True, 64], [40.0, 64]])
def test_bad_restoration_parameters_are_refused(crop, r):
    codec = Restored(base={"id": "j2k"}).bind().with_knob(66.0)
    body, params, _ = codec.encode_checked(crop[:64, :64])
    with pytest.raises(MzcError, match="corrupt chunk"):
        codec.decode(body, (64, 64), crop.dtype, dict(params, r=r))


def test_a_header_naming_another_base_or_a_wrong_sha256_is_refused(crop):
    with pytest.raises(MzcError, match="corrupt header"):
        Restored(base={"id": "lossless"})
    codec = Restored(base={"id": "j2k"}, sha256="0" * 64).with_knob(66.0)
    with pytest.raises(MzcError, match="sha256"):
        codec.encode_checked(crop[:64, :64])


def test_decoding_a_restored_chunk_imports_no_torch():
    code = ("import sys, numpy as np; from mzc.codecs.neural.restored import Restored; "
            "c = Restored(base={'id': 'sperr'}).bind().with_knob(0.5); "
            "x = (np.arange(64 * 64).reshape(64, 64) % 251 * 9).astype(np.uint16); "
            "b, p, _ = c.encode_checked(x); c.decode(b, x.shape, x.dtype, p); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_a_sperr_volume_is_restored_plane_by_plane(crop):
    """3-D chunks (SPERR codes them as volumes) are restored slice-wise: each plane as a 2-D chunk would be."""
    vol = np.ascontiguousarray(np.stack([crop[:96, :128], crop[96:192, :128], crop[160:256, 128:256]]))
    codec = Restored(base={"id": "sperr"}).bind().with_knob(0.1)  # 160x
    body, params, back = codec.encode_checked(vol)
    plain = codec.base.decode(body, vol.shape, vol.dtype, params["bp"])
    assert "r" in params and psnr(vol, back) > psnr(vol, plain)
    assert np.array_equal(codec.decode(body, vol.shape, vol.dtype, params), back)
