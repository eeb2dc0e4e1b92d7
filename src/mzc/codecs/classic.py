"""Lossy classic image codecs through imagecodecs: one class per codec, one quality knob each (spec section 6).

Knob semantics were measured on ../shared/data (benchmarks/results/classic_knobs.md); each knob grows with quality
and file size, and targets.py bisects it to meet `-q 50x` or `-q 48dB`:
- j2k: OpenJPEG's PSNR layer target, in dB of the dtype range;
- htj2k: 1 / quantization step (the step is a fraction of the dtype range);
- jxl: 1 / butteraugli distance, on the raw values (stretching 12-bit data to 16 bits measured 0.1-2 dB worse);
- avif: quality 0-99, the fraction between two qualities filled by amplitude scaling (quality alone is too coarse to
  land within 10% of a ratio); values are mapped into AVIF's 12 bits;
- sperr: bits per pixel, which sets the size exactly.
Constant chunks are stored as their value (J2K drops the DC of a flat tile) and chunks thinner than 2 pixels raw.
"""
from __future__ import annotations

import math

import imagecodecs
import numpy as np

from ..errors import MzcError
from . import native
from .base import (
    AutoCandidate,
    Codec,
    LibraryCodec,
    Prepared,
    Tunable,
    as_planes,
    checked,
    constant_chunk,
    constant_value,
    from_raw,
    planes_shape,
    spanning_z,
    squeezed,
)
from .registry import register

# JPEG 2000 / HTJ2K wavelet levels + 1: 8 instead of the libraries' 6 gains 0.03-0.5 dB at 50-200x and 1-2 dB at
# 500x on 16-bit fluorescence at the same size, for a few percent more time (benchmarks/results/classic_quality.md);
# the libraries clamp it for small tiles, and decoders read it from the stream
RESOLUTIONS = 8


class ClassicCodec(Tunable, LibraryCodec, Codec):
    """Template: special chunks (constant, degenerate) handled once; subclasses code one 2-D uint image.
    Without -q a classic codec aims at 50 dB (PSNR on the data range). `--effort max` sets the library's slower,
    better setting where it has one (MAX_EFFORT: configuration keys the encoder reads; decoding ignores them)."""
    MAX_EFFORT: dict = {}
    # which artifacts it leaves, for the learned restoration (neural/restored.py): 0 wavelet, 1 AV1 blocks, 2 SPERR;
    # None: not restorable (no pairs of it were trained on)
    restoration_family: int | None = None

    @classmethod
    def named(cls, variant: str, request) -> "ClassicCodec":
        codec = super().named(variant, request)
        return cls(**cls.MAX_EFFORT) if request.effort == "max" and cls.MAX_EFFORT else codec

    def encode(self, block):
        const = constant_chunk(block)
        if const is not None:
            return const
        planes = as_planes(block)
        if min(planes.shape) < 2:
            return block.astype(block.dtype.newbyteorder("<")).tobytes(), {"raw": 1}
        return self.encode_image(planes, block)

    def decode(self, body, shape, dtype, params):
        dtype = np.dtype(dtype)
        const = constant_value(body, params, shape, dtype)
        if const is not None:
            return const
        if params.get("raw"):
            return from_raw(body, shape, dtype, self.id)
        try:
            y = self.decode_image(bytes(body), params, tuple(shape))
        except MzcError:
            raise
        except Exception as exc:  # noqa: BLE001 - each library has its own error type for a bad stream
            raise MzcError(f"corrupt chunk: {self.id} decoder failed ({exc})") from None
        if np.asarray(y).dtype.kind == "f" or y.dtype != dtype:
            info = np.iinfo(dtype)
            y = np.clip(np.rint(y), info.min, info.max).astype(dtype)
        return checked(y, shape, dtype, self.id)

    def encode_image(self, planes: np.ndarray, block: np.ndarray) -> tuple[bytes, dict]:
        raise NotImplementedError

    def decode_image(self, body: bytes, params: dict, shape: tuple[int, ...]) -> np.ndarray:
        """The 2-D image (or SPERR volume) of a chunk of `shape`, through codecs/native.py's guarded calls."""
        raise NotImplementedError

    def native_chunk(self, params: dict) -> bool:
        return not ("const" in params or params.get("raw"))  # escapes decode in numpy

    @property
    def knob(self) -> float:
        return float(self._config.get("knob", self.default_knob))

    default_knob: float = 1.0


@register
class J2K(AutoCandidate, ClassicCodec):
    """JPEG 2000 (OpenJPEG), irreversible 9/7 wavelet."""
    id = "j2k"
    restoration_family = 0
    what = "JPEG 2000 (OpenJPEG, 9/7 wavelet)"
    knob_bounds = (10.0, 140.0)
    default_knob = 80.0

    def knob_guess(self, target, body_budget, n_pixels, data_range, dtype):
        # OpenJPEG's level is a PSNR over the dtype's range; for a ratio, start at 50 dB on the data range
        peak = float(np.iinfo(dtype).max)
        wanted = target.value if target.kind == "psnr" else 50.0
        return wanted + 20 * math.log10(peak / max(data_range, 1.0))

    def encode_image(self, planes, block):
        return imagecodecs.jpeg2k_encode(planes, level=self.knob, reversible=False, resolutions=RESOLUTIONS,
                                         numthreads=1), {}

    def decode_image(self, body, params, shape):
        return native.jpeg2k_decode(body, planes_shape(shape))


@register
class HTJ2K(ClassicCodec):
    """High-throughput JPEG 2000 (OpenJPH): about 30x faster than J2K, 0.1-0.6 dB lower."""
    id = "htj2k"
    restoration_family = 0
    what = "high-throughput JPEG 2000 (OpenJPH)"
    knob_bounds = (1.0, 1.0e5)
    knob_log = True
    default_knob = 1000.0

    def encode_image(self, planes, block):
        return imagecodecs.htj2k_encode(planes, level=1.0 / self.knob, reversible=False, resolutions=RESOLUTIONS), {}

    def decode_image(self, body, params, shape):
        return native.htj2k_decode(body, planes_shape(shape))


@register
class JXL(ClassicCodec):
    """JPEG XL (libjxl) at effort 3: the same PSNR per ratio as effort 5-7 here, 18x faster."""
    id = "jxl"
    what = "JPEG XL (libjxl, effort 3; --effort max: 7)"
    MAX_EFFORT = {"effort": 7}
    knob_bounds = (0.04, 20.0)
    knob_log = True
    default_knob = 1.0

    def knob_guess(self, target, body_budget, n_pixels, data_range, dtype):
        return 1.0  # distance 1, libjxl's default

    def encode_image(self, planes, block):
        return imagecodecs.jpegxl_encode(planes, distance=1.0 / self.knob, lossless=False,
                                         effort=self._config.get("effort", 3), numthreads=1), {}

    def decode_image(self, body, params, shape):
        return native.jpegxl_decode(body, planes_shape(shape))


@register
class AVIF(AutoCandidate, Prepared, ClassicCodec):
    """AVIF (AV1 intra, 12-bit monochrome). Values are mapped into 12 bits with the file's offset and scale."""
    id = "avif"
    restoration_family = 1
    what = "AVIF (AV1 intra, 12-bit monochrome; speed 8, --effort max: 6)"
    # speed 8 is the default: speed 7 measured 10x its time for 1-2% smaller files, speed 6 20x for 0.1-0.2 dB
    # (nuclei2d at 90x and 270x): beyond the 2x-time rule for a default, offered as --effort max
    MAX_EFFORT = {"speed": 6}
    knob_bounds = (0.0, 99.0)
    default_knob = 90.0

    def knob_guess(self, target, body_budget, n_pixels, data_range, dtype):
        return 90.0  # the 20x-500x range of microscopy data sits at qualities 80-97 (benchmarks/results/lossy.json)

    def prepare(self, stats) -> "Codec":
        span = max(stats.range, 1.0)
        return type(self)(**dict(self._config, offset=int(stats.min), scale=min(1.0, 4095.0 / span)))

    def _quality_and_scale(self) -> tuple[int, float]:
        quality = math.ceil(self.knob)
        return quality, float(self._config.get("scale", 1.0)) * 2.0 ** (self.knob - quality)

    def encode_image(self, planes, block):
        quality, scale = self._quality_and_scale()
        y = np.clip(np.rint((planes.astype(np.float64) - self._config.get("offset", 0)) * scale), 0, 4095)
        # imagecodecs codes a 2-D array losslessly whatever the level; three equal samples with pixel format 4:0:0
        # code one monochrome plane at the requested quality
        rgb = np.ascontiguousarray(np.repeat(y.astype(np.uint16)[..., None], 3, axis=2))
        body = imagecodecs.avif_encode(rgb, level=quality, bitspersample=12, pixelformat="400",
                                       speed=self._config.get("speed", 8), numthreads=1)
        return body, {"s": scale}

    def decode_image(self, body, params, shape):
        y = native.avif_decode(body, planes_shape(shape))
        if y.ndim == 3:
            y = y[..., 0]
        scale = float(params.get("s", 0))
        if not scale > 0:
            raise MzcError("corrupt chunk: avif scale missing")
        return y.astype(np.float64) / scale + self._config.get("offset", 0)


@register
class SPERR(AutoCandidate, ClassicCodec):
    """SPERR (wavelet + SPECK) in bits per pixel; 2-D per tile, 3-D when a chunk spans several planes."""
    id = "sperr"
    restoration_family = 2
    what = "SPERR (wavelet + SPECK), 3-D chunks along Z"

    @classmethod
    def chunk_layout(cls, shape, axes):
        """Stacks are coded as volumes: one bits-per-pixel over a Z chunk puts the bits where they buy the most
        (plane by plane measured 0.45-0.56 dB below one 3-D chunk on stacks)."""
        return spanning_z(shape, axes, 1 << 25)
    knob_bounds = (0.005, 16.0)
    knob_log = True
    default_knob = 0.5

    def knob_guess(self, target, body_budget, n_pixels, data_range, dtype):
        if target.kind != "ratio":
            return None
        return max(body_budget - 40, 1) * 8 / n_pixels  # bpp sets the size: ~36 bytes of stream header

    def encode_image(self, planes, block):
        core = block.reshape([n for n in block.shape if n != 1])
        if core.ndim > 3:
            core = core.reshape(-1, *core.shape[-2:])
        # SPERR's 3-D path aborts the process on a single-plane volume: core has no axis of length 1 here
        return imagecodecs.sperr_encode(core.astype(np.float32), self.knob, mode="bpp", numthreads=1), {}

    def decode_image(self, body, params, shape):
        core = squeezed(shape)
        return native.sperr_decode(body, core if len(core) <= 3 else (math.prod(core[:-2]), *core[-2:]))
