"""The context coder's body (spec 6.5): u32 n, n bytes of parameters (one zstd frame of zigzag LEB128 integers:
the header and every pass model), then 32-bit words of the entropy coder. Shared by every stream version."""
from __future__ import annotations

import struct

import numpy as np
import zstandard

from ...errors import MzcError
from . import varint

MAX_VALUE = 65535
MAX_PARAM_BYTES = 1 << 20
# a stream declaring more pixels is refused before any allocation (spec 6.5); larger chunks take another back end
MAX_PIXELS = 1 << 23
HEADER = 7  # version, rows, columns, lo, hi - lo, CRC-32C of the image as two 16-bit halves


def image_crc(image: np.ndarray) -> int:
    """CRC-32C of the image as little-endian u16 in C order, a few rows at a time (no copy of a whole chunk)."""
    import google_crc32c
    rows = max(1, (1 << 18) // max(image.shape[1], 1))
    crc = 0
    for start in range(0, image.shape[0], rows):
        crc = google_crc32c.extend(crc, image[start:start + rows].astype("<u2").tobytes())
    return crc


def byte_count(lo: int, hi: int) -> int:
    """Bytes of a value coded raw (the base grid, escapes): 1 when the span fits a byte."""
    return 1 if hi - lo < 256 else 2


def pack(ints: list[int], words: bytes) -> bytes:
    params = zstandard.ZstdCompressor(level=19).compress(varint.pack(ints))
    return struct.pack("<I", len(params)) + params + words


def split(body) -> tuple[np.ndarray, np.ndarray]:
    """(parameters, words) of a body; a damaged one raises MzcError."""
    body = memoryview(body)
    if len(body) < 4:
        raise MzcError("corrupt chunk: context coder body too short")
    (n,) = struct.unpack("<I", body[:4])
    if n > min(len(body) - 4, MAX_PARAM_BYTES):
        raise MzcError("corrupt chunk: context coder parameters too long")
    try:
        raw = zstandard.ZstdDecompressor().decompress(bytes(body[4:4 + n]), max_output_size=MAX_PARAM_BYTES)
    except zstandard.ZstdError as exc:
        raise MzcError(f"corrupt chunk: context coder parameters ({exc})") from None
    words = body[4 + n:]
    if len(words) % 4:
        raise MzcError("corrupt chunk: context coder sizes")
    return varint.unpack(raw), np.frombuffer(words, "<u4").astype(np.uint32)


def header(ints: np.ndarray, shape: tuple[int, int], max_value: int, versions) -> tuple[int, int, int, int]:
    """(version, lo, hi, crc) of a stream for an image of this shape, every field checked."""
    if shape[0] * shape[1] > MAX_PIXELS:
        raise MzcError(f"corrupt chunk: a context coder stream for {shape[0]}x{shape[1]} pixels (at most 2^23)")
    if ints.size < HEADER or int(ints[0]) not in versions or tuple(ints[1:3]) != tuple(shape):
        raise MzcError("corrupt chunk: context coder header does not match the chunk")
    lo, span = int(ints[3]), int(ints[4])
    if min(shape) < 2 or lo < 0 or span < 0 or lo + span > min(max_value, MAX_VALUE):
        raise MzcError("corrupt chunk: context coder value range")
    return int(ints[0]), lo, lo + span, int(ints[5]) | (int(ints[6]) << 16)
