"""Bit-exact coding: per chunk, try a few fast back ends and keep the smallest (spec section 6, id `lossless`).

No single back end wins everywhere: JPEG-LS's context modelling is best on smooth fluorescence, the shuffled-delta
zstd stream on sparse, noisy or non-image data, and any dtype JPEG-LS cannot take (int16, uint32, float32).
"""
from __future__ import annotations

import imagecodecs
import numpy as np
import zstandard

from ..errors import MzcError
from .base import Codec, as_planes, checked, register

ZSTD_LEVEL = 3
IMAGE_DTYPES = frozenset({"|u1", "<u2"})


def _uint_view(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"<u{a.dtype.itemsize}") if a.dtype.itemsize > 1 else a.view(np.uint8)


def delta_shuffle(a: np.ndarray) -> bytes:
    """Row-wise wrap-around difference, then byte shuffle: exposes the low-entropy bytes to zstd."""
    u = _uint_view(a).reshape(-1, a.shape[-1] if a.ndim else 1)
    d = np.empty_like(u)
    d[:, 0] = u[:, 0]
    np.subtract(u[:, 1:], u[:, :-1], out=d[:, 1:])
    return np.ascontiguousarray(d.reshape(-1).view(np.uint8).reshape(-1, a.dtype.itemsize).T).tobytes()


def undelta_unshuffle(data: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.frombuffer(data, np.uint8)
    if raw.size != count * dtype.itemsize:
        raise MzcError("corrupt chunk: zstd-delta size mismatch")
    u = raw.reshape(dtype.itemsize, count).T.copy().view(f"<u{dtype.itemsize}" if dtype.itemsize > 1 else np.uint8)
    u = u.reshape(-1, shape[-1] if len(shape) else 1)
    np.cumsum(u, axis=1, dtype=u.dtype, out=u)
    return u.reshape(-1).view(dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(shape)


def zstd_compress(data: bytes, level: int) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(data)


def zstd_decompress(data: bytes | memoryview, expected: int) -> bytes:
    try:
        out = zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=expected)
    except zstandard.ZstdError as exc:
        raise MzcError(f"corrupt chunk: zstd: {exc}") from None
    if len(out) != expected:
        raise MzcError("corrupt chunk: zstd size mismatch")
    return out


def encode_backend(name: str, block: np.ndarray, level: int = ZSTD_LEVEL) -> bytes:
    """Code a block with one named back end (shared with the near-lossless codec)."""
    le = block.astype(block.dtype.newbyteorder("<"), copy=False)
    if name == "raw":
        return le.tobytes()
    if name == "zstd":
        return zstd_compress(le.tobytes(), level)
    if name == "zstd-delta":
        return zstd_compress(delta_shuffle(le), level)
    if name == "jpegls":
        return imagecodecs.jpegls_encode(as_planes(block))
    if name == "jpegxl":
        return imagecodecs.jpegxl_encode(as_planes(block), lossless=True, effort=7, numthreads=1)
    raise ValueError(f"unknown lossless back end {name!r}")


def decode_backend(name: str, body, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    expected = int(np.prod(shape)) * dtype.itemsize
    try:
        if name == "raw":
            if len(body) != expected:
                raise MzcError("corrupt chunk: raw size mismatch")
            out = np.frombuffer(body, dtype.newbyteorder("<")).astype(dtype)
        elif name == "zstd":
            out = np.frombuffer(zstd_decompress(body, expected), dtype.newbyteorder("<")).astype(dtype)
        elif name == "zstd-delta":
            out = undelta_unshuffle(zstd_decompress(body, expected), shape, dtype)
        elif name == "jpegls":
            out = imagecodecs.jpegls_decode(bytes(body))
        elif name == "jpegxl":
            out = imagecodecs.jpegxl_decode(bytes(body), numthreads=1)
        else:
            raise MzcError(f"corrupt chunk: unknown lossless back end {name!r}")
    except MzcError:
        raise
    except Exception as exc:  # codec libraries raise their own error types on bad streams
        raise MzcError(f"corrupt chunk: {name} decoder failed ({exc})") from None
    return checked(out, shape, dtype, name)


def default_backends(dtype: np.dtype) -> list[str]:
    if np.dtype(dtype).str in IMAGE_DTYPES:
        return ["jpegls", "zstd-delta"]
    return ["zstd-delta", "zstd"]


@register
class Lossless(Codec):
    id = "lossless"
    lossless = True
    dtypes = frozenset({"|u1", "<u2", "<i2", "<u4", "<f4"})

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        names = self._config.get("backends") or default_backends(block.dtype)
        best_name, best = "raw", encode_backend("raw", block)
        for name in names:
            if name in ("jpegls", "jpegxl") and (block.dtype.str not in IMAGE_DTYPES or min(as_planes(block).shape) < 2):
                continue
            body = encode_backend(name, block, self._config.get("level", ZSTD_LEVEL))
            if len(body) < len(best):
                best_name, best = name, body
        return best, {"b": best_name}

    def decode(self, body, shape, dtype, params):
        return decode_backend(params.get("b", "raw"), body, shape, dtype)
