"""Per-chunk image back ends (issue 20): each one round trips, the lossless codec and the index images record the
smallest per chunk, every bound still holds, the rank table is used only where it pays, and the files written with
each back end keep decoding (testdata/golden_ctx)."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mzc
from mzc.codecs import backends
from mzc.codecs.lossless import Lossless, rank_table
from mzc.codecs.noise import decode_indices, encode_indices
from mzc.errors import MzcError
from mzc.stats import scan
from tests.conftest import TESTDATA, real_file, write_tiff

GOLDEN = TESTDATA / "golden_ctx"
EXPECTED = json.loads((GOLDEN / "expected.json").read_text())["files"]


def noisy(shape, seed=0, level=1500.0, sigma=25.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[-2], :shape[-1]]
    smooth = level + 600 * np.sin(yy / 9.0) * np.cos(xx / 11.0)
    return np.clip(smooth + rng.normal(0, sigma, shape), 0, 4095).astype(np.uint16)


def chunk_params(path) -> list[dict]:
    with mzc.open(str(path)) as mz:
        return [mz.container.chunk_payload(i, 1 << 30)[0] for i in range(mz.header["n_chunks"])]


@pytest.mark.parametrize("name", sorted(backends.NAMES))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_each_back_end_round_trips(name, dtype):
    image = (noisy((40, 56)) >> (4 if dtype == np.uint8 else 0)).astype(dtype)
    body = backends.encode(name, image)
    np.testing.assert_array_equal(backends.decode(name, body, image.shape, dtype), image)


def test_unknown_back_end_is_refused():
    with pytest.raises(MzcError, match="unknown image back end"):
        backends.decode("webp", b"x", (4, 4), np.uint16)
    with pytest.raises(MzcError, match="unknown index back end"):
        decode_indices(b"x", (4, 4), {"b": "webp", "o": 0, "t": 2})


def test_lossless_keeps_the_smallest_back_end_per_chunk(tmp_path):
    data = noisy((3, 64, 80))
    src = write_tiff(tmp_path / "s.tif", data, "ZYX")
    chosen = {}
    for effort in ("fastest", "fast", "max"):
        out = tmp_path / f"{effort}.mzc"
        mzc.encode(str(src), str(out), lossless=True, effort=effort)
        with mzc.open(str(out)) as mz:
            np.testing.assert_array_equal(mz.read(), data)
        tried = set(backends.EFFORTS[effort]) | {"jpegls"}  # fast adds JPEG-LS on sparse images
        assert {p["b"] for p in chunk_params(out)} <= tried
        chosen[effort] = 0
        for plane, params in zip(data, chunk_params(out)):
            best, name = backends.smallest(plane, effort)
            assert params["b"] == name and len(backends.encode(name, plane)) == len(best)
            assert all(len(best) <= len(backends.encode(n, plane)) for n in backends.EFFORTS[effort])
            chosen[effort] += len(best)
    assert chosen["max"] <= chosen["fast"] <= chosen["fastest"]


def test_effort_is_recorded_but_not_needed_to_decode():
    assert Lossless.for_effort("max").config()["effort"] == "max"
    assert "effort" not in Lossless.for_effort("fast").config()
    assert Lossless(effort="surprise").effort == "fast"


def test_rank_table_only_for_values_spread_through_their_range():
    stretched = np.arange(0, 60000, 37, dtype=np.uint16)  # every 37th value: ranks pay
    assert rank_table(0, scan([stretched]).present) is not None
    rng = np.random.default_rng(1)
    tail = np.r_[np.arange(100, 1000), rng.choice(np.arange(1000, 20000), 300, replace=False)].astype(np.uint16)
    stats = scan([tail])  # dense core, sparse tail: fewer than 60% used, but the table does not pay
    assert stats.present.mean() < 0.6 and rank_table(stats.min, stats.present) is None


def test_stretched_stack_still_codes_through_ranks(tmp_path):
    data = (noisy((2, 48, 64)) * 16).astype(np.uint16)  # 12-bit data stretched to 16 bits
    src = write_tiff(tmp_path / "s.tif", data, "ZYX")
    mzc.encode(str(src), str(tmp_path / "s.mzc"), lossless=True)
    assert all(p.get("r") == 1 for p in chunk_params(tmp_path / "s.mzc"))
    with mzc.open(str(tmp_path / "s.mzc")) as mz:
        np.testing.assert_array_equal(mz.read(), data)


@given(st.integers(0, 2 ** 32 - 1), st.sampled_from(sorted(backends.EFFORTS)), st.integers(2, 30), st.integers(2, 30))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_index_images_round_trip_with_every_effort(seed, effort, rows, cols):
    rng = np.random.default_rng(seed)
    idx = rng.integers(-5, 5, (rows, cols)).cumsum(axis=1) + int(rng.integers(-1000, 1000))
    body, params = encode_indices(idx, effort)
    assert params["b"] in backends.NAMES | {"zero", "zstd-delta"}
    np.testing.assert_array_equal(decode_indices(body, idx.shape, params), idx)


@pytest.mark.parametrize("options", [{"noise": 1.0}, {"noise": 0.5, "effort": "max"}, {"noise": 1.0, "effort": "fastest"},
                                     {"max_error": 3}, {"codec": "j2k", "noise": 1.0}],
                         ids=["noise", "noise-max", "noise-fastest", "abs", "bounded"])
def test_every_bound_holds_with_the_new_back_ends(tmp_path, options):
    data = noisy((2, 64, 72), seed=5)
    data[0, :3, :3], data[1, -2:, -2:] = 0, 4095
    src = write_tiff(tmp_path / "s.tif", data, "ZYX")
    report = mzc.encode(str(src), str(tmp_path / "s.mzc"), **options)
    with mzc.open(str(tmp_path / "s.mzc")) as mz:
        back = mz.read()
    err = np.abs(back.astype(np.int64) - data)
    if "max_error" in options:
        assert err.max() <= options["max_error"]
    else:
        assert report["max_error_sigma"] <= options["noise"]
    assert back[0, 0, 0] == 0 and back[1, -1, -1] == 4095
    if options.get("effort") == "fastest":
        assert {p["b"] for p in chunk_params(tmp_path / "s.mzc")} <= {"jpeg2k-ht", "jpegls", "zero", "zstd-delta"}


def test_real_noise_index_images_pick_the_context_coder(tmp_path):
    a = tifffile.imread(real_file("nuclei2d_hoechst_u16.tif"))[:256, :320]  # a crop, read at test time
    src = write_tiff(tmp_path / "n.tif", a, "YX")
    report = mzc.encode(str(src), str(tmp_path / "n.mzc"), noise=1.0)
    assert report["max_error_sigma"] <= 1.0
    assert [p["b"] for p in chunk_params(tmp_path / "n.mzc")] == ["ctx"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_back_end_files_decode_to_the_recorded_array(name):
    want = EXPECTED[name]
    path = GOLDEN / f"{name}.mzc"
    with mzc.open(str(path)) as mz:
        back = mz.read()
        checked, errors = mz.verify()
    assert not errors and checked >= 1
    assert list(back.shape) == want["shape"] and back.dtype.str == want["dtype"]
    assert hashlib.sha256(np.ascontiguousarray(back).astype(back.dtype.newbyteorder("<")).tobytes()).hexdigest() \
        == want["sha256"]
    assert {p.get("b") for p in chunk_params(path)} <= {want["back_end"], "zero"}


@pytest.mark.parametrize("options", [{"lossless": True}, {"noise": 1.0}, {"max_error": 3}],
                         ids=["lossless", "noise", "max-error"])
def test_context_coded_chunks_are_checked_without_a_decode(tmp_path, monkeypatch, options):
    """The encoder's check of a context-coded chunk is its own replay (SelfChecked), not a decode: with every
    decoder of the context coder broken during the encode, the file is still written, and it decodes exactly
    (or within its bound) once the decoder is back."""
    from mzc.codecs.context import coder
    data = noisy((2, 64, 72), seed=9)
    src = write_tiff(tmp_path / "s.tif", data, "ZYX")

    def broken(*args, **kwargs):
        raise AssertionError("the encoder decoded a context-coded chunk")

    with monkeypatch.context() as patch:
        patch.setattr(coder, "decode_image", broken)
        report = mzc.encode(str(src), str(tmp_path / "s.mzc"), **options)
    assert {p.get("b") for p in chunk_params(tmp_path / "s.mzc")} & {"ctx", "quant"}
    with mzc.open(str(tmp_path / "s.mzc")) as mz:
        back = mz.read()
    err = np.abs(back.astype(np.int64) - data)
    if "noise" in options:
        verified = mzc.verify(str(tmp_path / "s.mzc"), against=str(src))
        assert report["max_error_sigma"] <= 1.0 and verified["ok"], verified
    else:
        assert err.max() <= options.get("max_error", 0)
