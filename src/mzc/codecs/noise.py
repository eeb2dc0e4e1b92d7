"""Within-noise coding (id `noise`): every pixel within K sigma of the original, sigma from the noise model.

The chunk is mapped to bin indices (quantizer.py: the exact integer form of uniform quantization with step 2K in
the Anscombe domain) and the index image is coded losslessly by the smallest of the image back ends of its effort
(backends.py): mzc's context coder, whose fractional predictions suit these low-entropy images, and JPEG-LS by
default; `--effort max` also tries JPEG 2000 / HTJ2K reversible and JPEG XL effort 7
(benchmarks/results/backends.md).
"""
from __future__ import annotations

import numpy as np

from ..bounds.bound import Bound, channel_of
from ..errors import MzcError
from . import backends, native
from .base import Codec, NoiseCoder, PerChunk, SelfChecked, as_planes, checked, planes_shape
from .lossless import decode_backend, encode_backend, zstd_compress, zstd_decompress
from .registry import register

EFFORTS = tuple(backends.EFFORTS)


def encode_indices(idx: np.ndarray, effort: str = "fast") -> tuple[bytes, dict]:
    """Code an integer image losslessly: shifted to start at 0, as uint8/uint16, by the smallest image back end of
    the effort; zstd-delta for shapes and ranges the image coders do not take."""
    offset = int(idx.min()) if idx.size else 0
    u = idx.astype(np.int64) - offset
    top = int(u.max()) if u.size else 0
    dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32
    u = u.astype(dtype)
    params = {"o": offset, "t": np.dtype(dtype).itemsize}
    if dtype == np.uint32 or min(as_planes(u).shape) < 2:
        return encode_backend("zstd-delta", u), dict(params, b="zstd-delta")
    if top == 0:
        return b"", dict(params, b="zero")
    body, name = backends.smallest(as_planes(u), effort if effort in backends.EFFORTS else "fast")
    return body, dict(params, b=name)


def decode_indices(body, shape: tuple[int, ...], params: dict) -> np.ndarray:
    size = params.get("t")
    if size not in (1, 2, 4) or not isinstance(params.get("o"), int):
        raise MzcError("corrupt chunk: bad index image parameters")
    dtype = np.dtype({1: "u1", 2: "<u2", 4: "<u4"}[size])
    name = params.get("b")
    if name == "zero":
        if len(body):
            raise MzcError("corrupt chunk: zero index image with a body")
        u = np.zeros(shape, dtype)
    elif name == "jpegxl":
        u = checked(native.jpegxl_decode(body, planes_shape(shape)), shape, dtype, "jpegxl")
    elif name in ("jpegls", "zstd-delta"):
        u = decode_backend(name, body, shape, dtype)
    elif name in backends.NAMES:
        u = checked(backends.decode(name, body, planes_shape(shape), dtype), shape, dtype, name)
    else:
        raise MzcError(f"corrupt chunk: unknown index back end {name!r}")
    return u.astype(np.int64) + params["o"]


def encode_ends(block: np.ndarray, decoded: np.ndarray, lo: int, hi: int) -> bytes:
    """Where a coder that is not exact at the range's ends (JPEG-LS near-lossless) moved a pixel off lo or hi: a zstd
    map (0 keep, 1 lo, 2 hi) that puts it back, so saturated pixels stay saturated. Empty when nothing moved. A
    constant chunk (lo == hi) marks its pixels 1 only: a pixel is never both."""
    marks = np.where((block == lo) & (decoded != lo), 1, 0)
    if hi != lo:
        marks += np.where((block == hi) & (decoded != hi), 2, 0)
    if not marks.any():
        return b""
    return zstd_compress(marks.astype(np.uint8).tobytes(), 19)


def apply_ends(decoded: np.ndarray, body, lo: int, hi: int) -> np.ndarray:
    if not len(body):
        return decoded
    marks = np.frombuffer(zstd_decompress(body, decoded.size), np.uint8).reshape(decoded.shape)
    if marks.max() > 2:
        raise MzcError("corrupt chunk: bad range-end map")
    out = decoded.copy()
    out[marks == 1], out[marks == 2] = lo, hi
    return out


@register
class Noise(NoiseCoder, PerChunk, SelfChecked, Codec):
    id = "noise"
    what = "within noise (--noise K): every pixel within K sigma(x) of the fitted Poisson-Gaussian model"
    grey_only = True

    def __init__(self, bound: dict, effort: str = "fast", channel: int = 0, **config):
        if effort not in EFFORTS:
            raise MzcError(f"corrupt header: unknown effort {effort!r}")
        extra = {"channel": int(channel)} if channel else {}  # a chunk's variant, for the worker processes
        super().__init__(bound=bound, effort=effort, **extra, **config)
        self.bound, self.effort, self.channel = Bound(bound), effort, int(channel)

    @classmethod
    def for_bound(cls, bound: Bound, effort: str) -> "Noise":
        return cls(bound=bound.config(), effort=effort)

    @classmethod
    def bench_points(cls, ratios):
        return [("K=0.5", {"noise": 0.5}), ("default", {"noise": 1.0}), ("K=2", {"noise": 2.0})]

    def for_chunk(self, axes: str, slices: tuple[slice, ...]) -> "Codec":
        c = channel_of(axes, slices) if self.bound.per_channel else 0
        return self if c == self.channel else Noise(**dict(self._config, channel=c))

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        return self.encode_checked(block)[:2]

    def encode_checked(self, block: np.ndarray) -> tuple[bytes, dict, np.ndarray | None]:
        """The chunk, and where its index image's back end checked its own stream, the values a decoder gets
        (the bins' values of the indices it coded): the pipeline then checks the bound on them without decoding."""
        table = self.bound.table(self.channel, block.dtype)
        idx = table.lookup(block, np.int64)
        body, params = encode_indices(idx, self.effort)
        if self.bound.per_channel:
            params["c"] = self.channel
        if params["b"] == "zero" or backends.self_checked(params["b"]):
            return body, params, table.value(idx).astype(block.dtype).reshape(block.shape)
        return body, params, None

    def decode(self, body, shape, dtype, params):
        table = self.bound.table(params.get("c", 0), dtype)
        return table.value(decode_indices(body, shape, params)).astype(dtype).reshape(shape)
