"""Finish a file whose stack writer died (spec section 2.4): keep every frame whose chunk records all reached the
disk intact, rewrite the header for that many frames, and add the index and footer in place.

Format knowledge only: the header's shape and chunk grid say how many chunk records a frame has.
"""
from __future__ import annotations

import math

from ..errors import MzcError
from .container import (
    DATA,
    END_MAGIC,
    HEAD,
    MAGIC,
    PREAMBLE_SIZE,
    RECORD_OVERHEAD,
    Writer,
    record_at,
    rewrite_head,
    unpack_chunk,
    unpack_msg,
)


def chunks_per_frame(header: dict) -> int:
    """Chunk records of one frame: the chunk grid over every axis but the first (the appended one)."""
    try:
        shape, chunks = [int(n) for n in header["shape"][1:]], [int(c) for c in header["chunks"][1:]]
        if len(shape) != len(chunks) or min(shape + chunks, default=1) < 1:
            raise ValueError
    except (KeyError, TypeError, ValueError):
        raise MzcError("the header record is damaged: nothing can be recovered") from None
    return math.prod(-(-n // c) for n, c in zip(shape, chunks))


def intact_chunks(data: bytes, start: int) -> list[int]:
    """End offsets of the consecutive intact DATA records from `start` (first entry: `start` itself)."""
    ends, pos = [start], start
    while True:
        rec = record_at(data, pos)
        if rec is None or rec[0] != DATA:
            return ends
        try:
            unpack_chunk(rec[1], len(ends) - 1)
        except MzcError:
            return ends
        pos += rec[2]
        ends.append(pos)


def recover(path: str) -> dict:
    """Finish a growing file whose writer died: keep every frame whose chunks are all present and intact."""
    with open(path, "r+b") as fh:
        data = fh.read()
        if data[:8] != MAGIC:
            raise MzcError("not an .mzc file")
        if data.endswith(END_MAGIC):
            raise MzcError("the file is complete (it has its footer): nothing to recover")
        head = record_at(data, PREAMBLE_SIZE)
        if head is None or head[0] != HEAD:
            raise MzcError("the header record is damaged: nothing can be recovered")
        header = unpack_msg(head[1], "header")
        if not isinstance(header, dict) or not header.get("growing"):
            raise MzcError("this truncated file was not written by the stack writer: it cannot be recovered")
        per_frame = chunks_per_frame(header)
        ends = intact_chunks(data, PREAMBLE_SIZE + head[2])
        frames = (len(ends) - 1) // per_frame
        if frames == 0:
            raise MzcError("no complete frame was written: nothing to recover")
        kept = frames * per_frame
        keep = ends[kept]
        for key in ("growing", "room", "format"):
            header.pop(key, None)
        header["shape"][0], header["n_chunks"] = frames, kept
        fh.seek(keep)
        fh.truncate()
        writer = Writer.resume(fh, head[2], [(o, e - o) for o, e in zip(ends[:kept], ends[1:kept + 1])])
        rewrite_head(fh, header, head[2] - RECORD_OVERHEAD)
        writer.close()
    return {"input": path, "frames": frames, "chunks": kept, "dropped_bytes": len(data) - keep}
