"""What a native stream says about itself, read before its decoder runs (spec section 4.1).

A forged chunk stream that declares 16384 x 16384 pixels makes a decoder allocate gigabytes before mzc could compare
its output with the chunk's shape; each module here reads one format's header (no decoding) and refuses a stream
whose declared geometry differs from the chunk's, or which is cut short, before any decoder sees it.
"""
from __future__ import annotations

from .avif import check_avif
from .jpeg2000 import check_htj2k, check_j2k
from .jpegls import check_jpegls
from .jpegxl import check_jpegxl
from .sperr import check_sperr

__all__ = ["check_avif", "check_htj2k", "check_j2k", "check_jpegls", "check_jpegxl", "check_sperr"]
