"""Shared by the header readers: one error wording, ISO box walking, a bit reader."""
from __future__ import annotations

import struct
from typing import Iterator

from ...errors import MzcError


def refuse(what: str, detail: str) -> MzcError:
    return MzcError(f"corrupt chunk: the {what} stream {detail}")


def geometry(what: str, declared: tuple[int, ...], expected: tuple[int, ...]) -> None:
    """Declared and expected sizes, both slowest axis first (rows, columns)."""
    if tuple(declared) != tuple(expected):
        shown = "x".join(map(str, declared))
        raise refuse(what, f"declares {shown} pixels, but the chunk is {'x'.join(map(str, expected))}")


def boxes(data, start: int, end: int, what: str) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each ISO base media box in data[start:end] (JP2, AVIF)."""
    pos = start
    while pos < end:
        if end - pos < 8:
            raise refuse(what, "has a truncated box")
        length, kind = struct.unpack_from(">I4s", data, pos)
        head = 8
        if length == 1:
            if end - pos < 16:
                raise refuse(what, "has a truncated box")
            length, head = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif length == 0:
            length = end - pos
        if length < head or pos + length > end:
            raise refuse(what, f"has a box {kind!r} of impossible length {length}")
        yield kind, pos + head, pos + length
        pos += length


class Bits:
    """Reads unsigned fields from a byte string, least (JPEG XL) or most (AV1) significant bit first."""

    def __init__(self, data, what: str, start: int = 0, msb_first: bool = False):
        self.data, self.what, self.pos, self.msb = data, what, start * 8, msb_first

    def u(self, n: int) -> int:
        value = 0
        for k in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise refuse(self.what, "header is cut short")
            shift = 7 - (self.pos & 7) if self.msb else self.pos & 7
            bit = (self.data[byte] >> shift) & 1
            value = (value << 1) | bit if self.msb else value | (bit << k)
            self.pos += 1
        return value

    def u32(self, *choices: tuple[int, int]) -> int:
        """JPEG XL's U32: a 2-bit selector, then that choice's (offset, bits)."""
        offset, bits = choices[self.u(2)]
        return offset + self.u(bits)
