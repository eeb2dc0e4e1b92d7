"""Acquisition-style writing: frames (time points, or planes) appended one at a time, a valid .mzc on close.

A microscope produces a stack frame by frame and may stop at any moment. The writer codes and writes each frame's
chunks as it arrives (nothing is held back), so memory stays at one frame. The header must come first in the file
(spec §2), but the number of frames is only known at the end: the header is written with room to spare and marked
`growing`, and close() rewrites it in place with the final shape, then adds the report, index and footer.

If the process dies before close(), the file has no footer, so every reader refuses it as truncated: incomplete
files are never mistaken for complete ones. Nothing written is lost: `recover()` (`mzc recover FILE`) keeps every
frame whose chunk records are all present and pass their CRC, and finishes the file in place (spec §2.4).
"""
from __future__ import annotations

import math

import numpy as np

from .._version import __version__
from ..codecs.base import Codec, PerChunk
from ..errors import MzcError
from ..format import container
from ..metrics import Fidelity
from ..tiling import Grid, default_chunks
from .pipeline import DIGEST, encode_chunk
from .plan import plan as make_plan
from .ratecontrol import fit_block
from .request import EncodeRequest

HEADER_ROOM = 4096  # spare bytes in the first HEAD, so the final one fits in the same record


class StackWriter:
    """Write frames of shape `frame_shape` one at a time along a new first axis (`axes[0]`, e.g. "T" of "TYX").

    Codec options as for `mzc.encode`, fixed when the first frame arrives: `codec` ("lossless" default, a lossy id
    with `knob` or `quality` searched on the first frame), `max_error`, `noise` (+ `noise_model`, else fitted on the
    first frame). Value ranges are the dtype's, so later frames may be brighter than the first.

        with mzc.StackWriter("run.mzc", (512, 512), "uint16", "TYX", noise=1.0) as w:
            for frame in camera:
                w.append(frame)
    """

    def __init__(self, path: str, frame_shape: tuple[int, ...], dtype, axes: str, metadata: dict | None = None,
                 chunks: tuple[int, ...] | None = None, **codec_options):
        self.path, self.frame_shape, self.dtype = path, tuple(int(n) for n in frame_shape), np.dtype(dtype)
        self.axes, self.metadata = axes, dict(metadata or {"kind": "plain"})
        if len(axes) != len(self.frame_shape) + 1 or len(set(axes)) != len(axes):
            raise MzcError(f"axes {axes!r} must name the appended axis and each of the frame's {self.frame_shape}")
        if self.dtype.str not in ("|u1", "<u2"):
            raise MzcError(f"the stack writer takes uint8/uint16 frames, not {self.dtype.name}")
        self.chunks = (1,) + tuple(chunks or default_chunks(self.frame_shape, axes[1:]))
        if len(self.chunks) != len(axes):
            raise MzcError(f"chunks {chunks} do not match the frame shape {self.frame_shape}")
        self._request = EncodeRequest(**codec_options)
        self._plan = make_plan(self._request, self.dtype, axes[1:])
        self._grid = Grid(self.frame_shape, self.chunks[1:])
        self._codec: Codec | None = None
        self._fh = None
        self._writer: container.Writer | None = None
        self.frames = 0
        self._fid: Fidelity | None = None
        self._lo, self._hi = math.inf, -math.inf

    def __enter__(self) -> "StackWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # an exception in the acquisition loop still leaves a complete file of the frames so far

    def _header(self, frames: int, growing: bool) -> dict:
        n_chunks = Grid((max(frames, 1), *self.frame_shape), self.chunks).n_chunks if frames else 0
        header = {"shape": [frames, *self.frame_shape], "dtype": self.dtype.str, "axes": self.axes,
                  "chunks": list(self.chunks), "n_chunks": n_chunks, "codec": self._codec.config(),
                  "tiff": self.metadata, "software": f"mzc {__version__}", "digests": DIGEST}
        if growing:
            header["growing"] = True
        return header

    def _fit(self, frame: np.ndarray) -> Codec:
        """The codec for every frame, planned and fitted on the first one (value range: the dtype's)."""
        return fit_block(self._request, frame, self.axes[1:], 0, int(np.iinfo(self.dtype).max))

    def _start(self, frame: np.ndarray) -> None:
        self._codec = self._fit(frame)
        # SSIM's constants use the first frame's range; PSNR is computed on the final data range at close()
        self._fid = Fidelity(float(frame.max()) - float(frame.min()), self.dtype.str)
        self._fh = open(self.path, "wb")
        self._writer = container.Writer(self._fh, self._header(0, growing=True), room=HEADER_ROOM)

    def append(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.shape != self.frame_shape or frame.dtype != self.dtype:
            raise MzcError(f"frame {frame.shape} {frame.dtype} does not match {self.frame_shape} {self.dtype}")
        if self._writer is None:
            self._start(frame)
        first = self.frames * self._grid.n_chunks
        for i in range(self._grid.n_chunks):
            slices = self._grid.slices(i)
            block = np.ascontiguousarray(frame[slices])
            codec = self._codec.for_chunk(self.axes[1:], slices) if isinstance(self._codec, PerChunk) else self._codec
            # the encoder's worker: code, decode back, check any bound on every pixel, sum the fidelity
            body, params, part = encode_chunk(container.pack_msg(codec.config()), block, self._fid.data_range,
                                              True)
            self._fid.merge(part)
            self._writer.write_chunk(first + i, params, body)
        self._lo, self._hi = min(self._lo, float(frame.min())), max(self._hi, float(frame.max()))
        self._fh.flush()  # a frame on disk survives a crash of this process
        self.frames += 1

    def close(self) -> dict | None:
        """Finish the file: final header in place, report, index, footer. Returns the report (None if no frame)."""
        if self._writer is None:
            return None
        writer, fh = self._writer, self._fh
        self._writer = None
        final = self._header(self.frames, growing=False)
        writer.rewrite_head(final)
        raw = self.frames * math.prod(self.frame_shape) * self.dtype.itemsize
        self._fid.data_range = self._hi - self._lo
        report = {"input": "stack writer", "codec": self._codec.id, "shape": final["shape"],
                  "dtype": self.dtype.name, "axes": self.axes, "bytes_in": raw,
                  "data_range": [self._lo, self._hi], **{k: v for k, v in self._fid.report().items() if k != "mse"}}

        def report_for(size: int) -> bytes:
            report.update(bytes_out=size, ratio=round(raw / size, 4))
            return container.pack_msg(report)

        writer.finish(report_for)
        fh.close()
        return report
