"""Signed integers as zigzag LEB128 bytes, vectorised (the context coder's parameters, spec 6.5.4)."""
from __future__ import annotations

import numpy as np

from ...errors import MzcError

MAX_BYTES = 5  # 35 bits: every stored parameter fits in a signed 32-bit integer


def pack(values) -> bytes:
    v = np.asarray(values, np.int64)
    if v.size and (v.min() < -(1 << 31) or v.max() >= 1 << 31):
        raise ValueError("context coder parameter beyond 32 bits")
    z = ((v << 1) ^ (v >> 63)).astype(np.uint64)
    shifts = 7 * np.arange(MAX_BYTES, dtype=np.uint64)
    groups = (z[:, None] >> shifts[None, :]) & np.uint64(127)
    length = 1 + ((z[:, None] >> shifts[None, 1:]) > 0).sum(1)
    column = np.arange(MAX_BYTES)[None, :]
    groups |= (column < (length - 1)[:, None]).astype(np.uint64) << np.uint64(7)
    return groups[column < length[:, None]].astype(np.uint8).tobytes()


def unpack(data: bytes) -> np.ndarray:
    b = np.frombuffer(data, np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64)
    ends = (b & 128) == 0
    if not ends[-1]:
        raise MzcError("corrupt chunk: context coder parameters end inside a number")
    starts = np.r_[0, np.flatnonzero(ends)[:-1] + 1]
    group = np.cumsum(ends) - ends
    position = np.arange(b.size) - starts[group]
    if position.max() >= MAX_BYTES:
        raise MzcError("corrupt chunk: context coder parameter too long")
    z = np.add.reduceat((b & 127).astype(np.int64) << (7 * position), starts)
    return (z >> 1) ^ -(z & 1)
