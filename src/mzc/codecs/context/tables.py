"""Probability tables of the context coder (spec 6.5.3), the same bits on every machine.

A table is a discretized Gaussian, or a mixture of one with a 4x wider one (the tails of edges and outliers), at
a scale from a fixed grid and a centre that is a multiple of 1/64. Everything a decoder computes to build one uses
IEEE float64 operations that are exactly rounded (+, -, *, /, floor, scaling by powers of two; no library exp) and
integer sums, so a table is identical on every machine, numpy version and thread count. Frequencies are integers
summing to 2^24 and are handed to constriction in a form its quantizer keeps exactly (weights summing to
2^24 - n, so its scale factor is 1.0).
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np

PRECISION = 24
TOTAL = 1 << PRECISION
ESCAPE_FREQ = 256  # the escape symbol's frequency: 2^-16
N_SIGMA = 137  # sigma_j = 2^((j - 32) / 8): 1/16 .. 8192
MIXTURES = (0.0, 1 / 64, 1 / 16, 1 / 4)  # weight of the 4x wider component
WIDE = 4.0
MAX_HALF = 4095  # widest support: [-4095, 4095] around the predicted integer, then the escape
ROOTS = (1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096, 1.4142135623730951, 1.5422108254079407,
         1.681792830507429, 1.8340080864093424)  # the float64 nearest 2^(m/8)
LN2 = 0.6931471805599453
LOG2E = 1.4426950408889634
TAYLOR = tuple((-1) ** k / math.factorial(k) for k in range(18))  # e^-z = sum of these times z^k


def sigma(j: int) -> float:
    return math.ldexp(ROOTS[j % 8], j // 8 - 4)


@functools.lru_cache(maxsize=None)  # N_SIGMA x 4 values
def half_width(j: int, mix: int) -> int:
    """Support [-R, R] of a table: five widths of its widest component beyond a centre of at most 9."""
    return min(MAX_HALF, 10 + math.floor(5.0 * sigma(j) * (WIDE if mix else 1.0)))


@numba.njit(cache=True, nogil=True)
def _gaussian_weights(s: float, centres: np.ndarray, half: int) -> np.ndarray:
    """Integer weights floor(2^32 E((v - c)^2 / (2 s s))) over v = -half .. half, one row per centre c, where
    E(t) = e^-t from exactly rounded operations only (spec 6.5.3 step 1): y = t LOG2E, n = floor(y), a Taylor
    series of e^-(y - n) ln 2 in Horner form, times 2^-n. 2^32 E is below 1 from n = 33 on, so such weights are 0
    (the spec's min(n, 1100) never matters); below that the scaling by 2^(32 - n) is exact. Compiled: the same
    IEEE operations in the same order as the formula (no fused multiply-add), hence the same bits."""
    out = np.zeros((centres.size, 2 * half + 1), np.int64)
    d = 2.0 * s * s
    for r in range(centres.size):
        for v in range(-half, half + 1):
            k = v - centres[r]
            y = (k * k / d) * LOG2E
            n = math.floor(y)
            if n >= 33:
                continue
            z = (y - n) * LN2
            p = TAYLOR[17]
            for c in range(16, -1, -1):
                p = p * z + TAYLOR[c]
            out[r, v + half] = math.floor(p * 2.0 ** (32 - n))
    return out


@numba.njit(cache=True, nogil=True)
def _frequency_rows(s1: float, s4: float, eps: float, mixed: bool, centres: np.ndarray, half: int) -> np.ndarray:
    """The frequencies of spec 6.5.3 steps 2-4, one row per centre, then the escape's: the same IEEE operations in
    the same order as the spec (and as numpy would do them elementwise), so the same integers."""
    w1 = _gaussian_weights(s1, centres, half)
    w4 = _gaussian_weights(s4, centres, half) if mixed else w1
    rows, width = w1.shape
    out = np.empty((rows, width + 1), np.int64)
    free = TOTAL - width - ESCAPE_FREQ
    q = np.empty(width, np.int64)
    for r in range(rows):
        t1 = np.float64(max(w1[r].sum(), 1))
        t4 = np.float64(max(w4[r].sum(), 1))
        for v in range(width):
            p = w1[r, v] / t1
            if mixed:
                p = (1.0 - eps) * p + eps * (w4[r, v] / t4)
            q[v] = math.floor(p * 4294967296.0)
        total_q = max(q.sum(), 1)
        best = 0
        for v in range(width):
            out[r, v] = 1 + q[v] * free // total_q
            if out[r, v] > out[r, best]:
                best = v
        out[r, best] += TOTAL - ESCAPE_FREQ - out[r, :width].sum()
        out[r, width] = ESCAPE_FREQ
    return out


def frequencies(j: int, mix: int, centres: np.ndarray) -> np.ndarray:
    """Integer frequencies (rows sum to 2^24) over [-R, R] then the escape, one row per centre (in units of 1)."""
    return _frequency_rows(sigma(j), sigma(j) * WIDE, MIXTURES[mix], mix > 0,
                           np.ascontiguousarray(centres, np.float64), half_width(j, mix))


def bits(freq: np.ndarray) -> np.ndarray:
    """Code length in bits of each symbol of a frequency table (for the encoder's choices)."""
    return PRECISION - np.log2(freq)


PHASE_BITS = 4  # at most 16 phases of the fractional prediction


def phase_bits(j):
    """log2 of the number of phases a table of sigma index j has: 16 below sigma 1/2, down to 1 from sigma 4."""
    return np.clip((55 - np.asarray(j)) // 8, 0, PHASE_BITS)


@functools.lru_cache(maxsize=2048)  # once per process: the same tables serve every chunk
def phase_tables(j: int, mix: int, mean: int) -> np.ndarray:
    """Frequencies of the tables of every phase of (sigma index, mixture, centre offset in 1/16): row phase is
    centred at mean/16 + (phase + 1/2) / phases."""
    n = 1 << int(phase_bits(j))
    out = frequencies(j, mix, mean / 16.0 + (np.arange(n) + 0.5) / n)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=2048)
def phase_bits_of(j: int, mix: int, mean: int) -> np.ndarray:
    """Code lengths in bits of phase_tables(j, mix, mean) (for the encoder's choices)."""
    out = bits(phase_tables(j, mix, mean))
    out.setflags(write=False)
    return out


LUT_BITS = 10  # the decoder's first guess of a symbol: which of 2^10 equal slices of 2^24 its slot is in


@functools.lru_cache(maxsize=2048)  # built once per process (sigma, mixture, centre): at most ~70 KB each
def phase_cums(j: int, mix: int, mean: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative frequencies (phases, symbols + 1) of phase_tables(j, mix, mean), and per phase the symbol whose
    interval holds each slice start k 2^(24 - LUT_BITS), k = 0 .. 2^LUT_BITS (the last clipped to the escape):
    the compiled coder's tables (version 2 streams, spec 6.5.5)."""
    freq = phase_tables(j, mix, mean)
    cum = np.zeros((freq.shape[0], freq.shape[1] + 1), np.int64)
    np.cumsum(freq, axis=1, out=cum[:, 1:])
    starts = np.arange((1 << LUT_BITS) + 1, dtype=np.int64) << (PRECISION - LUT_BITS)
    lut = np.stack([np.searchsorted(row, starts, side="right") - 1 for row in cum]).clip(0, freq.shape[1] - 1)
    lut = lut.astype(np.int32)
    for a in (cum, lut):
        a.setflags(write=False)
    return cum, lut
