"""Rate control: turn `-q 50x` (real file ratio) or `-q 48dB` (PSNR on the data range) into a codec knob.

One knob for the whole file (equal quality everywhere is close to rate-distortion optimal for a stationary stack),
found by bisection on a sample of chunks; the encoder checks the real file and corrects once if the sample misled it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .codecs.base import Codec
from .errors import MzcError
from .metrics import psnr

SEARCH_STEPS = 14
RATIO_TOLERANCE = 0.10
PSNR_MARGIN_DB = 0.05


@dataclass(frozen=True)
class Target:
    kind: str  # "ratio" or "psnr"
    value: float

    def __str__(self) -> str:
        return f"{self.value:g}x" if self.kind == "ratio" else f"{self.value:g}dB"


def parse_quality(text: str) -> Target:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(x|db)\s*", text, flags=re.IGNORECASE)
    if not m:
        raise MzcError(f"-q {text!r}: expected a ratio like 50x or a PSNR like 48dB")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit == "x":
        if value <= 1.0:
            raise MzcError(f"-q {text}: a lossy ratio must be above 1x (use --lossless for exact data)")
        return Target("ratio", value)
    if not 0 < value < 200:
        raise MzcError(f"-q {text}: PSNR target must be between 0 and 200 dB")
    return Target("psnr", value)


@dataclass
class Trial:
    knob: float
    body_bytes: int
    mse: float


def trial(codec: Codec, blocks: list[np.ndarray], knob: float) -> Trial:
    c = codec.with_knob(knob)
    size, sse, n = 0, 0.0, 0
    for block in blocks:
        body, params = c.encode(block)
        back = c.decode(body, block.shape, block.dtype, params)
        d = back.astype(np.float64) - block.astype(np.float64)
        size += len(body)
        sse += float(np.vdot(d, d))
        n += d.size
    return Trial(knob, size, sse / max(n, 1))


def _mid(lo: float, hi: float, log: bool) -> float:
    return math.sqrt(lo * hi) if log else (lo + hi) / 2


def search_knob(codec: Codec, blocks: list[np.ndarray], target: Target, body_budget: float | None,
                data_range: float) -> Trial:
    """Bisect the codec's knob on sample blocks (size and quality both grow with the knob).

    ratio: the largest knob whose coded size fits the body budget (bytes for the sample);
    psnr: the smallest knob whose PSNR meets the target plus a small margin.
    """
    lo, hi = codec.knob_bounds
    by_ratio = target.kind == "ratio"

    def ok(t: Trial) -> bool:
        if by_ratio:
            return t.body_bytes <= body_budget
        return psnr(t.mse, data_range) >= target.value + PSNR_MARGIN_DB

    top, bottom = trial(codec, blocks, hi), trial(codec, blocks, lo)
    if by_ratio and not ok(bottom):
        raise MzcError(f"-q {target} cannot be met by {codec.id}: its smallest output is "
                       f"{bottom.body_bytes / max(body_budget, 1):.1f}x the size that ratio allows")
    if not by_ratio and not ok(top):
        raise MzcError(f"-q {target} cannot be met by {codec.id}: it reaches "
                       f"{psnr(top.mse, data_range):.1f} dB at best (use --lossless)")
    if by_ratio and ok(top):
        return top
    if not by_ratio and ok(bottom):
        return bottom
    passing = [bottom] if by_ratio else [top]
    for _ in range(SEARCH_STEPS):
        mid = _mid(lo, hi, codec.knob_log)
        t = trial(codec, blocks, mid)
        if ok(t):
            passing.append(t)
        if ok(t) == by_ratio:
            lo = mid
        else:
            hi = mid
        if ok(t) and (body_budget - t.body_bytes < body_budget * RATIO_TOLERANCE / 4 if by_ratio
                      else psnr(t.mse, data_range) < target.value + PSNR_MARGIN_DB + 0.1):
            break  # close enough: further halvings would not change the file by more than the tolerance
    return max(passing, key=lambda t: t.body_bytes) if by_ratio else min(passing, key=lambda t: t.body_bytes)


def sample_indices(n_chunks: int, chunk_elems: int, total_elems: int, max_chunks: int = 8,
                   max_elems: int = 6 << 20) -> list[int]:
    """Evenly spaced chunks for the knob search; all of them for small files."""
    if n_chunks <= max_chunks and total_elems <= max_elems:
        return list(range(n_chunks))
    k = max(1, min(max_chunks, max_elems // max(1, chunk_elems)))
    return sorted({int(round(i)) for i in np.linspace(0, n_chunks - 1, k)})
