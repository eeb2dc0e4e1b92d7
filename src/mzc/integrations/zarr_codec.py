"""mzc's codecs inside Zarr arrays: a numcodecs codec (id `mzc`, registered through the `numcodecs.codecs` entry
point, so `numcodecs.get_codec({"id": "mzc", ...})` and Zarr find it).

Zarr hands a compressor one chunk at a time and nothing else, so every encoded chunk is a self-describing frame:
the chunk's shape and dtype, the complete mzc codec configuration it was coded with (bin tables and value mappings
included) and a CRC-32C of the body. A frame decodes on its own, whatever the array's metadata says, and a damaged
one is refused rather than decoded to wrong pixels.

    frame = b"MZCZ" | u32 little-endian n
            | msgpack map {s: shape, d: dtype, c: codec config, p: params, k: crc} (n bytes) | body
"""
from __future__ import annotations

import struct

import google_crc32c
import numpy as np
from numcodecs.abc import Codec as NumcodecsCodec
from numcodecs.compat import ndarray_copy

from ..codecs.registry import from_config
from ..encoding.ratecontrol import fit_block
from ..encoding.request import EncodeRequest
from ..errors import MzcError
from ..format.container import pack_msg, unpack_msg

MAGIC = b"MZCZ"
MAX_META = 16 << 20


class MzcCodec(NumcodecsCodec):
    """Any mzc codec as a Zarr compressor.

    codec: `lossless` (default), a lossy id (`j2k`, `htj2k`, `jxl`, `avif`, `sperr`, `learned:MODEL`, ...) with a `knob`
    or a `quality` target ("45dB", "20x": searched on each chunk), `nearlossless` with `max_error`, or `noise` with
    `noise` = K and an optional `noise_model` "a,b" (else fitted on each chunk). `max_error` or `noise` with a lossy
    codec gives the bounded codec (that codec + a coded residual).
    """
    codec_id = "mzc"

    def __init__(self, codec: str = "auto", knob: float | None = None, quality: str | None = None,
                 max_error: int | None = None, noise: float | None = None, noise_model: str | None = None,
                 effort: str = "fast"):
        self.codec, self.knob, self.quality, self.max_error = codec, knob, quality, max_error
        self.noise, self.noise_model, self.effort = noise, noise_model, effort
        self._request = EncodeRequest(codec=codec, knob=knob, quality=quality, max_error=max_error, noise=noise,
                                      noise_model=noise_model, effort=effort)

    def get_config(self) -> dict:
        config = {"id": self.codec_id, "codec": self.codec}
        for key in ("knob", "quality", "max_error", "noise", "noise_model"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        if self.effort != "fast":
            config["effort"] = self.effort
        return config

    def encode(self, buf) -> bytes:
        chunk = np.ascontiguousarray(buf)
        if chunk.ndim < 2:
            chunk = chunk.reshape(1, -1)
        codec = fit_block(self._request, chunk)
        body, params = codec.encode(chunk)
        meta = pack_msg({"s": list(chunk.shape), "d": chunk.dtype.str, "c": codec.config(), "p": params,
                         "k": google_crc32c.value(bytes(body))})
        return MAGIC + struct.pack("<I", len(meta)) + meta + bytes(body)

    def decode(self, buf, out=None):
        data = memoryview(np.ascontiguousarray(buf).view(np.uint8).reshape(-1))
        if len(data) < 8 or bytes(data[:4]) != MAGIC:
            raise MzcError("not an mzc Zarr chunk (bad magic)")
        (n,) = struct.unpack("<I", data[4:8])
        if n > min(MAX_META, len(data) - 8):
            raise MzcError("corrupt mzc Zarr chunk: header length")
        meta = unpack_msg(bytes(data[8:8 + n]), "mzc Zarr chunk header")
        body = data[8 + n:]
        try:
            shape, dtype = tuple(int(v) for v in meta["s"]), np.dtype(meta["d"])
            config, params, crc = meta["c"], meta["p"], meta["k"]
        except (KeyError, TypeError, ValueError):
            raise MzcError("corrupt mzc Zarr chunk: header fields") from None
        if google_crc32c.value(bytes(body)) != crc:
            raise MzcError("corrupt mzc Zarr chunk: CRC-32C mismatch")
        array = from_config(config).decode(body, shape, dtype, params)
        return array if out is None else ndarray_copy(array, out)
