"""Lossy classic image codecs through imagecodecs: one class per codec, one quality knob each (spec section 6).

The knob is what the codec itself offers (J2K: PSNR layer target in dB of the dtype range; JPEG XL and AVIF: quality
0-100; SPERR: bits per pixel); targets.py searches it to meet `-q 50x` or `-q 48dB`. Codecs that cannot take 16-bit
data as is get an explicit value mapping from the file's data range (offset, scale, bit depth) kept in the config.
"""
from __future__ import annotations

import imagecodecs
import numpy as np

from ..errors import MzcError
from .base import Codec, as_planes, checked, register


def _decode_guard(fn, body, name):
    try:
        return fn(bytes(body))
    except Exception as exc:  # each library has its own error type for a bad stream
        raise MzcError(f"corrupt chunk: {name} decoder failed ({exc})") from None


class MappedCodec(Codec):
    """A codec that sees `round((x - offset) * scale)` in `bits` bits; decode inverts and clips to the dtype."""
    bits: int = 16

    def prepare(self, stats) -> "Codec":
        data_min = stats.min
        span = max(stats.range, 1.0)
        limit = (1 << self.bits) - 1
        scale = self.scale_for(span, limit)
        return type(self)(**dict(self._config, offset=int(data_min), scale=float(scale), bits=self.bits))

    def scale_for(self, span: float, limit: int) -> float:
        return min(1.0, limit / span)

    def to_codec(self, block: np.ndarray) -> np.ndarray:
        offset, scale = self._config.get("offset", 0), self._config.get("scale", 1.0)
        limit = (1 << self._config.get("bits", self.bits)) - 1
        y = np.rint((as_planes(block).astype(np.float64) - offset) * scale)
        return np.clip(y, 0, limit).astype(np.uint16 if limit > 255 else np.uint8)

    def from_codec(self, y: np.ndarray, shape, dtype) -> np.ndarray:
        offset, scale = self._config.get("offset", 0), self._config.get("scale", 1.0)
        x = np.rint(y.astype(np.float64) / scale + offset)
        info = np.iinfo(dtype)
        return checked(np.clip(x, info.min, info.max).astype(dtype), shape, dtype, self.id)


@register
class J2K(Codec):
    """JPEG 2000 (OpenJPEG), irreversible 9/7; its rate knob is a PSNR target in dB of the dtype range."""
    id = "j2k"
    knob_bounds = (10.0, 140.0)

    def encode(self, block):
        planes = as_planes(block)
        if min(planes.shape) < 2:  # OpenJPEG rejects 1-pixel-wide images; such chunks are tiny: keep them exact
            return planes.astype(planes.dtype.newbyteorder("<")).tobytes(), {"raw": 1}
        return imagecodecs.jpeg2k_encode(planes, level=self._config.get("knob", 80.0), reversible=False,
                                         numthreads=1), {}

    def decode(self, body, shape, dtype, params):
        if params.get("raw"):
            return checked(np.frombuffer(body, np.dtype(dtype).newbyteorder("<")).astype(dtype), shape, dtype, self.id)
        return checked(_decode_guard(imagecodecs.jpeg2k_decode, body, self.id), shape, dtype, self.id)


@register
class JXL(MappedCodec):
    """JPEG XL (libjxl). Its psychovisual tuning assumes the full range: 12-bit-in-16-bit data are stretched first."""
    id = "jxl"
    knob_bounds = (1.0, 99.9)
    bits = 16

    def scale_for(self, span, limit):
        return limit / span

    def encode(self, block):
        y = self.to_codec(block)
        return imagecodecs.jpegxl_encode(y, level=self._config.get("knob", 90.0), effort=self._config.get("effort", 7),
                                         numthreads=1), {}

    def decode(self, body, shape, dtype, params):
        y = _decode_guard(lambda b: imagecodecs.jpegxl_decode(b, numthreads=1), body, self.id)
        return self.from_codec(y, shape, dtype)


@register
class AVIF(MappedCodec):
    """AVIF (libaom/AV1 intra) takes at most 12 bits: data spanning more are scaled into 12 bits."""
    id = "avif"
    knob_bounds = (0.0, 100.0)
    bits = 12

    def to_codec(self, block):
        y = super().to_codec(block)
        return y.astype(np.uint16)

    def encode(self, block):
        y = self.to_codec(block)
        if min(y.shape) < 2:
            return y.astype("<u2").tobytes(), {"raw": 1}
        return imagecodecs.avif_encode(y, level=int(round(self._config.get("knob", 80.0))), bitspersample=12,
                                       speed=self._config.get("speed", 6), numthreads=1), {}

    def decode(self, body, shape, dtype, params):
        if params.get("raw"):
            y = np.frombuffer(body, "<u2")
        else:
            y = _decode_guard(lambda b: imagecodecs.avif_decode(b, numthreads=1), body, self.id)
        return self.from_codec(y, shape, dtype)


@register
class SPERR(Codec):
    """SPERR (wavelet + SPECK), rate set directly in bits per pixel; 2-D per tile, 3-D when a chunk spans Z."""
    id = "sperr"
    knob_bounds = (0.005, 16.0)
    knob_log = True

    def encode(self, block):
        core = block.reshape([n for n in block.shape if n != 1] or [1])
        if core.ndim == 1 or min(core.shape) < 2:
            return block.astype(block.dtype.newbyteorder("<")).tobytes(), {"raw": 1}
        if core.ndim > 3:
            core = core.reshape(-1, *core.shape[-2:])
        return imagecodecs.sperr_encode(core.astype(np.float64), self._config.get("knob", 0.5), mode="bpp",
                                        numthreads=1), {}

    def decode(self, body, shape, dtype, params):
        if params.get("raw"):
            return checked(np.frombuffer(body, np.dtype(dtype).newbyteorder("<")).astype(dtype), shape, dtype, self.id)
        y = _decode_guard(lambda b: imagecodecs.sperr_decode(b, numthreads=1), body, self.id)
        info = np.iinfo(dtype)
        return checked(np.clip(np.rint(y), info.min, info.max).astype(dtype), shape, dtype, self.id)
