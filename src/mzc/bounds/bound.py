"""What a bounded file guarantees, and the bin tables that guarantee it (one per channel).

Two kinds, stored in the codec configuration:
- `abs`: |decoded - original| <= E (integer E, one uniform table over the file's value range);
- `noise`: |decoded - original| <= K * sigma(original) with sigma from the channel's Poisson-Gaussian model; the
  tables are stored, so a decoder never recomputes a square root.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import MzcError
from .noise_model import NoiseModel
from .quantizer import BinTable, noise_bins, uniform

MAX_CHANNELS = 4096


class Bound:
    def __init__(self, config: dict):
        if not isinstance(config, dict) or config.get("kind") not in ("abs", "noise"):
            raise MzcError("corrupt header: bad error bound")
        self._config = config
        self._tables: dict[tuple[int, str], BinTable] = {}
        try:
            if config["kind"] == "abs":
                self.error, self.lo, self.hi = int(config["e"]), int(config["lo"]), int(config["hi"])
                if self.error < 0 or self.lo > self.hi:
                    raise ValueError
                self.models: list[NoiseModel] = []
            else:
                self.k = float(config["k"])
                self.models = [NoiseModel.from_dict(m) for m in config["models"]]
                if not (math.isfinite(self.k) and self.k >= 0) or not 0 < len(self.models) <= MAX_CHANNELS:
                    raise ValueError
                if not isinstance(config["tables"], list) or len(config["tables"]) != len(self.models):
                    raise ValueError
        except (KeyError, TypeError, ValueError):
            raise MzcError("corrupt header: bad error bound") from None

    @classmethod
    def absolute(cls, error: int, lo: int, hi: int) -> "Bound":
        return cls({"kind": "abs", "e": int(error), "lo": int(lo), "hi": int(hi)})

    @classmethod
    def noise(cls, k: float, models: list[NoiseModel], lo: int, hi: int) -> "Bound":
        tables = [noise_bins(m, k, lo, hi).to_bytes() for m in models]
        return cls({"kind": "noise", "k": float(k), "models": [m.as_dict() for m in models], "tables": tables})

    def config(self) -> dict:
        return self._config

    @property
    def kind(self) -> str:
        return self._config["kind"]

    @property
    def per_channel(self) -> bool:
        return len(self.models) > 1

    def table(self, channel: int, dtype: np.dtype) -> BinTable:
        key = (int(channel), np.dtype(dtype).str)
        if key not in self._tables:
            if self._config["kind"] == "abs":
                info = np.iinfo(dtype)
                if self.lo < info.min or self.hi > info.max:
                    raise MzcError("corrupt header: bound range outside the dtype")
                self._tables[key] = uniform(self.error, self.lo, self.hi)
            else:
                if not 0 <= channel < len(self.models):
                    raise MzcError(f"corrupt chunk: channel {channel} has no noise table")
                self._tables[key] = BinTable.from_bytes(self._config["tables"][channel], np.dtype(dtype))
        return self._tables[key]

    def allowed(self, original: np.ndarray, channel: int) -> np.ndarray:
        """The error each pixel may have (for checks and tests)."""
        if self._config["kind"] == "abs":
            return np.full(original.shape, float(self.error))
        return self.k * self.models[channel].sigma(original)

    def sigma_units(self, original: np.ndarray, decoded: np.ndarray, channel: int) -> float:
        """Largest |decoded - original| / sigma(original) (noise bounds; exact pixels count 0)."""
        if not self.models:
            return float("nan")
        err = np.abs(decoded.astype(np.float64) - original.astype(np.float64))
        sigma = self.models[channel].sigma(original)
        with np.errstate(divide="ignore", invalid="ignore"):
            units = np.where(err > 0, err / sigma, 0.0)
        return float(units.max(initial=0.0))

    def describe(self) -> str:
        if self._config["kind"] == "abs":
            return f"|error| <= {self.error}"
        return f"|error| <= {self.k:g} sigma(x)"


def channel_of(axes: str, slices: tuple[slice, ...]) -> int:
    """The channel a chunk holds (chunks of a noise-bounded file never span channels)."""
    if "C" not in axes:
        return 0
    s = slices[axes.index("C")]
    return int(s.start or 0)
