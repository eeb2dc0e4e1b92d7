"""Zarr v3 (zarr-python 3): the `mzc` array-to-bytes codec for every dtype and setting, partial reads, sharding,
damaged chunks; and the numcodecs (Zarr v2) codec against numcodecs' own conformance helpers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mzc.bounds import noise_model as noise
from mzc.errors import MzcError

zarr = pytest.importorskip("zarr", reason="the [zarr] extra is not installed")
numcodecs = pytest.importorskip("numcodecs")
from numcodecs.tests import common as conformance  # noqa: E402 - after the importorskip that guards numcodecs

from mzc.integrations.zarr3 import MzcArrayCodec  # noqa: E402 - needs zarr
from mzc.integrations.zarr_codec import MzcCodec  # noqa: E402 - needs numcodecs

DTYPES = ["uint8", "uint16", "int16", "uint32", "float32"]


def sample(dtype: str, shape=(3, 90, 110), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    smooth = (np.sin(yy / 9.0) + np.cos(xx / 13.0) + 2) * 40
    data = smooth + rng.poisson(20, shape)
    if dtype == "int16":
        return (data - 100).astype(np.int16)
    if dtype == "float32":
        return (data / 7).astype(np.float32)
    return data.astype(dtype)


def create(path, data, serializer, chunks=(1, 64, 64), **kwargs):
    z = zarr.create_array(str(path), shape=data.shape, chunks=chunks, dtype=data.dtype, serializer=serializer,
                          compressors=None, **kwargs)
    z[:] = data
    return zarr.open_array(str(path), mode="r")  # reopened: the codec is found again from zarr.json


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_losslessly_with_partial_reads(tmp_path, dtype):
    data = sample(dtype)
    z = create(tmp_path / "a.zarr", data, MzcArrayCodec(codec="lossless"))
    assert z.dtype == data.dtype and z.metadata.zarr_format == 3
    np.testing.assert_array_equal(z[:], data)
    np.testing.assert_array_equal(z[1, 10:75, 50:], data[1, 10:75, 50:])  # crosses chunk edges, edge chunks
    np.testing.assert_array_equal(z[-1, -1], data[-1, -1])


def test_the_codec_is_named_in_zarr_json_and_found_through_the_entry_point(tmp_path):
    from zarr.registry import get_codec_class
    assert get_codec_class("mzc") is MzcArrayCodec
    data = sample("uint16")
    create(tmp_path / "a.zarr", data, {"name": "mzc", "configuration": {"codec": "nearlossless", "max_error": 3}})
    codecs = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())["codecs"]
    assert codecs == [{"name": "mzc", "configuration": {"codec": "nearlossless", "max_error": 3}}]


@pytest.mark.parametrize("settings", [
    {"codec": "nearlossless", "max_error": 4},
    {"codec": "j2k", "quality": "45dB", "max_error": 8},
    {"codec": "noise", "noise": 1.0, "noise_model": "2.0,30"},
    {"codec": "sperr", "quality": "40dB"},
])
def test_settings_keep_their_promise_in_zarr_v3(tmp_path, settings):
    data = sample("uint16", (3, 128, 128))  # whole chunks: Zarr pads edge chunks, and PSNR targets see the padding
    back = create(tmp_path / "a.zarr", data, MzcArrayCodec(**settings))[:].astype(np.float64)
    err = np.abs(back - data)
    if "max_error" in settings:
        assert err.max() <= settings["max_error"]
    elif "noise" in settings:
        assert np.all(err <= noise.NoiseModel(2.0, 30.0).sigma(data))
    else:  # each chunk searched its own knob for the PSNR on its own range
        for z, y, x in np.ndindex(3, 2, 2):
            block = np.s_[z, y * 64:(y + 1) * 64, x * 64:(x + 1) * 64]
            orig = data[block].astype(np.float64)
            assert 10 * np.log10((orig.max() - orig.min()) ** 2 / np.mean((orig - back[block]) ** 2)) > 39.5


def test_inside_zarr_sharding(tmp_path):
    data = sample("uint16", (2, 130, 150))
    z = create(tmp_path / "s.zarr", data, MzcArrayCodec(codec="lossless"), chunks=(1, 32, 32), shards=(1, 64, 96))
    assert type(z.metadata.codecs[0]).__name__ == "ShardingCodec"
    assert isinstance(z.metadata.codecs[0].codecs[0], MzcArrayCodec)
    np.testing.assert_array_equal(z[:], data)
    np.testing.assert_array_equal(z[1, 40:100, 7:140], data[1, 40:100, 7:140])


def test_a_damaged_chunk_is_refused_with_mzc_error(tmp_path):
    data = sample("uint16")
    create(tmp_path / "a.zarr", data, MzcArrayCodec(codec="lossless"))
    chunk = tmp_path / "a.zarr" / "c" / "0" / "0" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[-10] ^= 0x40
    chunk.write_bytes(bytes(raw))
    z = zarr.open_array(str(tmp_path / "a.zarr"), mode="r")
    with pytest.raises(MzcError, match="CRC"):
        z[0, :10, :10]
    np.testing.assert_array_equal(z[1], data[1])  # the other chunks still decode


def test_unsupported_dtype_and_bad_settings_are_refused():
    with pytest.raises(MzcError, match="int8"):
        zarr.create_array(zarr.storage.MemoryStore(), shape=(8, 8), chunks=(8, 8), dtype="int8",
                          serializer=MzcArrayCodec(), compressors=None)
    with pytest.raises(MzcError):
        MzcArrayCodec(codec="lossless", max_error=-1)
    with pytest.raises(TypeError):
        MzcArrayCodec(speed=3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numcodecs_conformance_encode_decode(dtype):
    """numcodecs' helper feeds the array, bytes, bytearray and array.array and decodes into out= buffers."""
    for codec in (MzcCodec(), MzcCodec(codec="lossless")):
        conformance.check_encode_decode(sample(dtype, (40, 50)), codec)
        conformance.check_encode_decode(sample(dtype, (2, 20, 30)).ravel(), codec)


@pytest.mark.parametrize("settings", [{}, {"codec": "lossless"}, {"codec": "nearlossless", "max_error": 4},
                                      {"codec": "noise", "noise": 1.0, "noise_model": "2.0,30"},
                                      {"codec": "j2k", "knob": 45.0}, {"codec": "jxl", "quality": "20x",
                                                                         "effort": "max", "max_error": 2}])
def test_numcodecs_conformance_config_and_repr(monkeypatch, settings):
    codec = MzcCodec(**settings)
    conformance.check_config(codec)
    monkeypatch.setattr(conformance, "MzcCodec", MzcCodec, raising=False)  # eval() in its namespace finds the class
    conformance.check_repr(repr(codec))
    assert eval(repr(codec), {"MzcCodec": MzcCodec}).get_config() == codec.get_config()


def test_v2_and_v3_frames_are_the_same_format():
    data = sample("uint16")[0]
    frame = MzcCodec(codec="nearlossless", max_error=2).encode(data)
    back = MzcCodec().decode(frame)
    assert back.dtype == data.dtype and np.abs(back.astype(int) - data).max() <= 2
    with pytest.raises(MzcError, match="magic"):
        MzcCodec().decode(b"not a chunk at all")
