"""Encode a TIFF into an .mzc file, streaming chunk by chunk, and measure what was lost on the way.

Each chunk is read from the memory-mapped TIFF, coded, decoded again and compared, in worker processes; only a few
chunks are in flight at once, so memory does not grow with the stack. What to code with comes from the planner
(plan.py) and rate control (ratecontrol.py); this module reads, codes, checks and writes.
"""
from __future__ import annotations

import functools
import math
import time
from typing import BinaryIO

import numpy as np

from .._version import __version__
from ..bounds.bound import Bound
from ..codecs.base import Codec, Exact, PerChunk, SelfChecked
from ..codecs.registry import from_config
from ..errors import MzcError
from ..format import container
from ..io.decoding import DIGEST, digest
from ..io.tiff import Volume
from ..metrics import Fidelity, identical
from ..pool import dask_map, pmap, useful_workers
from ..progress import reporting
from ..stats import scan
from ..tiling import Grid, spatial_axes
from .plan import Plan, channel_count, check_noise_chunks
from .plan import plan as make_plan
from .ratecontrol import Facts, RateControl
from .report import bound_facts, build_report, report_bytes, stored_report
from .request import EncodeRequest, RunSettings

CHUNK_META_BYTES = 19  # msgpack {"i": n, "p": {..., "d": crc}} of a typical chunk
MAX_CHUNK_ELEMENTS = 1 << 31


@functools.lru_cache(maxsize=8)
def _codec(config_packed: bytes) -> Codec:
    return from_config(container.unpack_msg(config_packed, "codec config"))


def encode_chunk(config_packed: bytes, block: np.ndarray, data_range: float, check: bool = True):
    """Worker: code one chunk, decode it back (unless an exact codec is trusted), return (body, params, sums).

    The params carry the digest of the decoded samples (`d`, spec 4.1): what any reader must get back. An exact codec
    trusted without decoding stores the input's digest, which is what it promises."""
    codec = _codec(config_packed)
    exact = isinstance(codec, Exact)
    back = None
    if isinstance(codec, SelfChecked):  # a stream its encoder verified needs no decode to be checked
        body, params, back = codec.encode_checked(block)
    else:
        body, params = codec.encode(block)
    fid = Fidelity(data_range, block.dtype.str)
    if not check:
        if exact:
            fid.add_exact(block.size)
            params = dict(params, d=digest(block))
        return body, params, fid
    if back is None:
        back = codec.decode(body, block.shape, block.dtype, params)
    params = dict(params, d=digest(back))
    bound = getattr(codec, "bound", None)
    if isinstance(bound, Bound):  # a guarantee is checked on every pixel, whatever the codec claims
        channel = params.get("c", 0)
        err = np.abs(back.astype(np.float64) - block.astype(np.float64))
        if np.any(err > bound.allowed(block, channel)):
            raise MzcError(f"internal error: {codec.id} chunk exceeded its bound ({bound.describe()})")
        if bound.models:
            fid.max_sigma = max(fid.max_sigma, bound.sigma_units(block, back, channel))
    if exact:
        if not identical(block, back):
            raise MzcError("internal error: lossless chunk did not round-trip")
        fid.add_exact(block.size)
    else:
        fid.add(block, back)
    return body, params, fid


def channel_planes(vol: Volume, channel: int, limit: int = 16):
    """Up to `limit` 2-D planes of one channel, spread evenly over the other axes (for the noise fit)."""
    y, x = spatial_axes(vol.axes, len(vol.shape))
    others = [k for k in range(len(vol.shape)) if k not in (y, x) and vol.axes[k] != "C"]
    count = math.prod(vol.shape[k] for k in others)
    for flat in np.unique(np.linspace(0, count - 1, min(limit, count)).round().astype(int)):
        where = np.unravel_index(flat, [vol.shape[k] for k in others]) if others else ()
        slices = [slice(None)] * len(vol.shape)
        for k, i in zip(others, where):
            slices[k] = slice(int(i), int(i) + 1)
        if "C" in vol.axes:
            slices[vol.axes.index("C")] = slice(channel, channel + 1)
        yield vol.block(tuple(slices)).reshape(vol.shape[y], vol.shape[x])


class FileEncoder:
    """One encode of one volume: plan, chunk grid, data scan, rate control, then chunks written in order."""

    def __init__(self, vol: Volume, request: EncodeRequest, settings: RunSettings, source_name: str):
        self.started = time.perf_counter()  # encode_seconds covers scan, knob search, coding and any retry
        self.vol, self.request, self.settings, self.source_name = vol, request, settings, source_name
        self.plan: Plan = make_plan(request, vol.dtype, vol.axes)
        self.grid = self._grid()
        self.stats = scan(vol.block(self.grid.slices(i)) for i in range(self.grid.n_chunks))
        check_noise_chunks(self.plan, self.grid.chunks, vol.axes)
        self.bound = self.plan.bound(int(self.stats.min), int(self.stats.max), vol.dtype,
                                     lambda c: channel_planes(vol, c), channel_count(vol.shape, vol.axes)) \
            if self.plan.bounds_data else None
        # worker processes cost a start-up and a copy of every chunk: worth it only for more than a few MB
        self.workers = useful_workers(settings.workers, vol.nbytes, self.grid.n_chunks)
        self.control = RateControl(self.plan, self._facts(), self.bound)

    def _grid(self) -> Grid:
        vol = self.vol
        chunks = tuple(self.settings.chunks) if self.settings.chunks else self.plan.chunk_layout(vol.shape, vol.axes)
        if len(chunks) != len(vol.shape):
            raise MzcError(f"--chunk gives {len(chunks)} sizes but the array has {len(vol.shape)} axes {vol.shape}")
        grid = Grid(vol.shape, tuple(min(c, n) for c, n in zip(chunks, vol.shape)))
        if max(math.prod(grid.chunk_shape(0)), 1) > MAX_CHUNK_ELEMENTS:
            raise MzcError("chunk too large: at most 2^31 elements per chunk")
        return grid

    def _facts(self) -> Facts:
        vol, grid = self.vol, self.grid
        return Facts(stats=self.stats, nbytes=vol.nbytes, n_elements=math.prod(vol.shape), n_chunks=grid.n_chunks,
                     chunk_elements=math.prod(grid.chunks), axes=vol.axes, dtype=vol.dtype,
                     sample=lambda idx: [(grid.slices(i), vol.block(grid.slices(i))) for i in idx],
                     overhead=self.overhead_bytes, parallel=self.workers, started=self.started)

    # -------------------------------------------------------------- header, overhead, report
    def header(self, codec: Codec, digests: bool = True) -> dict:
        """The HEAD map; `digests`: every chunk will carry the digest of its decoded samples."""
        return {
            "shape": list(self.vol.shape), "dtype": self.vol.dtype.str, "axes": self.vol.axes,
            "chunks": list(self.grid.chunks), "n_chunks": self.grid.n_chunks, "codec": codec.config(),
            "tiff": self.vol.metadata, "data_range": [self.stats.min, self.stats.max],
            "software": f"mzc {__version__}",
            **bound_facts(self.bound),
            **({"digests": DIGEST} if digests else {}),
        }

    def overhead_bytes(self, codec: Codec) -> int:
        header = len(container.pack_msg(dict(self.header(codec), format=[0, 0])))
        return container.overhead(header, report_bytes(self._report(codec, None, 0.0, 1, True)),
                                  self.grid.n_chunks, CHUNK_META_BYTES)

    def _report(self, codec: Codec, fid: Fidelity | None, seconds: float, size: int, checked: bool) -> dict:
        return build_report(self, codec, fid, seconds, size, checked)

    # -------------------------------------------------------------- coding
    def encode_to(self, open_output) -> dict:
        """Code the file, meeting its target: `open_output()` gives an atomic output context per attempt."""
        class Discard(Exception):
            pass

        def write(codec: Codec, keep) -> dict:
            report = None
            try:
                with open_output() as fh:
                    report = self.write(fh, codec)
                    if not keep(report):
                        raise Discard
            except Discard:
                pass
            return report

        return self.control.run(write)

    def write(self, fh: BinaryIO, codec: Codec) -> dict:
        check = self.settings.check or self.plan.guaranteed  # a bound: always
        writer = container.Writer(fh, self.header(codec, digests=check or isinstance(codec, Exact)))
        fid = Fidelity(self.stats.range, self.vol.dtype.str)
        n, done = self.grid.n_chunks, [0]
        show = self.settings.progress
        with reporting(lambda f: show(done[0] + f, n) if show else None):  # in-process coding reports within chunks
            for i, (body, params, part) in enumerate(self._coded_chunks(codec, check)):
                writer.write_chunk(i, params, body)
                fid.merge(part)
                done[0] = i + 1
                if show:
                    show(i + 1, n)
        seconds = time.perf_counter() - self.started
        report = {}

        def report_for(size: int) -> bytes:
            report.clear()
            report.update(self._report(codec, fid, seconds, size, check))
            return container.pack_msg(stored_report(report))

        writer.finish(report_for)
        return report

    def _coded_chunks(self, codec: Codec, check: bool):
        packed: dict[bytes, bytes] = {}

        def chunk_config(i: int) -> bytes:  # a noise-bounded chunk's codec names its channel's table
            variant = codec.for_chunk(self.vol.axes, self.grid.slices(i)) if isinstance(codec, PerChunk) else codec
            cfg = container.pack_msg(variant.config())
            return packed.setdefault(cfg, cfg)

        items = ((chunk_config(i), self.vol.block(self.grid.slices(i)), self.stats.range, check)
                 for i in range(self.grid.n_chunks))
        if self.settings.client is not None:  # every chunk a task on the dask cluster, assembled here in order
            return dask_map(self.settings.client, encode_chunk, items)
        return pmap(encode_chunk, items, self.workers)
