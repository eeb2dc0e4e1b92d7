"""The Codec protocol and the registry of string ids (spec/FORMAT.md section 6).

A codec turns one chunk (an n-d block, usually a 2-D tile) into bytes plus a small map of per-chunk parameters, and
back. Its configuration is a plain dict stored in the header, so a file names everything needed to decode it.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import MzcError

REGISTRY: dict[str, type["Codec"]] = {}


def register(cls: type["Codec"]) -> type["Codec"]:
    REGISTRY[cls.id] = cls
    return cls


class Codec:
    """Base class: subclasses set `id` and implement encode/decode (encoder.choose_codec checks dtypes)."""
    id: ClassVar[str]
    lossless: ClassVar[bool] = False
    # lossy codecs: one scalar quality knob, larger = better quality and larger output; searched by targets.py
    knob_bounds: ClassVar[tuple[float, float] | None] = None
    knob_log: ClassVar[bool] = False
    # codecs whose size is a byte budget met inside encode (inr, hybrid): the encoder hands them bytes per element
    budgeted: ClassVar[bool] = False
    # codecs that evaluate only the requested samples of a chunk (a region, another scale) in decode_at
    region_decode: ClassVar[bool] = False

    def __init__(self, **config):
        self._config = dict(config)

    def config(self) -> dict:
        return {"id": self.id, **self._config}

    def knob_guess(self, target, body_budget: float | None, n_pixels: int, data_range: float,
                   dtype: np.dtype) -> float | None:
        """A first knob to try for a target (None: start in the middle of the bounds); search refines it."""
        return None

    def prepare(self, stats) -> "Codec":
        """Return the codec configured for this file's value range (codecs needing a value mapping override it)."""
        return self

    def knob_values(self) -> list:
        """Codecs with a few discrete settings (learned rate points) list them; continuous knobs return []."""
        return []

    def bind(self) -> "Codec":
        """The final configuration for the header (a learned codec pins its model's sha256 here)."""
        return self

    def for_chunk(self, axes: str, slices: tuple[slice, ...]) -> "Codec":
        """The codec for one chunk (noise-bounded codecs pick the chunk's channel table); most codecs: itself."""
        return self

    def with_knob(self, knob: float) -> "Codec":
        return type(self)(**dict(self._config, knob=float(knob)))

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        raise NotImplementedError

    def decode(self, body: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype, params: dict) -> np.ndarray:
        raise NotImplementedError

    def with_budget(self, bpe: float, seconds_per_element: float | None = None) -> "Codec":
        raise NotImplementedError

    def decode_at(self, body, shape: tuple[int, ...], dtype: np.dtype, params: dict,
                  positions: list[np.ndarray]) -> np.ndarray:
        """The chunk sampled at per-axis chunk pixel coordinates (resample.py): decode it all, then resample."""
        from ..resample import resample
        return resample(self.decode(body, shape, dtype, params), positions)


def constant_chunk(block: np.ndarray) -> tuple[bytes, dict] | None:
    """The lossy codecs' shared escape for a chunk of one value: an empty body and `p.const` (spec section 6)."""
    flat = block.reshape(-1)
    return (b"", {"const": int(flat[0])}) if flat.size and (flat == flat[0]).all() else None


def constant_value(body, params: dict, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
    """Decode the `p.const` escape into `shape` (None when the chunk is not constant)."""
    if "const" not in params:
        return None
    if len(body):
        raise MzcError("corrupt chunk: constant chunk with a body")
    return np.full(shape, in_range(params["const"], dtype), dtype)


def from_config(config: dict) -> Codec:
    """Build the codec a header names; an unknown id is an error naming it."""
    if not isinstance(config, dict) or not isinstance(config.get("id"), str):
        raise MzcError("corrupt header: codec entry has no id")
    cid = config["id"]
    cls = REGISTRY.get(cid)
    if cls is None:
        raise MzcError(f"unknown codec {cid!r}: this file needs a newer mzc or a plug-in")
    try:
        return cls(**{k: v for k, v in config.items() if k != "id"})
    except MzcError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise MzcError(f"corrupt header: bad {cid} codec configuration ({exc})") from None


def checked(array: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    """A decoder's output must be exactly the chunk's shape and dtype (spec section 4)."""
    array = np.asarray(array)
    if tuple(array.shape) not in (tuple(shape), planes_shape(shape)) and squeezed(array.shape) != squeezed(shape):
        raise MzcError(f"corrupt chunk: {what} decoded {array.shape}, expected {tuple(shape)}")
    if array.dtype != np.dtype(dtype):
        raise MzcError(f"corrupt chunk: {what} decoded dtype {array.dtype}, expected {np.dtype(dtype)}")
    return array.reshape(shape)


def in_range(value, dtype: np.dtype):
    """A number read from chunk parameters must be representable in the data type (numpy 1.x wraps silently)."""
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype) if dtype.kind in "iu" else np.finfo(dtype)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not info.min <= value <= info.max:
        raise MzcError(f"corrupt chunk: value {value!r} outside {dtype}")
    return value


def from_raw(body, shape: tuple[int, ...], dtype: np.dtype, what: str) -> np.ndarray:
    """A chunk stored as its little-endian bytes: the length must be exact."""
    dtype = np.dtype(dtype)
    if len(body) != int(np.prod(shape)) * dtype.itemsize:
        raise MzcError(f"corrupt chunk: {what} raw size mismatch")
    return np.frombuffer(body, dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def squeezed(shape) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1) or (1,)


def planes_shape(shape) -> tuple[int, int]:
    """The 2-D image a chunk is for 2-D image codecs: singleton axes dropped, leading axes folded into rows."""
    core = squeezed(shape)
    return (1, core[0]) if len(core) == 1 else (int(np.prod(core[:-1])), core[-1])


def as_planes(block: np.ndarray) -> np.ndarray:
    return block.reshape(planes_shape(block.shape))
