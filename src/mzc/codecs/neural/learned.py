"""Learned codec: each 2-D plane coded by a single-channel CompressAI model from the zoo (or a user's model).

Pixels map to [0, 1] through the file's own min/max (offset/scale stored in the header), the way the models were
trained. Each family is one variable-rate model (gained.py): its continuous rate parameter t is the codec's knob,
searched like any other for `-q 50x` or `-q 48dB`, and stored in the header (`rate`). The header names the model
and its sha256; decoding with a missing or different model is refused. Files of the earlier fixed-rate models
(no `rate`) decode as before. torch loads only when this codec is used.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
from importlib import import_module

import msgpack
import numpy as np

from ...errors import MzcError
from ..base import Codec, Prepared, Tunable
from ..registry import register

ANCHORS = 8  # zoo.ANCHORS, repeated here so that the class can state its knob range without importing the zoo
REFINE_STEPS = 40  # refine.REFINE_STEPS (kept here: choosing it must not import torch)
DEFAULT_TILE = 1024
DEFAULT_HALO = 64
SHA256 = re.compile(r"[0-9a-f]{64}")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
OUT_OF_MEMORY = re.compile(r"failed to map segment|cannot allocate memory|out of memory", re.I)  # dlopen, errno


def require_torch() -> None:
    """torch and CompressAI loaded; a missing package asks for the install, any other failure says what it was."""
    try:
        import_module(f"{__package__}.architectures")  # torch and compressai, quietly
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in ("torch", "compressai"):
            raise MzcError(f"PyTorch or CompressAI could not be loaded: {exc}") from None
        from ...extras import install_hint
        raise MzcError(f"learned models need PyTorch and CompressAI: {install_hint('learned')}") from None
    except (ImportError, OSError, MemoryError) as exc:  # installed, but a library did not load (memory, a bad .so)
        text = f"{type(exc).__name__}: {exc}"
        short = "out of memory" if isinstance(exc, MemoryError) or OUT_OF_MEMORY.search(text) else "an error"
        raise MzcError(f"PyTorch or CompressAI could not be loaded ({short}: {text})") from None


def sandbox_setup() -> None:
    """A learned decoder's sandbox (a fresh process: torch must not run in a fork) loads torch, CompressAI and the
    coder before any job, so the job's memory limit counts the decode, not libtorch's mappings."""
    require_torch()
    from . import coding  # noqa: F401 - the plane coders' module, loaded here rather than in the first job


def plane_coder(name: str, sha256: str | None, tile: int, halo: int):
    """The model called `name`, hash-checked, wrapped for coding: (PlaneCoder, sha256, arch), cached per file state."""
    from . import zoo
    require_torch()
    entry = zoo.find(name)
    try:
        st = os.stat(entry.path)
    except OSError as exc:
        raise MzcError(f"model {name!r}: {exc.strerror}: {entry.path}") from None
    return _load(entry, st.st_mtime_ns, st.st_size, sha256, tile, halo)


@functools.lru_cache(maxsize=4)
def _load(entry, mtime_ns: int, size: int, sha256: str | None, tile: int, halo: int):
    """Read the file once, hash those bytes and load those bytes (no window for the file to change in between)."""
    import io
    import multiprocessing

    import torch

    from .coding import PlaneCoder
    from .modelfile import net_from, read
    with open(entry.path, "rb") as fh:
        data = fh.read()
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise MzcError(f"model {entry.name!r} at {entry.path} has sha256 {actual[:16]}..., but this file was coded "
                       f"with {sha256[:16]}...: a different model cannot decode it")
    if entry.sha256 is not None and actual != entry.sha256:
        raise MzcError(f"shipped model {entry.name!r} is damaged: sha256 {actual[:16]}... does not match the manifest")
    if multiprocessing.parent_process() is not None:
        torch.set_num_threads(1)  # a pool worker: the pool already uses every core
    blob = read(io.BytesIO(data), entry.path)
    net = net_from(blob, entry.path)
    if getattr(net, "prior_kind", None) == "wavelet":  # the learned wavelet codes whole planes (lifting_coding.py)
        from .lifting_coding import WaveletCoder
        return WaveletCoder(net, tile, halo), actual, blob["arch"]
    return PlaneCoder(net, tile, halo), actual, blob["arch"]


def _number(value, kind: type, what: str):
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise MzcError(f"corrupt header: learned {what} must be {'a number' if kind is float else 'an integer'}")
    if kind is float and not math.isfinite(value):
        raise MzcError(f"corrupt header: learned {what} is not finite")
    return kind(value)


@register
class Learned(Tunable, Prepared, Codec):
    id = "learned"
    # CompressAI's rANS decoder is C++ fed the file's bytes: sandboxed, in a fresh process (torch cannot run in a
    # fork: OpenMP; and libtorch does not map under the sandbox's memory limit)
    runtime = f"{__name__}:sandbox_setup"
    decode_seconds = 1e-4  # a network on one core: 8.4 s per megapixel measured on a loaded 2-core machine, x12
    decode_bytes = 1024  # model and activations: +615 MB mapped for a 1.2 MP plane on 2 threads (271 on one), x2
    what = "learned (CompressAI family, single channel, one variable-rate model per family): learned:FAMILY, or " \
           "learned:MODEL"
    grey_only = True
    default_quality = "50x"  # a ratio every family reaches (a PSNR default could be out of a family's range)
    knob_bounds = (0.0, float(ANCHORS - 1))  # the variable-rate models' rate parameter t
    ratio_tolerance = 0.05  # a continuous rate: -q Nx lands within 5% of N

    def __init__(self, model: str | None = None, family: str | None = None, sha256: str | None = None,
                 arch: str | None = None, offset: float | None = None, scale: float | None = None,
                 tile: int = DEFAULT_TILE, halo: int = DEFAULT_HALO, rate: float | None = None,
                 knob: float | None = None, refine: int = 0):
        from . import zoo
        if model is None and family is None:
            family = zoo.DEFAULT_FAMILY
        if model is None:  # a family names its variable-rate model (shipped: its hash is known, every use checked)
            entry = zoo.family_model(family)
            model, sha256, arch = entry.name, entry.sha256, entry.arch
        for value, what in ((model, "model"), (family, "family"), (arch, "arch")):
            if value is not None and not isinstance(value, str):
                raise MzcError(f"corrupt header: learned {what} must be a string")
        if sha256 is not None and not (isinstance(sha256, str) and SHA256.fullmatch(sha256)):
            raise MzcError("corrupt header: learned sha256 must be 64 hex digits")
        tile, halo = _number(tile, int, "tile"), _number(halo, int, "halo")
        offset = None if offset is None else _number(offset, float, "offset")
        scale = None if scale is None else _number(scale, float, "scale")
        rate = _number(knob if knob is not None else rate, float, "rate") if (knob, rate) != (None, None) else None
        if not (64 <= tile <= 8192 and tile % 64 == 0 and 0 <= halo <= 512 and halo % 16 == 0):
            raise MzcError("corrupt header: learned tile must be a multiple of 64 in 64..8192 and halo a multiple of "
                           "16 in 0..512")
        if scale is not None and not scale > 0:
            raise MzcError("corrupt header: learned scale must be > 0")
        if rate is not None and not self.knob_bounds[0] <= rate <= self.knob_bounds[1]:
            raise MzcError(f"corrupt header: learned rate {rate} outside {self.knob_bounds}")
        refine = _number(refine, int, "refine")  # encoder-side latent search steps (not needed to decode)
        if not 0 <= refine <= 10000:
            raise MzcError("corrupt header: learned refine steps outside 0..10000")
        config = {"model": model, "family": family, "sha256": sha256, "arch": arch, "offset": offset,
                  "scale": scale, "tile": tile, "halo": halo, "rate": rate, "refine": refine or None}
        super().__init__(**{k: v for k, v in config.items() if v is not None})
        self.model, self.family, self.sha256, self.arch = model, family, sha256, arch
        self.offset, self.scale, self.tile, self.halo, self.rate = offset, scale, tile, halo, rate
        self.refine = refine

    @classmethod
    def named(cls, variant: str, request) -> "Learned":
        from . import zoo
        refine = REFINE_STEPS if request.effort == "max" else 0  # --effort max: encoder-side latent search
        if not variant or variant in zoo.FAMILY_NAMES or variant in zoo.VARIABLE_RATE_FAMILIES \
                or f"{variant}-vr" in zoo.VARIABLE_RATE_FAMILIES:
            return cls(family=variant or zoo.DEFAULT_FAMILY, refine=refine)
        codec = cls(model=variant, refine=refine)
        if request.quality and codec.fixed_rate:
            raise MzcError(f"--codec learned:{variant} is a fixed-rate model; -q needs a variable-rate one "
                           f"(e.g. --codec learned:{zoo.DEFAULT_FAMILY} -q 50x)")
        return codec

    @classmethod
    def variants(cls) -> str:
        return "learned[:FAMILY|:MODEL]"

    @property
    def fixed_rate(self) -> bool:
        """A fixed-rate model (the earlier zoo's, or a user's): its rate is what it is."""
        from . import zoo
        arch = self.arch or zoo.find(self.model).arch or plane_coder(self.model, self.sha256, self.tile,
                                                                     self.halo)[2]
        return not zoo.is_variable_rate(arch)

    def for_search(self) -> "Learned":
        """Rate search without the encoder-side latent refinement (40 network passes a trial); the refined file's
        ratio is checked and the budget corrected like any other."""
        return self._replace(refine=0) if self.refine else self

    def prepare(self, stats) -> "Learned":
        """The file's value mapping, and the model pinned (a path becomes its name and hash) before any trial."""
        lo, hi = float(stats.min), float(stats.max)
        return self._replace(offset=lo, scale=max(hi - lo, 1.0)).bind()

    def with_knob(self, knob: float) -> "Learned":
        return self._replace(rate=float(knob))

    def _replace(self, **changes) -> "Learned":
        config = dict(self._config)
        config.update(changes)
        return Learned(**{k: v for k, v in config.items() if v is not None})

    def bind(self) -> "Learned":
        """Pin the model's sha256 and architecture into the configuration that goes into the header."""
        from . import zoo
        entry = zoo.find(self.model)
        if entry.sha256 is None:  # a user's model given by path: record its name, find it by name from now on
            zoo.add_search_dir(os.path.dirname(os.path.abspath(entry.path)))
        _, sha, arch = plane_coder(entry.name, self.sha256, self.tile, self.halo)
        config = dict(self._config, model=entry.name, sha256=sha, arch=arch)
        config.pop("family", None)
        return Learned(**config)

    # -------------------------------------------------------------- coding
    def _coder(self):
        if self.model is None or self.offset is None or self.scale is None:
            raise MzcError("corrupt header: learned codec without model or value mapping")
        return plane_coder(self.model, self.sha256, self.tile, self.halo)[0]

    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        coder = self._coder()
        planes = block.reshape(-1, *block.shape[-2:]) if block.ndim >= 2 else block.reshape(1, 1, -1)
        out = []
        for plane in planes:
            x01 = (plane.astype(np.float32) - np.float32(self.offset)) / np.float32(self.scale)
            records, _ = coder.encode(np.clip(x01, 0, 1), reconstruct=False, rate=self.rate,
                                      refine_steps=self.refine)
            out.append(records)
        return msgpack.packb(out, use_bin_type=True), {}

    def decode(self, body, shape, dtype, params) -> np.ndarray:
        if self.sha256 is None or self.model is None or not MODEL_NAME.fullmatch(self.model):
            raise MzcError("corrupt header: a learned file must name its model (a plain name) and its sha256")
        coder = self._coder()
        dtype = np.dtype(dtype)
        plane_shape = tuple(shape[-2:]) if len(shape) >= 2 else (1, int(shape[0]))
        n = int(np.prod(shape)) // max(int(np.prod(plane_shape)), 1)
        try:
            planes = msgpack.unpackb(bytes(body), raw=False, strict_map_key=True)
        except Exception:  # noqa: BLE001 - msgpack raises several unrelated types
            raise MzcError("corrupt chunk: learned payload is not msgpack") from None
        if not isinstance(planes, list) or len(planes) != n:
            raise MzcError(f"corrupt chunk: learned payload holds {len(planes) if isinstance(planes, list) else '?'} "
                           f"planes, expected {n}")
        info = np.iinfo(dtype)
        out = np.empty((n, *plane_shape), dtype)
        for k, records in enumerate(planes):
            if not isinstance(records, list):
                raise MzcError("corrupt chunk: malformed learned plane")
            x01 = coder.decode(records, *plane_shape, rate=self.rate)
            values = np.rint(x01.astype(np.float64) * self.scale + self.offset)
            out[k] = np.clip(values, info.min, info.max).astype(dtype)
        return out.reshape(shape)
