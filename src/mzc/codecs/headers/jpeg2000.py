"""JPEG 2000: the image size in the SIZ marker of the codestream (and the JP2 file's ihdr box), one component,
a sane tile grid, and an end-of-codestream marker (a cut stream is refused, not decoded to a blur)."""
from __future__ import annotations

import math
import struct

from .common import boxes, geometry, refuse

SOC_SIZ = b"\xff\x4f\xff\x51"
EOC = b"\xff\xd9"
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
SIZ_FIELDS = struct.Struct(">HHIIIIIIIIH")  # Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz XTOsiz YTOsiz Csiz
MAX_TILES = 4096
MAX_BITS = 16


def check_codestream(cs, expected: tuple[int, int], what: str) -> None:
    if len(cs) < 4 + SIZ_FIELDS.size + 3 + 2 or bytes(cs[:4]) != SOC_SIZ:
        raise refuse(what, "does not start with a SIZ marker")
    lsiz, _, xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz = SIZ_FIELDS.unpack_from(cs, 4)
    if csiz != 1 or lsiz != 38 + 3 * csiz:
        raise refuse(what, f"declares {csiz} components (a chunk is one grey image)")
    ssiz, xr, yr = cs[42], cs[43], cs[44]
    if xr != 1 or yr != 1 or (ssiz & 0x7F) + 1 > MAX_BITS:
        raise refuse(what, "declares subsampling or more than 16 bits per sample")
    if xo >= xsiz or yo >= ysiz:
        raise refuse(what, "declares an empty image")
    geometry(what, (ysiz - yo, xsiz - xo), expected)
    if not (xt and yt and xto <= xo and yto <= yo and xto + xt > xo and yto + yt > yo):
        raise refuse(what, "declares an impossible tile grid")
    if math.ceil((xsiz - xto) / xt) * math.ceil((ysiz - yto) / yt) > MAX_TILES:
        raise refuse(what, f"declares more than {MAX_TILES} tiles")
    if bytes(cs[-2:]) != EOC:
        raise refuse(what, "is cut short (no end-of-codestream marker)")


def check_htj2k(body, expected: tuple[int, int]) -> None:
    """A bare HTJ2K codestream (what OpenJPH writes and reads)."""
    check_codestream(memoryview(body), expected, "HTJ2K")


def check_j2k(body, expected: tuple[int, int]) -> None:
    """A JP2 file (what imagecodecs writes) or a bare codestream."""
    data = memoryview(body)
    if bytes(data[:4]) == SOC_SIZ:
        check_codestream(data, expected, "JPEG 2000")
        return
    if bytes(data[:12]) != JP2_SIGNATURE:
        raise refuse("JPEG 2000", "is neither a JP2 file nor a codestream")
    found = {}
    for kind, start, end in boxes(data, 12, len(data), "JPEG 2000"):
        if kind in found and kind in (b"jp2h", b"jp2c"):
            raise refuse("JPEG 2000", f"has two {kind.decode()} boxes")
        found[kind] = (start, end)
    if b"jp2h" not in found or b"jp2c" not in found:
        raise refuse("JPEG 2000", "has no header or no codestream box")
    ihdr = [(s, e) for k, s, e in boxes(data, *found[b"jp2h"], "JPEG 2000") if k == b"ihdr"]
    if len(ihdr) != 1 or ihdr[0][1] - ihdr[0][0] < 14:
        raise refuse("JPEG 2000", "has no image header box")
    height, width, components = struct.unpack_from(">IIH", data, ihdr[0][0])
    if components != 1:
        raise refuse("JPEG 2000", f"declares {components} components (a chunk is one grey image)")
    geometry("JPEG 2000", (height, width), expected)
    check_codestream(data[found[b"jp2c"][0]:found[b"jp2c"][1]], expected, "JPEG 2000")
