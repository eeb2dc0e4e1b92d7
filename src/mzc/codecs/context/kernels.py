"""The context coder's per-pixel work, compiled (numba): what a pass pixel sees, its prediction and table, and
its coding with rANS (spec 6.5.1, 6.5.2, 6.5.5). The same integer arithmetic as geometry.py and model.py, one
pixel at a time, so that a pass is one loop over its pixels instead of dozens of whole-array numpy passes.

Everything a stream declares reaches these loops only through lookup tables built and range-checked by the
caller (coder.py), so no index here can leave its array whatever the stream says: neighbours are clamped to
their grids, classes, buckets and keys come from tables whose values are in range, and a symbol is found inside
its table's cumulative frequencies.
"""
from __future__ import annotations

import numba
import numpy as np

from .geometry import NEIGHBOURS
from .rans import LOW, MASK, PRECISION
from .tables import LUT_BITS

JIT = dict(nogil=True, cache=True)
KINDS = "DHV"
FRAC = 12
LUT_SHIFT = PRECISION - LUT_BITS  # the decoder's first guess of a symbol: which slice of 2^24 its slot is in
GRIDS = "GDH"


def neighbour_table() -> np.ndarray:
    """geometry.NEIGHBOURS as a (3 kinds, 12, 3) int64 array of (grid, row offset, column offset): a1, a2, b1, b2,
    then the four further pairs."""
    out = np.zeros((3, 12, 3), np.int64)
    for k, kind in enumerate(KINDS):
        (a1, a2), (b1, b2), further = NEIGHBOURS[kind]
        for n, (grid, di, dj) in enumerate((a1, a2, b1, b2, *(x for pair in further for x in pair))):
            out[k, n] = GRIDS.index(grid), di, dj
    return out


NEIGHBOUR_TABLE = neighbour_table()


def layout(kind: int, s: int, rows: int, cols: int) -> tuple:
    """What the loops need to find a pass pixel's neighbours: per neighbour (12) its grid's origin, row and column
    counts and offsets (an array, for pixels near an edge, whose neighbours are clamped), the neighbours' distances
    in the flat image (a tuple: numba keeps it in registers) and the pass pixels whose neighbours all lie inside
    their grids (first and last row, first and last column)."""
    h = s // 2
    oi, oj = origin(kind, s)
    geo = np.zeros((12, 6), np.int64)
    deltas = []
    first_i = first_j = 0
    last_i = last_j = 1 << 40
    for n in range(12):
        grid, di, dj = (int(v) for v in NEIGHBOUR_TABLE[kind, n])
        gi, gj = (h if grid == 1 else 0), (h if grid >= 1 else 0)
        n_r, n_c = -(-(rows - gi) // s), -(-(cols - gj) // s)
        geo[n] = gi, gj, n_r, n_c, di, dj
        deltas.append((gi - oi + di * s) * cols + gj - oj + dj * s)
        first_i, last_i = max(first_i, -di), min(last_i, n_r - 1 - di)
        first_j, last_j = max(first_j, -dj), min(last_j, n_c - 1 - dj)
    return geo, tuple(deltas), (first_i, last_i, first_j, last_j)


def origin(kind: int, s: int) -> tuple[int, int]:
    """The first pass pixel's row and column (D: centres, H: row midpoints, V: column midpoints)."""
    h = s // 2
    return (0 if kind == 1 else h), (0 if kind == 2 else h)


@numba.njit(inline="always")
def _clamped(image, geo, n, i, j, s):
    """Neighbour n of pass pixel (i, j) near an edge: grid[clamp(i + di), clamp(j + dj)]."""
    r = min(max(i + geo[n, 4], 0), geo[n, 2] - 1)
    c = min(max(j + geo[n, 5], 0), geo[n, 3] - 1)
    return np.int64(image[geo[n, 0] + r * s, geo[n, 1] + c * s])


@numba.njit(inline="always")
def _inner(flat, p, d, fs):
    """The 12 neighbours of a pass pixel at flat position p whose neighbours all lie inside their grids (the
    further 8 only with feature set 1)."""
    a1, a2 = np.int64(flat[p + d[0]]), np.int64(flat[p + d[1]])
    b1, b2 = np.int64(flat[p + d[2]]), np.int64(flat[p + d[3]])
    if fs:
        return (a1, a2, b1, b2, np.int64(flat[p + d[4]]), np.int64(flat[p + d[5]]), np.int64(flat[p + d[6]]),
                np.int64(flat[p + d[7]]), np.int64(flat[p + d[8]]), np.int64(flat[p + d[9]]),
                np.int64(flat[p + d[10]]), np.int64(flat[p + d[11]]))
    z = np.int64(0)
    return a1, a2, b1, b2, z, z, z, z, z, z, z, z


@numba.njit(inline="always")
def _edge(image, geo, i, j, s, fs):
    """The 12 neighbours of pass pixel (i, j) near an edge, clamped to their grids."""
    z = np.int64(0)
    a1, a2 = _clamped(image, geo, 0, i, j, s), _clamped(image, geo, 1, i, j, s)
    b1, b2 = _clamped(image, geo, 2, i, j, s), _clamped(image, geo, 3, i, j, s)
    if fs:
        return (a1, a2, b1, b2, _clamped(image, geo, 4, i, j, s), _clamped(image, geo, 5, i, j, s),
                _clamped(image, geo, 6, i, j, s), _clamped(image, geo, 7, i, j, s),
                _clamped(image, geo, 8, i, j, s), _clamped(image, geo, 9, i, j, s),
                _clamped(image, geo, 10, i, j, s), _clamped(image, geo, 11, i, j, s))
    return a1, a2, b1, b2, z, z, z, z, z, z, z, z


@numba.njit(inline="always")
def _from_neighbours(n, fs):
    a1, a2, b1, b2, p1, q1, p2, q2, p3, q3, p4, q4 = n
    total = a1 + a2 + b1 + b2
    da, db = abs(a1 - a2), abs(b1 - b2)
    activity = da + db + abs(a1 - b1) + abs(a2 - b2)
    f3 = f4 = f5 = f6 = f7 = spread = np.int64(0)
    if fs:
        f3, f4 = 2 * (p1 + q1) - total, 2 * (p2 + q2) - total
        f5, f6 = 2 * (p3 + q3) - total, 2 * (p4 + q4) - total
        f7 = 2 * (a1 + a2 if da < db else b1 + b2) - total
        spread = (abs(f3) + abs(f4) + abs(f5) + abs(f6)) >> 2
    return (total, da, db, activity, spread, 4 * a1 - total, 4 * a2 - total, 4 * b1 - total, f3, f4, f5, f6, f7)


@numba.njit(**JIT)
def sample_context(image, oi, oj, s, geo, d, bounds, fs, step):
    """The context of every step-th pixel of a pass (raster order), as geometry.context gives it for the whole
    pass: total, features (rows of float64 exact integers, the last ones), da, db, activity, spread; and values."""
    rows, cols = image.shape
    pr, pc = (rows - oi + s - 1) // s, (cols - oj + s - 1) // s
    n = (pr * pc + step - 1) // step
    nf = 8 if fs else 3
    features = np.ones((nf + 1, n))
    total = np.empty(n, np.int64)
    diff_a, diff_b = np.empty(n, np.int64), np.empty(n, np.int64)
    activity, spread = np.empty(n, np.int64), np.empty(n, np.int64)
    y = np.empty(n, np.int64)
    flat = image.reshape(-1)
    for m in range(n):
        i, j = divmod(m * step, pc)
        p = (oi + i * s) * cols + oj + j * s
        a, b = _row_parts(bounds, i, pc)
        got = _from_neighbours(_inner(flat, p, d, fs) if a <= j < b else _edge(image, geo, i, j, s, fs), fs)
        total[m], diff_a[m], diff_b[m], activity[m], spread[m] = got[0], got[1], got[2], got[3], got[4]
        for f in range(nf):
            features[f, m] = got[5 + f]
        y[m] = flat[p]
    return total, features, diff_a, diff_b, activity, spread, y


@numba.njit(inline="always")
def _model(n, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi, ilog8, shifts):
    """(prediction in 1/4096, bucket, key) of a pass pixel from its 12 neighbours n (spec 6.5.2)."""
    total, da, db, activity, spread, f0, f1, f2, f3, f4, f5, f6, f7 = _from_neighbours(n, fs)
    act8 = ilog8[activity + 1]
    c = dir_lut[(ilog8[da + 1] >> 1) - (ilog8[db + 1] >> 1) + 80] + act_lut[act8 >> 1]
    pred = (total << (FRAC - 2)) + weights[c, 0] * f0 + weights[c, 1] * f1 + weights[c, 2] * f2
    if fs:
        pred += (weights[c, 3] * f3 + weights[c, 4] * f4 + weights[c, 5] * f5 + weights[c, 6] * f6
                 + weights[c, 7] * f7 + weights[c, 8])
    else:
        pred += weights[c, 3]
    pred = min(max(pred, lo << FRAC), hi << FRAC)
    b = bucket_lut[ka * act8 + kb * ilog8[spread + 1] + kp * ilog8[(pred >> FRAC) - lo + 1]]
    return pred, b, (b << 4) + ((pred & 4095) >> shifts[b])


@numba.njit(inline="always")
def _row_parts(bounds, i, pc):
    """A pass row's columns as [0, a) near the left edge, [a, b) inside, [b, pc) near the right edge: the inside
    stretch runs without clamping (and without a branch on it)."""
    if i < bounds[0] or i > bounds[1] or bounds[2] > bounds[3]:
        return pc, pc
    return min(bounds[2], pc), min(bounds[3] + 1, pc)


@numba.njit(**JIT)
def raw_items(values, lo, raw_shift):
    """Items of values coded as raw bits (the base grid)."""
    out = np.empty(values.size, np.int64)
    for k in range(values.size):
        out[k] = ((np.int64(values[k]) - lo) << raw_shift) | (np.int64(1) << (raw_shift + 32))
    return out


@numba.njit(inline="always")
def _decode_symbol(state, cum, lut, offset, lut_offset):
    """(symbol, start, freq) of the state's slot in one table."""
    slot = state & MASK
    t = slot >> LUT_SHIFT
    first, last = lut[lut_offset + t], lut[lut_offset + t + 1]
    while first < last and cum[offset + first + 1] <= slot:  # the symbol whose interval holds the slot
        first += 1
    start = cum[offset + first]
    return first, start, cum[offset + first + 1] - start


@numba.njit(inline="always")
def _advance(state, slot, start, freq, words, wp):
    state = freq * (state >> PRECISION) + slot - start
    if state < LOW:
        if wp >= words.size:
            return -1, wp
        state = (state << 32) | np.int64(words[wp])
        wp += 1
    return state, wp


@numba.njit(**JIT)
def decode_raw(words, state, wp, out, lo, raw_shift):
    """Fill out (the base grid, raster order) with raw-coded values; returns (state, wp), state -1 on a bad stream."""
    for k in range(out.size):
        slot = state & MASK
        value = slot >> raw_shift
        state, wp = _advance(state, slot, value << raw_shift, np.int64(1) << raw_shift, words, wp)
        if state < 0:
            return -1, wp
        out[k] = lo + value
    return state, wp


@numba.njit(inline="always")
def _row_model(n, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi, ilog8, shifts, halves, floor_,
               key_, half_, j):
    """Store pixel j's floor(prediction), key and half width: a row's models come before its symbols, so the
    decoder's chain of rANS states does not wait for each pixel's model."""
    pred, b, key = _model(n, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi, ilog8, shifts)
    floor_[j], key_[j], half_[j] = pred >> FRAC, key, halves[b]


@numba.njit(inline="always")
def _row_models(image, flat, oi, oj, s, geo, d, bounds, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo,
                hi, ilog8, shifts, halves, floor_, key_, half_, i):
    """The models of pass row i (its pixels' floor(prediction), key and half width), from the passes before it:
    the one piece of per-pixel modelling that the encoder and the decoder share."""
    cols = image.shape[1]
    pc = floor_.size
    p0 = (oi + i * s) * cols + oj
    a, b = _row_parts(bounds, i, pc)
    for j in range(a):
        _row_model(_edge(image, geo, i, j, s, fs), fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi,
                   ilog8, shifts, halves, floor_, key_, half_, j)
    if fs:  # feature set as a constant in each loop: no branch on it per pixel (1.3x on decode)
        for j in range(a, b):
            _row_model(_inner(flat, p0 + j * s, d, 1), 1, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi,
                       ilog8, shifts, halves, floor_, key_, half_, j)
    else:
        for j in range(a, b):
            _row_model(_inner(flat, p0 + j * s, d, 0), 0, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi,
                       ilog8, shifts, halves, floor_, key_, half_, j)
    for j in range(b, pc):
        _row_model(_edge(image, geo, i, j, s, fs), fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi,
                   ilog8, shifts, halves, floor_, key_, half_, j)
    return p0


@numba.njit(**JIT)
def encode_pass(image, oi, oj, s, geo, d, bounds, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi,
                ilog8, shifts, halves, offsets, cum, raw_shift, items):
    """The pass's items (start | freq << 32) in items: each pixel's symbol and, after an escape, its value as raw
    bits. Returns their count, or -1 when items is full."""
    rows, cols = image.shape
    pr, pc = (rows - oi + s - 1) // s, (cols - oj + s - 1) // s
    flat = image.reshape(-1)
    floor_, key_, half_ = np.empty(pc, np.int64), np.empty(pc, np.int64), np.empty(pc, np.int64)
    raw_freq = np.int64(1) << (raw_shift + 32)
    k = 0
    for i in range(pr):
        if k + 2 * pc > items.size:
            return -1
        p0 = _row_models(image, flat, oi, oj, s, geo, d, bounds, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb,
                         kp, lo, hi, ilog8, shifts, halves, floor_, key_, half_, i)
        for j in range(pc):
            x = np.int64(flat[p0 + j * s])
            half = half_[j]
            v = x - floor_[j] + half
            escaped = v < 0 or v > 2 * half
            if escaped:
                v = 2 * half + 1
            at = offsets[key_[j]] + v
            items[k] = cum[at] | ((cum[at + 1] - cum[at]) << 32)
            k += 1
            if escaped:
                items[k] = ((x - lo) << raw_shift) | raw_freq
                k += 1
    return k


@numba.njit(**JIT)
def decode_pass(image, oi, oj, s, geo, d, bounds, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb, kp, lo, hi,
                ilog8, shifts, halves, offsets, cum, lut_offsets, lut, raw_shift, words, state, wp):
    """Decode one pass into the image; returns (state, wp, error): error 1 the words ran out, 2 a value left
    [lo, hi]."""
    rows, cols = image.shape
    pr, pc = (rows - oi + s - 1) // s, (cols - oj + s - 1) // s
    flat = image.reshape(-1)
    floor_, key_, half_ = np.empty(pc, np.int64), np.empty(pc, np.int64), np.empty(pc, np.int64)
    raw_freq = np.int64(1) << raw_shift
    for i in range(pr):
        p0 = _row_models(image, flat, oi, oj, s, geo, d, bounds, fs, weights, dir_lut, act_lut, bucket_lut, ka, kb,
                         kp, lo, hi, ilog8, shifts, halves, floor_, key_, half_, i)
        for j in range(pc):
            key, half = key_[j], half_[j]
            sym, start, freq = _decode_symbol(state, cum, lut, offsets[key], lut_offsets[key])
            state, wp = _advance(state, state & MASK, start, freq, words, wp)
            if state < 0:
                return state, wp, 1
            if sym == 2 * half + 1:
                slot = state & MASK
                x = lo + (slot >> raw_shift)
                state, wp = _advance(state, slot, slot & ~(raw_freq - 1), raw_freq, words, wp)
                if state < 0:
                    return state, wp, 1
            else:
                x = floor_[j] + sym - half
            if x < lo or x > hi:
                return state, wp, 2
            flat[p0 + j * s] = x
    return state, wp, 0
