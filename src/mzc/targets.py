"""Rate control: turn `-q 50x` (real file ratio) or `-q 48dB` (PSNR on the data range) into a codec knob.

One knob for the whole file (equal quality everywhere is close to rate-distortion optimal for a stationary stack),
found by bisection on a sample of chunks; the encoder checks the real file and corrects once if the sample misled it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

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


def trial(codec, blocks: list[np.ndarray], knob: float, measure: bool = True) -> Trial:
    """Code the blocks at `knob`: their total body size and (with `measure`: decoded again) mean squared error."""
    c = codec.with_knob(knob)
    size, sse, n = 0, 0.0, 0
    for block in blocks:
        body, params = c.encode(block)
        if not measure:  # a ratio search needs sizes only: decoding would double each trial's cost
            size += len(body)
            continue
        back = c.decode(body, block.shape, block.dtype, params)
        d = back.astype(np.float64) - block.astype(np.float64)
        size += len(body)
        sse += float(np.vdot(d, d))
        n += d.size
    return Trial(knob, size, sse / max(n, 1) if measure else float("nan"))


def _mid(lo: float, hi: float, log: bool) -> float:
    return math.sqrt(lo * hi) if log else (lo + hi) / 2


def _step(knob: float, up: bool, log: bool, size: float, bounds: tuple[float, float]) -> float:
    nxt = (knob * size if up else knob / size) if log else (knob + size if up else knob - size)
    return min(max(nxt, bounds[0]), bounds[1])


class KnobSearch:
    """One search for the knob that meets a target on sample blocks (size and quality both grow with the knob).

    ratio: the largest knob whose coded size fits the body budget (bytes for the sample);
    psnr: the smallest knob whose PSNR meets the target plus a small margin.
    A codec's guess (SPERR's bpp is the size, J2K's level is a PSNR) is bracketed outwards first, then bisected, so a
    good guess costs 2-5 trials instead of ~12.
    """

    def __init__(self, codec, blocks: list[np.ndarray], target: Target, body_budget: float | None,
                 data_range: float):
        self.codec, self.blocks, self.target = codec, blocks, target
        self.budget, self.data_range = body_budget, data_range
        self.by_ratio = target.kind == "ratio"
        self.tried: dict[float, Trial] = {}
        self.passing: list[Trial] = []

    # ------------------------------------------------------------ measuring
    def run(self, knob: float) -> Trial:
        t = trial(self.codec, self.blocks, knob, measure=not self.by_ratio)
        self.tried[knob] = t
        if self.ok(t):
            self.passing.append(t)
        return t

    def ok(self, t: Trial) -> bool:
        if self.by_ratio:
            return t.body_bytes <= self.budget
        return psnr(t.mse, self.data_range) >= self.target.value + PSNR_MARGIN_DB

    def miss(self, t: Trial) -> float:
        """Signed distance to the target: log size over budget, or dB short of the PSNR."""
        if self.by_ratio:
            return math.log(max(t.body_bytes, 1) / self.budget)
        return psnr(t.mse, self.data_range) - self.target.value - PSNR_MARGIN_DB

    def close_enough(self, t: Trial) -> bool:
        if not self.ok(t):
            return False
        if self.by_ratio:
            tolerance = getattr(self.codec, "ratio_tolerance", RATIO_TOLERANCE)
            return self.budget - t.body_bytes < self.budget * tolerance / 4
        return psnr(t.mse, self.data_range) < self.target.value + PSNR_MARGIN_DB + 0.1

    def best(self) -> Trial:
        pick = max if self.by_ratio else min
        return pick(self.passing, key=lambda t: t.body_bytes)

    def fail(self, t: Trial) -> MzcError:
        if self.by_ratio:
            return MzcError(f"-q {self.target} cannot be met by {self.codec.id}: its smallest output is "
                            f"{t.body_bytes / max(self.budget, 1):.1f}x the size that ratio allows")
        return MzcError(f"-q {self.target} cannot be met by {self.codec.id}: it reaches "
                        f"{psnr(t.mse, self.data_range):.1f} dB at best (use --lossless)")

    # ------------------------------------------------------------ searching
    def search(self) -> Trial:
        codec = self.codec
        guess = codec.knob_guess(self.target, self.budget, sum(b.size for b in self.blocks), self.data_range,
                                 self.blocks[0].dtype)
        if guess is None:
            found = self.ends()
        else:
            found = self.bracket(min(max(guess, codec.knob_bounds[0]), codec.knob_bounds[1]))
        if isinstance(found, Trial):
            return found
        lo, hi, t = found
        for _ in range(SEARCH_STEPS):
            mid = self.next_knob(lo, hi)
            t = self.run(mid)
            if self.close_enough(t):
                return t
            if self.ok(t) == self.by_ratio:
                lo = mid
            else:
                hi = mid
        if not self.passing:
            raise self.fail(t)
        return self.best()

    def ends(self):
        """Both ends of the knob's range: the answer when one end already settles it, else the bracket."""
        lo, hi = self.codec.knob_bounds
        top, bottom = self.run(hi), self.run(lo)
        decisive = bottom if self.by_ratio else top  # the smallest output / the best quality
        if not self.ok(decisive):
            raise self.fail(decisive)
        if self.ok(top if self.by_ratio else bottom):
            return top if self.by_ratio else bottom
        return lo, hi, top

    def bracket(self, cur: float):
        """Walk outwards from a guess with growing steps until the target lies between two knobs.

        Returns the answer (a Trial: close enough, or the best a bound allows) or (lo, hi, last trial), lo on the
        side that passes for a ratio (fails for a PSNR)."""
        codec = self.codec
        t = self.run(cur)
        if self.close_enough(t):
            return t
        low_side = self.ok(t) == self.by_ratio
        size = 1.6 if codec.knob_log else 3.0
        while True:
            nxt = _step(cur, low_side, codec.knob_log, size, codec.knob_bounds)
            if nxt == cur:  # at a bound, still on the guess's side
                if self.ok(t):
                    return t  # the best quality fits the budget / the lowest knob meets the PSNR
                raise self.fail(t)
            prev, cur = cur, nxt
            t = self.run(cur)
            if self.close_enough(t):
                return t
            if (self.ok(t) == self.by_ratio) != low_side:
                return (prev, cur, t) if low_side else (cur, prev, t)
            size = size * size if codec.knob_log else size * 2

    def next_knob(self, lo: float, hi: float) -> float:
        """Regula falsi on miss() between the bracket's trials, kept 10% inside the bracket; else the midpoint."""
        log = self.codec.knob_log
        a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
        fa, fb = self.miss(self.tried[lo]), self.miss(self.tried[hi])
        if not (math.isfinite(fa) and math.isfinite(fb)) or fa == fb:
            return _mid(lo, hi, log)
        x = a + (b - a) * (0 - fa) / (fb - fa)
        x = min(max(x, a + 0.1 * (b - a)), b - 0.1 * (b - a))
        return math.exp(x) if log else x


def search_knob(codec, blocks: list[np.ndarray], target: Target, body_budget: float | None,
                data_range: float) -> Trial:
    """The knob meeting `target` on sample blocks (see KnobSearch)."""
    return KnobSearch(codec, blocks, target, body_budget, data_range).search()


def choose_point(codec, blocks: list[np.ndarray], target: Target, body_budget: float | None,
                 data_range: float, floor: int = 0) -> Trial:
    """Discrete knobs (a learned family's rate points): ratio -> the point whose size is nearest the budget (in log
    terms); PSNR -> the smallest output meeting the target plus margin. Every point from `floor` up (raised when
    the real file missed a PSNR the sample met) is tried: a family's points need not be monotonic on every image."""
    values = [k for k in codec.knob_values() if k >= floor]
    if not values:
        raise MzcError(f"-q {target} cannot be met by {codec.id}: its highest rate point missed it on the real file")
    trials = [trial(codec, blocks, knob) for knob in values]
    if target.kind == "ratio":
        return min(trials, key=lambda t: abs(math.log(max(t.body_bytes, 1) / body_budget)))
    meeting = [t for t in trials if psnr(t.mse, data_range) >= target.value + PSNR_MARGIN_DB]
    if meeting:
        return min(meeting, key=lambda t: t.body_bytes)
    best = max(psnr(t.mse, data_range) for t in trials)
    raise MzcError(f"-q {target} cannot be met by {codec.id}: its best rate point reaches {best:.1f} dB "
                   f"(use a classic codec, --max-error or --lossless)")


def sample_indices(n_chunks: int, chunk_elems: int, total_elems: int, max_chunks: int = 8,
                   max_elems: int = 6 << 20) -> list[int]:
    """Evenly spaced chunks for the knob search; all of them for small files."""
    if n_chunks <= max_chunks and total_elems <= max_elems:
        return list(range(n_chunks))
    k = max(1, min(max_chunks, max_elems // max(1, chunk_elems)))
    return sorted({int(round(i)) for i in np.linspace(0, n_chunks - 1, k)})
