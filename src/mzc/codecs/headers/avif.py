"""AVIF: one AV1 image item, the size its ispe property declares and the maximum frame size in the AV1 sequence
header of the item's data (located through iloc), both equal to the chunk's."""
from __future__ import annotations

import struct

from .common import Bits, boxes, geometry, refuse

WHAT = "AVIF"
OBU_SEQUENCE_HEADER = 1


def _children(data, box: tuple[int, int], full: bool) -> dict[bytes, list[tuple[int, int]]]:
    start, end = box
    out: dict[bytes, list[tuple[int, int]]] = {}
    for kind, s, e in boxes(data, start + (4 if full else 0), end, WHAT):
        out.setdefault(kind, []).append((s, e))
    return out


def _one(found: dict, kind: bytes) -> tuple[int, int]:
    if len(found.get(kind, [])) != 1:
        raise refuse(WHAT, f"needs exactly one {kind.decode('latin1')} box")
    return found[kind][0]


def _item_type(data, iinf: tuple[int, int]) -> None:
    version = data[iinf[0]]
    count = struct.unpack_from(">H" if version == 0 else ">I", data, iinf[0] + 4)[0]
    infe = [(s, e) for k, s, e in boxes(data, iinf[0] + (6 if version == 0 else 8), iinf[1], WHAT) if k == b"infe"]
    if count != 1 or len(infe) != 1 or data[infe[0][0]] < 2:
        raise refuse(WHAT, "must hold exactly one image item")
    s = infe[0][0]
    kind = bytes(data[s + 8:s + 12]) if data[s] == 2 else bytes(data[s + 10:s + 14])
    if kind != b"av01":
        raise refuse(WHAT, f"holds a {kind!r} item, not one AV1 image")


def _item_extent(data, iloc: tuple[int, int]) -> tuple[int, int]:
    """(offset, length) in the file of the one item's one extent."""
    s, e = iloc
    version = data[s]
    sizes = data[s + 4] >> 4, data[s + 4] & 15, data[s + 5] >> 4, (data[s + 5] & 15) if version else 0
    pos = s + 6

    def take(n: int) -> int:
        nonlocal pos
        if n not in (0, 2, 4, 8) or pos + n > e:
            raise refuse(WHAT, "has a malformed item location box")
        value = int.from_bytes(data[pos:pos + n], "big") if n else 0
        pos += n
        return value

    if take(2 if version < 2 else 4) != 1:
        raise refuse(WHAT, "must locate exactly one item")
    take(2 if version < 2 else 4)  # item id
    if version in (1, 2) and take(2) & 15:
        raise refuse(WHAT, "locates its item by reference, not by file offset")
    take(2)  # data reference index
    base = take(sizes[2])
    if take(2) != 1:
        raise refuse(WHAT, "must store its item in one extent")
    take(sizes[3])
    offset = base + take(sizes[0])
    length = take(sizes[1])
    if offset + length > len(data) or length < 2:
        raise refuse(WHAT, "locates its item outside the file")
    return offset, length


def _sequence_size(data, start: int, length: int) -> tuple[int, int]:
    """(rows, columns) of the AV1 sequence header among the item's OBUs; a still-picture header is required."""
    pos, end = start, start + length
    while pos < end:
        head = data[pos]
        kind, extension, has_size = (head >> 3) & 15, (head >> 2) & 1, (head >> 1) & 1
        pos += 1 + extension
        size = end - pos
        if has_size:
            size, shift = 0, 0
            while True:
                if pos >= end or shift > 56:
                    raise refuse(WHAT, "has a malformed AV1 unit")
                size |= (data[pos] & 0x7F) << shift
                shift += 7
                pos += 1
                if not data[pos - 1] & 0x80:
                    break
        if kind == OBU_SEQUENCE_HEADER:
            bits = Bits(data[pos:min(pos + size, end)], WHAT, msb_first=True)
            bits.u(3)  # profile
            if not bits.u(1) or not bits.u(1):
                raise refuse(WHAT, "is not a reduced still-picture AV1 stream")
            bits.u(5)  # level
            width_bits, height_bits = bits.u(4) + 1, bits.u(4) + 1
            width = bits.u(width_bits) + 1
            return bits.u(height_bits) + 1, width
        pos += size
    raise refuse(WHAT, "has no AV1 sequence header")


def check_avif(body, expected: tuple[int, int]) -> None:
    data = memoryview(body)
    top = _children(data, (0, len(data)), full=False)
    if b"moov" in top or b"ftyp" not in top:
        raise refuse(WHAT, "is not a still AVIF image")
    meta = _children(data, _one(top, b"meta"), full=True)
    _item_type(data, _one(meta, b"iinf"))
    ipco = _children(data, _one(_children(data, _one(meta, b"iprp"), full=False), b"ipco"), full=False)
    sizes = {struct.unpack_from(">II", data, s + 4) for s, e in ipco.get(b"ispe", []) if e - s >= 12}
    if len(sizes) != 1 or len(ipco.get(b"ispe", [])) != 1:
        raise refuse(WHAT, "needs exactly one image size property")
    width, height = sizes.pop()
    geometry(WHAT, (height, width), expected)
    geometry(WHAT, _sequence_size(data, *_item_extent(data, _one(meta, b"iloc"))), expected)
