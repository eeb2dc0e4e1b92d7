"""JPEG XL: the size header and the start of the image metadata of the codestream. Animation,
previews, extra channels and orientations other than identity are refused: each multiplies what a decoder
allocates beyond the chunk."""
from __future__ import annotations

from .common import Bits, boxes, geometry, refuse

WHAT = "JPEG XL"
SIGNATURE = b"\xff\x0a"
CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
DIMENSION = ((1, 9), (1, 13), (1, 18), (1, 30))
RATIOS = {1: (1, 1), 2: (6, 5), 3: (4, 3), 4: (3, 2), 5: (16, 9), 6: (5, 4), 7: (2, 1)}


def size_header(bits: Bits) -> tuple[int, int]:
    """(height, width) as coded in a SizeHeader."""
    small = bits.u(1)
    height = (bits.u(5) + 1) * 8 if small else bits.u32(*DIMENSION)
    ratio = bits.u(3)
    if ratio == 0:
        width = (bits.u(5) + 1) * 8 if small else bits.u32(*DIMENSION)
    else:
        num, den = RATIOS[ratio]
        width = height * num // den
    return height, width


def codestream(data):
    """The codestream: the data itself, or the one jxlc box of a container (libjxl writes one for 16-bit
    lossless images, to state their level)."""
    if bytes(data[:2]) == SIGNATURE:
        return data
    if bytes(data[:12]) != CONTAINER:
        raise refuse(WHAT, "is neither a JPEG XL codestream nor a container")
    found = [(kind, s, e) for kind, s, e in boxes(data, 12, len(data), WHAT)]
    streams = [(s, e) for kind, s, e in found if kind == b"jxlc"]
    if len(streams) != 1 or any(kind in (b"jxlp", b"brob") for kind, _, _ in found):
        raise refuse(WHAT, "container must hold exactly one whole codestream")
    data = data[streams[0][0]:streams[0][1]]
    if bytes(data[:2]) != SIGNATURE:
        raise refuse(WHAT, "container holds no codestream")
    return data


def check_jpegxl(body, expected: tuple[int, int]) -> None:
    data = codestream(memoryview(body))
    bits = Bits(data, WHAT, start=2)
    geometry(WHAT, size_header(bits), expected)
    if bits.u(1):  # all_default metadata: 8-bit, no extra channels, no animation
        return
    if bits.u(1):  # extra_fields
        if bits.u(3) != 0:
            raise refuse(WHAT, "declares a rotated or mirrored orientation")
        if bits.u(1):
            size_header(bits)  # intrinsic size: a display hint
        if bits.u(1) or bits.u(1):
            raise refuse(WHAT, "declares a preview or an animation")
    if bits.u(1):  # float samples
        bits.u32((32, 0), (16, 0), (24, 0), (1, 6))
        bits.u(4)
    else:
        bits.u32((8, 0), (10, 0), (12, 0), (1, 6))
    bits.u(1)  # modular_16bit_buffers
    if bits.u32((0, 0), (1, 0), (2, 4), (1, 12)):
        raise refuse(WHAT, "declares extra channels")
