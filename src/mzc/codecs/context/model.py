"""One pass's model (spec 6.5.2): a linear predictor per context class and a scale bucket per pixel, computed from
decoded neighbours in integer arithmetic, so encoder and decoder agree on every machine.

The predictor is in 1/4096 units (weights Q12); its sums are exact integers even when a BLAS computes them in
float64 (every partial sum stays below 2^53), so the thread count and the library do not matter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import MzcError
from . import tables
from .geometry import N_FEATURES, Context, ilog
from .tables import PHASE_BITS

FRAC_BITS = 12
MAX_CLASSES_PER_AXIS = 4
MAX_BUCKETS = 64
MAX_WEIGHT = 1 << 20
MAX_KEY = 64  # bucket feature coefficients


@dataclass
class PassModel:
    """The integers stored for one pass, and what they compute from a pass's context."""
    feature_set: int
    dir_thresholds: np.ndarray  # int64, ascending: class along ilog|a1-a2| - ilog|b1-b2|
    act_thresholds: np.ndarray  # int64, ascending: class along ilog(activity + 1)
    weights: np.ndarray  # int64 (classes, features + 1), in 1/4096 per feature unit, the last column the offset
    ka: int  # bucket feature: ka ilog8(activity + 1) + kb ilog8(spread + 1) + kp ilog8(prediction - lo + 1)
    kb: int
    kp: int
    bucket_thresholds: np.ndarray  # int64, ascending
    sigmas: np.ndarray  # per bucket: the table's sigma index
    means: np.ndarray  # per bucket: the table's centre offset, in 1/16
    mixes: np.ndarray  # per bucket: the table's mixture index

    def to_ints(self) -> list[int]:
        """The stored integers: lists of thresholds and the sigma indices as their first value and differences."""
        return [self.feature_set, self.dir_thresholds.size + 1, self.act_thresholds.size + 1,
                *deltas(self.dir_thresholds), *deltas(self.act_thresholds), *self.weights.reshape(-1).tolist(),
                self.ka, self.kb, self.kp, self.sigmas.size, *deltas(self.bucket_thresholds), *deltas(self.sigmas),
                *self.means.tolist(), *self.mixes.tolist()]

    @classmethod
    def from_ints(cls, ints: np.ndarray, pos: int) -> tuple["PassModel", int]:
        """Read a model, checking every count and range (a damaged stream raises MzcError)."""
        take = _Reader(ints, pos)
        feature_set, cd, ca = take.one(0, 1), take.one(1, MAX_CLASSES_PER_AXIS), take.one(1, MAX_CLASSES_PER_AXIS)
        dir_t, act_t = take.ascending(cd - 1), take.ascending(ca - 1)
        weights = take.many(cd * ca * (N_FEATURES[feature_set] + 1), -MAX_WEIGHT, MAX_WEIGHT)
        ka, kb, kp = (take.one(0, MAX_KEY) for _ in range(3))
        nb = take.one(1, MAX_BUCKETS)
        bucket_t = take.ascending(nb - 1)
        sig = np.cumsum(take.many(nb, -tables.N_SIGMA, tables.N_SIGMA))
        mean, mix = take.many(nb, -128, 127), take.many(nb, 0, len(tables.MIXTURES) - 1)
        if sig.min() < 0 or sig.max() >= tables.N_SIGMA:
            raise MzcError("corrupt chunk: context coder table parameters out of range")
        model = cls(feature_set, dir_t, act_t, weights.reshape(cd * ca, -1), ka, kb, kp, bucket_t, sig, mean, mix)
        return model, take.pos

    def classes(self, ctx: Context) -> np.ndarray:
        """Class = direction bin * (activity bins) + activity bin, both read from small lookup tables."""
        if self.dir_thresholds.size + self.act_thresholds.size == 0:
            return np.zeros(ctx.activity.size, np.int64)
        dir_bin = np.searchsorted(self.dir_thresholds, np.arange(-DIR_OFFSET, DIR_OFFSET + 1), side="right")
        act_bin = np.searchsorted(self.act_thresholds, np.arange(ACT_RANGE), side="right")
        return dir_bin[ctx.direction + DIR_OFFSET] * (self.act_thresholds.size + 1) + act_bin[ctx.activity8 >> 1]

    def predict(self, ctx: Context, lo: int, hi: int) -> np.ndarray:
        """The prediction in 1/4096, clipped to [lo, hi]."""
        return predict(ctx, self.weights, self.classes(ctx), lo, hi)

    def buckets(self, ctx: Context, pred: np.ndarray, lo: int) -> np.ndarray:
        key = self.ka * ctx.activity8 + self.kb * ctx.spread8 + self.kp * ilog((pred >> FRAC_BITS) - lo + 1, 8)
        if self.bucket_thresholds.size == 0:
            return np.zeros(key.size, np.int64)
        if key.size < KEY_RANGE:
            return np.searchsorted(self.bucket_thresholds, key, side="right")
        return np.searchsorted(self.bucket_thresholds, np.arange(KEY_RANGE), side="right")[key]

    def table(self, key: int) -> tuple[np.ndarray, int]:
        """Frequencies and half width of the table of a group key (bucket * 16 + phase)."""
        b, phase = divmod(int(key), 1 << PHASE_BITS)
        j, mix = int(self.sigmas[b]), int(self.mixes[b])
        return tables.phase_tables(j, mix, int(self.means[b]))[phase], tables.half_width(j, mix)


DIR_OFFSET = 80  # |ilog4 difference| stays below 4 * 18
ACT_RANGE = 80  # ilog4 of activity + 1 <= 2^18
KEY_RANGE = MAX_KEY * 3 * 144 + 1  # ilog8 values stay below 8 * 18


def predict(ctx: Context, weights: np.ndarray, classes: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """1024 S + the class's weights times the features: a matrix product of exact integers (1/4096 units)."""
    n = ctx.features.shape[1]
    raw = weights.astype(np.float64) @ ctx.features
    if weights.shape[0] > 1:
        raw = raw.reshape(-1)[classes * n + np.arange(n)]
    pred = raw.reshape(-1).astype(np.int64)
    pred += ctx.total.astype(np.int64) << (FRAC_BITS - 2)
    return np.clip(pred, lo << FRAC_BITS, hi << FRAC_BITS, out=pred)


def group_keys(model: PassModel, pred: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """bucket * 16 + phase (uint16): the table each pixel is coded with."""
    shift = (FRAC_BITS - tables.phase_bits(model.sigmas))[buckets]
    return ((buckets << PHASE_BITS) + ((pred & ((1 << FRAC_BITS) - 1)) >> shift)).astype(np.uint16)


def deltas(values: np.ndarray) -> list[int]:
    return np.diff(np.asarray(values, np.int64), prepend=0).tolist()


class _Reader:
    def __init__(self, ints: np.ndarray, pos: int):
        self.ints, self.pos = ints, pos

    def many(self, n: int, lo: int, hi: int) -> np.ndarray:
        if self.pos + n > self.ints.size:
            raise MzcError("corrupt chunk: context coder parameters end early")
        out = self.ints[self.pos:self.pos + n].astype(np.int64)
        self.pos += n
        if out.size and (out.min() < lo or out.max() > hi):
            raise MzcError("corrupt chunk: context coder parameter out of range")
        return out

    def one(self, lo: int, hi: int) -> int:
        return int(self.many(1, lo, hi)[0])

    def ascending(self, n: int) -> np.ndarray:
        """n thresholds stored as the first and the (non-negative) differences."""
        out = self.many(n, -(1 << 31), 1 << 31)
        if np.any(out[1:] < 0):
            raise MzcError("corrupt chunk: context coder thresholds not ascending")
        return np.cumsum(out)
