"""Zarr arrays compressed with mzc codecs (numcodecs entry point), through zarr-python, on real data."""
from __future__ import annotations

import numpy as np
import pytest
import tifffile

from mzc.bounds import noise_model as noise
from mzc.errors import MzcError
from tests.conftest import real_file

zarr = pytest.importorskip("zarr", reason="the [zarr] extra is not installed")
numcodecs = pytest.importorskip("numcodecs")


@pytest.fixture(scope="module")
def stack():
    return tifffile.imread(real_file("stack3d_stp_brain_u16.tif"))[:3, 0, :300, :333]  # ZYX, odd chunk edges


def roundtrip(tmp_path, data, config):
    codec = numcodecs.get_codec(config)  # found through the numcodecs.codecs entry point
    path = tmp_path / "a.zarr"
    array = zarr.create_array(store=str(path), shape=data.shape, chunks=(1, 128, 128), dtype=data.dtype,
                              compressors=codec, zarr_format=2)
    array[:] = data
    again = zarr.open_array(str(path), mode="r")
    assert again.metadata.compressor.get_config() == config  # the .zarray names the codec and its settings
    return again[:], path


def test_entry_point_registration():
    codec = numcodecs.get_codec({"id": "mzc", "codec": "lossless"})
    assert type(codec).__module__ == "mzc.integrations.zarr_codec"


def test_lossless_zarr_roundtrip(tmp_path, stack):
    back, path = roundtrip(tmp_path, stack, {"id": "mzc", "codec": "lossless"})
    np.testing.assert_array_equal(back, stack)
    stored = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name[0].isdigit())
    assert stored < stack.nbytes / 1.5


@pytest.mark.parametrize("config", [
    {"id": "mzc", "codec": "nearlossless", "max_error": 4},
    {"id": "mzc", "codec": "j2k", "quality": "45dB", "max_error": 8},
])
def test_bounded_zarr_roundtrip(tmp_path, stack, config):
    back, _ = roundtrip(tmp_path, stack, config)
    assert np.abs(back.astype(np.int64) - stack).max() <= config["max_error"]


def test_noise_zarr_roundtrip_with_a_given_model(tmp_path, stack):
    back, _ = roundtrip(tmp_path, stack, {"id": "mzc", "codec": "noise", "noise": 1.0, "noise_model": "8.5,38"})
    sigma = noise.NoiseModel(8.5, 38.0).sigma(stack)
    assert np.all(np.abs(back.astype(np.float64) - stack) <= sigma)


def test_lossy_zarr_meets_its_psnr(tmp_path, stack):
    back, _ = roundtrip(tmp_path, stack, {"id": "mzc", "codec": "sperr", "quality": "45dB"})
    for z in range(stack.shape[0]):  # every chunk searched its own knob for 45 dB on its own range
        x, y = stack[z].astype(np.float64), back[z].astype(np.float64)
        assert 10 * np.log10((x.max() - x.min()) ** 2 / np.mean((x - y) ** 2)) > 40


def test_damaged_zarr_chunk_is_refused(tmp_path, stack):
    _, path = roundtrip(tmp_path, stack, {"id": "mzc", "codec": "lossless"})
    chunk = path / "0.0.0"
    raw = bytearray(chunk.read_bytes())
    raw[-10] ^= 0x40
    chunk.write_bytes(bytes(raw))
    with pytest.raises(MzcError, match="CRC"):
        zarr.open_array(str(path), mode="r")[0]
    codec = numcodecs.get_codec({"id": "mzc"})
    with pytest.raises(MzcError, match="magic"):
        codec.decode(b"not a chunk at all")


def test_noise_fitted_per_chunk_is_stored_in_the_frame(stack):
    import struct

    from mzc.format.container import unpack_msg
    codec = numcodecs.get_codec({"id": "mzc", "codec": "noise", "noise": 2.0})
    chunk = stack[1]
    frame = codec.encode(chunk)
    (n,) = struct.unpack("<I", frame[4:8])
    model = noise.NoiseModel.from_dict(unpack_msg(frame[8:8 + n], "frame")["c"]["bound"]["models"][0])
    back = codec.decode(frame)
    assert model.a > 0 and np.all(np.abs(back.astype(np.float64) - chunk) <= 2.0 * model.sigma(chunk))


def test_learned_codec_in_zarr(tmp_path, stack):
    pytest.importorskip("compressai")
    data = stack[:1, :128, :192]
    back, _ = roundtrip(tmp_path, data, {"id": "mzc", "codec": "learned:bmshj2018-factorized", "quality": "30x",
                                         "max_error": 16})
    assert np.abs(back.astype(np.int64) - data).max() <= 16  # learned base + residual: bounded
    back, _ = roundtrip(tmp_path / "plain", data, {"id": "mzc", "codec": "learned:bmshj2018-factorized", "knob": 4.0})
    x, y = data.astype(np.float64), back.astype(np.float64)
    assert 10 * np.log10((x.max() - x.min()) ** 2 / np.mean((x - y) ** 2)) > 25
