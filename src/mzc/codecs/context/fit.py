"""The encoder's side of a pass model: fitted to a sample of the pass's own pixels, then rounded to the integers
it is stored as (spec 6.5.2). Only the encoder runs this; any floating-point result is fine here, as the stored
integers define the model.

Sizes grow with the pass: small passes get the core four's mean and one table (their parameters would cost more
than they save), large ones an 8-feature predictor per direction/activity class, fitted by least squares weighted
with the inverse of the expected error, and up to 32 scale buckets.
"""
from __future__ import annotations

import numpy as np

from . import fitkernels, tables
from .geometry import Context, ilog
from .model import FRAC_BITS, MAX_KEY, MAX_WEIGHT, PassModel, predict

SAMPLE = 1 << 14  # pixels of a pass the model is fitted on
# passes of at least n pixels: feature set, direction classes, activity classes, buckets
TIERS = ((1 << 15, 1, 3, 3, 32), (1 << 13, 1, 2, 2, 24), (1 << 10, 1, 1, 1, 8), (0, 0, 1, 1, 1))
MIN_FIT = 256  # a class with fewer sample pixels keeps the core four's mean (zero weights)
SEARCH = 2048  # buckets with at least this many sample pixels get their table by pricing candidates


def tier(n: int) -> tuple[int, int, int, int]:
    return next(t[1:] for t in TIERS if n >= t[0])


def quantiles(values: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Quantiles of small-range integers (the lower value), from their histogram."""
    low = int(values.min())
    cumulative = np.cumsum(np.bincount(values - low))
    return low + np.searchsorted(cumulative, fractions * values.size, side="right")


def split_points(values: np.ndarray, parts: int) -> np.ndarray:
    """Ascending integer thresholds cutting values into about equal parts (fewer when values repeat)."""
    if parts <= 1 or values.size == 0:
        return np.zeros(0, np.int64)
    return np.unique(quantiles(values, np.arange(1, parts) / parts))


def even_points(values: np.ndarray, parts: int) -> np.ndarray:
    """Ascending integer thresholds cutting the range of values (0.1% to 99.9% quantile) into equal steps."""
    if parts <= 1 or values.size == 0:
        return np.zeros(0, np.int64)
    lo, hi = quantiles(values, np.array([0.001, 0.999]))
    return np.unique(np.rint(lo + (hi - lo) * np.arange(1, parts) / parts).astype(np.int64))


def _lsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with a as rows of features (k, n), through the k x k normal equations (a whisker of ridge
    keeps a constant feature from making them singular)."""
    gram = a @ a.T
    gram.flat[::len(gram) + 1] += 1e-9 * np.trace(gram) / len(gram) + 1e-12
    return np.linalg.solve(gram, a @ b)


class Sample:
    """The fitting sample of a pass: every k-th pixel, its context and value."""

    def __init__(self, ctx: Context, y: np.ndarray):
        rows = slice(0, None, max(1, y.size // SAMPLE))
        self.ctx = Context(ctx.total[rows], np.ascontiguousarray(ctx.features[:, rows]), ctx.diff_a[rows],
                           ctx.diff_b[rows], ctx.activity[rows], ctx.spread[rows])
        self.y = y[rows]


def fit_predictor(s: Sample, fs: int, cd: int, ca: int, lo: int) -> PassModel:
    """Class thresholds and weights (a class with too few pixels keeps the core four's mean: zero weights)."""
    ctx = s.ctx
    model = PassModel(fs, split_points(ctx.direction, cd), split_points(ctx.activity8 >> 1, ca),
                      np.zeros((0, 0), np.int64), 1, 0, 0, np.zeros(0, np.int64), *([np.zeros(1, np.int64)] * 3))
    classes = model.classes(ctx)
    target = (s.y << FRAC_BITS) - (ctx.total << (FRAC_BITS - 2)).astype(np.float64)
    scale_x = np.stack([ctx.activity8, ilog(np.maximum(ctx.total // 4 - lo, 0) + 1, 8),
                        np.ones_like(s.y)]).astype(np.float64)
    n_classes = (model.dir_thresholds.size + 1) * (model.act_thresholds.size + 1)
    min_rows = max(4 * ctx.features.shape[0], MIN_FIT)
    model.weights = fitkernels.class_weights(np.ascontiguousarray(ctx.features, np.float64), target, scale_x,
                                             classes.astype(np.int64), n_classes, min_rows, MAX_WEIGHT)
    return model


def fit_buckets(model: PassModel, s: Sample, pred: np.ndarray, lo: int, nb: int) -> None:
    """The bucket feature's three coefficients (the fit of log |error| on them) and its thresholds."""
    x = np.stack([s.ctx.activity8, s.ctx.spread8, ilog((pred >> FRAC_BITS) - lo + 1, 8)])
    model.ka, model.kb, model.kp = 1, 0, 0
    if nb > 1:
        a = np.concatenate([x, np.ones((1, x.shape[1]), np.int64)]).astype(np.float64)
        coef = np.maximum(_lsq(a, np.log2(np.abs(s.y - pred / (1 << FRAC_BITS)) + 0.5))[:3], 0)
        if coef.max() > 0:
            model.ka, model.kb, model.kp = (int(v) for v in np.clip(np.rint(coef / coef.max() * 16), 0, MAX_KEY))
    model.bucket_thresholds = even_points(np.array([model.ka, model.kb, model.kp]) @ x, nb)


def fit_tables(model: PassModel, s: Sample, pred: np.ndarray, lo: int, escape_bits: int) -> None:
    """Per bucket the table (sigma, centre offset, mixture): sigma and centre from the residuals' moments; buckets
    with many pixels then price a few candidates; a bucket without sample pixels borrows its neighbour's, widened."""
    buckets = model.buckets(s.ctx, pred, lo)
    nb = model.bucket_thresholds.size + 1
    r = s.y - pred / (1 << FRAC_BITS)
    count = np.bincount(buckets, minlength=nb)
    mean_r = np.bincount(buckets, r, nb) / np.maximum(count, 1)
    means = np.clip(np.rint(16 * mean_r), -128, 127).astype(np.int64)
    var = np.bincount(buckets, r * r, nb) / np.maximum(count, 1) - mean_r ** 2 + (mean_r - means / 16) ** 2
    sigmas = np.clip(np.rint(8 * np.log2(np.sqrt(np.maximum(var - 1 / 12, 1e-4))) + 32), 1, tables.N_SIGMA - 2)
    means = coarse_means(mean_r, sigmas)
    model.sigmas, model.means, model.mixes = sigmas.astype(np.int64), means, np.zeros(nb, np.int64)
    order = np.argsort(buckets.astype(np.uint8), kind="stable")
    bounds = np.r_[0, np.cumsum(count)]
    for b in np.flatnonzero(count >= SEARCH):
        rows = order[bounds[b]:bounds[b + 1]]
        model.sigmas[b], model.mixes[b] = best_table(s.y[rows], pred[rows], int(sigmas[b]), int(means[b]),
                                                     escape_bits)
    filled = np.flatnonzero(count)
    if filled.size < nb:  # nearest bucket with pixels
        near = filled[np.clip(np.searchsorted(filled, np.arange(nb)), 0, filled.size - 1)]
        empty = count == 0
        model.sigmas[empty], model.means[empty] = model.sigmas[near[empty]], model.means[near[empty]]
        model.mixes[empty] = len(tables.MIXTURES) - 1


def coarse_means(mean_r: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Centre offsets in 1/16, on a grid that widens with the table's sigma (1/16 below sigma 1, 1/4 below 4, then
    1/2): an offset error d costs about d^2 / (2 sigma^2) nats per pixel (< 0.01 bits for the widest step), and
    fewer distinct tables are built per process (each is computed once: a 510 x 667 plane built ~180 new ones with
    offsets in 1/16)."""
    step = np.where(sigmas < 32, 1, np.where(sigmas < 48, 4, 8))
    return np.clip(step * np.rint(16 * mean_r / step), -128, 127).astype(np.int64)


def candidates(j0: int) -> tuple[tuple[int, int], ...]:
    """(sigma index, mixture) pairs tried around the spread's estimate j0 (the wider mixture shrinks the core)."""
    return (j0, 0), (j0, 1), (j0 - 1, 1), (j0 + 1, 0)


def best_table(y: np.ndarray, pred: np.ndarray, j0: int, mean: int, escape_bits: int) -> tuple[int, int]:
    """The (sigma index, mixture) of the candidates that prices the bucket's pixels lowest."""
    hist = Histogram(y - (pred >> FRAC_BITS), (pred >> (FRAC_BITS - 4)) & 15,
                     tables.half_width(j0 + 1, len(tables.MIXTURES) - 1))
    return min((hist.cost(j, m, mean, escape_bits), j, m) for j, m in candidates(j0))[1:]


class Histogram:
    """Counts of (phase of 16, v = value - floor(prediction)) of a bucket, to price candidate tables."""

    def __init__(self, v: np.ndarray, phase16: np.ndarray, widest: int):
        self.span = int(min(np.abs(v).max(), widest + 1))
        inside = np.abs(v) <= self.span
        self.counts = np.bincount(phase16[inside] * (2 * self.span + 1) + v[inside] + self.span,
                                  minlength=16 * (2 * self.span + 1)).reshape(16, -1)
        self.total = v.size
        self._by_phases: dict[int, np.ndarray] = {}

    def phases(self, n: int) -> np.ndarray:
        """The counts with the 16 phases merged into n."""
        if n not in self._by_phases:
            self._by_phases[n] = self.counts.reshape(n, -1, self.counts.shape[1]).sum(1)
        return self._by_phases[n]

    def cost(self, j: int, mix: int, mean: int, escape_bits: int) -> float:
        """Bits of the bucket's sample with this table; values beyond its support are escapes."""
        bits = tables.phase_bits_of(j, mix, mean)
        counts, half = self.phases(bits.shape[0]), tables.half_width(j, mix)
        if self.span >= half:
            counts = counts[:, self.span - half:self.span + half + 1]
            bits = bits[:, :-1]
        else:
            bits = bits[:, half - self.span:half + self.span + 1]
        inside = float((counts * bits).sum())
        escaped = self.total - int(counts.sum())
        return inside + escaped * (float(tables.PRECISION - np.log2(tables.ESCAPE_FREQ)) + escape_bits)


def fit_pass(ctx: Context, y: np.ndarray, tier_: tuple[int, int, int, int], lo: int, hi: int,
             escape_bits: int) -> PassModel:
    """The whole model of one pass, fitted on its sample."""
    fs, cd, ca, nb = tier_
    s = Sample(ctx, y)
    model = fit_predictor(s, fs, cd, ca, lo)
    pred = predict(s.ctx, model.weights, model.classes(s.ctx), lo, hi)
    fit_buckets(model, s, pred, lo, nb)
    fit_tables(model, s, pred, lo, escape_bits)
    return model
