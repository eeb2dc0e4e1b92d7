"""What a user asks of an encode, in one vocabulary for the CLI, the Python API, the stack writer and the Zarr
codec, validated once; and, apart from it, how the encode runs (which never changes the file's bytes)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

from ..errors import MzcError
from ..targets import Target, parse_quality

EFFORTS = ("fastest", "fast", "max")  # lossless chunks and bounded/noise index images: "fastest" HTJ2K (JPEG-LS on 8-bit),
# "max" every image back end (and more search in the classic and learned codecs)


@dataclass(frozen=True)
class EncodeRequest:
    """The codec and the quality: `codec` is "auto", a registry id or `ID:VARIANT`; `quality` "50x" (real file
    ratio) or "48dB" (PSNR on the data range); `knob` fixes a Tunable codec's knob instead (scripts, Zarr);
    `max_error` E or `noise` K (+ `noise_model` "a,b") guarantee a bound; `lossless` forces bit-exact coding;
    `guide` and `time_budget` steer neural-field fits."""
    codec: str = "auto"
    quality: str | None = None
    knob: float | None = None
    max_error: float | None = None
    noise: float | None = None
    noise_model: str | None = None
    effort: str = "fast"
    lossless: bool = False
    guide: str | None = None
    time_budget: float | None = None

    def __post_init__(self):
        if not isinstance(self.codec, str) or not self.codec:
            raise MzcError("--codec must name a codec")
        if self.effort not in EFFORTS:
            raise MzcError(f"unknown --effort {self.effort!r}: choose from {', '.join(EFFORTS)}")
        if self.quality is not None and self.knob is not None:
            raise MzcError("give a quality target or a knob, not both")
        if self.noise_model is not None and self.noise is None:
            raise MzcError("--noise-model a,b goes with --noise K")
        if self.noise is not None and self.max_error is not None:
            raise MzcError("--noise and --max-error are alternatives: give one")
        if self.lossless and (self.quality or self.max_error is not None):
            raise MzcError("--lossless cannot be combined with -q or --max-error")
        if self.lossless and self.noise is not None:
            raise MzcError("--lossless cannot be combined with --noise or --max-error")
        for value, name in ((self.max_error, "--max-error"), (self.noise, "--noise K")):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise MzcError(f"{name} must be a finite number >= 0, got {value}")
        if self.time_budget is not None and not (math.isfinite(self.time_budget) and self.time_budget > 0):
            raise MzcError("--time-budget must be a positive number of seconds")
        if self.quality is not None:
            self.target  # noqa: B018 - parse now: a malformed -q is an error before any data is read

    @property
    def target(self) -> Target | None:
        return parse_quality(self.quality) if self.quality is not None else None

    @classmethod
    def of(cls, options: dict) -> "EncodeRequest":
        """The request part of a mixed option dict (the rest are run settings or unknown)."""
        return cls(**{f.name: options[f.name] for f in fields(cls) if options.get(f.name) is not None})


@dataclass
class RunSettings:
    """How an encode runs: workers, whether every chunk is decoded back, the chunk shape, a dask client, a
    progress callback. None of it changes what the file decodes to (chunks only change the tiling)."""
    workers: int = 1
    check: bool = True  # decode every chunk back and compare (False: exact codecs are trusted, lossy ones report
    # no fidelity)
    chunks: tuple[int, ...] | None = None
    client: object = field(default=None, repr=False)  # a dask.distributed Client: chunks coded on its cluster
    progress: Callable[[int, int], None] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, options: dict) -> "RunSettings":
        return cls(**{f.name: options[f.name] for f in fields(cls) if options.get(f.name) is not None})


def split_options(options: dict) -> tuple[EncodeRequest, RunSettings]:
    """`mzc.encode(..., **options)`: the request and the run settings; an unknown option is a TypeError, as for
    any Python function."""
    known = {f.name for f in fields(EncodeRequest)} | {f.name for f in fields(RunSettings)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unexpected encode option(s): {', '.join(unknown)}")
    return EncodeRequest.of(options), RunSettings.of(options)
