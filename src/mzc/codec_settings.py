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
from .targets import parse_quality, search_knob


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
        if self.codec in ("lossless", "nearlossless", "noise") or self.codec == "auto":
            if bound is not None:
                return Noise(bound=bound.config(), effort=self.effort)
            if self.max_error is not None:
                return NearLossless(max_error=int(self.max_error))
            return Lossless().prepare(stats)
        base = from_config({"id": self.codec}).prepare(stats)
        if self.knob is not None:
            base = base.with_knob(self.knob)
        elif self.quality is not None:
            target = parse_quality(self.quality)
            budget = chunk.nbytes / target.value if target.kind == "ratio" else None
            span = float(chunk.max()) - float(chunk.min())
            base = base.with_knob(search_knob(base, [chunk], target, budget, span).knob)
        base = base.bind()
        if self.max_error is not None:
            bound = Bound.absolute(int(self.max_error), lo, hi)
        if bound is not None:
            return Bounded(base=base.config(), bound=bound.config(), effort=self.effort)
        return base

