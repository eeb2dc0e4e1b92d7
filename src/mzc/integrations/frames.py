"""Self-describing chunk frames shared by the Zarr v2 (numcodecs) and v3 (zarr.abc.codec) codecs.

Zarr hands a codec one chunk at a time and nothing else, so every encoded chunk carries the chunk's shape and dtype,
the complete mzc codec configuration it was coded with (bin tables and value mappings included) and a CRC-32C of the
body. A frame decodes on its own, whatever the array's metadata says, and a damaged one is refused rather than
decoded to wrong pixels. Its chunk decodes as a .mzc file's do (io/decoding.py): native decoders in the sandbox under
a memory limit and a deadline, the samples checked against a digest where the frame has one, so a forged chunk costs
that chunk an error, never the reading process (napari, a dask worker).

    frame = b"MZCZ" | u32 little-endian n
            | msgpack map {s: shape, d: dtype, c: codec config, p: params, k: crc} (n bytes) | body
"""
from __future__ import annotations

import math
import struct

import google_crc32c
import numpy as np

from ..codecs.base import ALL_DTYPES
from ..encoding.pipeline import MAX_CHUNK_ELEMENTS
from ..encoding.ratecontrol import fit_block
from ..encoding.request import EncodeRequest
from ..errors import MzcError
from ..format.container import pack_msg, unpack_msg
from ..io.decoding import decode_chunk, decode_many

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
    shape, dtype, config, params = _fields(meta)
    if google_crc32c.value(bytes(body)) != meta.get("k"):
        raise MzcError("corrupt mzc Zarr chunk: CRC-32C mismatch")
    packed = pack_msg(config)
    job = (packed, bytes(body), shape, dtype.str, params)
    ((_, result),) = decode_many(decode_chunk, [(0, job)], packed, raise_errors=False)
    if isinstance(result, MzcError):
        message = str(result)
        raise MzcError(message.replace("corrupt chunk", "corrupt mzc Zarr chunk", 1)
                       if message.startswith("corrupt chunk") else f"mzc Zarr chunk: {message}")
    return result


def _fields(meta) -> tuple[tuple[int, ...], np.dtype, dict, dict]:
    """The frame header's shape, dtype, codec config and params, each checked as a .mzc header's would be."""
    try:
        shape, dtype = tuple(meta["s"]), meta["d"]
        config, params = meta["c"], meta["p"]
    except (KeyError, TypeError):
        raise MzcError("corrupt mzc Zarr chunk: header fields") from None
    if not 1 <= len(shape) <= 32 or any(type(n) is not int or n < 0 for n in shape):
        raise MzcError("corrupt mzc Zarr chunk: bad shape")
    if math.prod(shape) > MAX_CHUNK_ELEMENTS:
        raise MzcError(f"corrupt mzc Zarr chunk: shape {shape} exceeds {MAX_CHUNK_ELEMENTS} elements")
    if dtype not in ALL_DTYPES:
        raise MzcError(f"corrupt mzc Zarr chunk: dtype {dtype!r} is not one mzc codes")
    if not isinstance(config, dict) or not isinstance(params, dict):
        raise MzcError("corrupt mzc Zarr chunk: header fields")
    return shape, np.dtype(dtype), config, params
