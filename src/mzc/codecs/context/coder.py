"""The context coder's stream (spec 6.5): parameters, then the range-coded passes; encode and decode of a 2-D image.

Body: u32 n, then n bytes (one zstd frame of zigzag LEB128 integers: the header and every pass model), then the
range coder's 32-bit words. The pixels of a pass are coded grouped by table, in ascending table key and in raster
order within a group, each group followed by its escaped values: one constriction call per group, none per pixel.
"""
from __future__ import annotations

import functools
import struct

import constriction
import numpy as np
import zstandard

from ...errors import MzcError
from ...format.container import crc32c
from . import tables, varint
from .fit import fit_pass, tier
from .geometry import Pass, base_slices, context, passes
from .model import FRAC_BITS, PassModel, group_keys

VERSION = 1
MAX_VALUE = 65535
MAX_PARAM_BYTES = 1 << 20
# the passes work on whole-image numpy arrays (~76 bytes per pixel at decode): larger chunks take another back end,
# and a stream declaring more is refused before any allocation (spec 6.5)
MAX_PIXELS = 1 << 23
HEADER = 7  # version, rows, columns, lo, hi - lo, CRC-32C of the image as two 16-bit halves


def byte_count(lo: int, hi: int) -> int:
    return 1 if hi - lo < 256 else 2


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
    """Run with BLAS on one thread: the fits solve hundreds of tiny least-squares systems per chunk, where BLAS's
    threads only wait for each other (measured: a 1.2 MP plane 4.3 s -> 0.9 s wall on a busy 2-core machine), and
    mzc already runs one chunk per core."""
    @functools.wraps(fn)
    def limited(*args, **kwargs):
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return limited


# ------------------------------------------------------------------------------------------------ encode
@one_blas_thread
def encode_image(image: np.ndarray) -> bytes:
    """Code a 2-D integer image with values in [0, 65535] (at least 2 x 2)."""
    image = np.ascontiguousarray(image, dtype=np.int64)
    lo, hi = int(image.min()), int(image.max())
    if lo < 0 or hi > MAX_VALUE or min(image.shape) < 2 or image.size > MAX_PIXELS:
        raise ValueError("the context coder takes 2-D images of 2 x 2 to 2^23 values in [0, 65535]")
    ints = [VERSION, *image.shape, lo, hi - lo]
    crc = crc32c(image.astype("<u2").tobytes())
    ints += [crc & 0xFFFF, crc >> 16]
    enc = constriction.stream.queue.RangeEncoder()
    nbytes = byte_count(lo, hi)
    _raw_values(enc, image[base_slices(image.shape)].reshape(-1) - lo, nbytes)
    for p in passes(image.shape):
        model, groups = _fit_pass(image, p, lo, hi, 8 * nbytes)
        ints += model.to_ints()
        _encode_groups(enc, model, groups, lo, nbytes)
    params = zstandard.ZstdCompressor(level=19).compress(varint.pack(ints))
    return struct.pack("<I", len(params)) + params + enc.get_compressed().astype("<u4").tobytes()


def _fit_pass(image: np.ndarray, p: Pass, lo: int, hi: int, escape_bits: int):
    y = image[p.rows, p.cols].reshape(-1)
    t = tier(y.size)
    ctx = context(image, p, t[0])
    model = fit_pass(ctx, y, t, lo, hi, escape_bits)
    pred = model.predict(ctx, lo, hi)
    keys = group_keys(model, pred, model.buckets(ctx, pred, lo))
    return model, (keys, y - (pred >> FRAC_BITS), y)


def _encode_groups(enc, model: PassModel, groups, lo: int, nbytes: int) -> None:
    keys, v, y = groups
    order = np.argsort(keys, kind="stable")
    keys, v, y = keys[order], v[order], y[order]
    built = Tables(model)
    half = built.halves()[keys]
    sym = v + half
    escaped = (sym < 0) | (sym > 2 * half)
    sym = np.where(escaped, 2 * half + 1, sym).astype(np.int32)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], keys.size]
    with_escapes = np.add.reduceat(escaped, starts) > 0
    for start, end, esc in zip(starts.tolist(), ends.tolist(), with_escapes.tolist()):
        enc.encode(sym[start:end], built.get(int(keys[start]))[0])
        if esc:
            _raw_values(enc, y[start:end][escaped[start:end]] - lo, nbytes)


def _raw_values(enc, values: np.ndarray, nbytes: int) -> None:
    flat = flat_model()
    for k in range(nbytes):
        enc.encode(((values >> (8 * k)) & 255).astype(np.int32), flat)


# ------------------------------------------------------------------------------------------------ decode
@one_blas_thread
def decode_image(body, shape: tuple[int, int], max_value: int = MAX_VALUE) -> np.ndarray:
    """The int64 image coded by encode_image; a damaged or hostile body raises MzcError."""
    if shape[0] * shape[1] > MAX_PIXELS:
        raise MzcError(f"corrupt chunk: a context coder stream for {shape[0]}x{shape[1]} pixels (at most 2^23)")
    ints, words = _split(body)
    if ints.size < HEADER or ints[0] != VERSION or tuple(ints[1:3]) != tuple(shape):
        raise MzcError("corrupt chunk: context coder header does not match the chunk")
    lo, span = int(ints[3]), int(ints[4])
    if min(shape) < 2 or lo < 0 or span < 0 or lo + span > min(max_value, MAX_VALUE):
        raise MzcError("corrupt chunk: context coder value range")
    crc = int(ints[5]) | (int(ints[6]) << 16)
    try:
        image = _decode_passes(ints, constriction.stream.queue.RangeDecoder(words), shape, lo, lo + span)
    except MzcError:
        raise
    except BaseException as exc:  # constriction reports a bad stream as a Rust panic (a BaseException)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise MzcError(f"corrupt chunk: context coder stream ({type(exc).__name__})") from None
    if crc32c(image.astype("<u2").tobytes()) != crc:
        raise MzcError("corrupt chunk: context coder digest mismatch")
    return image


def _split(body) -> tuple[np.ndarray, np.ndarray]:
    body = memoryview(body)
    if len(body) < 4:
        raise MzcError("corrupt chunk: context coder body too short")
    (n,) = struct.unpack("<I", body[:4])
    if n > min(len(body) - 4, MAX_PARAM_BYTES):
        raise MzcError("corrupt chunk: context coder parameters too long")
    try:
        raw = zstandard.ZstdDecompressor().decompress(bytes(body[4:4 + n]), max_output_size=MAX_PARAM_BYTES)
    except zstandard.ZstdError as exc:
        raise MzcError(f"corrupt chunk: context coder parameters ({exc})") from None
    words = body[4 + n:]
    if len(words) % 4:
        raise MzcError("corrupt chunk: context coder sizes")
    return varint.unpack(raw), np.frombuffer(words, "<u4").astype(np.uint32)


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
