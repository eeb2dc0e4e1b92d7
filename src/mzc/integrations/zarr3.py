"""mzc's codecs inside Zarr v3 arrays (OME-Zarr 0.5 is Zarr v3): an array-to-bytes codec named `mzc`, registered
through zarr-python's `zarr.codecs` entry point group.

Zarr v3 splits codecs into array->array, array->bytes and bytes->bytes; only an array->bytes codec sees each chunk's
shape and dtype, which image codecs need, so mzc is the array's `serializer` (and works as the inner serializer of
Zarr's sharding codec). The settings are the numcodecs codec's (zarr_codec.py), and so are the chunk frames.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

from ..errors import MzcError
from ..io.tiff import SUPPORTED_DTYPES
from .frames import decode_frame, encode_frame
from .zarr_codec import MzcCodec

NAME = "mzc"


@dataclass(frozen=True)
class MzcArrayCodec(ArrayBytesCodec):
    """`MzcArrayCodec(codec="noise", noise=1.0)` etc.: the numcodecs codec's keywords (see its docstring)."""

    is_fixed_size = False
    settings: tuple[tuple[str, object], ...]

    def __init__(self, **settings):
        checked = MzcCodec(**settings)  # validates once: unknown keywords or a bad request fail here
        object.__setattr__(self, "settings", tuple(checked.settings().items()))

    @property
    def _numcodecs(self) -> MzcCodec:
        return MzcCodec(**dict(self.settings))

    @classmethod
    def from_dict(cls, data: dict) -> "MzcArrayCodec":
        _, configuration = parse_named_configuration(data, NAME, require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self) -> dict:
        return {"name": NAME, "configuration": dict(self.settings)}

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        native = dtype.to_native_dtype()
        if native.newbyteorder("<").str not in SUPPORTED_DTYPES:
            raise MzcError(f"the mzc Zarr codec codes {', '.join(np.dtype(d).name for d in SUPPORTED_DTYPES)}; "
                           f"this array is {native}")

    async def _encode_single(self, chunk_array, chunk_spec):
        chunk = chunk_array.as_numpy_array().astype(chunk_spec.dtype.to_native_dtype().newbyteorder("<"), copy=False)
        frame = await asyncio.to_thread(encode_frame, self._numcodecs._request, chunk)
        return chunk_spec.prototype.buffer.from_bytes(frame)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        array = await asyncio.to_thread(decode_frame, chunk_bytes.as_numpy_array().data)
        expected = chunk_spec.dtype.to_native_dtype()
        if array.size != np.prod(chunk_spec.shape) or array.dtype.newbyteorder("=") != expected.newbyteorder("="):
            raise MzcError(f"mzc Zarr chunk holds {array.dtype} {array.shape}, the array expects {expected} "
                           f"{chunk_spec.shape}")
        return chunk_spec.prototype.nd_buffer.from_numpy_array(array.reshape(chunk_spec.shape).astype(expected))

    def compute_encoded_size(self, input_byte_length: int, chunk_spec) -> int:
        raise NotImplementedError("mzc frames are variable-size")
