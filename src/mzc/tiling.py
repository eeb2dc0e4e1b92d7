"""Chunk grid over an n-d array: chunk numbering (C order), chunk slices, ROI parsing and ROI -> chunks."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .errors import MzcError

MAX_TILE = 2048


def balanced(n: int, limit: int) -> int:
    """The smallest equal split of n into pieces of at most `limit` (1200 -> 1200; 2500 -> 1250, not 2048 + 452)."""
    return math.ceil(n / math.ceil(n / limit))


def default_chunks(shape: tuple[int, ...], axes: str, limit: int = MAX_TILE) -> tuple[int, ...]:
    """2-D tiles over the Y and X axes, as equal as possible and at most 2048 a side; every other axis in steps of 1.

    Measured on a 1000x1200 plane at 200x (benchmarks/results/tiling.md): a thin edge tile (1024 + 176 columns) cost
    J2K 2.5 dB against the whole plane, equal halves 0.5 dB. A 256x256 region still needs at most four 8 MB tiles.
    """
    y, x = spatial_axes(axes, len(shape))
    return tuple(balanced(n, limit) if k in (y, x) else 1 for k, n in enumerate(shape))


def spatial_axes(axes: str, ndim: int) -> tuple[int, int]:
    """Positions of the Y and X axes (the last two when the axes string does not name them)."""
    if "Y" in axes and "X" in axes:
        return axes.index("Y"), axes.index("X")
    if ndim < 2:
        raise MzcError("arrays need at least two axes")
    return ndim - 2, ndim - 1


@dataclass(frozen=True)
class Grid:
    shape: tuple[int, ...]
    chunks: tuple[int, ...]

    def __post_init__(self):
        if len(self.shape) != len(self.chunks):
            raise MzcError(f"chunk shape {self.chunks} does not match array shape {self.shape}")
        if any(n < 1 for n in self.shape):
            raise MzcError(f"zero-sized axis in shape {self.shape}")
        if any(c < 1 for c in self.chunks):
            raise MzcError(f"chunk sizes must be >= 1, got {self.chunks}")

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(math.ceil(n / c) for n, c in zip(self.shape, self.chunks))

    @property
    def n_chunks(self) -> int:
        return math.prod(self.counts)

    def coords(self, index: int) -> tuple[int, ...]:
        out = []
        for count in reversed(self.counts):
            index, r = divmod(index, count)
            out.append(r)
        return tuple(reversed(out))

    def index(self, coords: tuple[int, ...]) -> int:
        idx = 0
        for c, count in zip(coords, self.counts):
            idx = idx * count + c
        return idx

    def slices(self, index: int) -> tuple[slice, ...]:
        return tuple(slice(g * c, min((g + 1) * c, n))
                     for g, c, n in zip(self.coords(index), self.chunks, self.shape))

    def chunk_shape(self, index: int) -> tuple[int, ...]:
        return tuple(s.stop - s.start for s in self.slices(index))

    def chunks_in(self, region: tuple[slice, ...]) -> list[int]:
        """Chunk numbers that intersect a region of unit-step slices, in C order."""
        ranges = [range(s.start // c, (s.stop - 1) // c + 1) for s, c in zip(region, self.chunks)]
        return [self.index(co) for co in itertools.product(*ranges)]


def split_steps(text: str) -> tuple[str, tuple[slice, ...]] | None:
    """`0:100:2,:,::4` -> ("0:100,:,:", the steps to take from that region's block), or None without steps.

    A stepped region is read as its unit-step hull and then stepped, as numpy indexing would (the API's slicing
    does the same); only positive steps, so start:stop keep their meaning."""
    parts = [p.strip() for p in text.split(",")]
    unit, post = [], []
    for part in parts:
        bits = part.split(":")
        if len(bits) == 3:
            try:
                step = int(bits[2]) if bits[2] else 1
            except ValueError:
                raise MzcError(f"--roi entry {part!r}: the step is not an integer") from None
            if step < 1:
                raise MzcError(f"--roi entry {part!r}: steps must be positive")
            unit.append(f"{bits[0]}:{bits[1]}")
            post.append(slice(None, None, step))
        else:
            unit.append(part)
            if len(bits) == 2:
                post.append(slice(None))
    if all(s.step is None for s in post):
        return None
    return ",".join(unit), tuple(post)


def parse_roi(text: str, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """Parse numpy slice syntax, one entry per axis; return unit-step slices and the axes that integers drop."""
    parts = [p.strip() for p in text.split(",")]
    entries: list[slice | int] = []
    for part in parts:
        try:
            if ":" in part:
                bits = part.split(":")
                if len(bits) > 2:
                    raise MzcError(f"--roi entry {part!r}: steps are read by MzcFile.read (tiling.split_steps)")
                entries.append(slice(int(bits[0]) if bits[0] else None, int(bits[1]) if bits[1] else None))
            else:
                entries.append(int(part))
        except ValueError:
            raise MzcError(f"--roi entry {part!r} is not start:stop or an integer") from None
    return normalise_region(tuple(entries), shape)


def normalise_region(entries: tuple, shape: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """Check a region (slices and integers, one per axis, numpy's negative indices) against a shape.

    Returns unit-step slices within bounds and the axes that integers drop; anything numpy would clip or step is an
    error here, so a region read is always exactly `full[region]`.
    """
    if len(entries) != len(shape):
        raise MzcError(f"--roi has {len(entries)} entries but the array has {len(shape)} axes {tuple(shape)}")
    region, dropped = [], []
    for axis, (entry, n) in enumerate(zip(entries, shape)):
        if isinstance(entry, slice):
            if entry.step not in (None, 1):
                raise MzcError(f"--roi entry for axis {axis}: steps are not supported")
            start = 0 if entry.start is None else int(entry.start)
            stop = n if entry.stop is None else int(entry.stop)
            start, stop = start + n if start < 0 else start, stop + n if stop < 0 else stop
        elif isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
            start = int(entry) + n if entry < 0 else int(entry)
            stop = start + 1
            dropped.append(axis)
        else:
            raise MzcError(f"--roi entry {entry!r} for axis {axis} is not a slice or an integer")
        if not (0 <= start < stop <= n):
            raise MzcError(f"--roi entry {entry!r} is out of bounds or empty for axis {axis} of size {n}")
        region.append(slice(start, stop))
    return tuple(region), tuple(dropped)
