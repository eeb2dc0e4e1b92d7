"""What the TIFF metadata stored in a header may hold (spec section 7), checked before tifffile writes it.

The map is copied verbatim from the source file, so a forged header can put anything there: a tag code beyond 16
bits, a count that lies about its values, a resolution of 2^64 - 1 or with a zero denominator. Each must be a
one-line error naming the field, not an exception from deep inside struct packing.
"""
from __future__ import annotations

import math

from ..errors import MzcError

U32 = (1 << 32) - 1
RAW_TYPES = (1, 2, 7)  # BYTE, ASCII, UNDEFINED: stored as raw bytes
RANGES = {3: (0, 0xFFFF), 4: (0, U32), 6: (-128, 127), 8: (-32768, 32767), 9: (-(1 << 31), (1 << 31) - 1),
          13: (0, U32), 16: (0, (1 << 64) - 1), 17: (-(1 << 63), (1 << 63) - 1)}
FLOAT_TYPES = (11, 12)
RATIONAL_TYPES = {5: (0, U32), 10: (-(1 << 31), (1 << 31) - 1)}  # two integers per value


def _bad(field: str, why: str) -> MzcError:
    return MzcError(f"corrupt header: TIFF metadata {field} {why}")


def _int(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _check_extratag(entry) -> None:
    if not (isinstance(entry, (list, tuple)) and len(entry) == 4):
        raise _bad("extratags", "entry is not [code, type, count, value]")
    code, kind, count, value = entry
    if not _int(code, 1, 0xFFFF) or not _int(count, 0, U32):
        raise _bad("extratags", f"entry has tag code {code!r} or count {count!r} out of range")
    if kind in RAW_TYPES:
        if not isinstance(value, bytes) or len(value) != count:
            raise _bad("extratags", f"tag {code}: {count} bytes declared, {len(value) if isinstance(value, bytes) else '?'} "
                       "stored")
        return
    per = 2 if kind in RATIONAL_TYPES else 1
    if not isinstance(value, list) or len(value) != per * count:
        raise _bad("extratags", f"tag {code}: the count {count} does not match its values")
    if kind in FLOAT_TYPES:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    elif kind in RANGES or kind in RATIONAL_TYPES:
        lo, hi = RANGES.get(kind) or RATIONAL_TYPES[kind]
        ok = all(_int(v, lo, hi) for v in value)
    else:
        raise _bad("extratags", f"tag {code}: unknown TIFF type {kind!r}")
    if not ok:
        raise _bad("extratags", f"tag {code}: a value is outside its TIFF type")


def check_metadata(meta: dict) -> None:
    """Raise MzcError naming the first field a TIFF writer could not write faithfully."""
    for key in ("description", "software", "datetime", "kind"):
        if key in meta and not isinstance(meta[key], str):
            raise _bad(key, "is not a string")
    for key, (lo, hi) in (("photometric", (0, 0xFFFF)), ("planarconfig", (1, 2)), ("resolutionunit", (1, 3))):
        if key in meta and not _int(meta[key], lo, hi):
            raise _bad(key, f"{meta[key]!r} is out of range")
    if "resolution" in meta:
        res = meta["resolution"]
        if not (isinstance(res, list) and len(res) == 2 and all(isinstance(r, list) and len(r) == 2 for r in res)
                and all(_int(r[0], 0, U32) and _int(r[1], 1, U32) for r in res)):
            raise _bad("resolution", "is not two fractions of 32-bit integers with non-zero denominators")
    if "colormap" in meta:
        cmap = meta["colormap"]
        if not (isinstance(cmap, list) and cmap and len(cmap) % 3 == 0 and all(_int(v, 0, 0xFFFF) for v in cmap)):
            raise _bad("colormap", "is not three rows of 16-bit values")
    if "extrasamples" in meta:
        extra = meta["extrasamples"]
        if not (isinstance(extra, list) and all(_int(v, 0, 2) for v in extra)):
            raise _bad("extrasamples", "holds values other than 0, 1, 2")
    tags = meta.get("extratags", [])
    if not isinstance(tags, list):
        raise _bad("extratags", "is not a list")
    for entry in tags:
        _check_extratag(entry)
