"""The Codec protocol (spec/FORMAT.md section 6) and the capabilities a codec opts into.

A codec turns one chunk (an n-d block, usually a 2-D tile) into bytes plus a small map of per-chunk parameters, and
back. Its configuration is a plain dict stored in the header, so a file names everything needed to decode it.

The core protocol is five members, as in numcodecs: `id`, `encode`, `decode`, `config` / `from_config`, and
`accepts` (which dtypes and axes it takes). Everything else is a capability, a mixin a codec opts into, that the
planner and rate control ask for with isinstance:
- Tunable: `-q` searches one scalar knob (larger = better and larger); RatePoints: a few discrete settings;
- Budgeted: meets a byte budget inside encode (neural fields), sized by `-q Nx`;
- Prepared: configured per file (a value mapping, a rank table) and pinned for the header;
- PerChunk: a chunk-specific variant (the channel's noise table);
- RegionDecoder: evaluates only requested samples (any region, any scale);
- AutoCandidate: one of the codecs `--codec auto` tries for `-q`; LibraryCodec: a bare library call per plane
  (bench measures it plain too); SelfChecked: the encoder verifies its own stream (no decode-back needed);
- roles, each filled by one codec: Exact (bit-exact), MaxErrorCoder (guarantees |error| <= E itself),
  NoiseCoder (guarantees K sigma(x) itself), BoundWrapper (any reproducible lossy base + a residual keeping a bound).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import MzcError

UNSIGNED_IMAGE = frozenset({"|u1", "<u2"})
ALL_DTYPES = frozenset({"|u1", "<u2", "<i2", "<u4", "<f4"})


class Codec:
    """Core protocol. Subclasses set `id` and implement encode/decode; `dtypes` and `grey_only` say what they take."""
    id: ClassVar[str]
    dtypes: ClassVar[frozenset[str]] = UNSIGNED_IMAGE
    grey_only: ClassVar[bool] = False  # refuses interleaved samples (RGB: a last axis S)
    what: ClassVar[str] = ""  # one line for `--help` and errors
    native: ClassVar[bool] = True  # decode runs native code on the stream: readers run it in their sandbox
    runtime: ClassVar[str | None] = None  # `module:function` a sandbox for its decode runs first, in a fresh process
    decode_seconds: ClassVar[float | None] = None  # per element, when slower than the reader's deadline assumes
    decode_bytes: ClassVar[int | None] = None  # memory per element, when more than the reader's limit assumes


    def __init__(self, **config):
        self._config = dict(config)

    def config(self) -> dict:
        return {"id": self.id, **self._config}

    @classmethod
    def from_config(cls, config: dict) -> "Codec":
        return cls(**{k: v for k, v in config.items() if k != "id"})

    @classmethod
    def accepts(cls, dtype: np.dtype, axes: str) -> None:
        """Raise MzcError saying why this codec cannot code data of this dtype and these axes."""
        dtype = np.dtype(dtype)
        if dtype.str not in cls.dtypes:
            names = "/".join(np.dtype(d).name for d in sorted(cls.dtypes, key=lambda d: (np.dtype(d).kind != "u",
                                                                                          np.dtype(d).itemsize)))
            raise MzcError(f"the {cls.id} codec takes {names} data, not {dtype.name}")
        if cls.grey_only and axes.endswith("S"):
            raise MzcError(f"the {cls.id} codec codes grey planes; this file has interleaved samples (RGB)")

    @classmethod
    def named(cls, variant: str, request) -> "Codec":
        """The codec that `--codec ID[:VARIANT]` names for this request (checks what only the codec knows)."""
        if variant:
            raise MzcError(f"--codec {cls.id}:{variant}: the {cls.id} codec has no variants")
        return cls()

    @classmethod
    def variants(cls) -> str:
        """How `--codec` spells this codec's names, for help texts."""
        return cls.id

    @property
    def reproducible(self) -> bool:
        """Whether decode gives the same bits on every machine (a bound can only be carried by such a base)."""
        return True

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        raise NotImplementedError

    def decode(self, body: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype, params: dict) -> np.ndarray:
        raise NotImplementedError

    def sandbox_runtime(self) -> str | None:
        """The set-up its decode needs in the sandbox (None: a fork of the reader will do). A decoder that cannot run
        in a fork, or whose libraries do not load under the sandbox's memory limit (torch), names a `module:function`
        that loads them: its sandbox is then a fresh interpreter that runs it before its first job."""
        return self.runtime

    def decode_seconds_per_element(self) -> float | None:
        """A deadline for its decode, per element, where the reader's default (fast native decoders) is too short."""
        return self.decode_seconds

    def decode_bytes_per_element(self) -> int | None:
        """Memory its decode may map, per element, where the reader's default (native decoders) is too little."""
        return self.decode_bytes

    def native_chunk(self, params: dict) -> bool:
        """Whether decoding this chunk runs native code (False: numpy only, e.g. a constant chunk's escape)."""
        return self.native

    def decode_at(self, body, shape: tuple[int, ...], dtype: np.dtype, params: dict,
                  positions: list[np.ndarray]) -> np.ndarray:
        """The chunk sampled at per-axis chunk pixel coordinates (resample.py): decode it all, then resample."""
        from ..resample import resample
        return resample(self.decode(body, shape, dtype, params), positions)

    @classmethod
    def bench_points(cls, ratios: tuple[float, ...]) -> list[tuple[str, dict]]:
        """(label, mzc.encode options) of what `mzc bench` measures for this codec (none by default)."""
        return []

    @classmethod
    def chunk_layout(cls, shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
        """Default chunks when the user gives none: 2-D tiles (tiling.py); volumetric codecs span Z."""
        from ..tiling import default_chunks
        return default_chunks(shape, axes)


# ------------------------------------------------------------------------------------------ capabilities
class Tunable:
    """`-q` searches one scalar knob; larger = better quality and larger output."""
    knob_bounds: ClassVar[tuple[float, float]]
    knob_log: ClassVar[bool] = False
    default_quality: ClassVar[str | None] = "50dB"  # what the codec aims at without -q (None: its fixed setting)
    ratio_tolerance: ClassVar[float] = 0.10  # -q Nx: how close to N the real file's ratio must land

    def knob_guess(self, target, body_budget: float | None, n_pixels: int, data_range: float,
                   dtype: np.dtype) -> float | None:
        """A first knob to try for a target (None: start at the ends of the bounds); the search refines it."""
        return None

    def with_knob(self, knob: float):
        return type(self)(**dict(self._config, knob=float(knob)))

    def for_search(self):
        """The codec that rate control's trials use (a cheaper variant when encoding has an effort setting that
        changes size little; the real file is checked and corrected anyway)."""
        return self

    @property
    def fixed_rate(self) -> bool:
        """True for an instance whose rate cannot be tuned (e.g. one named learned model): -q does not apply."""
        return False

    @classmethod
    def bench_points(cls, ratios):
        return [("default", {"codec": cls.id})] + [(f"{r:g}x", {"codec": cls.id, "quality": f"{r:g}x"})
                                                   for r in ratios]


class RatePoints(Tunable):
    """A Tunable codec whose knob takes a few discrete values (rate points need not be monotonic)."""

    knob_bounds = (0.0, 0.0)

    def knob_values(self) -> list:
        raise NotImplementedError


class Budgeted:
    """Meets a byte budget inside encode (neural fields): `-q Nx` gives bytes per element, `--time-budget` time."""
    default_quality: ClassVar[str] = "64x"
    ratio_tolerance: ClassVar[float] = 0.05  # the budget is met inside each chunk: a tighter promise

    def with_budget(self, bpe: float, seconds_per_element: float | None = None):
        raise NotImplementedError

    def check_budget(self, bpe: float, chunk_elements: int) -> None:
        """Refuse a byte budget no chunk can be coded in, before anything slow (loading torch) is done for it."""

    def warm_up(self) -> None:
        """Load what the fits need (PyTorch) before a time budget is shared out, in the process the workers are
        forked from: a wall-clock budget that one import per worker overruns by seconds is not a budget."""

    @classmethod
    def chunk_layout(cls, shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
        """Fields fit native 3-D volumes: default chunks span Z (up to 2^26 voxels), other axes as usual."""
        return spanning_z(shape, axes, 1 << 26)

    @classmethod
    def bench_points(cls, ratios):
        return [("default", {"codec": cls.id})] + [(f"{r:g}x", {"codec": cls.id, "quality": f"{r:g}x"})
                                                   for r in ratios]


def spanning_z(shape: tuple[int, ...], axes: str, max_voxels: int) -> tuple[int, ...]:
    """Default tiles, deepened along Z up to `max_voxels` per chunk (for codecs that code volumes)."""
    import math

    from ..tiling import default_chunks
    chunks = list(default_chunks(shape, axes))
    if "Z" in axes:
        z = axes.index("Z")
        plane = math.prod(chunks) // max(chunks[z], 1)
        chunks[z] = max(1, min(shape[z], max_voxels // max(plane, 1)))
    return tuple(chunks)


class Prepared:
    """Configured per file: `prepare(stats)` fits the codec to the file's values, `bind()` pins what the header
    must record (a model's sha256)."""

    def prepare(self, stats):
        return self

    def bind(self):
        return self


class PerChunk:
    """A chunk-specific variant of the codec (noise-bounded codecs pick the chunk's channel table)."""

    def for_chunk(self, axes: str, slices: tuple[slice, ...]):
        raise NotImplementedError


class RegionDecoder:
    """`decode_at` evaluates only the requested samples of a chunk (a region, another scale)."""


class AutoCandidate:
    """`--codec auto -q ...` tries this codec and keeps the best at the target."""


class SelfChecked:
    """`encode_checked` codes a chunk and, where the codec verified its own stream while coding it, also returns the
    samples a decoder will get back (else None): the encoder's check then costs a few percent instead of a decode."""

    def encode_checked(self, block: np.ndarray) -> tuple[bytes, dict, np.ndarray | None]:
        raise NotImplementedError


class LibraryCodec:
    """One call of an image library per 2-D plane: `mzc bench` measures it bare too (plain:ID), to show what the
    container, chunking and rate control cost or win."""


class Exact:
    """Role: bit-exact coding of every supported dtype (`--lossless`, and the default without -q)."""

    @classmethod
    def for_effort(cls, effort: str):
        """The codec for `--effort` (fast, max): how hard the encoder searches, never how the file decodes."""
        return cls()


class MaxErrorCoder:
    """Role: guarantees |decoded - original| <= E on its own (`--max-error E` without a named codec)."""

    @classmethod
    def for_max_error(cls, max_error: int):
        raise NotImplementedError


class NoiseCoder:
    """Role: guarantees |decoded - original| <= K sigma(original) on its own (`--noise K`)."""

    @classmethod
    def for_bound(cls, bound, effort: str):
        raise NotImplementedError


class BoundWrapper:
    """Role: a reproducible lossy base plus a coded residual that keeps a bound (`--codec C --max-error E`)."""

    @classmethod
    def wrap(cls, base: Codec, bound, effort: str):
        raise NotImplementedError


ROLES = (Exact, MaxErrorCoder, NoiseCoder, BoundWrapper)


# ------------------------------------------------------------------------------------------ helpers for codecs
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
