"""The one planner: request + data type -> which codec, in which mode, aiming at what; + data -> the bound.

Used alike by the file encoder (data: the whole file), the stack writer (the first frame) and the Zarr codec (each
chunk). Everything it knows about codecs it asks the registry, by capability: nothing here names a codec.

Modes:
- EXACT: the Exact codec (`--lossless`, or no -q and no bound);
- MAX_ERROR: the MaxErrorCoder (`--max-error E` alone);
- WITHIN_NOISE: the NoiseCoder (`--noise K` alone);
- BASE_AND_RESIDUAL: a named lossy codec as the base of the BoundWrapper (`--codec C --max-error E` or `--noise K`);
- LOSSY: a named Tunable or Budgeted codec, or `auto` choosing among the AutoCandidates, at a target.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ..bounds.bound import Bound
from ..bounds.noise_model import fit as fit_noise
from ..bounds.noise_model import parse_model
from ..codecs import registry
from ..codecs.base import (
    AutoCandidate,
    BoundWrapper,
    Budgeted,
    Codec,
    Exact,
    MaxErrorCoder,
    NoiseCoder,
    RatePoints,
    Tunable,
)
from ..errors import MzcError
from ..targets import Target, parse_quality
from ..tiling import default_chunks
from .request import EncodeRequest

EXACT, MAX_ERROR, WITHIN_NOISE, BASE_AND_RESIDUAL, LOSSY = "exact", "max_error", "within_noise", \
    "base_and_residual", "lossy"


@dataclass
class Plan:
    mode: str  # EXACT | MAX_ERROR | WITHIN_NOISE | BASE_AND_RESIDUAL | LOSSY
    codec: Codec | None  # the named codec (the base when bounded); None: auto or a role codec
    target: Target | None  # what rate control aims at (None: the codec's fixed setting / the smallest bounded file)
    request: EncodeRequest

    @property
    def candidates(self) -> list[Codec]:
        """The lossy codecs rate control tries: the named one, or every AutoCandidate."""
        if self.codec is not None:
            return [self.codec]
        return [cls() for cls in registry.providing(AutoCandidate)]

    @property
    def guaranteed(self) -> bool:
        """A bound is promised: every chunk is decoded back and checked, whatever --no-check says."""
        return self.mode in (MAX_ERROR, WITHIN_NOISE, BASE_AND_RESIDUAL)

    @property
    def bounds_data(self) -> bool:
        """The bound's bin tables come from the data (its range, its fitted noise)."""
        return self.mode in (WITHIN_NOISE, BASE_AND_RESIDUAL)

    @property
    def budgeted(self) -> bool:
        return isinstance(self.codec, Budgeted)

    def chunk_layout(self, shape: tuple[int, ...], axes: str) -> tuple[int, ...]:
        """Default chunks: the named codec's (volumes for neural fields and SPERR), else 2-D tiles."""
        if self.codec is not None:
            return type(self.codec).chunk_layout(shape, axes)
        return default_chunks(shape, axes)

    def bound(self, lo: int, hi: int, dtype: np.dtype, channel_planes: Callable[[int], Iterable[np.ndarray]],
              n_channels: int) -> Bound | None:
        """The guarantee asked for, with its bin tables (the data's range [lo, hi] and, for --noise without a
        calibrated model, one fitted model per channel)."""
        request = self.request
        if self.mode == WITHIN_NOISE or (self.mode == BASE_AND_RESIDUAL and request.noise is not None):
            if request.noise_model is not None:
                models = [parse_model(request.noise_model)]
            else:
                # blocks touching the data's floor or ceiling (zeros, saturation) have truncated noise
                models = [fit_noise(channel_planes(c), (lo, hi)) for c in range(n_channels)]
            return Bound.noise(request.noise, models, lo, hi)
        if self.mode == BASE_AND_RESIDUAL:
            return Bound.absolute(clamped_error(request.max_error, dtype), lo, hi)
        return None


def clamped_error(max_error: float, dtype: np.dtype) -> int:
    """Integer data: |error| <= 2.5 is |error| <= 2; beyond the dtype's range every bound is the same."""
    return int(min(max_error, np.iinfo(dtype).max))


def plan(request: EncodeRequest, dtype: np.dtype, axes: str) -> Plan:
    """Decide the mode and codec for data of this dtype and axes (before any pixel is read)."""
    named_cls, variant = (None, "") if request.codec == registry.AUTO else registry.lookup(request.codec)
    mode = _mode(request, named_cls)
    if mode == BASE_AND_RESIDUAL:
        return _bounded(request, named_cls, variant, dtype, axes)
    if request.guide is not None or request.time_budget is not None:
        if not (mode == LOSSY and named_cls is not None and issubclass(named_cls, Budgeted)):
            fields_ = ", ".join(c.variants() for c in registry.providing(Budgeted))
            raise MzcError(f"--guide and --time-budget apply to the neural-field codecs ({fields_})")
    if mode == EXACT:
        registry.role(Exact).accepts(dtype, axes)
        return Plan(mode, None, None, request)
    if mode == MAX_ERROR:
        registry.role(MaxErrorCoder).accepts(dtype, axes)
        if request.quality:
            raise MzcError("-q and --max-error are alternatives: give one")
        if np.dtype(dtype).kind != "u":
            raise MzcError(f"--max-error needs unsigned integer data, not {np.dtype(dtype).name}")
        return Plan(mode, None, None, request)
    if mode == WITHIN_NOISE:
        if request.quality:
            raise MzcError(f"--noise K fixes the quality: -q applies only to a lossy base (e.g. --codec "
                           f"{_example_base()})")
        _bound_accepts(registry.role(NoiseCoder), dtype, axes, "--noise")
        return Plan(mode, None, None, request)
    return _lossy(request, named_cls, variant, dtype, axes)


def _mode(request: EncodeRequest, named) -> str:
    role_named = named is not None and registry.is_role(named)
    if named is not None and issubclass(named, BoundWrapper):
        raise MzcError(f"--codec {named.id} is not a codec to name: give the lossy base and the bound "
                       f"(e.g. --codec {_example_base()} --max-error 4)")
    if request.noise is not None:
        return WITHIN_NOISE if named is None or issubclass(named, NoiseCoder) else BASE_AND_RESIDUAL
    if named is not None and issubclass(named, NoiseCoder):
        raise MzcError(f"--codec {named.id} needs --noise K")
    if request.max_error is not None and named is not None and not role_named and not request.lossless:
        return BASE_AND_RESIDUAL
    if request.lossless or (named is not None and issubclass(named, Exact)):
        if request.quality or request.max_error is not None:
            raise MzcError("--lossless cannot be combined with -q or --max-error")
        return EXACT
    if request.max_error is not None:
        return MAX_ERROR
    if named is not None and issubclass(named, MaxErrorCoder):
        raise MzcError(f"--codec {named.id} needs --max-error E")
    if request.quality is None and request.knob is None and named is None:
        return EXACT
    return LOSSY


def _example_base() -> str:
    return registry.providing(AutoCandidate)[0].id


def _bound_accepts(cls, dtype, axes, what: str) -> None:
    """The bound's own dtype rule, stated in the option's words (the bin tables are for 8/16-bit grey data)."""
    try:
        cls.accepts(dtype, axes)
    except MzcError:
        if np.dtype(dtype).str not in ("|u1", "<u2"):
            raise MzcError(f"{what} takes uint8/uint16 data, not {np.dtype(dtype).name}") from None
        raise MzcError(f"{what} codes grey planes; this file has interleaved samples (RGB)") from None


def _bounded(request: EncodeRequest, named, variant: str, dtype, axes) -> Plan:
    """A lossy base inside the BoundWrapper: its -q is the base's target; without one, rate control picks the base
    quality that makes the smallest file."""
    what = "--noise" if request.noise is not None else "--max-error"
    _bound_accepts(registry.role(BoundWrapper), dtype, axes, what)
    base = _lossy(EncodeRequest(codec=request.codec, quality=request.quality, guide=request.guide,
                                time_budget=request.time_budget), named, variant, dtype, axes)
    if not base.codec.reproducible:
        raise MzcError(f"--codec {request.codec} cannot carry an error bound: its decoder is not bit-identical "
                       "across machines (use inr or hybrid)")
    target = base.target if request.quality or base.budgeted else None
    return Plan(BASE_AND_RESIDUAL, base.codec, target, request)


def _lossy(request: EncodeRequest, named, variant: str, dtype, axes) -> Plan:
    try:
        return _lossy_plan(request, named, variant, dtype, axes)
    except MzcError as exc:
        if "data, not" in str(exc) and registry.role(Exact).dtypes >= {np.dtype(dtype).str}:
            raise MzcError(f"{exc} (use --lossless)") from None
        raise


def _lossy_plan(request: EncodeRequest, named, variant: str, dtype, axes) -> Plan:
    if named is None:
        candidates = registry.providing(AutoCandidate)
        if not candidates:
            raise MzcError("no codec is installed for --codec auto -q")
        for cls in candidates:
            cls.accepts(dtype, axes)
        return Plan(LOSSY, None, parse_quality(request.quality), request)
    if not issubclass(named, (Tunable, Budgeted)):
        raise MzcError(f"--codec {named.id} has no quality setting to aim at -q")
    codec = named.named(variant, request)
    codec.accepts(dtype, axes)
    if isinstance(codec, Budgeted):
        target = parse_quality(request.quality or codec.default_quality)
        if target.kind != "ratio":
            raise MzcError(f"--codec {request.codec} is sized by its file: give a ratio like -q 512x, not a PSNR")
        return Plan(LOSSY, codec, target, request)
    if request.knob is not None:
        if codec.fixed_rate:
            raise MzcError(f"--codec {request.codec} has a fixed rate: no knob to set")
        if isinstance(codec, RatePoints) and request.knob not in codec.knob_values():
            raise MzcError(f"knob {request.knob} is not one of {request.codec}'s rate points {codec.knob_values()}")
        return Plan(LOSSY, codec.with_knob(request.knob), None, request)
    if codec.fixed_rate:
        return Plan(LOSSY, codec, None, request)
    return Plan(LOSSY, codec, parse_quality(request.quality or codec.default_quality), request)


def chunks_hold_one_channel(chunks: tuple[int, ...], axes: str) -> bool:
    return "C" not in axes or chunks[axes.index("C")] == 1


def check_noise_chunks(plan_: Plan, chunks: tuple[int, ...], axes: str) -> None:
    if plan_.request.noise is not None and not chunks_hold_one_channel(chunks, axes):
        raise MzcError("--noise fits one model per channel: chunks must hold one channel (1 on C in --chunk)")


def channel_count(shape: tuple[int, ...], axes: str) -> int:
    return shape[axes.index("C")] if "C" in axes else 1
