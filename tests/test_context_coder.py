"""The context coder (spec 6.5): exact round trips on random and real images, tables that are the same bits on
every machine, a decode independent of the BLAS thread count, and damaged or hostile streams refused."""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys

import imagecodecs
import numpy as np
import pytest
import tifffile
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mzc.codecs.context import tables, varint
from mzc.codecs.context.coder import HEADER, decode_image, encode_image
from mzc.codecs.context.geometry import MAX_LOG_INPUT, ilog, levels
from mzc.codecs.context.legacy import categorical
from mzc.errors import MzcError
from tests.conftest import REAL_FILES, ROOT

TABLES_SHA256 = "b6b9737ee5ac665d01df361c64e7f46894e35f311be785d669a4192544feaae8"


@st.composite
def images(draw):
    rows, cols = draw(st.integers(2, 40)), draw(st.integers(2, 40))
    lo = draw(st.integers(0, 65535))
    span = draw(st.sampled_from([0, 1, 3, 255, 256, 4095, 65535]))
    span = min(span, 65535 - lo)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    kind = draw(st.sampled_from(["uniform", "smooth", "sparse", "ends"]))
    if kind == "uniform":
        a = rng.integers(lo, lo + span + 1, (rows, cols))
    elif kind == "smooth":
        yy, xx = np.mgrid[:rows, :cols]
        a = lo + span / 2 * (1 + np.sin(yy / 3.0) * np.cos(xx / 5.0)) + rng.normal(0, 1 + span / 50, (rows, cols))
    elif kind == "sparse":
        a = np.where(rng.random((rows, cols)) < 0.05, lo + span, lo)
    else:
        a = rng.choice([lo, lo + span], (rows, cols))
    return np.clip(np.rint(a), lo, lo + span).astype(np.int64)


@given(images())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_images_round_trip_exactly(image):
    np.testing.assert_array_equal(decode_image(encode_image(image), image.shape), image)


@pytest.mark.parametrize("shape", [(2, 2), (2, 61), (61, 2), (3, 3), (5, 4), (9, 17), (33, 65), (130, 130)])
def test_every_geometry_round_trips(shape):
    rng = np.random.default_rng(sum(shape))
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = (2000 + 800 * np.sin(yy / 7) * np.cos(xx / 5) + rng.normal(0, 30, shape)).astype(np.int64)
    np.testing.assert_array_equal(decode_image(encode_image(image), shape), image)
    assert levels(shape) == max(0, int(np.ceil(np.log2(min(shape) / 8))))


def test_real_planes_round_trip_and_beat_jpegls():
    """Crops of every real 8/16-bit file (read from ../shared/data at test time, never stored)."""
    if not REAL_FILES:
        pytest.skip("real data ../shared/data is absent (set MZC_SHARED_DATA to run locally)")
    ours = theirs = 0
    for path in REAL_FILES:
        a = tifffile.imread(path)
        plane = a.reshape(-1, *a.shape[-2:])[len(a.reshape(-1, *a.shape[-2:])) // 2]
        crop = np.ascontiguousarray(plane[:192, :256])
        body = encode_image(crop)
        np.testing.assert_array_equal(decode_image(body, crop.shape), crop)
        ours, theirs = ours + len(body), theirs + len(imagecodecs.jpegls_encode(crop))
    assert ours < theirs


def test_tables_are_the_same_bits_everywhere():
    """Pins the arithmetic of spec 6.5.3: a machine where this fails would decode files wrongly (and say so)."""
    digest = hashlib.sha256()
    for j in range(0, tables.N_SIGMA, 5):
        for mix in range(len(tables.MIXTURES)):
            for mean in (-128, -7, 0, 5, 127):
                freq = tables.phase_tables(j, mix, mean)
                assert (freq.sum(axis=1) == tables.TOTAL).all() and freq.min() >= 1
                assert (freq[:, -1] == tables.ESCAPE_FREQ).all()
                assert freq.shape[1] == 2 * tables.half_width(j, mix) + 2
                digest.update(freq.astype("<i8").tobytes())
    assert digest.hexdigest() == TABLES_SHA256


def test_constriction_codes_with_exactly_our_frequencies():
    """The weights handed to constriction sum to 2^24 - n, so its quantizer keeps them: a symbol of frequency f
    costs 24 - log2 f bits, also the rarest."""
    freq = tables.phase_tables(40, 1, 0)[0]
    import constriction
    for symbol in (int(np.argmax(freq)), 0, freq.size - 1):
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(np.full(20000, symbol, np.int32), categorical(freq))
        bits = 32 * enc.get_compressed().size
        ideal = 20000 * (24 - np.log2(freq[symbol]))
        assert ideal - 64 <= bits <= ideal * 1.002 + 64


def test_ilog_is_the_integer_definition():
    x = np.unique(np.r_[np.arange(1, 5000), np.geomspace(1, MAX_LOG_INPUT, 4000).astype(np.int64), MAX_LOG_INPUT])
    top = np.floor(np.log2(x)).astype(np.int64)  # exact here: x is far from the next power of two or on it
    top = np.where(2 ** (top + 1) <= x, top + 1, np.where(2 ** top > x, top - 1, top))
    three = ((x << 3) >> top) & 7
    np.testing.assert_array_equal(ilog(x, 8), 8 * top + three)
    np.testing.assert_array_equal(ilog(x), (8 * top + three) >> 1)


def test_decode_does_not_depend_on_the_blas_thread_count(tmp_path):
    rng = np.random.default_rng(3)
    image = (1000 + rng.normal(0, 40, (300, 260)).cumsum(axis=1) / 8).astype(np.int64).clip(0, 65535)
    (tmp_path / "s.bin").write_bytes(encode_image(image))
    code = ("import sys, hashlib, numpy as np; from mzc.codecs.context.coder import decode_image; "
            "b = open(sys.argv[1], 'rb').read(); print(hashlib.sha256(decode_image(b, (300, 260)).astype('<i8').tobytes())"
            ".hexdigest())")
    outs = set()
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s.bin")], capture_output=True,
                             text=True, env=env, cwd=ROOT)
        assert run.returncode == 0, run.stderr
        outs.add(run.stdout.strip())
    assert outs == {hashlib.sha256(image.astype("<i8").tobytes()).hexdigest()}


def test_varints_round_trip_and_refuse_bad_bytes():
    values = np.array([0, 1, -1, 63, -64, 64, 300, -5, 2 ** 31 - 1, -2 ** 31])
    np.testing.assert_array_equal(varint.unpack(varint.pack(values)), values)
    with pytest.raises(MzcError, match="end inside"):
        varint.unpack(varint.pack(values)[:-1] + b"\x80")
    with pytest.raises(MzcError, match="too long"):
        varint.unpack(b"\xff" * 6 + b"\x01")


# ------------------------------------------------------------------------------------------- damage
def _stream(seed=0, shape=(96, 120)) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(seed)
    image = (1500 + rng.normal(0, 25, shape)).astype(np.int64)
    return image, encode_image(image)


def _repacked(body: bytes, change) -> bytes:
    """The body with its parameter integers changed by change(ints) (a crafted, well-formed stream)."""
    (n,) = struct.unpack_from("<I", body)
    ints = varint.unpack(zstandard.ZstdDecompressor().decompress(body[4:4 + n])).tolist()
    params = zstandard.ZstdCompressor().compress(varint.pack(change(ints)))
    return struct.pack("<I", len(params)) + params + body[4 + n:]


def test_every_flipped_parameter_byte_and_sampled_word_byte_is_refused_or_harmless():
    image, body = _stream()
    (n,) = struct.unpack_from("<I", body)
    positions = list(range(4 + n)) + list(range(4 + n, len(body), max(1, (len(body) - 4 - n) // 150)))
    for pos in positions:
        damaged = bytearray(body)
        damaged[pos] ^= 0x10
        try:
            np.testing.assert_array_equal(decode_image(bytes(damaged), image.shape), image)
        except MzcError:
            pass


def test_truncated_and_padded_streams_are_refused():
    image, body = _stream(1)
    for cut in (0, 3, 4, 20, len(body) // 2, len(body) - 4, len(body) - 1):
        with pytest.raises(MzcError):
            decode_image(body[:cut], image.shape)
    with pytest.raises(MzcError):
        decode_image(body + b"\0\0\0", image.shape)


@pytest.mark.parametrize("change,message", [
    (lambda p: [3] + p[1:], "header"),
    (lambda p: p[:1] + [p[1] + 1] + p[2:], "header"),
    (lambda p: p[:4] + [70000] + p[5:], "value range"),
    (lambda p: p + [0], "trailing"),
    (lambda p: p[:-1], "end early|digest|out of range"),
    (lambda p: p[:HEADER] + [2] + p[HEADER + 1:], "out of range"),
    (lambda p: p[:HEADER] + [1, 9] + p[HEADER + 2:], "out of range"),
], ids=["version", "shape", "span", "trailing", "short", "feature-set", "classes"])
def test_crafted_parameters_are_refused(change, message):
    image, body = _stream(2)
    with pytest.raises(MzcError, match=message):
        decode_image(_repacked(body, change), image.shape)


def test_a_16_bit_stream_is_refused_for_an_8_bit_chunk():
    image, body = _stream(3)
    with pytest.raises(MzcError, match="value range"):
        decode_image(body, image.shape, max_value=255)


def test_wrong_digest_is_refused():
    image, body = _stream(4)
    with pytest.raises(MzcError, match="digest"):
        decode_image(_repacked(body, lambda p: p[:5] + [p[5] ^ 1] + p[6:]), image.shape)


def test_images_over_the_pixel_cap_are_refused_before_decoding_and_left_to_other_back_ends(monkeypatch):
    from mzc.codecs import backends
    from mzc.codecs.context import coder
    small = (np.arange(64 * 64) % 251).reshape(64, 64).astype(np.uint16)
    body = encode_image(small)
    with pytest.raises(MzcError, match="at most 2\\^23"):
        decode_image(body, (4096, 2049))  # a stream declaring more than 2^23 pixels: refused before anything else
    monkeypatch.setattr(coder, "MAX_PIXELS", 64 * 64 - 1)
    monkeypatch.setattr(backends, "CTX_MAX_PIXELS", 64 * 64 - 1)
    with pytest.raises(ValueError):
        encode_image(small)
    assert backends.smallest(small)[1] == "jpegls"  # the chooser skips the context coder for such a chunk


def test_the_encoder_refuses_a_stream_that_does_not_replay_to_its_image(monkeypatch):
    """The encoder's own check (what lets the pipeline skip a full decode): a word changed after coding is caught
    before the stream leaves the encoder."""
    from mzc.codecs.context import rans
    finish = rans.finish

    def damaged(state, words, n_words):
        out = bytearray(finish(state, words, n_words))
        out[len(out) // 2] ^= 0x40
        return bytes(out)

    monkeypatch.setattr(rans, "finish", damaged)
    with pytest.raises(MzcError, match="did not replay"):
        _stream(5)


def test_version_1_streams_still_decode_with_their_own_decoder():
    """Files written before the compiled coder (stream version 1, constriction's range coder) decode bit-exactly;
    testdata/golden_ctx holds them as whole .mzc files (tests/test_backends.py), this reads one stream directly."""
    import mzc
    from mzc.format.container import Reader
    path = ROOT / "testdata" / "golden_ctx" / "lossless_ctx_u16.mzc"
    with open(path, "rb") as fh:
        meta, body = Reader(fh).chunk_payload(0, cap=1 << 24)
    assert meta["b"] == "ctx"
    ints, _ = _split_params(bytes(body))
    assert ints[0] == 1
    plane = decode_image(bytes(body), tuple(ints[1:3]))
    np.testing.assert_array_equal(plane.reshape(-1), mzc.imread(str(path))[0].reshape(-1).astype(np.int64))


def _split_params(body: bytes):
    (n,) = struct.unpack_from("<I", body)
    return varint.unpack(zstandard.ZstdDecompressor().decompress(body[4:4 + n])).tolist(), body[4 + n:]
