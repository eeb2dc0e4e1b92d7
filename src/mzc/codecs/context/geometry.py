"""Where the context coder's passes are and what each pixel of a pass sees (spec 6.5.1).

An image is coded coarse to fine: first the grid of every S-th pixel (S = 2^L), then, for each stride s = S, S/2,
..., 2 with h = s/2, three passes that fill in the grid of stride h: D, the centres of the s-grid's cells (their 4
diagonal neighbours known), then H, the midpoints of its rows, and V, the midpoints of its columns (4 direct
neighbours known). Neighbours beyond the image edge repeat the nearest known one. Every pass is a handful of
whole-array numpy operations: the decoder never loops over pixels.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

BASE = 8  # the first grid is at most this many pixels along its shorter side
PAD = 3


def levels(shape: tuple[int, int]) -> int:
    """L: the smallest with ceil(min(H, W) / 2^L) <= BASE (so every pass of every level has pixels)."""
    n, level = min(shape), 0
    while -(-n // (1 << level)) > BASE:
        level += 1
    return level


@dataclass(frozen=True)
class Pass:
    kind: str  # "D", "H" or "V"
    stride: int  # s: the pass fills the grid of stride s // 2

    @property
    def rows(self) -> slice:
        return slice(0 if self.kind == "H" else self.stride // 2, None, self.stride)

    @property
    def cols(self) -> slice:
        return slice(0 if self.kind == "V" else self.stride // 2, None, self.stride)


def passes(shape: tuple[int, int]) -> list[Pass]:
    out = []
    for level in range(levels(shape), 0, -1):
        out += [Pass(kind, 1 << level) for kind in "DHV"]
    return out


def base_slices(shape: tuple[int, int]) -> tuple[slice, slice]:
    step = 1 << levels(shape)
    return slice(None, None, step), slice(None, None, step)


class Around:
    """Neighbours of one pass's pixels in the image decoded so far, as arrays of the pass's shape."""

    def __init__(self, image: np.ndarray, p: Pass):
        s, h = p.stride, p.stride // 2
        self.shape = image[p.rows, p.cols].shape
        self.grids = {"G": image[::s, ::s], "D": image[h::s, h::s], "H": image[::s, h::s]}
        self._padded: dict[str, np.ndarray] = {}

    def at(self, grid: str, di: int, dj: int) -> np.ndarray:
        """grid[i + di, j + dj] for every pass pixel (i, j), indices clamped to the grid (int32)."""
        if grid not in self._padded:
            self._padded[grid] = edge_padded(self.grids[grid])
        r, c = self.shape
        return self._padded[grid][PAD + di:PAD + di + r, PAD + dj:PAD + dj + c]


def edge_padded(x: np.ndarray) -> np.ndarray:
    """x as int32 with PAD rows and columns repeated around it (np.pad(mode="edge"), without its overhead)."""
    r, c = x.shape
    out = np.empty((r + 2 * PAD, c + 2 * PAD), np.int32)
    out[PAD:PAD + r, PAD:PAD + c] = x
    out[:PAD, PAD:PAD + c] = x[0]
    out[PAD + r:, PAD:PAD + c] = x[-1]
    out[:, :PAD] = out[:, PAD:PAD + 1]
    out[:, PAD + c:] = out[:, PAD + c - 1:PAD + c]
    return out


# (pair a, pair b, four further pairs) of each pass: (grid, row offset, column offset); the further pairs lie
# opposite each other around the pixel, so their sums are as good as the single values with half the weights
NEIGHBOURS = {
    "D": ((("G", 0, 0), ("G", 1, 1)), (("G", 0, 1), ("G", 1, 0)),
          ((("G", -1, 0), ("G", 2, 1)), (("G", -1, 1), ("G", 2, 0)), (("G", 0, -1), ("G", 1, 2)),
           (("G", 1, -1), ("G", 0, 2)))),
    "H": ((("G", 0, 0), ("G", 0, 1)), (("D", -1, 0), ("D", 0, 0)),
          ((("G", -1, 0), ("G", 1, 1)), (("G", -1, 1), ("G", 1, 0)), (("D", -1, -1), ("D", 0, 1)),
           (("D", -1, 1), ("D", 0, -1)))),
    "V": ((("G", 0, 0), ("G", 1, 0)), (("D", 0, -1), ("D", 0, 0)),
          ((("H", 0, -1), ("H", 1, 0)), (("H", 0, 0), ("H", 1, -1)), (("G", -1, 0), ("G", 2, 0)),
           (("D", 0, -2), ("D", 0, 1)))),
}
N_FEATURES = (3, 8)  # feature set 0: the core four; 1: also the four further pairs and the edge-directed pair
MAX_LOG_INPUT = 1 << 18  # ilog's table covers 0 .. 2^18 (activity + 1 of 16-bit values stays below)


@dataclass
class Context:
    """What the model uses of a pass's neighbourhood. The predictor is the mean of the core four, S / 4, plus a
    weighted sum of deviations from it: the features are 4 x - S of a1, a2, b1 (b2's is minus their sum), then
    2 (p + q) - S of the four further pairs and of the core pair that differs less, as rows of a float64 matrix of
    exact integers whose last row is ones (the offset)."""
    total: np.ndarray  # S = a1 + a2 + b1 + b2
    features: np.ndarray
    diff_a: np.ndarray  # |a1 - a2|
    diff_b: np.ndarray  # |b1 - b2|
    activity: np.ndarray  # |a1 - a2| + |b1 - b2| + |a1 - b1| + |a2 - b2|
    spread: np.ndarray  # sum of |2 (p + q) - S| over the further pairs, / 4 (0 without them)

    @functools.cached_property
    def direction(self) -> np.ndarray:
        """ilog4(|a1 - a2| + 1) - ilog4(|b1 - b2| + 1): which pair differs more."""
        return ilog(self.diff_a + 1) - ilog(self.diff_b + 1)

    @functools.cached_property
    def activity8(self) -> np.ndarray:
        """ilog8(activity + 1)."""
        return ilog(self.activity + 1, 8)

    @functools.cached_property
    def spread8(self) -> np.ndarray:
        """ilog8(spread + 1)."""
        return ilog(self.spread + 1, 8)


def context(image: np.ndarray, p: Pass, feature_set: int) -> Context:
    around = Around(image, p)
    (a1, a2), (b1, b2), further = NEIGHBOURS[p.kind]
    a1, a2, b1, b2 = (around.at(*n) for n in (a1, a2, b1, b2))
    rows, cols = around.shape
    sum_a, sum_b = a1 + a2, b1 + b2
    total = sum_a + sum_b
    feats = np.empty((N_FEATURES[feature_set] + 1, rows * cols))
    feats[-1] = 1.0
    tmp = np.empty((rows, cols), np.int32)
    for k, view in enumerate((a1, a2, b1)):
        np.left_shift(view, 2, out=tmp)
        np.subtract(tmp, total, out=feats[k].reshape(rows, cols), casting="unsafe")
    spread = np.zeros((rows, cols), np.int32)
    for k, (one, other) in enumerate(further if feature_set else (), start=3):
        np.add(around.at(*one), around.at(*other), out=tmp)
        tmp <<= 1
        tmp -= total
        feats[k].reshape(rows, cols)[...] = tmp
        spread += np.abs(tmp, out=tmp)
    da, db = np.abs(a1 - a2), np.abs(b1 - b2)
    activity = da + db
    activity += np.abs(a1 - b1)
    activity += np.abs(a2 - b2)
    if feature_set:
        np.subtract(2 * np.where(da < db, sum_a, sum_b), total, out=feats[-2].reshape(rows, cols),
                    casting="unsafe")
    spread >>= 2
    return Context(total.reshape(-1), feats, da.reshape(-1), db.reshape(-1), activity.reshape(-1),
                   spread.reshape(-1))


@functools.lru_cache(maxsize=1)
def _ilog8_table() -> np.ndarray:
    m, e = np.frexp(np.arange(1, MAX_LOG_INPUT + 1, dtype=np.float64))
    table = 8 * (e.astype(np.int32) - 1) + np.floor((2.0 * m - 1.0) * 8).astype(np.int32)
    return np.concatenate([np.array([-8], np.int32), table])


def ilog(x: np.ndarray, steps: int = 4) -> np.ndarray:
    """A piecewise-linear log2 of integers 1 <= x <= 2^18 in 1/steps octaves (steps 4 or 8): x = m 2^e with m in
    [0.5, 1) gives steps (e - 1) + floor(steps (2m - 1)); exact, since frexp is exact on integers."""
    table = _ilog8_table()[x]
    return table if steps == 8 else table >> 1
