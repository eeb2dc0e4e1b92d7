"""Rate control in one place: fit the planned codec to its target on sample chunks, check the real file, correct.

`-q 50x` is a real file ratio and `-q 48dB` a PSNR on the data range; both are met by one knob for the whole file
(equal quality everywhere is close to rate-distortion optimal for a stationary stack), found on a sample of chunks
(targets.py). The file is then coded; when the sample misled the search, the byte budget (ratio) or the PSNR aimed at
is corrected and the file coded again, at most twice. A target still missed is an error and nothing is written.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..bounds.bound import Bound
from ..codecs import registry
from ..codecs.base import BoundWrapper, Budgeted, Codec, Exact, MaxErrorCoder, NoiseCoder, Prepared, RatePoints
from ..errors import MzcError
from ..stats import DataStats
from ..targets import RATIO_TOLERANCE, Target, choose_point, sample_indices, search_knob
from ..targets import trial as measure_trial
from .plan import BASE_AND_RESIDUAL, EXACT, MAX_ERROR, WITHIN_NOISE, Plan, clamped_error

MAX_ATTEMPTS = 3
FIT_SHARE = 0.85  # of a time budget's seconds left when coding starts: the fits; the rest checks and writes the file
MIN_FIT_SHARE = 0.25  # of the budget, the least the fits get when the scan and search took more than planned
BASE_SEARCH_STEPS = 7  # golden-section steps over a base codec's knob: the bracket shrinks to 3% of its width


@dataclass
class Facts:
    """What rate control needs to know of the data: its values, size, chunks (and how to read a sample of them)."""
    stats: DataStats
    nbytes: int
    n_elements: int
    n_chunks: int
    chunk_elements: int
    axes: str
    dtype: np.dtype
    sample: Callable[[list[int]], list[tuple[tuple[slice, ...], np.ndarray]]]  # chunk indices -> (slices, block)
    overhead: Callable[[Codec], int] = lambda codec: 0  # container bytes besides the chunk bodies
    parallel: int = 1  # chunks fitted at once (a time budget is shared over them)
    data_range: float | None = None  # PSNR's peak (default: the stats' range)
    started: float = field(default_factory=time.perf_counter)  # when the encode began (a time budget counts from it)

    @property
    def peak(self) -> float:
        return self.stats.range if self.data_range is None else self.data_range

    def blocks(self, slow: bool) -> list[tuple[tuple[slice, ...], np.ndarray]]:
        """Evenly spaced sample chunks (fewer for slow codecs: a learned trial is a network pass on the CPU)."""
        idx = sample_indices(self.n_chunks, self.chunk_elements, self.n_elements,
                             max_chunks=4 if slow else 8, max_elems=(2 << 20) if slow else (6 << 20))
        return self.sample(idx)


def prepared(codec: Codec, stats: DataStats) -> Codec:
    return codec.prepare(stats) if isinstance(codec, Prepared) else codec


def bound_codec(codec: Codec) -> Codec:
    return codec.bind() if isinstance(codec, Prepared) else codec


class RateControl:
    """Fits the plan to the data, and corrects after a file missed its target."""

    def __init__(self, plan: Plan, facts: Facts, bound: Bound | None):
        self.plan, self.facts, self.bound = plan, facts, bound
        self.scale = 1.0  # shrinks the byte budget on a corrective pass
        self.goal = plan.target  # what the search aims at; raised on a PSNR retry, the user's target is not
        self.knob_floor, self.chosen_knob = 0, None  # rate points: the lowest allowed, the one chosen

    # -------------------------------------------------------------- fitting
    def fit(self) -> Codec:
        """The codec, fixed for this file, ready for the header."""
        plan, request, stats = self.plan, self.plan.request, self.facts.stats
        if plan.mode == EXACT:
            return bound_codec(prepared(registry.role(Exact).for_effort(request.effort), stats))
        if plan.mode == MAX_ERROR:
            return registry.role(MaxErrorCoder).for_max_error(clamped_error(request.max_error, self.facts.dtype))
        if plan.mode == WITHIN_NOISE:
            return registry.role(NoiseCoder).for_bound(self.bound, request.effort)
        if plan.mode == BASE_AND_RESIDUAL:
            base = self.fit_lossy() if plan.target is not None else self.smallest_base()
            return registry.role(BoundWrapper).wrap(base, self.bound, request.effort)
        return self.fit_lossy()

    def fit_lossy(self) -> Codec:
        codec = self.plan.codec
        if isinstance(codec, Budgeted):
            return self.budgeted()
        if self.goal is None:
            return bound_codec(prepared(codec, self.facts.stats))
        candidates = [prepared(c, self.facts.stats) for c in self.plan.candidates]
        slow = any(isinstance(c, RatePoints) for c in candidates)
        blocks = [b for _, b in self.facts.blocks(slow)]
        best, best_trial, errors = None, None, []
        for cand in candidates:
            try:
                trial = self.search(cand, blocks)
            except MzcError as exc:
                errors.append(str(exc))
                continue
            if len(candidates) > 1 and math.isnan(trial.mse):  # ratio searches skip decoding; auto compares errors
                trial = measure_trial(cand.for_search(), blocks, trial.knob)
            better = best_trial is None or (trial.mse < best_trial.mse if self.goal.kind == "ratio"
                                            else trial.body_bytes < best_trial.body_bytes)
            if better:
                best, best_trial = cand.with_knob(trial.knob), trial
        if best is None:
            raise MzcError(errors[0])
        if isinstance(best, RatePoints):
            self.chosen_knob = best_trial.knob
        return bound_codec(best)

    def search(self, codec: Codec, blocks: list[np.ndarray]):
        budget = None
        if self.goal.kind == "ratio":
            sample_raw = sum(b.nbytes for b in blocks)
            budget = self.body_total(codec) * sample_raw / self.facts.nbytes * self.scale
        if isinstance(codec, RatePoints):
            return choose_point(codec.for_search(), blocks, self.goal, budget, self.facts.peak, self.knob_floor)
        return search_knob(codec.for_search(), blocks, self.goal, budget, self.facts.peak)

    def body_total(self, codec: Codec) -> float:
        """Bytes the chunk bodies may take for the ratio aimed at."""
        total = self.facts.nbytes / self.goal.value - self.facts.overhead(codec)
        if total <= 0:
            raise MzcError(f"-q {self.goal} cannot be met: the header and index alone exceed "
                           f"{self.facts.nbytes / self.goal.value:.0f} bytes (file too small for that ratio)")
        return total

    def budgeted(self) -> Codec:
        """A codec that meets a byte budget inside each chunk: bytes per element from the ratio, time per element."""
        codec, facts = self.plan.codec, self.facts
        bpe = self.body_total(codec) * self.scale / facts.n_elements
        codec.check_budget(bpe, facts.chunk_elements)
        seconds = None
        if self.plan.request.time_budget:  # wall-clock seconds for the whole encode, of which the fits get what is left
            codec.warm_up()
            left = self.plan.request.time_budget - (time.perf_counter() - facts.started)
            fits = max(left * FIT_SHARE, MIN_FIT_SHARE * self.plan.request.time_budget)
            seconds = fits * min(facts.parallel, facts.n_chunks) / facts.n_elements
        return bound_codec(codec.with_budget(bpe, seconds))

    def smallest_base(self) -> Codec:
        """The base quality that makes the smallest bounded file, measured on sample chunks: every rate point of a
        learned family, or a golden-section search over a classic codec's knob (total size is unimodal in it)."""
        wrapper = registry.role(BoundWrapper)
        base = prepared(self.plan.codec, self.facts.stats)
        samples = self.facts.sample(sample_indices(self.facts.n_chunks, self.facts.chunk_elements,
                                                   self.facts.n_elements, max_chunks=4, max_elems=2 << 20))
        sizes: dict[float, int] = {}

        def size(knob: float) -> int:
            if knob not in sizes:
                wrapped = wrapper.wrap(base.with_knob(knob), self.bound, "fast")
                sizes[knob] = sum(len(wrapped.for_chunk(self.facts.axes, sl).encode(b)[0]) for sl, b in samples)
            return sizes[knob]

        if isinstance(base, RatePoints):
            return bound_codec(base.with_knob(min(base.knob_values(), key=size)))
        if base.fixed_rate:
            return bound_codec(base)
        return bound_codec(base.with_knob(golden_minimum(size, base.knob_bounds, base.knob_log)))

    # -------------------------------------------------------------- checking the real file
    @property
    def discrete(self) -> bool:
        """The rate was chosen among a few points rather than searched on a continuous knob."""
        return self.chosen_knob is not None

    def met(self, report: dict) -> bool:
        target = self.plan.target
        if target is None or self.plan.mode == BASE_AND_RESIDUAL:
            return True  # -q was the base's target; the bound decides what the residual costs
        if target.kind == "ratio":
            if self.discrete:
                return True  # a discrete codec meets a ratio with its nearest rate point, not within a tolerance
            codec = self.plan.codec
            tolerance = getattr(codec, "ratio_tolerance", RATIO_TOLERANCE) if codec is not None else RATIO_TOLERANCE
            return abs(report["ratio"] / target.value - 1) <= tolerance
        value = report["psnr_db"]
        return value is None or value >= target.value  # None: identical to the original

    def correct(self, report: dict, attempt: int) -> None:
        """Adjust for the next attempt after `report` missed the target; the last miss is an error."""
        if attempt == MAX_ATTEMPTS - 1:
            raise MzcError(f"-q {self.plan.target} could not be met: got ratio {report['ratio']}x, "
                           f"PSNR {report['psnr_db']} dB")
        if self.plan.target.kind == "ratio":
            self.scale *= report["ratio"] / self.plan.target.value
        elif self.discrete:
            self.knob_floor = self.chosen_knob + 1
        else:
            self.goal = Target("psnr", self.goal.value + 0.25)

    def run(self, write: Callable[[Codec, Callable[[dict], bool]], dict]) -> dict:
        """Fit, code and check until the file meets its target. `write(codec, keep)` codes the file and keeps it
        only if keep(report) is true; it returns the report either way."""
        for attempt in range(MAX_ATTEMPTS):
            report = write(self.fit(), self.met)
            if self.met(report):
                return report
            self.correct(report, attempt)
        raise AssertionError("unreachable")


def golden_minimum(size: Callable[[float], int], bounds: tuple[float, float], log: bool) -> float:
    """The knob of smallest size(knob) in `bounds` by golden-section search (size is unimodal in the knob)."""
    warp, unwarp = (math.log, math.exp) if log else (float, float)
    a, b = warp(bounds[0]), warp(bounds[1])
    golden = (math.sqrt(5) - 1) / 2
    c, d = b - golden * (b - a), a + golden * (b - a)
    tried = {}
    for _ in range(BASE_SEARCH_STEPS):
        for x in (c, d):
            if x not in tried:
                tried[x] = size(unwarp(x))
        if tried[c] <= tried[d]:
            b, d = d, c
            c = b - golden * (b - a)
        else:
            a, c = c, d
            d = a + golden * (b - a)
    return unwarp(min(tried, key=tried.get))


def fit_block(request, block: np.ndarray, axes: str | None = None, lo: int | None = None,
              hi: int | None = None) -> Codec:
    """The codec for one block when there is no whole file to plan over (a Zarr chunk, a stack writer's first
    frame): planned and fitted on the block itself. The bound's and the value mapping's range is [lo, hi]
    (default: the block's own); PSNR targets use the block's own range."""
    from ..stats import scan
    from .plan import plan as make_plan
    axes = axes or "Q" * (block.ndim - 2) + "YX"
    plan = make_plan(request, block.dtype, axes)
    stats = scan([block])
    if lo is not None:
        stats = DataStats(float(lo), float(hi), None)
    planes = block.reshape(-1, *block.shape[-2:])
    bound = plan.bound(int(stats.min), int(stats.max), block.dtype, lambda c: list(planes), 1) \
        if plan.bounds_data else None
    whole = tuple(slice(0, n) for n in block.shape)
    facts = Facts(stats=stats, nbytes=block.nbytes, n_elements=block.size, n_chunks=1, chunk_elements=block.size,
                  axes=axes, dtype=block.dtype, sample=lambda idx: [(whole, block)],
                  data_range=float(block.max()) - float(block.min()))
    return RateControl(plan, facts, bound).fit()
