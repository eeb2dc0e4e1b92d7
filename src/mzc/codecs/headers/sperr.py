"""SPERR: its own header (version, flags, volume size in X, Y[, Z] order, and for 3-D streams the chunk grid and
each chunk's length, which must add up to the stream)."""
from __future__ import annotations

import struct

from .common import geometry, refuse

WHAT = "SPERR"
MAX_SEGMENTS = 1 << 16


def _segments(n: int, c: int) -> int:
    """SPERR's own rule for the number of chunks along an axis (sperr_helper.cpp, chunk_volume)."""
    k = n // c + (1 if n % c > c // 2 else 0)
    return max(k, 1)


def check_sperr(body, expected: tuple[int, ...]) -> None:
    """`expected`: the chunk's core shape slowest axis first, (rows, columns) or (planes, rows, columns)."""
    data = memoryview(body)
    if len(data) < 11:
        raise refuse(WHAT, "is too short for its header")
    flags = [(data[1] >> (7 - k)) & 1 for k in range(8)]
    portion, three_d, single_float, multi = flags[:4]
    if portion or not single_float or any(flags[4:]) or (not three_d and multi):
        raise refuse(WHAT, "has header flags mzc never writes (a portion, doubles or unknown bits)")
    if not three_d:
        x, y = struct.unpack_from("<II", data, 2)
        geometry(WHAT, (y, x), expected)
        return
    if len(data) < 18:
        raise refuse(WHAT, "is too short for its header")
    x, y, z = struct.unpack_from("<III", data, 2)
    geometry(WHAT, (z, y, x), expected)
    if multi:
        if len(data) < 20:
            raise refuse(WHAT, "is too short for its header")
        cx, cy, cz = struct.unpack_from("<HHH", data, 14)
        if not (cx and cy and cz):
            raise refuse(WHAT, "declares an empty chunk grid")
        n = _segments(x, cx) * _segments(y, cy) * _segments(z, cz)
        start = 20
    else:
        n, start = 1, 14
    if (multi and n < 2) or n > MAX_SEGMENTS or len(data) < start + 4 * n:
        raise refuse(WHAT, f"declares an impossible chunk grid of {n} parts")
    lengths = struct.unpack_from(f"<{n}I", data, start)
    if sum(lengths) != len(data) - start - 4 * n:
        raise refuse(WHAT, "parts do not add up to the stream's length")
