"""Rendering at another scale: where each output pixel samples the original, and linear resampling of decoded data.

Convention (spec/FORMAT.md section 8): along an axis of n pixels rendered as m = max(1, round(n * scale)) pixels,
output pixel j samples the original at pixel coordinate u = (j + 0.5) * n / m - 0.5 (pixel centres aligned, as
`align_corners=False`), so scale 1 samples the pixels themselves and scale 0.5 the midpoint of each pixel pair.
Only the Y and X axes are scaled.
"""
from __future__ import annotations

import numpy as np

from .errors import MzcError

MIN_SCALE, MAX_SCALE = 1 / 64, 16.0


def scaled_length(n: int, scale: float) -> int:
    return max(1, int(round(n * scale)))


def check_scale(scale: float) -> float:
    if not (isinstance(scale, (int, float)) and MIN_SCALE <= scale <= MAX_SCALE):
        raise MzcError(f"--scale must be between 1/64 and 16, got {scale!r}")
    return float(scale)


def sample_positions(n: int, m: int, start: int, stop: int) -> np.ndarray:
    """Original pixel coordinates of output pixels start..stop-1 of an m-pixel rendering of an n-pixel axis."""
    if m == n:
        return np.arange(start, stop, dtype=np.float32)
    j = np.arange(start, stop, dtype=np.float64)
    return ((j + 0.5) * (n / m) - 0.5).astype(np.float32)


def is_integral(pos: np.ndarray) -> bool:
    return bool(np.all(pos == np.floor(pos)))


def resample(block: np.ndarray, positions: list[np.ndarray]) -> np.ndarray:
    """Sample a decoded block at per-axis pixel coordinates: integer coordinates index, others interpolate linearly
    (clamped at the block's edges); interpolated values are rounded back to the block's integer dtype."""
    out = block
    interpolated = False
    for axis, pos in enumerate(positions):
        n = out.shape[axis]
        if is_integral(pos):
            idx = pos.astype(np.intp)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise MzcError("internal error: sample outside the chunk")
            out = np.take(out, idx, axis=axis)
            continue
        if not interpolated:
            out = out.astype(np.float32)
            interpolated = True
        p = np.clip(pos.astype(np.float32), 0, n - 1)
        i0 = np.clip(np.floor(p), 0, max(n - 2, 0)).astype(np.intp)
        i1 = np.minimum(i0 + 1, n - 1)
        t = (p - i0.astype(np.float32)).reshape([-1 if k == axis else 1 for k in range(out.ndim)])
        out = np.take(out, i0, axis=axis) * (np.float32(1) - t) + np.take(out, i1, axis=axis) * t
    if interpolated and block.dtype.kind in "ui":
        info = np.iinfo(block.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(block.dtype)
    return out.astype(block.dtype, copy=False)
