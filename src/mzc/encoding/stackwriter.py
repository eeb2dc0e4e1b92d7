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
import struct

import numpy as np

from .codecs.base import Codec
from .container import (DATA, END_MAGIC, HEAD, MAGIC, MAJOR, MINOR, PREAMBLE_SIZE, REPORT, Writer, crc32c, pack_msg,
                        record_bytes, unpack_chunk, unpack_msg)
from .encoder import encode_chunk
from .errors import MzcError
from .metrics import Fidelity
from .tiling import Grid, default_chunks
from .codec_settings import CodecSettings
from . import __version__

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
        self._options = codec_options
        self._planner = CodecSettings(**codec_options)
        self._codec: Codec | None = None
        self._fh = None
        self._writer: Writer | None = None
        self._head_length = 0
        self.frames = 0
        self._fid: Fidelity | None = None
        self._lo, self._hi = math.inf, -math.inf

    def __enter__(self) -> "StackWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # an exception in the acquisition loop still leaves a complete file of the frames so far

    def _header(self, frames: int, growing: bool) -> dict:
        header = {"shape": [frames, *self.frame_shape], "dtype": self.dtype.str, "axes": self.axes,
                  "chunks": list(self.chunks), "n_chunks": Grid((max(frames, 1), *self.frame_shape),
                                                                 self.chunks).n_chunks if frames else 0,
                  "codec": self._codec.config(), "tiff": self.metadata, "software": f"mzc {__version__}"}
        if growing:
            header["growing"] = True
        return header

    def _start(self, frame: np.ndarray) -> None:
        self._codec = self._planner.codec_for(frame, 0, int(np.iinfo(self.dtype).max))
        # SSIM's constants use the first frame's range; PSNR is computed on the final data range at close()
        self._fid = Fidelity(float(frame.max()) - float(frame.min()), self.dtype.str)
        self._fh = open(self.path, "wb")
        header = self._header(0, growing=True)
        header["room"] = bytes(HEADER_ROOM)
        self._writer = Writer(self._fh, header)
        self._head_length = self._writer.position - PREAMBLE_SIZE - 16  # the HEAD payload's length

    def append(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.shape != self.frame_shape or frame.dtype != self.dtype:
            raise MzcError(f"frame {frame.shape} {frame.dtype} does not match {self.frame_shape} {self.dtype}")
        if self._writer is None:
            self._start(frame)
        grid = Grid(self.frame_shape, self.chunks[1:])
        first = self.frames * grid.n_chunks
        for i in range(grid.n_chunks):
            block = np.ascontiguousarray(frame[grid.slices(i)])
            config = pack_msg(self._codec.for_chunk(self.axes[1:], grid.slices(i)).config())
            # the encoder's worker: code, decode back, check any bound on every pixel, sum the fidelity
            body, params, part = encode_chunk(config, block, self._fid.data_range, self._codec.lossless)
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
        write_head_in_place(fh, final, self._head_length)
        raw = self.frames * math.prod(self.frame_shape) * self.dtype.itemsize
        self._fid.data_range = self._hi - self._lo
        report = {"input": "stack writer", "codec": self._codec.id, "shape": final["shape"],
                  "dtype": self.dtype.name, "axes": self.axes, "bytes_in": raw,
                  "data_range": [self._lo, self._hi], **{k: v for k, v in self._fid.report().items() if k != "mse"}}
        size = writer.position
        for _ in range(8):
            report.update(bytes_out=size, ratio=round(raw / size, 4))
            payload = pack_msg(report)
            if writer.size_after(len(payload)) == size:
                break
            size = writer.size_after(len(payload))
        writer.write_record(REPORT, payload)
        writer.close()
        fh.close()
        return report


def write_head_in_place(fh, header: dict, length: int) -> None:
    """Rewrite the HEAD record at offset 12 with `header`, padded (key `room`) to the record's existing length."""
    base = pack_msg(dict(header, format=[MAJOR, MINOR], room=b""))
    for pad in range(max(0, length - len(base) - 8), length - len(base) + 1):
        payload = pack_msg(dict(header, format=[MAJOR, MINOR], room=bytes(pad)))
        if len(payload) == length:
            break
    else:
        raise MzcError("internal error: the final header does not fit the room left for it")
    end = fh.tell()
    fh.seek(PREAMBLE_SIZE)
    fh.write(record_bytes(HEAD, payload))
    fh.seek(end)


def recover(path: str) -> dict:
    """Finish a growing file whose writer died: keep every frame whose chunks are all present and intact."""
    with open(path, "r+b") as fh:
        data = fh.read()
        if data[:8] != MAGIC:
            raise MzcError("not an .mzc file")
        if data.endswith(END_MAGIC):
            raise MzcError("the file is complete (it has its footer): nothing to recover")
        head = _record_at(data, PREAMBLE_SIZE)
        if head is None or head[0] != HEAD:
            raise MzcError("the header record is damaged: nothing can be recovered")
        header = unpack_msg(head[1], "header")
        if not header.get("growing"):
            raise MzcError("this truncated file was not written by the stack writer: it cannot be recovered")
        frame_shape = tuple(header["shape"][1:])
        per_frame = Grid(frame_shape, tuple(header["chunks"][1:])).n_chunks
        pos, chunks = PREAMBLE_SIZE + head[2], 0
        ends = [pos]
        while True:
            rec = _record_at(data, pos)
            if rec is None or rec[0] != DATA:
                break
            try:
                unpack_chunk(rec[1], chunks)
            except MzcError:
                break
            chunks += 1
            pos += rec[2]
            ends.append(pos)
        frames = chunks // per_frame
        keep = ends[frames * per_frame]
        header.pop("growing", None)
        header.pop("room", None)
        header.pop("format", None)
        header["shape"][0] = frames
        header["n_chunks"] = frames * per_frame
        if frames == 0:
            raise MzcError("no complete frame was written: nothing to recover")
        fh.seek(keep)
        fh.truncate()
        kept = frames * per_frame
        writer = Writer.resume(fh, head[2], [(o, e - o) for o, e in zip(ends[:kept], ends[1:kept + 1])])
        write_head_in_place(fh, header, head[2] - 16)
        writer.close()
    return {"input": path, "frames": frames, "chunks": frames * per_frame, "dropped_bytes": len(data) - keep}


def _record_at(data: bytes, pos: int):
    """(type, payload, total length) of an intact record at `pos`, or None."""
    if pos + 16 > len(data):
        return None
    rtype, length = data[pos:pos + 4], struct.unpack("<Q", data[pos + 4:pos + 12])[0]
    end = pos + 12 + length + 4
    if end > len(data):
        return None
    if struct.unpack("<I", data[end - 4:end])[0] != crc32c(data[pos:end - 4]):
        return None
    return rtype, data[pos + 12:end - 4], end - pos
