"""mzc's codecs inside Zarr v2 arrays: a numcodecs codec (id `mzc`, registered through the `numcodecs.codecs` entry
point, so `numcodecs.get_codec({"id": "mzc", ...})` and Zarr find it). Each chunk becomes a self-describing frame
(frames.py). Zarr v3 arrays use the array-to-bytes codec in zarr3.py, which takes the same settings.
"""
from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec as NumcodecsCodec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray, ndarray_copy

from ..encoding.request import EncodeRequest
from ..io.tiff import SUPPORTED_DTYPES
from .frames import decode_frame, encode_frame

SETTINGS = ("codec", "knob", "quality", "max_error", "noise", "noise_model", "effort")
DEFAULTS = {"codec": "auto", "effort": "fast"}


class MzcCodec(NumcodecsCodec):
    """Any mzc codec as a Zarr compressor.

    codec: `auto` (lossless unless a quality is given), `lossless`, a lossy id (`j2k`, `htj2k`, `jxl`, `avif`,
    `sperr`, `learned:MODEL`, ...) with a `knob` or a `quality` target ("45dB", "20x": searched on each chunk),
    `nearlossless` with `max_error`, or `noise` with `noise` = K and an optional `noise_model` "a,b" (else fitted on
    each chunk). `max_error` or `noise` with a lossy codec gives the bounded codec (that codec + a coded residual).
    Bytes-like input (numcodecs' contract) is coded as uint8.
    """
    codec_id = "mzc"

    def __init__(self, codec: str = "auto", knob: float | None = None, quality: str | None = None,
                 max_error: int | None = None, noise: float | None = None, noise_model: str | None = None,
                 effort: str = "fast"):
        self.codec, self.knob, self.quality, self.max_error = codec, knob, quality, max_error
        self.noise, self.noise_model, self.effort = noise, noise_model, effort
        self._request = EncodeRequest(codec=codec, knob=knob, quality=quality, max_error=max_error, noise=noise,
                                      noise_model=noise_model, effort=effort)

    def settings(self) -> dict:
        """The settings that differ from the defaults (the config without its id), in constructor order."""
        return {k: getattr(self, k) for k in SETTINGS if getattr(self, k) != DEFAULTS.get(k)}

    def get_config(self) -> dict:
        return {"id": self.codec_id, "codec": self.codec, **self.settings()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.settings().items())})"

    def encode(self, buf) -> bytes:
        chunk = ensure_ndarray(buf)
        if chunk.dtype.str not in SUPPORTED_DTYPES:  # bytes, bytearray, array.array('b'), int8...: their bytes
            chunk = ensure_contiguous_ndarray(chunk).view(np.uint8)
        return encode_frame(self._request, chunk)

    def decode(self, buf, out=None):
        array = decode_frame(ensure_contiguous_ndarray(buf).view(np.uint8).reshape(-1).data)
        return array if out is None else ndarray_copy(array, out)
