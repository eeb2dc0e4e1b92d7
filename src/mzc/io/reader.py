"""Read .mzc files: header facts, any region (touching only the chunks it needs), streamed pages, verification."""
from __future__ import annotations

import itertools
import math
import os
from typing import BinaryIO, Iterator

import numpy as np
import psutil

from ..codecs.base import RegionDecoder
from ..errors import MzcError
from ..format.container import REPORT, Reader, pack_msg, unpack_msg
from ..format.report import expand
from ..pool import useful_workers
from ..resample import check_scale, sample_positions, scaled_length
from ..tiling import Grid, normalise_region, parse_roi, spatial_axes, split_steps
from . import lazy
from .decoding import DIGEST, DigestRule, decode_chunk, decode_chunk_at, decode_many
from .decoding import codec_of as _codec
from .tiff import SUPPORTED_DTYPES, page_axes_start

MAX_ELEMENTS = 1 << 48
MAX_CHUNK_ELEMENTS = 1 << 31


def _validated(header: dict) -> tuple[tuple[int, ...], np.dtype, str, Grid]:
    shape, chunks = header.get("shape"), header.get("chunks")
    dtype, axes = header.get("dtype"), header.get("axes")

    def ints(v) -> bool:
        return isinstance(v, list) and all(isinstance(n, int) and not isinstance(n, bool) for n in v)

    if not ints(shape) or not 1 <= len(shape) <= 8 or any(n < 1 for n in shape):
        raise MzcError(f"corrupt header: bad shape {shape!r}")
    if not ints(chunks) or len(chunks) != len(shape) or any(c < 1 for c in chunks):
        raise MzcError(f"corrupt header: bad chunk shape {chunks!r}")
    if dtype not in SUPPORTED_DTYPES:
        raise MzcError(f"corrupt header: unsupported dtype {dtype!r}")
    if not isinstance(axes, str) or len(axes) != len(shape):
        raise MzcError(f"corrupt header: axes {axes!r} do not match shape")
    if math.prod(shape) > MAX_ELEMENTS:
        raise MzcError(f"declared shape {tuple(shape)} is too large (more than 2^48 elements)")
    if math.prod(min(c, n) for c, n in zip(chunks, shape)) > MAX_CHUNK_ELEMENTS:
        raise MzcError("declared chunk shape is too large (more than 2^31 elements)")
    if not isinstance(header.get("tiff", {}), dict) or not isinstance(header.get("codec"), dict):
        raise MzcError("corrupt header: tiff and codec entries must be maps")
    grid = Grid(tuple(shape), tuple(chunks))
    if header.get("n_chunks") != grid.n_chunks:
        raise MzcError("corrupt header: n_chunks does not match the chunk grid")
    return tuple(shape), np.dtype(dtype), axes, grid


def _runs(chunk_ids: np.ndarray) -> list[tuple[int, int, int]]:
    """(chunk id, first, stop) for each run of equal ids in a non-decreasing array."""
    out, start = [], 0
    for k in range(1, len(chunk_ids) + 1):
        if k == len(chunk_ids) or chunk_ids[k] != chunk_ids[start]:
            out.append((int(chunk_ids[start]), start, k))
            start = k
    return out


class MzcFile:
    """An open .mzc file. `read(roi)` returns exactly `full[roi]` and reads only the chunks the region touches.

    It is also array-like: `f[0:10, :, -256:]` (numpy basic indexing), `np.asarray(f)`, `f.to_dask(scale)` and
    `f.levels` (the scales of a multiscale pyramid) are in lazy.py.
    """

    path: str | None = None  # set by open(); lazy arrays reopen the file by it

    def __init__(self, fh: BinaryIO, owns: bool = False):
        self._fh, self._owns = fh, owns
        self.container = Reader(fh)
        self.header = self.container.header
        self.shape, self.dtype, self.axes, self.grid = _validated(self.header)
        self._codec_packed = pack_msg(self.header["codec"])
        self.allow_mismatch = False  # lossy chunks whose samples differ from the encoder's digest: error unless True
        self.metadata = self.header.get("tiff") or {}

    @classmethod
    def open(cls, path: str) -> "MzcFile":
        fh = open(path, "rb")
        try:
            reader = cls(fh, owns=True)
        except Exception:
            fh.close()
            raise
        reader.path = os.path.abspath(path)
        return reader

    def close(self) -> None:
        if self._owns:
            self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def codec(self):
        """The file's codec (built on first use: `info` needs no codec, a plug-in's file opens without it)."""
        return _codec(self._codec_packed)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        return lazy.getitem(self, key)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return lazy.whole_array(self, dtype, copy)

    def to_dask(self, scale: float = 1.0):
        """A lazy dask array of the file (rendered at `scale`); at scale 1 its chunks are the file's chunks."""
        return lazy.to_dask(self, scale)

    @property
    def levels(self) -> list[float]:
        """The scales of the file's multiscale pyramid: 1, 1/2, 1/4 ... down to about 64 pixels a side."""
        return lazy.levels(self)

    def pyramid(self) -> list:
        """One lazy dask array per level (napari's and OME-Zarr's multiscale image)."""
        return [self.to_dask(s) for s in self.levels]

    @property
    def report(self) -> dict | None:
        raw = self.container.ancillary(REPORT)
        report = unpack_msg(raw, "report") if raw is not None else None
        if report is not None and not isinstance(report, dict):
            raise MzcError("corrupt report: not a map")
        return expand(report, self.header, self.container.size) if report is not None else None

    def _chunk_cap(self, index: int) -> int:
        return math.prod(self.grid.chunk_shape(index)) * self.dtype.itemsize * 2 + (1 << 20)

    @property
    def digest_rule(self) -> DigestRule:
        return DigestRule(self.header.get("digests") == DIGEST, self.allow_mismatch)

    def _jobs(self, indices):
        """(index, decode_chunk's arguments) of each chunk."""
        rule = self.digest_rule
        for i in indices:
            params, body = self.container.chunk_payload(i, self._chunk_cap(i))
            yield i, (self._codec_packed, bytes(body), self.grid.chunk_shape(i), self.dtype.str, params, rule)

    def decoded_chunks(self, indices: list[int], workers: int = 1) -> Iterator[tuple[int, np.ndarray]]:
        raw = sum(math.prod(self.grid.chunk_shape(i)) for i in indices) * self.dtype.itemsize
        workers = useful_workers(workers, raw, len(indices))
        yield from decode_many(decode_chunk, self._jobs(indices), self._codec_packed, workers)

    def scaled_shape(self, scale: float = 1.0) -> tuple[int, ...]:
        """The array's shape rendered at `scale` (Y and X scaled, resample.py's convention)."""
        y, x = spatial_axes(self.axes, len(self.shape))
        return tuple(scaled_length(n, scale) if k in (y, x) else n for k, n in enumerate(self.shape))

    def read(self, roi: str | tuple[slice, ...] | None = None, workers: int = 1, scale: float = 1.0) -> np.ndarray:
        """Decode a region (ROI string in numpy syntax, or slices) into memory; integers drop their axis.

        With `scale`, the region indexes the array rendered at that scale (Y and X); codecs that can (inr, hybrid)
        evaluate only the samples asked for, others decode the chunks and resample linearly.
        """
        scale = check_scale(scale)
        if isinstance(roi, str) and (stepped := split_steps(roi)) is not None:
            unit, steps = stepped
            return np.ascontiguousarray(self.read(unit, workers, scale)[steps])
        if scale != 1.0 or isinstance(self.codec, RegionDecoder):
            return self._read_sampled(roi, workers, scale)
        if roi is None:
            region, dropped = tuple(slice(0, n) for n in self.shape), ()
        elif isinstance(roi, str):
            region, dropped = parse_roi(roi, self.shape)
        else:
            region, dropped = normalise_region(tuple(roi), self.shape)
        out_shape = tuple(s.stop - s.start for s in region)
        need = math.prod(out_shape) * self.dtype.itemsize
        if need > psutil.virtual_memory().available:
            raise MzcError(f"region of {need / 2**30:.1f} GiB does not fit in memory: decode to a TIFF or use --roi")
        indices = self.grid.chunks_in(region)
        if len(indices) == 1 and self.grid.slices(indices[0]) == tuple(region):  # one whole chunk: no copy of it
            out = next(self.decoded_chunks(indices, workers))[1]
            return out.reshape([n for k, n in enumerate(out_shape) if k not in dropped])
        out = np.empty(out_shape, self.dtype)
        for i, block in self.decoded_chunks(indices, workers):
            src, dst = [], []
            for cs, rs in zip(self.grid.slices(i), region):
                lo, hi = max(cs.start, rs.start), min(cs.stop, rs.stop)
                src.append(slice(lo - cs.start, hi - cs.start))
                dst.append(slice(lo - rs.start, hi - rs.start))
            out[tuple(dst)] = block[tuple(src)]
        return out.reshape([n for k, n in enumerate(out_shape) if k not in dropped]) if dropped else out

    def _read_sampled(self, roi, workers: int, scale: float) -> np.ndarray:
        shape = self.scaled_shape(scale)
        if roi is None:
            region, dropped = tuple(slice(0, n) for n in shape), ()
        elif isinstance(roi, str):
            region, dropped = parse_roi(roi, shape)
        else:
            region, dropped = normalise_region(tuple(roi), shape)
        out_shape = tuple(s.stop - s.start for s in region)
        need = math.prod(out_shape) * self.dtype.itemsize
        if need > psutil.virtual_memory().available:
            raise MzcError(f"region of {need / 2**30:.1f} GiB does not fit in memory: use --roi")
        per_axis = []  # per axis: sample coordinates and the runs of samples falling in each chunk
        for n, m, r, c, count in zip(self.shape, shape, region, self.grid.chunks, self.grid.counts):
            pos = sample_positions(n, m, r.start, r.stop)
            ids = np.clip(np.floor((pos.astype(np.float64) + 0.5) / c), 0, count - 1).astype(np.int64)
            per_axis.append((pos, _runs(ids)))
        out = np.empty(out_shape, self.dtype)
        combos = list(itertools.product(*[runs for _, runs in per_axis]))

        def jobs():
            for combo in combos:
                index = self.grid.index(tuple(g for g, _, _ in combo))
                params, body = self.container.chunk_payload(index, self._chunk_cap(index))
                local = [(pos[a:b] - np.float32(g * c)).astype(np.float32)
                         for (pos, _), (g, a, b), c in zip(per_axis, combo, self.grid.chunks)]
                yield index, (self._codec_packed, bytes(body), self.grid.chunk_shape(index), self.dtype.str,
                                   params, local, rule)

        rule = self.digest_rule
        w = useful_workers(workers, need, len(combos))
        for combo, (_, block) in zip(combos, decode_many(decode_chunk_at, jobs(), self._codec_packed, w)):
            out[tuple(slice(a, b) for _, a, b in combo)] = block
        return out.reshape([n for k, n in enumerate(out_shape) if k not in dropped]) if dropped else out

    def slabs(self, workers: int = 1) -> Iterator[np.ndarray]:
        """Stream the whole array as slabs along the leading (non-page) axes: one chunk deep, full pages wide.

        Chunks are numbered in C order, so each slab's chunks are consecutive: one ordered pass over all chunks (one
        process pool) fills one slab at a time, and memory holds a slab plus the chunks in flight.
        """
        start = page_axes_start(self.shape, self.axes, self.metadata)
        per_slab = math.prod(self.grid.counts[start:])
        n = self.grid.n_chunks
        workers = useful_workers(workers, self.nbytes, n)
        slab = origin = None
        for i, block in decode_many(decode_chunk, self._jobs(range(n)), self._codec_packed, workers):
            k, r = divmod(i, per_slab)
            if per_slab == 1 and block.shape[start:] == self.shape[start:]:  # the chunk is the slab: no copy
                yield block
                continue
            if r == 0:
                lead = self.grid.slices(i)[:start]
                origin = [s.start for s in lead] + [0] * (len(self.shape) - start)
                slab = np.empty([s.stop - s.start for s in lead] + list(self.shape[start:]), self.dtype)
            slab[tuple(slice(s.start - o, s.stop - o) for s, o in zip(self.grid.slices(i), origin))] = block
            if r == per_slab - 1:
                yield slab

    def pages(self, workers: int = 1) -> Iterator[np.ndarray]:
        start = page_axes_start(self.shape, self.axes, self.metadata)
        for slab in self.slabs(workers):
            yield from slab.reshape(-1, *self.shape[start:])

    def verify(self, progress=None) -> tuple[int, list[str]]:
        """Check every record's checksum and decode every chunk; return (chunks checked, errors).
        `progress(done, total)` follows the chunks."""
        errors: list[str] = []
        for entry in self.container.entries:
            try:
                self.container.read_record(entry)
            except MzcError as exc:
                errors.append(str(exc))
        if not errors:
            try:
                _ = self.report  # an ancillary record is skipped by readers, but verify says when it is malformed
            except MzcError as exc:
                errors.append(str(exc))
        failed: dict[int, str] = {}

        def jobs():
            for i in range(self.grid.n_chunks):
                try:
                    yield from self._jobs([i])
                except MzcError as exc:  # a damaged record: reported, and the other chunks still checked
                    failed[i] = str(exc)

        checked = 0
        for i, result in decode_many(decode_chunk, jobs(), self._codec_packed, raise_errors=False):
            if isinstance(result, MzcError):
                failed[i] = str(result)
            else:
                checked += 1
            if progress is not None:
                progress(i + 1, self.grid.n_chunks)
        return checked, errors + [f"chunk {i}: {failed[i]}" for i in sorted(failed)]
