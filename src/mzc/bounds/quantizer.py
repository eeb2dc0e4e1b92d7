"""Scalar quantizers with a guaranteed per-value error bound, as bin tables over the integer values of a file.

A bound is a function e(x) >= 0 (integer, non-decreasing in x): every value x must come back within e(x). The bins
are built greedily from the low end: a bin starting at s reconstructs to r = s + e(s) and extends to the last x with
x - e(x) <= r. Every member is then within its own bound (below r: r - x <= e(s) <= e(x); above: by construction),
and no quantizer with the same guarantee has fewer bins. With e(x) = floor(K * sigma(x)) this is the exact integer
form of uniform quantization with step 2K in the variance-stabilized (Anscombe) domain; with e(x) = E it is uniform
quantization with step 2E + 1.

The lowest and highest value of the file keep bins of their own (saturated pixels stay saturated). The table (bin
starts and reconstruction values) is stored in the file, so decoding is a lookup that does not
depend on how any machine rounds a square root.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import zstandard

from ..errors import MzcError
from .noise_model import NoiseModel

MAX_TABLE_BYTES = 1 << 20


@dataclass(frozen=True)
class BinTable:
    starts: np.ndarray  # int64, first value of each bin, strictly increasing, starts[0] = lo
    values: np.ndarray  # int64, reconstruction value of each bin, non-decreasing
    hi: int  # last value covered

    @property
    def lo(self) -> int:
        return int(self.starts[0])

    @property
    def bins(self) -> int:
        return int(self.starts.size)

    def index(self, x: np.ndarray) -> np.ndarray:
        """Bin index of every value (values must lie in [lo, hi])."""
        x = np.asarray(x)
        if x.size and (int(x.min()) < self.lo or int(x.max()) > self.hi):
            raise MzcError("internal error: value outside the quantizer's range")
        return np.searchsorted(self.starts, x, side="right") - 1

    @functools.cached_property
    def _lut(self) -> np.ndarray:
        """Bin index of every value in [lo, hi], built once per table (a chunk needs it two or three times)."""
        return np.searchsorted(self.starts, np.arange(self.lo, self.hi + 1), side="right") - 1

    def lookup(self, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """index() through a table over [lo, hi] (fast for 8/16-bit data)."""
        offsets = np.asarray(x, np.int64) - self.lo
        if offsets.size and (int(offsets.min()) < 0 or int(offsets.max()) >= self._lut.size):
            raise MzcError("internal error: value outside the quantizer's range")
        return self._lut[offsets].astype(dtype, copy=False)

    def value(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.bins):
            raise MzcError("corrupt chunk: quantization index beyond the bin table")
        return self.values[idx]

    def to_bytes(self) -> bytes:
        """u32 count, then starts and values as little-endian int64 deltas, zstd-compressed (tables are smooth)."""
        raw = np.concatenate([[self.bins, self.hi], np.diff(self.starts, prepend=0), self.values - self.starts])
        return zstandard.ZstdCompressor(level=19).compress(raw.astype("<i8").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes, dtype: np.dtype) -> "BinTable":
        try:
            raw = zstandard.ZstdDecompressor().decompress(bytes(data), max_output_size=MAX_TABLE_BYTES * 16)
        except zstandard.ZstdError as exc:
            raise MzcError(f"corrupt header: bin table ({exc})") from None
        arr = np.frombuffer(raw, "<i8")
        if arr.size < 4 or arr[0] < 1 or arr.size != 2 + 2 * arr[0]:
            raise MzcError("corrupt header: bin table size")
        n, hi = int(arr[0]), int(arr[1])
        starts = np.cumsum(arr[2:2 + n])
        values = starts + arr[2 + n:]
        info = np.iinfo(dtype)
        if (np.any(np.diff(starts) <= 0) or np.any(np.diff(values) < 0) or starts[0] < info.min or hi > info.max
                or starts[-1] > hi or values.min() < info.min or values.max() > info.max):
            raise MzcError("corrupt header: bin table is not a quantizer of this dtype")
        return cls(starts.astype(np.int64), values.astype(np.int64), hi)


def greedy_bins(lo: int, hi: int, bound: np.ndarray) -> BinTable:
    """The fewest bins over [lo, hi] with every x within bound[x - lo] of its bin's value."""
    xs = np.arange(lo, hi + 1, dtype=np.int64)
    bound = np.asarray(bound, np.int64)
    if bound.shape != xs.shape or np.any(bound < 0) or np.any(np.diff(bound) < 0):
        raise ValueError("bound must give one non-negative, non-decreasing integer per value")
    reach = np.maximum.accumulate(xs - bound)  # x belongs to a bin with value r only while reach(x) <= r
    starts, values = [], []
    s = lo
    while s <= hi:
        r = min(s + int(bound[s - lo]), hi)
        end = int(np.searchsorted(reach, r, side="right")) - 1 + lo
        starts.append(s)
        values.append(r)
        s = max(end, s) + 1
    return BinTable(np.asarray(starts, np.int64), np.asarray(values, np.int64), hi)


def with_exact_ends(lo: int, hi: int, bound: np.ndarray) -> BinTable:
    """greedy_bins, but the range's two end values get bins of their own and come back exactly: the top is
    usually the sensor's saturation (analyses exclude saturated pixels by that value) and the bottom its floor."""
    if hi - lo < 2:
        return greedy_bins(lo, hi, np.zeros(hi - lo + 1, np.int64))
    inner = greedy_bins(lo + 1, hi - 1, bound[1:-1])
    return BinTable(np.concatenate([[lo], inner.starts, [hi]]), np.concatenate([[lo], inner.values, [hi]]), hi)


def uniform(error: int, lo: int, hi: int) -> BinTable:
    """|decoded - x| <= error for every x in [lo, hi] (bins of width 2*error + 1), lo and hi exact."""
    return with_exact_ends(lo, hi, np.full(hi - lo + 1, int(error), np.int64))


def noise_bound(model: NoiseModel, k: float, lo: int, hi: int) -> np.ndarray:
    """Per-value allowed error floor(k * sigma(x)) (errors are integers, so the floor loses nothing)."""
    xs = np.arange(lo, hi + 1, dtype=np.float64)
    return np.floor(k * model.sigma(xs) * (1 - 1e-12)).astype(np.int64)  # never round up past k * sigma


def noise_bins(model: NoiseModel, k: float, lo: int, hi: int) -> BinTable:
    if not (math.isfinite(k) and k >= 0):
        raise MzcError(f"--noise K must be a finite number >= 0, got {k:g}")
    return with_exact_ends(lo, hi, noise_bound(model, k, lo, hi))
