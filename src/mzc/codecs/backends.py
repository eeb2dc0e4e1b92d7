"""Lossless back ends for 8/16-bit 2-D images, chosen per chunk by measurement (spec 6, 6.4, 6.5).

The exact codec and the index images of the bounded codecs code each chunk with every back end of their effort
and keep the smallest; the chunk's `p.b` names the winner. `fast` (the default) tries mzc's context coder and
JPEG-LS: on the evaluation data the context coder won all but a few chunks (benchmarks/results/backends.md), and
JPEG-LS costs a quarter of its time. `fastest` is JPEG-LS alone (about 10x faster, 3-7% larger files: for
archives where time matters more than bytes). `max` also tries JPEG 2000 and HTJ2K (reversible) and JPEG XL (effort 7).
"""
from __future__ import annotations

import imagecodecs
import numpy as np

from ..errors import MzcError
from . import native
from .context.coder import MAX_PIXELS as CTX_MAX_PIXELS
from .context.coder import decode_image as ctx_decode
from .context.coder import encode_image as ctx_encode

JXL_EFFORT = 7
CONTEXT = "ctx"
EFFORTS = {"fastest": ("jpegls",), "fast": (CONTEXT, "jpegls"), "max": (CONTEXT, "jpegls", "jpeg2k", "jpeg2k-ht", "jpegxl")}
NAMES = frozenset(EFFORTS["max"])


def encode(name: str, image: np.ndarray) -> bytes:
    """One back end's stream of a 2-D uint8/uint16 image (at least 2 x 2)."""
    if name == CONTEXT:
        return ctx_encode(image)
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
        return ctx_decode(body, image, int(np.iinfo(dtype).max)).astype(dtype)
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
    """The shortest stream among the effort's back ends (the first listed wins a tie). The context coder takes
    images of at most 2^23 pixels (its working memory grows with the image)."""
    best = None
    for name in EFFORTS[effort]:
        if name == CONTEXT and image.size > CTX_MAX_PIXELS:
            continue
        body = encode(name, image)
        if best is None or len(body) < len(best[0]):
            best = (body, name)
    return best


def native_stream(name: str) -> bool:
    """Whether decoding runs a C library on the stream (the context coder is numpy and constriction's Rust)."""
    return name != CONTEXT
