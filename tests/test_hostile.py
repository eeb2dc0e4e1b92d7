"""Hostile files (issue 17): every row of the attack table, each built from a freshly encoded synthetic stack with
tests/forge.py (a change inside a record, then every length, index entry and CRC rebuilt). A reader must answer
each with one MzcError, in bounded time and memory, and never with wrong pixels."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import tracemalloc

import imagecodecs
import msgpack
import numpy as np
import pytest
import tifffile

import mzc
from mzc import sandbox
from mzc.errors import MzcError
from mzc.format.container import REPORT
from mzc.io import decoding
from mzc.io.reader import MzcFile
from tests import forge
from tests.conftest import write_tiff


def cli(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "mzc", *args], capture_output=True, text=True, cwd=cwd)
    return proc.returncode, proc.stderr


def stack(shape=(2, 64, 80), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[-2], :shape[-1]]
    smooth = 1500 + 700 * np.sin(yy / 9.0) * np.cos(xx / 11.0)
    return np.clip(smooth + rng.normal(0, 25, shape), 0, 4095).astype(np.uint16)


def encoded(tmp_path, data: np.ndarray, name: str = "s", **options) -> bytes:
    src = write_tiff(tmp_path / f"{name}.tif", data, "ZYX"[-data.ndim:])
    mzc.encode(str(src), str(tmp_path / f"{name}.mzc"), **options)
    return (tmp_path / f"{name}.mzc").read_bytes()


def read(data: bytes) -> np.ndarray:
    return MzcFile(io.BytesIO(data)).read()


def one_line_error(code: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("mzc: error:"), err


MUTATIONS = [(kind, pos, bytes([(pos * 37 + k) % 256 for k in range(1 + pos % 6)]))
             for pos in range(0, 900, 7) for kind in ("overwrite", "insert", "delete", "flip")]


# ----------------------------------------------------------------------------------------------- row 1
def test_row1_forged_sperr_streams_fail_one_chunk_and_never_the_reader(tmp_path):
    data = stack()
    raw = encoded(tmp_path, data, codec="sperr", quality="10x", chunks=(1, 64, 80))
    clean = read(raw)
    crashed = None
    for kind, pos, value in MUTATIONS:
        forged = forge.edit_chunk(raw, 0, body=lambda b, k=kind, p=pos, v=value: forge.mutate(b, k, p, v))
        try:
            assert np.array_equal(read(forged), clean), (kind, pos)  # a change that left the pixels intact
        except MzcError as exc:
            if "crashed" in str(exc) and crashed is None:
                crashed = forged
    if crashed is None:
        pytest.skip("no forged SPERR stream crashed this SPERR build (the sandbox is tested in test_sandbox.py)")
    (tmp_path / "crash.mzc").write_bytes(crashed)
    code, err = cli("decode", "crash.mzc", "-o", "out.tif", cwd=tmp_path)
    one_line_error(code, err)
    assert "crashed" in err and not (tmp_path / "out.tif").exists()
    assert not list(tmp_path.glob(".mzc-*.part"))


# ----------------------------------------------------------------------------------------------- row 2
def test_row2_htj2k_header_overwrite_refused_before_decoding(tmp_path):
    raw = encoded(tmp_path, stack(), codec="htj2k", quality="10x", chunks=(1, 64, 80))
    forged = forge.edit_chunk(raw, 0, body=lambda b: forge.mutate(b, "overwrite", 14, b"\x7f\xff\x00\x13\x37\x00"))
    started = time.monotonic()
    with pytest.raises(MzcError, match="HTJ2K stream"):
        read(forged)
    assert time.monotonic() - started < 2


@pytest.fixture
def stall_j2k(monkeypatch):
    """A function that replaces the JPEG 2000 decoder by an endless loop in the sandbox processes forked after it."""
    def forever(self, body, params, shape):
        while True:
            pass

    def stall():
        monkeypatch.setattr("mzc.codecs.classic.J2K.decode_image", forever)
        monkeypatch.setattr(decoding, "DEADLINE_BASE_S", 1.0)
        sandbox.shutdown()
    yield stall
    monkeypatch.undo()
    sandbox.shutdown()


@pytest.mark.skipif(not sandbox.enabled(), reason="the sandbox needs fork on Linux")
def test_row2_a_decoder_that_never_returns_is_killed_at_its_deadline(tmp_path, stall_j2k):
    raw = encoded(tmp_path, stack((1, 64, 80)), codec="j2k", knob=60.0, chunks=(1, 32, 80))
    stall_j2k()
    started = time.monotonic()
    with pytest.raises(MzcError, match="chunk 0: the decoder did not finish within its 1.0 s deadline"):
        read(raw)
    assert time.monotonic() - started < 10
    checked, errors = MzcFile(io.BytesIO(raw)).verify()
    assert checked == 0 and len(errors) == 2 and all("deadline" in e for e in errors)


# ----------------------------------------------------------------------------------------------- row 3
def test_row3_htj2k_error_the_library_only_prints_fails_the_chunk(tmp_path):
    data = stack((1, 128, 128))
    raw = encoded(tmp_path, data, codec="htj2k", quality="5x", chunks=(1, 128, 128))
    assert len(forge.chunk_body(raw)[1]) > 400
    forged = forge.edit_chunk(raw, 0, body=lambda b: forge.mutate(b, "insert", 330, b"\x01\x02\x03"))
    with pytest.raises(MzcError, match="reported an error|digest"):
        read(forged)
    (tmp_path / "ojph.mzc").write_bytes(forged)
    code, err = cli("decode", "ojph.mzc", "-o", "out.tif", cwd=tmp_path)
    one_line_error(code, err)  # no "Exception ignored" lines either
    assert not (tmp_path / "out.tif").exists()


# ----------------------------------------------------------------------------------------------- row 4
def jpegls_file(tmp_path, data: np.ndarray) -> bytes:
    """A one-chunk lossless file whose chunk is a JPEG-LS stream (whichever back end the encoder preferred)."""
    raw = encoded(tmp_path, data[None], chunks=(1, *data.shape))
    return forge.edit_chunk(raw, 0, body=lambda b: imagecodecs.jpegls_encode(data),
                            params=lambda p: {"b": "jpegls", "d": decoding.digest(data)})


def _patch(body: bytes, offset: int, fmt: str, *values) -> bytes:
    out = bytearray(body)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _jpegls_16384(body: bytes) -> bytes:
    sof = body.index(b"\xff\xf7")
    return _patch(body, sof + 5, ">HH", 16384, 16384)


def _j2k_16384(body: bytes) -> bytes:
    ihdr = body.index(b"ihdr")
    body = _patch(body, ihdr + 4, ">II", 16384, 16384)
    siz = body.index(b"\xff\x51")
    return _patch(body, siz + 6, ">II", 16384, 16384)


def _htj2k_65536(body: bytes) -> bytes:
    return _patch(body, body.index(b"\xff\x51") + 6, ">II", 65536, 65536)


def _sperr_16384(body: bytes) -> bytes:
    return _patch(body, 2, "<II", 16384, 16384)


def _jxl_1024(body: bytes) -> bytes:
    return imagecodecs.jpegxl_encode(np.zeros((1024, 1024), np.uint16), distance=1.0, effort=1)


def _avif_512(body: bytes) -> bytes:
    grey = np.zeros((512, 512, 3), np.uint16)
    return imagecodecs.avif_encode(grey, level=50, bitspersample=12, pixelformat="400", speed=10)


@pytest.mark.parametrize("options,bigger", [
    (None, _jpegls_16384), ({"codec": "j2k", "quality": "10x"}, _j2k_16384),
    ({"codec": "htj2k", "quality": "10x"}, _htj2k_65536), ({"codec": "sperr", "quality": "10x"}, _sperr_16384),
    ({"codec": "jxl", "quality": "10x"}, _jxl_1024), ({"codec": "avif", "quality": "10x"}, _avif_512),
], ids=["jpegls", "j2k", "htj2k", "sperr", "jxl", "avif"])
def test_row4_stream_declaring_a_bigger_image_is_refused_before_any_allocation(tmp_path, monkeypatch, options,
                                                                               bigger):
    data = stack((1, 128, 128))
    raw = jpegls_file(tmp_path, data[0]) if options is None else encoded(tmp_path, data, chunks=(1, 128, 128),
                                                                          **options)
    forged = forge.edit_chunk(raw, 0, body=bigger)
    monkeypatch.setattr(decoding, "MEMORY_BASE", 64 << 20)  # a decoder allocating first would hit this limit
    monkeypatch.setattr(decoding, "MEMORY_PER_ELEMENT", 0)
    started = time.monotonic()
    with pytest.raises(MzcError, match="declares .* pixels, but the chunk is 128x128"):
        read(forged)
    assert time.monotonic() - started < 2


# ----------------------------------------------------------------------------------------------- row 5
def test_row5_truncated_jpegls_stream_fails_at_once(tmp_path):
    raw = jpegls_file(tmp_path, stack((1, 512, 512))[0])
    started = time.monotonic()
    with pytest.raises(MzcError, match="JPEG-LS stream is cut short"):
        read(forge.edit_chunk(raw, 0, body=lambda b: b[:len(b) // 2]))
    with pytest.raises(MzcError):  # cut, with its end marker put back: the decoder's error, or the digest's
        read(forge.edit_chunk(raw, 0, body=lambda b: b[:len(b) // 2] + b"\xff\xd9"))
    assert time.monotonic() - started < 3


# ----------------------------------------------------------------------------------------------- row 6
def test_row6_integer_roi_decodes_to_tiff(tmp_path):
    data = stack((1, 40, 50))[0]
    src = write_tiff(tmp_path / "p.tif", data, "YX")
    mzc.encode(str(src), str(tmp_path / "p.mzc"))
    code, err = cli("decode", "p.mzc", "--roi", "5,:", "-o", "row.tif", cwd=tmp_path)
    assert code == 0, err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "row.tif").reshape(-1), data[5])
    code, err = cli("decode", "p.mzc", "--roi", "5,7", "-o", "one.tif", cwd=tmp_path)
    assert code == 0 and tifffile.imread(tmp_path / "one.tif").reshape(-1).tolist() == [data[5, 7]]


# ----------------------------------------------------------------------------------------------- row 7
@pytest.mark.parametrize("meta,field", [
    ({"extratags": [[70000, 3, 1, [5]]]}, "extratags"),
    ({"extratags": [[50838, 4, 10, [1]]]}, "extratags"),
    ({"extratags": [[50839, 1, 99, b"ab"]]}, "extratags"),
    ({"resolution": [[(1 << 64) - 1, 1], [1, 1]]}, "resolution"),
    ({"resolution": [[1, 0], [1, 0]]}, "resolution"),
    ({"colormap": [1, 2]}, "colormap"),
    ({"description": 7}, "description"),
])
def test_row7_hostile_tiff_metadata_is_a_one_line_error(tmp_path, meta, field):
    raw = encoded(tmp_path, stack((1, 16, 16)))
    (tmp_path / "m.mzc").write_bytes(forge.edit_header(raw, lambda h: dict(h, tiff=dict(h["tiff"], **meta))))
    code, err = cli("decode", "m.mzc", "-o", "out.tif", cwd=tmp_path)
    one_line_error(code, err)
    assert f"corrupt header: TIFF metadata {field}" in err
    assert not (tmp_path / "out.tif").exists() and not list(tmp_path.glob(".mzc-*.part"))


# ----------------------------------------------------------------------------------------------- row 8
def _nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


def test_row8_malformed_or_deep_report_leaves_info_working(tmp_path):
    raw = encoded(tmp_path, stack((1, 16, 16)))
    for k, report in enumerate(([1, 2, 3], {"x": _nested(600)})):
        path = tmp_path / f"r{k}.mzc"
        path.write_bytes(forge.replace_record(raw, REPORT, msgpack.packb(report)))
        for args in (("info",), ("info", "--json")):
            code, err = cli(*args, str(path))
            assert code == 0, err
        facts = mzc.info(str(path))
        assert facts["report"] is None and facts["report_error"].startswith("corrupt report")
        assert mzc.verify(str(path))["ok"] is False


def test_row8_deep_nesting_in_the_header_is_a_corrupt_header(tmp_path):
    raw = encoded(tmp_path, stack((1, 16, 16)))
    (tmp_path / "d.mzc").write_bytes(forge.edit_header(raw, lambda h: dict(h, codec=dict(h["codec"],
                                                                                         extra=_nested(600)))))
    for args in (("info", "--json"), ("decode", "-o", "out.tif")):
        code, err = cli(*args, "d.mzc", cwd=tmp_path)
        one_line_error(code, err)
        assert "corrupt header: nested deeper than 32 levels" in err


# ----------------------------------------------------------------------------------------------- row 9
def test_row9_bounded_base_chain_is_a_header_error(tmp_path):
    raw = encoded(tmp_path, stack((1, 32, 32)), codec="j2k", max_error=8)

    def chain(h):
        config = h["codec"]
        for _ in range(450):
            config = {"id": "bounded", "base": config, "bound": h["codec"]["bound"]}
        return dict(h, codec=config)

    with pytest.raises(MzcError, match="corrupt header"):
        read(forge.edit_header(raw, chain))


# ----------------------------------------------------------------------------------------------- row 10
@pytest.mark.parametrize("index", [False, 0.0, "0", None, [0]])
def test_row10_chunk_number_must_be_an_integer(tmp_path, index):
    raw = encoded(tmp_path, stack((1, 16, 16)))
    with pytest.raises(MzcError, match="meta does not name this chunk"):
        read(forge.edit_chunk(raw, 0, meta=lambda m: dict(m, i=index)))


# ----------------------------------------------------------------------------------------------- row 11
@pytest.mark.parametrize("sandboxed", [True, False])
def test_row11_one_chunk_file_decodes_without_copies(tmp_path, monkeypatch, sandboxed):
    monkeypatch.setenv("MZC_SANDBOX", "1" if sandboxed else "0")
    data = np.zeros((2048, 2048), np.uint16)
    data[::7, ::5] = 9
    src = write_tiff(tmp_path / "z.tif", data, "YX")
    mzc.encode(str(src), str(tmp_path / "z.mzc"), chunks=(2048, 2048))
    tracemalloc.start()
    try:
        with mzc.open(str(tmp_path / "z.mzc")) as mz:
            back = mz.read()
        read_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        mzc.decode(str(tmp_path / "z.mzc"), str(tmp_path / "back.tif"))
        tiff_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(back, data)
    # the decoded chunk itself, plus (for the TIFF) the bytes tifffile makes of each page it writes
    assert read_peak < 1.3 * data.nbytes and tiff_peak < 2.3 * data.nbytes, (read_peak, tiff_peak)


# ----------------------------------------------------------------------------------------------- digests
def test_new_files_store_a_digest_per_chunk(tmp_path):
    raw = encoded(tmp_path, stack(), codec="j2k", quality="10x", chunks=(1, 32, 80))
    with MzcFile(io.BytesIO(raw)) as mz:
        assert mz.header["digests"] == "crc32c"
        for i in range(mz.grid.n_chunks):
            params, _ = forge.chunk_body(raw, i)
            assert params["d"] == decoding.digest(mz.read((slice(i // 2, i // 2 + 1), slice(32 * (i % 2),
                                                                                          32 * (i % 2) + 32),
                                                            slice(0, 80))))


def test_digest_mismatch_is_fatal_for_exact_and_bounded_codecs(tmp_path):
    for options in ({}, {"max_error": 2}, {"noise": 1.0}, {"codec": "j2k", "max_error": 4}):
        raw = encoded(tmp_path, stack((1, 64, 64)), **options)
        forged = forge.edit_chunk(raw, 0, params=lambda p: dict(p, d=(p["d"] + 1) % (1 << 32)))
        mz = MzcFile(io.BytesIO(forged))
        mz.allow_mismatch = True  # changes nothing for a promise of exactness or of a bound
        with pytest.raises(MzcError, match="do not match the chunk's digest"):
            mz.read()


def test_lossy_digest_mismatch_fails_unless_allowed_and_verify_reports_it(tmp_path):
    raw = encoded(tmp_path, stack((1, 32, 40)), codec="jxl", knob=1.0)
    forged = forge.edit_chunk(raw, 0, params=lambda p: dict(p, d=(p["d"] + 1) % (1 << 32)))
    (tmp_path / "l.mzc").write_bytes(forged)
    with pytest.raises(MzcError, match="--allow-mismatch"):
        read(forged)
    with mzc.open(str(tmp_path / "l.mzc"), allow_mismatch=True) as mz:
        np.testing.assert_array_equal(mz.read(), read(raw))
    assert mzc.verify(str(tmp_path / "l.mzc"))["ok"] is False
    code, err = cli("decode", "l.mzc", "-o", "no.tif", cwd=tmp_path)
    one_line_error(code, err)
    code, err = cli("decode", "l.mzc", "--allow-mismatch", "-o", "yes.tif", cwd=tmp_path)
    assert code == 0, err


def test_a_chunk_without_its_digest_is_refused_when_the_header_promises_one(tmp_path):
    raw = encoded(tmp_path, stack((1, 16, 16)))
    stripped = forge.edit_chunk(raw, 0, params=lambda p: {k: v for k, v in p.items() if k != "d"})
    with pytest.raises(MzcError, match="digest is missing"):
        read(stripped)
    old_style = forge.edit_header(stripped, lambda h: {k: v for k, v in h.items() if k != "digests"})
    np.testing.assert_array_equal(read(old_style), read(raw))  # files written before digests still decode


def test_no_check_lossy_files_carry_no_digests_and_trusted_exact_ones_do(tmp_path):
    lossy = encoded(tmp_path, stack((1, 16, 16)), name="a", codec="j2k", knob=60.0, check=False)
    assert "digests" not in MzcFile(io.BytesIO(lossy)).header and "d" not in forge.chunk_body(lossy)[0]
    exact = encoded(tmp_path, stack((1, 16, 16)), name="b", check=False)
    assert forge.chunk_body(exact)[0]["d"] == decoding.digest(stack((1, 16, 16)))


def test_verify_against_reports_bound_held_for_max_error_files(tmp_path):
    src = write_tiff(tmp_path / "s.tif", stack((1, 32, 40)), "ZYX")
    mzc.encode(str(src), str(tmp_path / "s.mzc"), max_error=3)
    result = mzc.verify(str(tmp_path / "s.mzc"), against=str(src))
    assert result["bound"] == "|error| <= 3" and result["bound_held"] is True


@pytest.mark.parametrize("value", [{}, [], 1.5, None, b"jpegls"])
def test_chunk_parameters_of_any_type_are_errors(tmp_path, value):
    """Found by tools/fuzz_reader.py: a back-end name that is a map made the reader raise TypeError."""
    raw = encoded(tmp_path, stack((1, 16, 16)))
    with pytest.raises(MzcError):
        read(forge.edit_chunk(raw, 0, params=lambda p: dict(p, b=value)))
