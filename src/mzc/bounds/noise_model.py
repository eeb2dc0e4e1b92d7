"""The Poisson-Gaussian noise model Var(x) = a*x + b, fitted from the data itself, and its variance-stabilizing
(generalized Anscombe) transform.

Photon shot noise makes every pixel uncertain by sigma(x) = sqrt(a*x + b) (a: gain in ADU per photo-electron, b: read
noise and offset); changes below that are invisible to any measurement. The fit works on one acquisition without
calibration frames: a pseudo-residual that cancels smooth signal (a 4-neighbour Laplacian scaled to unit noise gain),
a robust variance on 8x8 blocks (MAD, so edges inside a block count little), the blocks' variances binned by their
mean intensity and a line through the bins' lower quartiles by Theil-Sen (textured blocks only ever raise a bin's
variance, so its low quartile tracks the noise). The fit is checked the way the literature does: in the transformed
domain the same residual should have unit standard deviation (`gat_std`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..errors import MzcError

BLOCK = 8
BINS = 32
MIN_BLOCKS_PER_BIN = 8
MIN_BLOCKS = 16  # a fit needs at least this many unclipped 8x8 blocks (a 42x42 crop has 25)
MAX_FIT_PIXELS = 8 << 20
LAPLACE_GAIN = math.sqrt(20.0)  # 4x - (4 neighbours): Var = (16 + 4) Var(x) for independent noise
LOW_QUANTILE = 0.25
# the lower quartile of a block's MAD-based variance sits below its mean; calibrated on pure Gaussian noise
# (8x8 blocks of the Laplacian residual): quartile / true variance
QUARTILE_BIAS = 0.79


@dataclass(frozen=True)
class NoiseModel:
    a: float  # variance per unit of signal (camera gain)
    b: float  # variance at zero signal (read noise, offset folded in; may be negative)
    gat_std: float | None = None  # residual std in the stabilized domain after the fit (1.0 = ideal)
    source: str = "fitted"  # or "given" (--noise-model)

    def variance(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(self.a * np.asarray(x, np.float64) + self.b, 0.0)

    def sigma(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(self.variance(x))

    def stabilize(self, x: np.ndarray) -> np.ndarray:
        """Generalized Anscombe transform: noise of unit variance whatever the signal level."""
        x = np.asarray(x, np.float64)
        if self.a <= 0:
            return x / math.sqrt(max(self.b, 1e-12))
        return 2.0 / self.a * np.sqrt(np.maximum(self.a * x + 0.375 * self.a ** 2 + self.b, 0.0))

    def as_dict(self) -> dict:
        out = {"a": float(self.a), "b": float(self.b), "source": self.source}
        if self.gat_std is not None:
            out["gat_std"] = round(float(self.gat_std), 4)
        return out

    @classmethod
    def from_dict(cls, d) -> "NoiseModel":
        try:
            a, b = float(d["a"]), float(d["b"])
        except (TypeError, KeyError, ValueError):
            raise MzcError("corrupt header: bad noise model") from None
        check_model(a, b)
        return cls(a, b, d.get("gat_std"), str(d.get("source", "fitted")))


def check_model(a: float, b: float) -> None:
    if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or (a == 0 and b <= 0):
        raise MzcError(f"noise model a={a:g}, b={b:g} is not a variance (need a >= 0, finite, and a > 0 or b > 0)")


def parse_model(text: str) -> NoiseModel:
    """`--noise-model a,b`: a calibrated camera model, Var = a*x + b in the file's units."""
    parts = text.replace(" ", "").split(",")
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise MzcError(f"--noise-model takes 'a,b' (Var = a*x + b), got {text!r}") from None
    check_model(a, b)
    return NoiseModel(a, b, None, "given")


def pseudo_residual(plane: np.ndarray) -> np.ndarray:
    """x minus the mean of its 4 neighbours, scaled so independent noise keeps its variance (interior pixels)."""
    x = plane.astype(np.float64)
    r = 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    return r / LAPLACE_GAIN


def block_stats(plane: np.ndarray, clipped: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per 8x8 block of the interior: mean intensity and robust noise variance; blocks touching a clipped value
    (zero floor, saturation) are dropped, their noise is truncated."""
    if min(plane.shape) < BLOCK + 2:
        return np.empty(0), np.empty(0)
    r = pseudo_residual(plane)
    m = plane[1:-1, 1:-1].astype(np.float64)
    h, w = (r.shape[0] // BLOCK) * BLOCK, (r.shape[1] // BLOCK) * BLOCK

    def blocks(a):
        return a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK * BLOCK)

    rb, mb = blocks(r), blocks(m)
    keep = ~((mb <= clipped[0]) | (mb >= clipped[1])).any(axis=1)
    rb, mb = rb[keep], mb[keep]
    mad = np.median(np.abs(rb - np.median(rb, axis=1, keepdims=True)), axis=1)
    return mb.mean(axis=1), (1.4826 * mad) ** 2


def fit(planes: Iterable[np.ndarray], clipped: tuple[float, float]) -> NoiseModel:
    """Fit Var = a*mean + b from 2-D planes of one channel. `clipped`: values at which the sensor or a processing
    step clipped (the dtype's limits), excluded from the fit."""
    means, variances, used = [], [], 0
    for plane in planes:
        if used >= MAX_FIT_PIXELS:
            break
        m, v = block_stats(np.asarray(plane), clipped)
        means.append(m)
        variances.append(v)
        used += plane.size
    mean = np.concatenate(means) if means else np.empty(0)
    var = np.concatenate(variances) if variances else np.empty(0)
    if mean.size < MIN_BLOCKS:
        raise MzcError(f"too little unclipped data to fit a noise model ({mean.size} blocks of 8x8 pixels, at "
                       f"least {MIN_BLOCKS} needed): give one with --noise-model a,b")
    a, b = _line(*_bin_points(mean, var), mean, var)
    model = NoiseModel(a, b)
    return NoiseModel(a, b, stabilized_std(model, mean, var), "fitted")


def _bin_points(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blocks binned by mean intensity (as many bins as hold MIN_BLOCKS_PER_BIN each, at most BINS): each bin's
    median intensity and bias-corrected low-quartile variance. Small crops get fewer, fuller bins."""
    bins = int(np.clip(mean.size // MIN_BLOCKS_PER_BIN, 1, BINS))
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, max(len(edges) - 2, 0))
    xs, ys = [], []
    for k in range(max(len(edges) - 1, 1)):
        sel = which == k
        if sel.sum() >= MIN_BLOCKS_PER_BIN // 2:
            xs.append(np.median(mean[sel]))
            ys.append(np.quantile(var[sel], LOW_QUANTILE) / QUARTILE_BIAS)
    return np.asarray(xs), np.asarray(ys)


def _line(xs: np.ndarray, ys: np.ndarray, mean: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """Var = a x + b through the bins (Theil-Sen); without a usable slope, read noise alone (b) from the darkest
    quarter of the blocks, which is what bounds the error where the signal is low."""
    a, b = 0.0, 0.0
    if xs.size >= 2 and np.ptp(xs) > 0:
        from scipy import stats  # only the encoder fits; decoding stays free of scipy.stats' array-API imports
        a, b = (float(v) for v in stats.theilslopes(ys, xs)[:2])
    if a > 0.0 and np.isfinite(a) and np.isfinite(b):
        return a, b
    dark = var[mean <= np.quantile(mean, 0.25)]
    b = float(np.median(dark[dark > 0])) if np.any(dark > 0) else 0.0
    if not b > 0:
        raise MzcError("the data show no noise to fit (constant, synthetic or too few grey levels): give a model "
                       "with --noise-model a,b")
    return 0.0, b


def stabilized_std(model: NoiseModel, mean: np.ndarray, var: np.ndarray) -> float:
    """Typical noise std after the transform, from the blocks' variances (delta method: Var * f'(mean)^2)."""
    slope2 = 1.0 / np.maximum(model.variance(mean) + (0.375 * model.a ** 2 if model.a > 0 else 0.0), 1e-12)
    ratio = var * slope2
    return float(math.sqrt(np.quantile(ratio, LOW_QUANTILE) / QUARTILE_BIAS))
