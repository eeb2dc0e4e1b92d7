"""The context coder (spec 6.5): encode and decode of a 2-D image of integers in [0, 65535].

Version 2 streams (written since the compiled coder, spec 6.5.5) keep version 1's passes, pass models and
tables, and code each pass's pixels in raster order with rANS, one compiled loop per pass (kernels.py): the
decoder computes a pixel's table from its neighbours and decodes it at once. Only the pass models' fits (on a
sample of 2^14 pixels per pass) stay in numpy. Version 1 streams decode through legacy.py.
"""
from __future__ import annotations

import functools

import numpy as np

from ...errors import MzcError
from . import kernels, legacy, rans, tables
from .geometry import Context, Pass, _ilog8_table, base_slices, passes
from .model import ACT_RANGE, DIR_OFFSET, FRAC_BITS, KEY_RANGE, PassModel
from .stream import HEADER, MAX_PIXELS, MAX_VALUE, byte_count, header, image_crc, pack, split

VERSION = 2
VERSIONS = (legacy.VERSION, VERSION)
__all__ = ["HEADER", "MAX_PIXELS", "MAX_VALUE", "VERSION", "decode_image", "encode_image"]


@functools.lru_cache(maxsize=1)
def _ilog8() -> np.ndarray:
    return _ilog8_table().astype(np.int64)


def _where(p: Pass, shape: tuple[int, int]) -> tuple:
    """(first row, first column, stride, neighbour layout...) of a pass: the loops' first arguments."""
    kind = "DHV".index(p.kind)
    return (*kernels.origin(kind, p.stride), p.stride, *kernels.layout(kind, p.stride, *shape))


class PassTables:
    """What the compiled loops need of one pass model: class, bucket and key lookups, and the tables' cumulative
    frequencies (and, to decode, their first-guess lookups) concatenated, with each key's offsets."""

    def __init__(self, model: PassModel, with_lut: bool):
        self.weights = np.ascontiguousarray(model.weights, np.int64)
        steps = model.act_thresholds.size + 1
        self.dir_lut = np.searchsorted(model.dir_thresholds, np.arange(-DIR_OFFSET, DIR_OFFSET + 1), "right") * steps
        self.act_lut = np.searchsorted(model.act_thresholds, np.arange(ACT_RANGE), "right")
        self.bucket_lut = np.searchsorted(model.bucket_thresholds, np.arange(KEY_RANGE), "right")
        nb = model.sigmas.size
        self.shifts = (FRAC_BITS - tables.phase_bits(model.sigmas)).astype(np.int64)
        self.halves = np.array([tables.half_width(int(j), int(k)) for j, k in zip(model.sigmas, model.mixes)],
                               np.int64)
        self.offsets = np.zeros(16 * nb, np.int64)
        self.lut_offsets = np.zeros(16 * nb, np.int64)
        cums, luts, placed = [], [], {}
        size = lut_size = 0
        for b, triple in enumerate(zip(model.sigmas.tolist(), model.mixes.tolist(), model.means.tolist())):
            if triple not in placed:
                cum, lut = tables.phase_cums(*triple)
                placed[triple] = size, lut_size, cum.shape, lut.shape[1]
                cums.append(cum.reshape(-1))
                luts.append(lut.reshape(-1))
                size, lut_size = size + cum.size, lut_size + lut.size
            at, lut_at, (phases, width), lut_width = placed[triple]
            self.offsets[16 * b:16 * b + phases] = at + width * np.arange(phases)
            self.lut_offsets[16 * b:16 * b + phases] = lut_at + lut_width * np.arange(phases)
        self.cum = np.concatenate(cums)
        self.lut = np.concatenate(luts) if with_lut else np.zeros(1, np.int32)

    def args(self, model: PassModel) -> tuple:
        return (self.weights, self.dir_lut, self.act_lut, self.bucket_lut, model.ka, model.kb, model.kp)


# ------------------------------------------------------------------------------------------------ encode
@legacy.one_blas_thread  # the fits solve hundreds of tiny systems, where BLAS's threads only wait for each other
def encode_image(image: np.ndarray) -> bytes:
    """Code a 2-D integer image with values in [0, 65535] (at least 2 x 2, at most 2^23 pixels)."""
    from .fit import SAMPLE, fit_pass, tier  # the encoder's side only (its compiled fits load on first use)
    lo, hi = int(image.min()), int(image.max())
    if lo < 0 or hi > MAX_VALUE or image.ndim != 2 or min(image.shape) < 2 or image.size > MAX_PIXELS:
        raise ValueError("the context coder takes 2-D images of 2 x 2 to 2^23 values in [0, 65535]")
    image = np.ascontiguousarray(image, dtype=np.uint16)
    ilog8 = _ilog8()
    crc = image_crc(image)
    ints = [VERSION, *image.shape, lo, hi - lo, crc & 0xFFFF, crc >> 16]
    nbytes = byte_count(lo, hi)
    raw_shift = rans.PRECISION - 8 * nbytes
    parts = [kernels.raw_items(image[base_slices(image.shape)].reshape(-1), lo, raw_shift)]
    for p in passes(image.shape):
        where = _where(p, image.shape)
        n = image[p.rows, p.cols].size
        t = tier(n)
        *ctx, y = kernels.sample_context(image, *where, t[0], max(1, n // SAMPLE))
        model = fit_pass(Context(*ctx), y, t, lo, hi, 8 * nbytes)
        ints += model.to_ints()
        built = PassTables(model, with_lut=False)
        items = np.empty(n + n // 8 + 16, np.int64)
        while True:
            count = kernels.encode_pass(image, *where, model.feature_set, *built.args(model), lo, hi, ilog8,
                                        built.shifts, built.halves, built.offsets, built.cum, raw_shift, items)
            if count >= 0:
                break
            items = np.empty(2 * items.size, np.int64)
        parts.append(items[:count])
    words = np.empty(sum(a.size for a in parts) + 2, np.int64)
    state, n_words = rans.LOW, 0
    for items in reversed(parts):
        state, n_words = rans.encode_backwards(items, state, words, n_words)
    body = pack(ints, rans.finish(state, words, n_words))
    _check(body, ints, parts)
    return body


def _check(body: bytes, ints: list[int], parts: list[np.ndarray]) -> None:
    """The encoder's check, at a few percent of its time: the stored parameters read back to the fitted ones (every
    pass model parses), and the words replay to every symbol the encoder meant. The decoder derives the same
    tables from the same samples with the same compiled code (kernels._model), so this is what a full decode
    would compare, without running the model again."""
    stored, words = split(body)
    pos = HEADER
    while pos < stored.size:
        pos = PassModel.from_ints(stored, pos)[1]
    state, wp = rans.start_state(words)
    for items in parts:
        if state >= 0:
            state, wp = rans.replay(items, words, state, wp)
    if stored.tolist() != ints or state != rans.LOW or wp != words.size:
        raise MzcError("internal error: a context coder stream did not replay to its image")


# ------------------------------------------------------------------------------------------------ decode
def decode_image(body, shape: tuple[int, int], max_value: int = MAX_VALUE) -> np.ndarray:
    """The image coded by encode_image (uint16 for version 2, int64 for version 1); a damaged or hostile body
    raises MzcError."""
    shape = tuple(int(v) for v in shape)
    if shape[0] * shape[1] > MAX_PIXELS:
        raise MzcError(f"corrupt chunk: a context coder stream for {shape[0]}x{shape[1]} pixels (at most 2^23)")
    ints, words = split(body)
    version, lo, hi, crc = header(ints, shape, max_value, VERSIONS)
    if version == legacy.VERSION:
        image = legacy.decode(ints, words, shape, lo, hi)
    else:
        image = _decode_v2(ints, words, shape, lo, hi)
    if image_crc(image) != crc:
        raise MzcError("corrupt chunk: context coder digest mismatch")
    return image


def _decode_v2(ints: np.ndarray, words: np.ndarray, shape: tuple[int, int], lo: int, hi: int) -> np.ndarray:
    ilog8 = _ilog8()
    image = np.zeros(shape, np.uint16)
    raw_shift = rans.PRECISION - 8 * byte_count(lo, hi)
    state, wp = rans.start_state(words)
    if state < 0:
        raise MzcError("corrupt chunk: context coder stream start")
    grid = base_slices(shape)
    base = np.empty(image[grid].size, np.int64)
    state, wp = kernels.decode_raw(words, state, wp, base, lo, raw_shift)
    if state < 0 or base.max() > hi:
        raise MzcError("corrupt chunk: context coder stream ends early" if state < 0 else
                       "corrupt chunk: context coder value out of range")
    image[grid] = base.reshape(image[grid].shape)
    pos = HEADER
    for p in passes(shape):
        model, pos = PassModel.from_ints(ints, pos)
        built = PassTables(model, with_lut=True)
        state, wp, error = kernels.decode_pass(
            image, *_where(p, shape), model.feature_set, *built.args(model), lo, hi, ilog8,
            built.shifts, built.halves, built.offsets, built.cum, built.lut_offsets, built.lut, raw_shift, words,
            state, wp)
        if error:
            raise MzcError("corrupt chunk: context coder stream ends early" if error == 1 else
                           "corrupt chunk: context coder value out of range")
    if pos != ints.size:
        raise MzcError("corrupt chunk: context coder parameters have trailing data")
    if state != rans.LOW or wp != words.size:
        raise MzcError("corrupt chunk: context coder stream does not end where it should")
    return image
