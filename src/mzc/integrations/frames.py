"""Self-describing chunk frames shared by the Zarr v2 (numcodecs) and v3 (zarr.abc.codec) codecs.

Zarr hands a codec one chunk at a time and nothing else, so every encoded chunk carries the chunk's shape and dtype,
the complete mzc codec configuration it was coded with (bin tables and value mappings included) and a CRC-32C of the
body. A frame decodes on its own, whatever the array's metadata says, and a damaged one is refused rather than
decoded to wrong pixels.

    frame = b"MZCZ" | u32 little-endian n
            | msgpack map {s: shape, d: dtype, c: codec config, p: params, k: crc} (n bytes) | body
"""
from __future__ import annotations

import struct

import google_crc32c
import numpy as np

from ..codecs.registry import from_config
from ..encoding.ratecontrol import fit_block
from ..encoding.request import EncodeRequest
from ..errors import MzcError
from ..format.container import pack_msg, unpack_msg

MAGIC = b"MZCZ"
MAX_META = 16 << 20


def encode_frame(request: EncodeRequest, chunk: np.ndarray) -> bytes:
    """One chunk (any shape of at least one axis) as a frame; 1-D chunks are coded as one row."""
    chunk = np.ascontiguousarray(chunk)
    if chunk.ndim < 2:
        chunk = chunk.reshape(1, -1)
    codec = fit_block(request, chunk)
    body, params = codec.encode(chunk)
    meta = pack_msg({"s": list(chunk.shape), "d": chunk.dtype.str, "c": codec.config(), "p": params,
                     "k": google_crc32c.value(bytes(body))})
    return MAGIC + struct.pack("<I", len(meta)) + meta + bytes(body)


def decode_frame(data: memoryview | bytes) -> np.ndarray:
    """The chunk a frame holds, in the shape and dtype it was encoded with; MzcError for anything damaged."""
    data = memoryview(data).cast("B")
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
    try:
        return from_config(config).decode(body, shape, dtype, params)
    except MzcError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crafted (CRC-valid) frame can make a decoder raise anything
        raise MzcError(f"corrupt mzc Zarr chunk: {type(exc).__name__}: {exc}") from None
