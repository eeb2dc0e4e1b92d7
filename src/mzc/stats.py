"""One cheap pass over the input before coding: value range and, for 8/16-bit data, which values occur.

The range sets PSNR's peak and the lossy codecs' value mapping; the set of occurring values lets the lossless codec
code a stretched or quantized stack (few distinct values spread over a wide range) through one rank table per file.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DataStats:
    min: float
    max: float
    present: np.ndarray | None  # bool per value from min, for 8/16-bit data

    @property
    def range(self) -> float:
        return self.max - self.min


def scan(blocks) -> DataStats:
    lo, hi, present = np.inf, -np.inf, None
    for b in blocks:
        lo, hi = min(lo, float(b.min())), max(hi, float(b.max()))
        if b.dtype.itemsize <= 2 and b.dtype.kind == "u":
            counts = np.bincount(b.reshape(-1), minlength=1 << (8 * b.dtype.itemsize))
            present = counts > 0 if present is None else present | (counts > 0)
    if present is not None:
        present = present[int(lo):int(hi) + 1]
    return DataStats(lo, hi, present)
