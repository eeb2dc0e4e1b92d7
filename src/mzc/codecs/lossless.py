"""Bit-exact coding (spec section 6, id `lossless`).

8/16-bit chunks are coded by the image back ends of backends.py, the smallest kept per chunk: mzc's context coder
(spec 6.5) by default, HTJ2K reversible with `--effort fastest` (JPEG-LS on 8-bit data), all of them and JPEG-LS,
JPEG 2000 and JPEG XL with `--effort max`
(benchmarks/results/backends.md). Data that use few of the values in their range, evenly spread (stretched or
quantized stacks), are first mapped to value ranks, which the image coders then code far better. Other dtypes
(int16, uint32, float32) and degenerate shapes take zigzag-delta + byte shuffle + zstd.
"""
from __future__ import annotations

import numpy as np
import zstandard

from ..errors import MzcError
from . import backends, native
from .base import ALL_DTYPES, Codec, Exact, Prepared, SelfChecked, as_planes, checked, from_raw, planes_shape
from .registry import register

ZSTD_LEVEL = 3
IMAGE_DTYPES = frozenset({"|u1", "<u2"})


def _uint_view(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(f"<u{a.dtype.itemsize}") if a.dtype.itemsize > 1 else a.view(np.uint8)


def delta_shuffle(a: np.ndarray) -> bytes:
    """Row-wise wrap-around difference, zigzag, then byte shuffle: small residuals become low bytes for zstd."""
    u = _uint_view(a).reshape(-1, a.shape[-1] if a.ndim else 1)
    d = np.empty_like(u)
    d[:, 0] = u[:, 0]
    np.subtract(u[:, 1:], u[:, :-1], out=d[:, 1:])
    bits = 8 * a.dtype.itemsize
    d = (d << 1) ^ (0 - (d >> (bits - 1)))  # zigzag on the wrapped two's-complement difference
    return np.ascontiguousarray(d.reshape(-1).view(np.uint8).reshape(-1, a.dtype.itemsize).T).tobytes()


def undelta_unshuffle(data: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    raw = np.frombuffer(data, np.uint8)
    if raw.size != count * dtype.itemsize:
        raise MzcError("corrupt chunk: zstd-delta size mismatch")
    u = raw.reshape(dtype.itemsize, count).T.copy().view(f"<u{dtype.itemsize}" if dtype.itemsize > 1 else np.uint8)
    u = u.reshape(-1, shape[-1] if len(shape) else 1)
    u = (u >> 1) ^ (0 - (u & 1))  # undo zigzag
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
    """Code a block with one of the byte-stream back ends (raw, zstd-delta)."""
    le = block.astype(block.dtype.newbyteorder("<"), copy=False)
    if name == "raw":
        return le.tobytes()
    if name == "zstd-delta":
        return zstd_compress(delta_shuffle(le), level)
    raise ValueError(f"unknown lossless back end {name!r}")


def decode_backend(name: str, body, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    expected = int(np.prod(shape)) * dtype.itemsize
    try:
        if name == "raw":
            out = from_raw(body, shape, dtype, name)
        elif name == "zstd-delta":
            out = undelta_unshuffle(zstd_decompress(body, expected), shape, dtype)
        elif name == "jpegls":
            out = native.jpegls_decode(body, planes_shape(shape), native.bits_of(dtype))
        elif name in backends.NAMES:
            out = backends.decode(name, body, planes_shape(shape), dtype)
        else:
            raise MzcError(f"corrupt chunk: unknown lossless back end {name!r}")
    except MzcError:
        raise
    except Exception as exc:  # noqa: BLE001 - codec libraries raise their own error types on bad streams
        raise MzcError(f"corrupt chunk: {name} decoder failed ({exc})") from None
    return checked(out, shape, dtype, name)


RANK_STEP = 1 << 18  # elements mapped from rank to value at a time
RANK_FRACTION = 0.6  # map to ranks when fewer than this fraction of the values in [min, max] occur ...
RANK_GAP = 2  # ... and the typical step between occurring values is at least this


def rank_table(min_value: float, present: np.ndarray | None) -> np.ndarray | None:
    """Sorted values that occur, when they are few compared with the range they span and spread through it (else
    None). Values that are merely sparse in a tail (median step 1) gain nothing from ranks that pays for the table:
    on a 3-channel 12-bit file the table cost 3,816 bytes to save 314 (benchmarks/results/backends.md)."""
    if present is None or present.size < 4 or present.sum() >= RANK_FRACTION * present.size:
        return None
    values = np.flatnonzero(present)
    if values.size < 2 or np.median(np.diff(values)) < RANK_GAP:
        return None
    return values + int(min_value)


@register
class Lossless(Exact, Prepared, SelfChecked, Codec):
    id = "lossless"
    what = "bit-exact: mzc's context coder (8/16-bit), zigzag-delta + zstd (other dtypes)"
    dtypes = ALL_DTYPES

    def __init__(self, **config):
        super().__init__(**config)
        table = config.get("ranks")
        self._table = None if table is None else np.frombuffer(table, "<u2").astype(np.int64)
        if self._table is not None:
            if self._table.size == 0 or np.any(np.diff(self._table) <= 0):
                raise MzcError("corrupt header: rank table is not strictly increasing")
            self._lookup = np.zeros(int(self._table[-1] - self._table[0]) + 1, np.uint16)
            self._lookup[self._table - self._table[0]] = np.arange(self._table.size, dtype=np.uint16)

    @classmethod
    def bench_points(cls, ratios):
        return [("default", {"lossless": True})]

    @classmethod
    def for_effort(cls, effort: str) -> "Lossless":
        return cls(effort=effort) if effort != "fast" else cls()

    @property
    def effort(self) -> str:
        effort = self._config.get("effort", "fast")
        return effort if effort in backends.EFFORTS else "fast"  # decoding does not depend on it

    def prepare(self, stats) -> "Codec":
        table = rank_table(stats.min, stats.present)
        if table is None:
            return self
        return Lossless(**dict(self._config, ranks=table.astype("<u2").tobytes()))

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        return self.encode_checked(block)[:2]

    def encode_checked(self, block: np.ndarray) -> tuple[bytes, dict, np.ndarray | None]:
        """The chunk, and the block itself when its back end checked its own stream (the context coder) and, with a
        rank table, the ranks map back to exactly these values."""
        body, params = self._encode(block)
        if not backends.self_checked(params["b"]):
            return body, params, None
        if params.get("r") and not np.array_equal(self._table[self._lookup[block.astype(np.int64) - self._table[0]]],
                                                  block):
            raise MzcError("internal error: a value of the chunk is missing from the file's rank table")
        return body, params, block

    def _encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        if block.dtype.str in IMAGE_DTYPES and min(as_planes(block).shape) >= 2:
            if self._table is not None:
                ranks = self._lookup[block.astype(np.int64) - self._table[0]].astype(block.dtype)
                body, name = backends.smallest(as_planes(ranks), self.effort)
                return body, {"b": name, "r": 1}
            body, name = backends.smallest(as_planes(block), self.effort)
            params = {"b": name}
        else:
            body, params = encode_backend("zstd-delta", block), {"b": "zstd-delta"}
        if len(body) >= block.nbytes:
            return encode_backend("raw", block), {"b": "raw"}
        return body, params

    def native_chunk(self, params: dict) -> bool:
        # raw and zstd-delta (zstd bounded by the chunk's size) decode here, and the context coder (numpy and Rust)
        name = params.get("b")
        return isinstance(name, str) and name in backends.NAMES and backends.native_stream(name)

    def decode(self, body, shape, dtype, params):
        out = decode_backend(params.get("b", "raw"), body, shape, dtype)
        if not params.get("r"):
            return out
        if self._table is None or (out.size and int(out.max()) >= self._table.size):
            raise MzcError("corrupt chunk: rank beyond the file's value table")
        if out.dtype != np.dtype(dtype) or not out.flags.writeable or not out.flags.c_contiguous:
            return self._table.astype(dtype)[out]
        table, flat = self._table.astype(dtype), out.reshape(-1)
        for start in range(0, flat.size, RANK_STEP):  # ranks become values in place (a 2^28-pixel chunk: no copy)
            part = flat[start:start + RANK_STEP]
            np.take(table, part, out=part, mode="clip")
        return out
