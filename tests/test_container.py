"""The container alone: framing, checksums, and rejection of every damaged byte."""
from __future__ import annotations

import io
import struct

import pytest

from mzc.errors import MzcError
from mzc.format.container import DATA, MAGIC, REPORT, Reader, Writer, crc32c, record_bytes


def build(chunks=(b"abc", b"defgh"), extra=()) -> bytes:
    buf = io.BytesIO()
    w = Writer(buf, {"shape": [2], "n_chunks": len(chunks)})
    for i, body in enumerate(chunks):
        w.write_chunk(i, {"b": "raw"}, body)
    for rtype, payload in extra:
        w.write_record(rtype, payload)
    w.close()
    return buf.getvalue()


def read_all(data: bytes) -> list:
    r = Reader(io.BytesIO(data))
    out = [r.chunk_payload(i, cap=1 << 20) for i in range(len(r.data_entries))]
    for _ in r.iter_records():
        pass
    return [(p, bytes(b)) for p, b in out]


def test_crc32c_is_castagnoli():
    assert crc32c(b"123456789") == 0xE3069283


def test_round_trip_and_ancillary_report():
    data = build(extra=[(REPORT, b"\x80")])
    r = Reader(io.BytesIO(data))
    assert r.header["format"] == [1, 0]
    assert read_all(data) == [({"b": "raw"}, b"abc"), ({"b": "raw"}, b"defgh")]
    assert r.ancillary(REPORT) == b"\x80"


def test_every_single_byte_flip_is_detected():
    data = build(extra=[(REPORT, b"\x80")])
    for pos in range(len(data)):
        for mask in (0x01, 0x80):
            bad = bytearray(data)
            bad[pos] ^= mask
            with pytest.raises(MzcError):
                read_all(bytes(bad))


def test_every_truncation_is_detected():
    data = build()
    for n in range(len(data)):
        with pytest.raises(MzcError):
            read_all(data[:n])


def test_trailing_garbage_rejected():
    with pytest.raises(MzcError):
        Reader(io.BytesIO(build() + b"\0"))


def test_unknown_major_version_rejected():
    data = bytearray(build())
    data[8] = 2
    with pytest.raises(MzcError, match="major version 2"):
        Reader(io.BytesIO(bytes(data)))


def test_unknown_critical_record_rejected_unknown_ancillary_skipped():
    assert Reader(io.BytesIO(build(extra=[(b"zZZZ", b"future")]))).header
    with pytest.raises(MzcError, match="unknown critical"):
        Reader(io.BytesIO(build(extra=[(b"ZZZZ", b"future")])))


def test_chunks_must_be_written_in_order():
    w = Writer(io.BytesIO(), {"n_chunks": 2})
    with pytest.raises(ValueError):
        w.write_chunk(1, {}, b"")


def test_record_layout_is_little_endian_with_crc_over_type_and_length():
    rec = record_bytes(DATA, b"xyz")
    assert rec[:4] == b"DATA" and struct.unpack("<Q", rec[4:12])[0] == 3 and rec[12:15] == b"xyz"
    assert struct.unpack("<I", rec[15:])[0] == crc32c(rec[:15])


def test_not_an_mzc_file():
    with pytest.raises(MzcError, match="not an .mzc"):
        Reader(io.BytesIO(b"II*\0" + bytes(100)))
    assert build().startswith(MAGIC)
