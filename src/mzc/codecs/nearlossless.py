"""Guaranteed max-error coding, |decoded - original| <= E on every pixel (id `nearlossless`).

Two constructions, both bounded by design; per chunk the smaller wins, and the encoder decodes and checks the bound
before it accepts a chunk, so a library bug can cost ratio but never the guarantee. The chunk's lowest and highest
values (zeros, saturation) come back exactly, through a small map where a construction moved them:
- JPEG-LS near-lossless (NEAR = E): the standard's own bounded mode, strong on smooth images;
- uniform quantization with step 2E+1 followed by the lossless back ends: better on noisy or sparse data.
"""
from __future__ import annotations

import imagecodecs
import numpy as np

from ..bounds.bound import Bound
from ..errors import MzcError
from . import native
from .base import Codec, MaxErrorCoder, SelfChecked, as_planes, checked, in_range, planes_shape
from .lossless import Lossless, decode_backend
from .noise import apply_ends, encode_ends
from .registry import register


def jpegls_max_near(dtype: np.dtype) -> int:
    """JPEG-LS allows NEAR up to min(255, MAXVAL / 2); imagecodecs sets MAXVAL from the dtype."""
    return min(255, (int(np.iinfo(dtype).max)) // 2)


def quantize(block: np.ndarray, error: int) -> tuple[np.ndarray, int]:
    step = 2 * error + 1
    offset = int(block.min())
    q = (block.astype(np.int64) - offset + error) // step
    return q.astype(block.dtype), offset


def dequantize(q: np.ndarray, offset: int, error: int, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    x = q.astype(np.int64) * (2 * error + 1) + offset
    return np.clip(x, info.min, info.max).astype(dtype)


@register
class NearLossless(MaxErrorCoder, SelfChecked, Codec):
    id = "nearlossless"
    what = "every pixel within +-E (--max-error E): JPEG-LS near-lossless or step-(2E+1) quantization"
    dtypes = frozenset({"|u1", "<u2", "<u4"})

    def __init__(self, max_error: int = 0, **config):
        if int(max_error) != max_error or max_error < 0:
            raise MzcError(f"--max-error must be a non-negative integer for integer data, got {max_error}")
        super().__init__(max_error=int(max_error), **config)
        self.error = int(max_error)

    @property
    def bound(self) -> Bound:
        """What every chunk promises, |error| <= E (verify --against rechecks it; no bin table is used)."""
        return Bound.absolute(self.error, 0, 0)

    @classmethod
    def for_max_error(cls, max_error: int) -> "NearLossless":
        return cls(max_error=max_error)

    @classmethod
    def bench_points(cls, ratios):
        return [(f"E={e}", {"max_error": e}) for e in (1, 4, 16)]

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        return self.encode_checked(block)[:2]

    def encode_checked(self, block: np.ndarray) -> tuple[bytes, dict, np.ndarray]:
        """The smaller construction that meets the bound, and its decoded samples: the quantized image's own if
        its lossless back end checked its stream (no decode), else decoded here."""
        if self.error == 0:
            body, params, back = Lossless().encode_checked(block)
            return body, {"b": "lossless", "qb": params["b"]}, back
        q, offset = quantize(block, self.error)
        qbody, qparams, qback = Lossless().encode_checked(q)
        candidates = [(qbody, {"b": "quant", "o": offset, "qb": qparams["b"]},
                       None if qback is None else dequantize(qback, offset, self.error, block.dtype))]
        planes = as_planes(block)
        if block.dtype.str in ("|u1", "<u2") and self.error <= jpegls_max_near(block.dtype) and min(planes.shape) >= 2:
            body = imagecodecs.jpegls_encode(planes, level=self.error)
            if len(body) < len(qbody):
                candidates.append((body, {"b": "jpegls"}, None))
        lo, hi = int(block.min()), int(block.max())
        for body, params, back in sorted(candidates, key=lambda c: len(c[0])):
            if back is None:
                back = self.decode(body, block.shape, block.dtype, params)
            ends = encode_ends(block, back, lo, hi)  # the chunk's min and max (saturation) come back exactly
            if ends:
                body, params = body + ends, dict(params, e=len(ends), lo=lo, hi=hi)
                back = apply_ends(back, ends, lo, hi)
            if np.abs(back.astype(np.int64) - block.astype(np.int64)).max() <= self.error:
                return body, params, back
        raise MzcError("internal error: no near-lossless candidate met the bound")  # quantization always does

    def decode(self, body, shape, dtype, params):
        ends = params.get("e", 0)
        if not ends:
            return self._decode(body, shape, dtype, params)
        if not isinstance(ends, int) or not 0 < ends <= len(body):
            raise MzcError("corrupt chunk: bad range-end map length")
        view = memoryview(body)
        back = self._decode(view[:len(body) - ends], shape, dtype, params)
        lo, hi = in_range(params.get("lo"), dtype), in_range(params.get("hi"), dtype)
        return apply_ends(back, view[len(body) - ends:], lo, hi)

    def _decode(self, body, shape, dtype, params):
        kind = params.get("b")
        if kind == "lossless":
            return decode_backend(params.get("qb", "raw"), body, shape, dtype)
        if kind == "quant":
            q = decode_backend(params.get("qb", "raw"), body, shape, dtype)
            return dequantize(q, in_range(params.get("o", 0), dtype), self.error, np.dtype(dtype))
        if kind == "jpegls":
            out = native.jpegls_decode(body, planes_shape(shape), native.bits_of(dtype))
            return checked(out, shape, dtype, "jpegls")
        raise MzcError(f"corrupt chunk: unknown near-lossless back end {kind!r}")
