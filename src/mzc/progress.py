"""Progress from deep inside a chunk's coding (a neural fit's steps) to whoever shows it, without passing a
callback through every codec: the encoder sets a reporter around in-process coding, codecs call `advance`.

Imports nothing from mzc. In worker processes nobody listens and `advance` does nothing.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator

_reporter: contextvars.ContextVar[Callable[[float], None] | None] = contextvars.ContextVar("mzc_progress",
                                                                                            default=None)


@contextlib.contextmanager
def reporting(callback: Callable[[float], None]) -> Iterator[None]:
    """Within the block, `advance(f)` calls `callback(f)` (f: the fraction of the current chunk done)."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


def advance(fraction: float) -> None:
    callback = _reporter.get()
    if callback is not None:
        callback(min(max(fraction, 0.0), 1.0))
