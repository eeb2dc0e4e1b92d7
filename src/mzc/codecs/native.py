"""Every call of a native image decoder on a file's bytes, guarded: the stream's own header is checked against the
chunk first (headers/), and a decoder that reports an error in any way fails the chunk.

"In any way": an exception, or an exception the library's callback could only print as "Exception ignored"
(OpenJPH does that on a damaged HTJ2K stream and returns an image of zeros). Such reports are caught here through
sys.unraisablehook; what a decoder prints on the process's stderr is caught by the sandbox that runs it (sandbox/).
"""
from __future__ import annotations

import contextlib
import sys

import imagecodecs
import numpy as np

from ..errors import MzcError
from .headers import check_avif, check_htj2k, check_j2k, check_jpegls, check_jpegxl, check_sperr


@contextlib.contextmanager
def guarded(what: str):
    """Turn a decoder's exception, or one it could only report as ignored, into one corrupt-chunk MzcError."""
    ignored: list[str] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda u: ignored.append(f"{type(u.exc_value).__name__}: {u.exc_value}")
    try:
        yield
    except MzcError:
        raise
    except Exception as exc:  # noqa: BLE001 - each library has its own error types for a bad stream
        raise MzcError(f"corrupt chunk: {what} decoder failed ({type(exc).__name__}: {exc})") from None
    finally:
        sys.unraisablehook = previous
    if ignored:
        raise MzcError(f"corrupt chunk: {what} decoder reported an error ({ignored[0][:200]})")


def jpegls_decode(body, image: tuple[int, int], bits: int) -> np.ndarray:
    check_jpegls(body, image, bits)
    with guarded("JPEG-LS"):
        return imagecodecs.jpegls_decode(bytes(body))


def jpeg2k_decode(body, image: tuple[int, int]) -> np.ndarray:
    check_j2k(body, image)
    with guarded("JPEG 2000"):
        return imagecodecs.jpeg2k_decode(bytes(body), numthreads=1)


def htj2k_decode(body, image: tuple[int, int]) -> np.ndarray:
    check_htj2k(body, image)
    with guarded("HTJ2K"):
        return imagecodecs.htj2k_decode(bytes(body))


def jpegxl_decode(body, image: tuple[int, int]) -> np.ndarray:
    check_jpegxl(body, image)
    with guarded("JPEG XL"):
        return imagecodecs.jpegxl_decode(bytes(body), numthreads=1)


def avif_decode(body, image: tuple[int, int]) -> np.ndarray:
    check_avif(body, image)
    with guarded("AVIF"):
        return imagecodecs.avif_decode(bytes(body), numthreads=1)


def sperr_decode(body, core: tuple[int, ...]) -> np.ndarray:
    """`core`: the chunk without its axes of length 1, (rows, columns) or (planes, rows, columns)."""
    check_sperr(body, core)
    with guarded("SPERR"):
        return imagecodecs.sperr_decode(bytes(body), numthreads=1)


def bits_of(dtype: np.dtype) -> int:
    """The sample precision a stream for this dtype may declare."""
    return 8 * np.dtype(dtype).itemsize
