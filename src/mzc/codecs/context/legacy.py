"""Version 1 of the context coder's stream (spec 6.5.4): decode only, kept so that files written before the
compiled coder decode bit-identically (testdata/golden_ctx). Its words are constriction's range coder's; the
pixels of a pass are grouped by table, one constriction call per group, and the passes are numpy arrays.
"""
from __future__ import annotations

import functools

import constriction
import numpy as np

from ...errors import MzcError
from . import tables
from .geometry import base_slices, context, passes
from .model import FRAC_BITS, PassModel, group_keys
from .stream import HEADER, byte_count

VERSION = 1


class Tables:
    """constriction models of one pass, by group key (bucket, phase)."""

    def __init__(self, model: PassModel):
        self.buckets = [(int(j), int(mix), int(m)) for j, mix, m in zip(model.sigmas, model.mixes, model.means)]

    def get(self, key: int):
        j, mix, mean = self.buckets[key >> 4]
        return _model(j, mix, mean, key & 15), tables.half_width(j, mix)

    def halves(self) -> np.ndarray:
        """Half width of every group key's table (indexed by key)."""
        return np.repeat([tables.half_width(j, mix) for j, mix, _ in self.buckets], 16)


@functools.lru_cache(maxsize=256)  # at most 256 x 8192 frequencies, whatever a stream declares
def _model(j: int, mix: int, mean: int, phase: int):
    return categorical(tables.phase_tables(j, mix, mean)[phase])


def categorical(freq: np.ndarray):
    """A constriction model with exactly these frequencies (weights sum to 2^24 - n: its quantizer keeps them)."""
    return constriction.stream.model.Categorical((freq - 1).astype(np.float64), perfect=False)


@functools.lru_cache(maxsize=1)
def flat_model():
    """Every byte value at frequency 2^16: raw bytes (the base grid, escaped values)."""
    return categorical(np.full(256, 1 << 16, np.int64))


def one_blas_thread(fn):
    """Run with BLAS on one thread: the passes' predictions are float64 matrix products of exact integers, where
    BLAS's threads only wait for each other on a machine that already runs one chunk per core."""
    @functools.wraps(fn)
    def limited(*args, **kwargs):
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return limited


@one_blas_thread
def decode(ints: np.ndarray, words: np.ndarray, shape: tuple[int, int], lo: int, hi: int) -> np.ndarray:
    """The int64 image of a version 1 stream whose header was checked."""
    try:
        return _decode_passes(ints, constriction.stream.queue.RangeDecoder(words), shape, lo, hi)
    except MzcError:
        raise
    except BaseException as exc:  # constriction reports a bad stream as a Rust panic (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise MzcError(f"corrupt chunk: context coder stream ({type(exc).__name__})") from None


def _decode_passes(ints: np.ndarray, dec, shape: tuple[int, int], lo: int, hi: int) -> np.ndarray:
    image = np.zeros(shape, np.int64)
    nbytes = byte_count(lo, hi)
    base = image[base_slices(shape)]
    base[...] = lo + _raw_decode(dec, base.size, nbytes).reshape(base.shape)
    pos = HEADER
    for p in passes(shape):
        model, pos = PassModel.from_ints(ints, pos)
        ctx = context(image, p, model.feature_set)
        pred = model.predict(ctx, lo, hi)
        keys = group_keys(model, pred, model.buckets(ctx, pred, lo))
        values = _decode_groups(dec, model, keys, pred >> FRAC_BITS, lo, nbytes)
        if values.min() < lo or values.max() > hi:
            raise MzcError("corrupt chunk: context coder value out of range")
        image[p.rows, p.cols] = values.reshape(image[p.rows, p.cols].shape)
    if pos != ints.size:
        raise MzcError("corrupt chunk: context coder parameters have trailing data")
    return image


def _decode_groups(dec, model: PassModel, keys: np.ndarray, floor: np.ndarray, lo: int, nbytes: int) -> np.ndarray:
    """The pass's values: each group's symbols (and its escaped values) in stream order, then placed at once."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    built = Tables(model)
    half = built.halves()[sorted_keys]
    sym = np.empty(keys.size, np.int64)
    escapes = []
    for start, end in zip(starts.tolist(), np.r_[starts[1:], keys.size].tolist()):
        table, h = built.get(int(sorted_keys[start]))
        got = sym[start:end] = dec.decode(table, end - start)
        if got.max() == 2 * h + 1:
            at = start + np.flatnonzero(got == 2 * h + 1)
            escapes.append((at, lo + _raw_decode(dec, at.size, nbytes)))
    values = floor[order] + sym - half
    for at, raw in escapes:
        values[at] = raw
    out = np.empty(keys.size, np.int64)
    out[order] = values
    return out


def _raw_decode(dec, n: int, nbytes: int) -> np.ndarray:
    flat = flat_model()
    out = np.zeros(n, np.int64)
    for k in range(nbytes):
        out |= dec.decode(flat, n).astype(np.int64) << (8 * k)
    return out
