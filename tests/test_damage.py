"""Damaged inputs on real .mzc files: every flipped byte is caught, huge declared shapes are refused before allocation."""
from __future__ import annotations

import io
import math

import pytest
import tifffile

import mzc
from mzc.errors import MzcError
from mzc.format.container import DATA, Writer, pack_chunk
from mzc.io.reader import MzcFile
from tests.conftest import write_tiff


def full_check(data: bytes) -> None:
    mz = MzcFile(io.BytesIO(data))
    checked, errors = mz.verify()
    if errors:
        raise MzcError(errors[0])
    mz.read()


def test_every_byte_flip_in_a_real_file_is_detected(tmp_path, nuclei_path):
    crop = tifffile.imread(nuclei_path)[100:124, 60:92]
    src = write_tiff(tmp_path / "crop.tif", crop, "YX")
    mzc.encode(str(src), str(tmp_path / "c.mzc"), chunks=(16, 16))
    data = (tmp_path / "c.mzc").read_bytes()
    full_check(data)
    missed = []
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x04
        try:
            full_check(bytes(bad))
            missed.append(pos)
        except MzcError:
            pass
    assert missed == [], f"undetected flips at {missed[:10]}"


def forged(header_overrides: dict, body: bytes = b"") -> bytes:
    header = {"shape": [4, 4], "dtype": "<u2", "axes": "YX", "chunks": [4, 4], "n_chunks": 1,
              "codec": {"id": "lossless"}, "tiff": {}} | header_overrides
    buf = io.BytesIO()
    w = Writer(buf, header)
    for i in range(header["n_chunks"]):
        w.write_chunk(i, {"b": "raw"}, body)
    w.close()
    return buf.getvalue()


def test_declared_shape_beyond_limits_refused():
    with pytest.raises(MzcError, match="too large"):
        MzcFile(io.BytesIO(forged({"shape": [1 << 20, 1 << 20, 1 << 20], "axes": "ZYX", "chunks": [1, 1 << 20, 1 << 20]})))


def test_declared_shape_too_big_for_memory_refused_before_allocating():
    shape = [1 << 14, 1 << 15, 1 << 15]  # 2^44 uint16 elements = 32 TiB, within the format's caps
    chunks = [2, 1 << 15, 1 << 15]  # 2^31 elements per chunk, the cap
    n = math.prod(math.ceil(s / c) for s, c in zip(shape, chunks))
    header = {"shape": shape, "dtype": "<u2", "axes": "ZYX", "chunks": chunks, "n_chunks": n,
              "codec": {"id": "lossless"}, "tiff": {}}
    mz = MzcFile(io.BytesIO(forged(header, b"")))
    with pytest.raises(MzcError, match="does not fit in memory"):
        mz.read()


def test_chunk_that_decodes_to_wrong_size_rejected():
    mz = MzcFile(io.BytesIO(forged({}, body=b"\0" * 10)))  # raw 4x4 uint16 needs 32 bytes
    with pytest.raises(MzcError, match="size mismatch"):
        mz.read()


def test_unknown_codec_fails_on_decode_naming_it_not_on_open():
    mz = MzcFile(io.BytesIO(forged({"codec": {"id": "wavelet9000"}})))  # header facts stay readable (spec 2.1)
    assert mz.shape == (4, 4)
    with pytest.raises(MzcError, match="unknown codec 'wavelet9000'"):
        mz.read()


def test_header_with_inconsistent_grid_rejected():
    with pytest.raises(MzcError, match="n_chunks"):
        MzcFile(io.BytesIO(forged({"chunks": [2, 2], "n_chunks": 1})))


def test_chunk_record_in_the_wrong_slot_rejected():
    buf = io.BytesIO()
    w = Writer(buf, {"shape": [2, 4], "dtype": "<u2", "axes": "YX", "chunks": [1, 4], "n_chunks": 2,
                     "codec": {"id": "lossless"}, "tiff": {}})
    w.write_record(DATA, pack_chunk(1, {"b": "raw"}, b"\1" * 8))  # chunk 1's record where chunk 0 belongs
    w.write_record(DATA, pack_chunk(0, {"b": "raw"}, b"\2" * 8))
    w.close()
    mz = MzcFile(io.BytesIO(buf.getvalue()))
    with pytest.raises(MzcError, match="does not name this chunk"):
        mz.read()
