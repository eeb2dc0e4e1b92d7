"""JPEG-LS: the frame header (SOF55, or the oversize-dimension LSE segment CharLS writes past 65535), one
component, the sample precision, and an end-of-image marker (CharLS spends seconds on a cut stream)."""
from __future__ import annotations

import struct

from .common import geometry, refuse

WHAT = "JPEG-LS"
SOI, EOI = b"\xff\xd8", b"\xff\xd9"
SOF55, LSE, SOS = 0xF7, 0xF8, 0xDA
OTHER_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG's other SOF markers


def _frame(data) -> tuple[int, int, int, int]:
    """(precision, rows, columns, components) from the markers before the first scan."""
    pos, frame, oversize = 2, None, None
    while True:
        if pos + 4 > len(data) or data[pos] != 0xFF:
            raise refuse(WHAT, "has no scan (bad marker sequence)")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == SOS:
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        seg = data[pos + 4:pos + 2 + length]
        if length < 2 or len(seg) != length - 2:
            raise refuse(WHAT, "has a segment running past its end")
        if marker in OTHER_FRAMES:
            raise refuse(WHAT, "is another kind of JPEG")
        if marker == SOF55:
            if frame is not None or len(seg) < 6 or len(seg) != 6 + 3 * seg[5]:
                raise refuse(WHAT, "has a malformed frame header")
            frame = (seg[0], *struct.unpack_from(">HH", seg, 1), seg[5])
        elif marker == LSE and len(seg) >= 2 and seg[0] == 4:
            wxy = seg[1]
            if wxy not in (2, 3, 4) or len(seg) != 2 + 2 * wxy:
                raise refuse(WHAT, "has a malformed oversize-dimension segment")
            oversize = (int.from_bytes(seg[2:2 + wxy], "big"), int.from_bytes(seg[2 + wxy:2 + 2 * wxy], "big"))
        pos += 2 + length
    if frame is None:
        raise refuse(WHAT, "has no frame header")
    bits, rows, cols, components = frame
    if (rows == 0 or cols == 0) and oversize is not None:
        rows, cols = rows or oversize[0], cols or oversize[1]
    return bits, rows, cols, components


def check_jpegls(body, expected: tuple[int, int], max_bits: int = 16) -> None:
    data = memoryview(body)
    if bytes(data[:2]) != SOI:
        raise refuse(WHAT, "does not start with a JPEG marker")
    if bytes(data[-2:]) != EOI:
        raise refuse(WHAT, "is cut short (no end-of-image marker)")
    bits, rows, cols, components = _frame(data)
    if components != 1:
        raise refuse(WHAT, f"declares {components} components (a chunk is one grey image)")
    if not 2 <= bits <= max_bits:
        raise refuse(WHAT, f"declares {bits}-bit samples (at most {max_bits} here)")
    geometry(WHAT, (rows, cols), expected)
