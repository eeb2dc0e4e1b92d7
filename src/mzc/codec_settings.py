"""Codec settings as a script or a Zarr array states them (codec id, knob or quality, max_error, noise) turned into
the mzc codec for one block of data, when there is no whole file to scan first (Zarr chunks, appended frames)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bounds import Bound
from .codecs import from_config
from .codecs.base import Codec
from .codecs.bounded import Bounded
from .codecs.lossless import Lossless
from .codecs.nearlossless import NearLossless
from .codecs.noise import Noise
from .noise import NoiseModel, parse_model
from .noise import fit as fit_noise
from .stats import DataStats, scan
from .errors import MzcError
from .targets import choose_point, parse_quality, search_knob


@dataclass
class CodecSettings:
    codec: str = "lossless"
    knob: float | None = None
    quality: str | None = None
    max_error: int | None = None
    noise: float | None = None
    noise_model: str | None = None
    effort: str = "fast"
    model: NoiseModel | None = field(default=None, init=False)

    def __post_init__(self):
        if self.knob is not None and self.quality is not None:
            raise ValueError("give knob or quality, not both")
        if self.max_error is not None and self.noise is not None:
            raise ValueError("give max_error or noise, not both")
        self.model = parse_model(self.noise_model) if self.noise_model else None

    def base_codec(self) -> Codec:
        """The lossy codec named: a classic id, `learned` / `learned:FAMILY` (its rate points) or `learned:MODEL`."""
        cid, _, which = self.codec.partition(":")
        if cid != "learned":
            return from_config({"id": self.codec})
        from .codecs.learned import Learned
        from .zoo import DEFAULT_FAMILY, FAMILY_NAMES
        return Learned(family=which or DEFAULT_FAMILY) if not which or which in FAMILY_NAMES else Learned(model=which)

    def codec_for(self, chunk: np.ndarray, lo: int | None = None, hi: int | None = None) -> Codec:
        """The mzc codec for this chunk: noise fit and knob search use the chunk; value range [lo, hi] (default:
        the chunk's own)."""
        stats = scan([chunk])
        if lo is not None:
            stats = DataStats(float(lo), float(hi), None)
        lo, hi = int(stats.min), int(stats.max)
        bound = None
        if self.noise is not None:
            model = self.model or fit_noise([p for p in chunk.reshape(-1, *chunk.shape[-2:])], (lo, hi))
            bound = Bound.noise(self.noise, [model], lo, hi)
        if self.codec in ("auto", "lossless", "nearlossless", "noise"):
            if bound is not None:
                return Noise(bound=bound.config(), effort=self.effort)
            if self.max_error is not None:
                return NearLossless(max_error=int(self.max_error))
            return Lossless().prepare(stats)
        base = self.base_codec().prepare(stats)
        points = base.knob_values()
        if self.knob is not None:
            if points and self.knob not in points:
                raise MzcError(f"knob {self.knob} is not one of {self.codec}'s rate points {points}")
            base = base.with_knob(self.knob)
        elif self.quality is not None or points:
            # a learned family without a target: 50x, as `mzc encode --codec learned`
            target = parse_quality(self.quality or "50x")
            budget = chunk.nbytes / target.value if target.kind == "ratio" else None
            span = float(chunk.max()) - float(chunk.min())
            search = choose_point if points else search_knob
            base = base.with_knob(search(base, [chunk], target, budget, span).knob)
        base = base.bind()
        if self.max_error is not None:
            bound = Bound.absolute(int(self.max_error), lo, hi)
        if bound is not None:
            return Bounded(base=base.config(), bound=bound.config(), effort=self.effort)
        return base

