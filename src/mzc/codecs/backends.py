"""Lossless back ends for 8/16-bit 2-D images, chosen per chunk by measurement (spec 6, 6.4, 6.5).

The exact codec and the index images of the bounded codecs code each chunk with every back end of their effort
and keep the smallest; the chunk's `p.b` names the winner. `fast` (the default) is mzc's context coder (it won all
but a few chunks of the evaluation data against JPEG-LS, benchmarks/results/backends.md; since it runs compiled,
trying JPEG-LS as well would cost a third of its time), plus JPEG-LS where the context coder codes below
SPARSE_BITS per pixel and for chunks over its pixel cap. `fastest` is HTJ2K reversible on 16-bit images (JPEG-LS on
8-bit ones): on 26 real planes 2.2x JPEG-LS's encode speed and 3.1x its decode speed at 0.943x its ratio (JPEG XL
effort 1: 2.7x / 1.8x at 0.938x), for archives where time matters more than bytes. `max` also tries JPEG-LS,
JPEG 2000 and HTJ2K (reversible) and JPEG XL (effort 7).

The context coder is imported on first use: it brings numba, which `mzc --version` or `mzc info` need not load.
"""
from __future__ import annotations

import imagecodecs
import numpy as np

from ..errors import MzcError
from . import native
from .context.stream import MAX_PIXELS as CTX_MAX_PIXELS

JXL_EFFORT = 7
CONTEXT = "ctx"
EFFORTS = {"fastest": ("jpeg2k-ht",), "fast": (CONTEXT,), "max": (CONTEXT, "jpegls", "jpeg2k", "jpeg2k-ht", "jpegxl")}
# `fastest` on 8-bit images: HTJ2K lost 21% to JPEG-LS on the 8-bit movie, and JPEG-LS is fast on bytes
FASTEST_8_BIT = ("jpegls",)
NAMES = frozenset(EFFORTS["max"])
FALLBACK = "jpegls"  # for chunks no back end of the effort takes (the context coder's pixel cap)
# below this many bits per pixel (index images of --noise / --max-error, sparse planes) `fast` also tries JPEG-LS,
# whose run mode won such images by up to 30% (foci2d --noise 2: 15.6x against the context coder's 12.0x)
SPARSE_BITS = 3.0


def encode(name: str, image: np.ndarray) -> bytes:
    """One back end's stream of a 2-D uint8/uint16 image (at least 2 x 2)."""
    if name == CONTEXT:
        from .context.coder import encode_image
        return encode_image(image)
    if name == "jpegls":
        return imagecodecs.jpegls_encode(image)
    if name == "jpeg2k":
        return imagecodecs.jpeg2k_encode(image, level=0, codecformat="J2K", reversible=True, numthreads=1)
    if name == "jpeg2k-ht":
        return imagecodecs.htj2k_encode(image, reversible=True)
    if name == "jpegxl":
        return imagecodecs.jpegxl_encode(image, lossless=True, effort=JXL_EFFORT, numthreads=1)
    raise ValueError(f"unknown image back end {name!r}")


def decode(name: str, body, image: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """The 2-D image of a stream; its shape and dtype are checked by the caller. A bad stream raises MzcError."""
    dtype = np.dtype(dtype)
    if name == CONTEXT:
        from .context.coder import decode_image
        return decode_image(body, image, int(np.iinfo(dtype).max)).astype(dtype, copy=False)
    bits = native.bits_of(dtype)
    if name == "jpegls":
        return native.jpegls_decode(body, image, bits)
    if name == "jpeg2k":
        return native.jpeg2k_decode(body, image)
    if name == "jpeg2k-ht":
        return native.htj2k_decode(body, image)
    if name == "jpegxl":
        return native.jpegxl_decode(body, image)
    raise MzcError(f"corrupt chunk: unknown image back end {name!r}")


def smallest(image: np.ndarray, effort: str = "fast") -> tuple[bytes, str]:
    """The shortest stream among the effort's back ends (the first listed wins a tie); `fast` adds JPEG-LS for
    images the context coder puts below SPARSE_BITS per pixel. The context coder takes images of at most 2^23
    pixels; larger ones get JPEG-LS."""
    best = None
    for name in FASTEST_8_BIT if effort == "fastest" and image.dtype.itemsize == 1 else EFFORTS[effort]:
        if name == CONTEXT and image.size > CTX_MAX_PIXELS:
            continue
        body = encode(name, image)
        if best is None or len(body) < len(best[0]):
            best = (body, name)
    if best is None:
        return encode(FALLBACK, image), FALLBACK
    if effort == "fast" and 8 * len(best[0]) < SPARSE_BITS * image.size:  # JPEG-LS's run mode can win there
        body = encode("jpegls", image)
        best = (body, "jpegls") if len(body) < len(best[0]) else best
    return best


def self_checked(name: str) -> bool:
    """Whether the back end's encoder checks its own stream (the context coder replays its words against the
    symbols it meant, coder._check): a caller need not decode the chunk back to know it round-trips."""
    return name == CONTEXT


def native_stream(name: str) -> bool:
    """Whether decoding runs a C library on the stream (the context coder is numpy and constriction's Rust)."""
    return name != CONTEXT
