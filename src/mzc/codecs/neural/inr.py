"""INR codec: each chunk is a neural field fitted to its pixels; the chunk's bytes are the quantized weights.

A chunk is a 2-D plane, or a native 3-D volume when it spans several planes (its leading axes fold into depth).
The size is set by a byte budget per element (`bpe`, from `-q Nx`), which the fit meets exactly by choosing its
quantization step; `net` picks the fast multi-resolution grid or the INIF-faithful SIREN. Any region decodes from
only the parameters around it, at any scale (resample.py's convention). Fitting needs PyTorch; decoding numpy.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import MzcError
from ..base import Budgeted, Codec, RegionDecoder, constant_chunk, constant_value
from ..registry import register
from .field import NETS, evaluate, to_values, unpack

# default fitting time when the user gives no --time-budget: it scales with the data (measured on 2 cores: a
# 26x512x512 stack at 512x fits in ~100 s, and the whole encode stays under 3 minutes), at least 20 s a chunk
SECONDS_PER_MEGAVOXEL = 15.0
MIN_FIT_SECONDS = 20.0
MIN_BODY_BYTES = 160  # below this even the smallest network does not fit: a ratio too high for the chunk


def field_extent(shape: tuple[int, ...]) -> tuple[int, ...]:
    """(H, W) for a plane, (D, H, W) when the chunk spans several planes (leading axes folded into D)."""
    if len(shape) == 1:
        return (1, int(shape[0]))
    depth = math.prod(shape[:-2])
    return (int(shape[-2]), int(shape[-1])) if depth == 1 else (int(depth), int(shape[-2]), int(shape[-1]))


def field_positions(shape: tuple[int, ...], positions: list[np.ndarray]) -> list[np.ndarray]:
    """Per-axis chunk coordinates -> the field's axes (leading integer coordinates folded into a depth index)."""
    if len(shape) == 1:
        return [np.zeros(1, np.float32), positions[0]]
    extent = field_extent(shape)
    if len(extent) == 2:
        return list(positions[-2:])
    lead = [p.astype(np.int64) for p in positions[:-2]]
    mesh = np.meshgrid(*lead, indexing="ij")
    depth = np.ravel_multi_index([m.reshape(-1) for m in mesh], shape[:-2]).astype(np.float32)
    return [depth, positions[-2], positions[-1]]


def every_pixel(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Sample coordinates of every pixel of a chunk: a full decode is a region decode of the whole chunk."""
    return [np.arange(n, dtype=np.float32) for n in shape]


def chunk_bounds(block: np.ndarray) -> tuple[float, float]:
    lo, hi = float(block.min()), float(block.max())
    return lo, max(hi - lo, 1.0)


def check_share(budget: float, pixels: int) -> None:
    if budget < MIN_BODY_BYTES:
        raise MzcError(f"the ratio is too high for a chunk of {pixels} pixels: its share is {budget:.0f} bytes, a "
                       f"field needs at least {MIN_BODY_BYTES} (use larger chunks or a lower ratio)")


@register
class Inr(Budgeted, RegionDecoder, Codec):
    id = "inr"
    native = False  # numpy only: decodes in the reader's process, no sandbox needed
    what = "neural field per chunk (multi-resolution grid; inr:siren: INIF-faithful sine MLP), sized by -q Nx"
    grey_only = True

    def __init__(self, net: str = "grid", bpe: float | None = None, steps: int | None = None,
                 seconds_per_element: float | None = None, guide: str | None = None, seed: int = 0):
        if net not in NETS:
            raise MzcError(f"corrupt header: unknown inr network {net!r}")
        for value, what in ((bpe, "bpe"), (seconds_per_element, "seconds_per_element")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value) or value <= 0):
                raise MzcError(f"corrupt header: inr {what} must be a positive number")
        config = {"net": net, "bpe": bpe, "steps": steps, "seconds_per_element": seconds_per_element,
                  "guide": guide, "seed": seed}
        super().__init__(**{k: v for k, v in config.items() if v is not None})
        self.net, self.bpe, self.steps = net, bpe, steps
        self.seconds_per_element, self.guide, self.seed = seconds_per_element, guide, seed

    @classmethod
    def named(cls, variant: str, request) -> "Inr":
        from .guidance import check_guide
        net = variant or "grid"
        if net not in NETS:
            raise MzcError(f"--codec inr:{variant}: choose a network from {', '.join(NETS)}")
        check_guide(request.guide)
        return cls(net=net, guide=request.guide)

    @classmethod
    def variants(cls) -> str:
        return "inr[:siren]"

    @property
    def reproducible(self) -> bool:
        return self.net != "siren"  # sin() rounds differently across CPUs: +-1 grey level (spec section 6.3)

    def check_budget(self, bpe: float, chunk_elements: int) -> None:
        check_share(bpe * chunk_elements, chunk_elements)

    def warm_up(self) -> None:
        from .field_fit import warm_up
        warm_up()

    def with_budget(self, bpe: float, seconds_per_element: float | None = None) -> "Inr":
        config = dict(self._config, bpe=float(bpe))
        if seconds_per_element:
            config["seconds_per_element"] = float(seconds_per_element)
        return type(self)(**config)

    def config(self) -> dict:
        return {"id": self.id, **self._config}

    def config_items(self) -> dict:
        return dict(self._config)

    # -------------------------------------------------------------- coding
    def encode(self, block: np.ndarray) -> tuple[bytes, dict]:
        const = constant_chunk(block)
        if const is not None:
            return const
        return self.fit_values(block.reshape(field_extent(block.shape)).astype(np.float32),
                               *chunk_bounds(block), self.bpe * block.size, weights_of=block), {}

    def fit_values(self, values: np.ndarray, lo: float, span: float, budget: float, weights_of=None) -> bytes:
        """Fit a field to float values (already shaped as its extent) within `budget` bytes."""
        from . import guidance
        from .field_fit import FitOptions, fit
        if self.bpe is None:
            raise MzcError("inr codec: no byte budget (give -q Nx)")
        check_share(budget, values.size)
        u = (values - np.float32(lo)) / np.float32(span)
        w = None
        if self.guide is not None and weights_of is not None:
            w = guidance.weights(weights_of.reshape(values.shape), self.guide)
        seconds = self.seconds_per_element * values.size if self.seconds_per_element else \
            max(MIN_FIT_SECONDS, SECONDS_PER_MEGAVOXEL * values.size / 1e6)
        return fit(u, FitOptions(budget, self.net, self.steps, seconds, w, self.seed), lo, span)

    def decode(self, body, shape, dtype, params) -> np.ndarray:
        return self.decode_at(body, shape, dtype, params, every_pixel(shape))

    def decode_at(self, body, shape, dtype, params, positions: list[np.ndarray]) -> np.ndarray:
        dtype = np.dtype(dtype)
        out_shape = tuple(len(p) for p in positions)
        const = constant_value(body, params, out_shape, dtype)
        if const is not None:
            return const
        f = unpack(body, field_extent(shape))
        u = evaluate(f, field_positions(shape, positions))
        return to_values(u, f, dtype).reshape(out_shape)
