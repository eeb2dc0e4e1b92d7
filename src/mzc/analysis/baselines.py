"""The plain baselines of `mzc bench`: one imagecodecs call per 2-D plane, no container, no tiling, no per-chunk rate
control, with the codec's knob bisected on the whole file until the summed codestreams give the target ratio.

J2K, HTJ2K, JPEG XL, AVIF and SPERR use the same library calls (and settings) as mzc's codecs of those names, so the
gap between `j2k` and `plain:j2k` is what mzc's container, chunking and rate control cost or win. JPEG-LS has no mzc
lossy twin: its knob is NEAR (0 = lossless), an integer."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import imagecodecs
import numpy as np

from ..codecs import registry
from ..codecs.base import LibraryCodec, Prepared
from ..codecs.nearlossless import jpegls_max_near
from ..errors import MzcError
from ..stats import scan

JPEGLS = "jpegls"  # JPEG-LS near-lossless with its NEAR knob: a library call with no lossy mzc twin


def plain_ids() -> list[str]:
    """Every library codec of the registry, plus JPEG-LS near-lossless."""
    return [cls.id for cls in registry.providing(LibraryCodec)] + [JPEGLS]
RATIO_TOLERANCE = 0.02
MAX_TRIALS = 18


@dataclass
class PlainResult:
    decoded: np.ndarray
    nbytes: int
    knob: float
    encode_seconds: float
    decode_seconds: float


def planes_of(array: np.ndarray, axes: str) -> np.ndarray:
    """(n, Y, X) view of the file's 2-D planes (RGB samples as planes of their own)."""
    order = [i for i, a in enumerate(axes) if a not in "YX"] + [axes.index("Y"), axes.index("X")]
    return np.ascontiguousarray(np.transpose(array, order)).reshape(-1, array.shape[axes.index("Y")],
                                                                     array.shape[axes.index("X")])


class _Plain:
    """One baseline: encode/decode every plane at a knob; larger knob = larger output unless `shrinks`."""

    def __init__(self, cid: str, planes: np.ndarray):
        self.cid, self.planes = cid, planes
        if cid == JPEGLS:
            self.bounds, self.log, self.integer, self.shrinks = (0, jpegls_max_near(planes.dtype)), False, True, True
            return
        codec = registry.lookup(cid)[0]()
        self.codec = codec.prepare(scan(iter(planes))) if isinstance(codec, Prepared) else codec
        self.bounds, self.log = self.codec.knob_bounds, self.codec.knob_log
        self.integer, self.shrinks = False, False

    def encode(self, knob: float) -> list[tuple[bytes, dict]]:
        if self.cid == JPEGLS:
            return [(imagecodecs.jpegls_encode(p, level=int(knob)), {}) for p in self.planes]
        codec = self.codec.with_knob(knob)
        return [codec.encode(p) for p in self.planes]

    def decode(self, knob: float, streams: list[tuple[bytes, dict]]) -> np.ndarray:
        shape, dtype = self.planes.shape[1:], self.planes.dtype
        if self.cid == JPEGLS:
            return np.stack([imagecodecs.jpegls_decode(b).reshape(shape) for b, _ in streams])
        codec = self.codec.with_knob(knob)
        return np.stack([codec.decode(b, shape, dtype, p) for b, p in streams])


def run_plain(cid: str, array: np.ndarray, axes: str, ratio: float) -> PlainResult:
    """Bisect the knob to the target ratio (within 2% when the knob allows), then time one encode and one decode."""
    if cid not in plain_ids():
        raise MzcError(f"unknown baseline plain:{cid}: choose from {', '.join('plain:' + c for c in plain_ids())}")
    if array.dtype not in (np.uint8, np.uint16):
        raise MzcError(f"plain:{cid} takes uint8/uint16 data, not {array.dtype}")
    plain = _Plain(cid, planes_of(array, axes))
    budget = array.nbytes / ratio
    lo, hi = plain.bounds
    best = None  # (miss, knob)
    for _ in range(MAX_TRIALS):
        knob = round((lo + hi) / 2) if plain.integer else \
            (math.sqrt(lo * hi) if plain.log else (lo + hi) / 2)
        size = sum(len(b) for b, _ in plain.encode(knob))
        miss = abs(math.log(budget / size))
        if best is None or miss < best[0]:
            best = (miss, knob)
        if miss <= math.log1p(RATIO_TOLERANCE) or (plain.integer and hi - lo <= 1):
            break
        too_big = size > budget
        if too_big != plain.shrinks:
            hi = knob
        else:
            lo = knob
    knob = best[1]
    t = time.perf_counter()
    streams = plain.encode(knob)
    encode_seconds = time.perf_counter() - t
    t = time.perf_counter()
    decoded = plain.decode(knob, streams)
    decode_seconds = time.perf_counter() - t
    order = [i for i, a in enumerate(axes) if a not in "YX"] + [axes.index("Y"), axes.index("X")]
    back = np.transpose(decoded.reshape([array.shape[i] for i in order]), np.argsort(order))
    return PlainResult(back, sum(len(b) for b, _ in streams), knob, encode_seconds, decode_seconds)
