"""numpy indexing and lazy dask arrays over an open .mzc file, and the scales of its multiscale pyramid.

A reader is sliced like the array it holds (`reader[0:10, :, -256:]`): the index becomes the bounding region the
reader decodes (only the chunks it touches), then the steps and integer axes are applied to that block. `to_dask`
wraps the same region reads in a dask array whose chunks are the file's chunks; each task opens the file by path
(one handle per thread: a handle's seek-and-read is not thread safe; each thread has its own decoder sandbox), so
the array pickles to a distributed cluster whose workers see the same file system.
"""
from __future__ import annotations

import os
import threading
from typing import Callable

import numpy as np

from ..errors import MzcError
from ..resample import check_scale, scaled_length
from ..tiling import spatial_axes

MIN_LEVEL_SIDE = 64
MAX_LEVELS = 8
_local = threading.local()  # dask and napari read from several threads: one open reader per thread and file


def expand_key(key, ndim: int) -> tuple:
    """A numpy basic index as one entry per axis (Ellipsis expanded, missing trailing axes filled with ':')."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is None for k in key):
        raise IndexError("mzc readers do not take np.newaxis: index the result instead")
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if Ellipsis in key:
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (ndim - len(key) + 1) + key[at + 1:]
    if len(key) > ndim:
        raise IndexError(f"too many indices: the array is {ndim}-dimensional, {len(key)} were indexed")
    return key + (slice(None),) * (ndim - len(key))


def split_index(key, shape: tuple[int, ...]) -> tuple[tuple[slice, ...] | None, tuple, tuple[int, ...]]:
    """(bounding region of unit-step slices or None when empty, index into the region's block, result shape)."""
    region, post, out_shape = [], [], []
    for axis, (entry, n) in enumerate(zip(expand_key(key, len(shape)), shape)):
        if isinstance(entry, (int, np.integer)) and not isinstance(entry, (bool, np.bool_)):
            i = int(entry) + n if entry < 0 else int(entry)
            if not 0 <= i < n:
                raise IndexError(f"index {int(entry)} is out of bounds for axis {axis} with size {n}")
            region.append(slice(i, i + 1))
            post.append(0)
        elif isinstance(entry, slice):
            r = range(*entry.indices(n))
            out_shape.append(len(r))
            if not r:
                region.append(None)
                continue
            lo, hi = min(r[0], r[-1]), max(r[0], r[-1]) + 1
            region.append(slice(lo, hi))
            stop = r[-1] - lo + (1 if r.step > 0 else -1)
            post.append(slice(r[0] - lo, None if stop < 0 else stop, r.step))
        else:
            raise IndexError(f"mzc readers take integers, slices and '...'; got {type(entry).__name__} for axis "
                             f"{axis} (read the region first, then index it with numpy)")
    if any(s is None for s in region):
        return None, (), tuple(out_shape)
    return tuple(region), tuple(post), tuple(out_shape)


def getitem(reader, key) -> np.ndarray:
    region, post, out_shape = split_index(key, reader.shape)
    if region is None:
        return np.empty(out_shape, reader.dtype)
    return reader.read(region)[post]


def pyramid_scales(height: int, width: int) -> list[float]:
    """Scales 1, 1/2, 1/4 ... while the smaller side stays at least 64 pixels (at most 8 levels)."""
    scales = [1.0]
    while len(scales) < MAX_LEVELS and min(scaled_length(height, scales[-1] / 2),
                                           scaled_length(width, scales[-1] / 2)) >= MIN_LEVEL_SIDE:
        scales.append(scales[-1] / 2)
    return scales


class RegionSource:
    """What dask indexes: the file rendered at one scale, reopened by path in each thread of each process."""

    def __init__(self, path: str, opener: Callable, scale: float, shape: tuple[int, ...], dtype: np.dtype):
        stat = os.stat(path)
        self.path, self.opener, self.scale = path, opener, scale
        self.stamp = (stat.st_mtime_ns, stat.st_size)
        self.shape, self.dtype, self.ndim = shape, dtype, len(shape)

    def _reader(self):
        cache = _local.__dict__.setdefault("readers", {})
        key = (self.path, self.stamp)
        if key not in cache:
            stat = os.stat(self.path)
            if (stat.st_mtime_ns, stat.st_size) != self.stamp:
                raise MzcError(f"{self.path} changed after its dask array was made")
            cache[key] = self.opener(self.path)
        return cache[key]

    def __getitem__(self, key) -> np.ndarray:
        return self._reader().read(tuple(key), scale=self.scale)


def to_dask(reader, scale: float = 1.0):
    """A dask array of the file at `scale`; at scale 1 its chunks are the file's chunks."""
    try:
        import dask.array as da
        from dask.base import tokenize
    except ImportError:
        from ..extras import install_hint
        raise MzcError(f"lazy arrays need dask: {install_hint('dask')}") from None
    if reader.path is None:
        raise MzcError("a lazy array needs a file path (this reader was opened from a stream)")
    scale = check_scale(scale)
    shape = reader.scaled_shape(scale)
    y, x = spatial_axes(reader.axes, len(shape))
    chunks = tuple(max(1, round(c * scale)) if k in (y, x) else c for k, c in enumerate(reader.grid.chunks))
    source = RegionSource(reader.path, type(reader).open, scale, shape, reader.dtype)
    name = "mzc-" + tokenize(reader.path, source.stamp, scale)
    return da.from_array(source, chunks=tuple(min(c, n) for c, n in zip(chunks, shape)), name=name, lock=False,
                         asarray=False, fancy=False, meta=np.empty((0,) * len(shape), reader.dtype))


def levels(reader) -> list[float]:
    y, x = spatial_axes(reader.axes, len(reader.shape))
    return pyramid_scales(reader.shape[y], reader.shape[x])


def whole_array(reader, dtype=None, copy=None) -> np.ndarray:
    """np.asarray(reader): the whole array decoded (numpy's __array__ protocol)."""
    if copy is False:
        raise ValueError("an mzc file cannot be viewed without decoding (copy=False)")
    data = reader.read()
    return data if dtype is None else data.astype(dtype, copy=False)
