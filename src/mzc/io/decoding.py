"""Decoding the chunks of a file that may be hostile (spec section 4.1): native decoders run in the sandbox under a
memory limit and a deadline proportional to the chunk, and decoded samples are checked against the chunk's digest.

Digest rule (`p.d`, CRC-32C of the decoded chunk): a mismatch is always an error for bit-exact and error-bounded
codecs (their output is a promise); for lossy codecs it is an error unless the reader allows it (`--allow-mismatch`),
because a float decoder on another machine may round a grey level differently. Files without digests decode as
before; a file whose header says `digests` refuses a chunk without one.
"""
from __future__ import annotations

import functools
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import google_crc32c
import numpy as np
import psutil

from .. import sandbox
from ..codecs.base import ROLES, RegionDecoder
from ..codecs.registry import from_config
from ..errors import MzcError
from ..format.container import unpack_msg
from ..pool import pmap
from ..resample import resample

DIGEST = "crc32c"  # the header's `digests` value this reader checks
DEADLINE_BASE_S = 20.0  # a chunk's decode may take this long plus...
DEADLINE_PER_ELEMENT_S = 2e-6  # ...this per element (0.5 M elements/s: 10x below the slowest decoder measured)
MEMORY_BASE = 512 << 20  # and may map this much memory plus...
MEMORY_PER_ELEMENT = 64  # ...this per element (measured peaks: 2-26 bytes; benchmarks/results/hostile.md)


@dataclass(frozen=True)
class DigestRule:
    required: bool = False  # the header declares a digest in every chunk
    allow_mismatch: bool = False  # lossy codecs: accept samples that differ from the encoder's


@functools.lru_cache(maxsize=8)
def codec_of(config_packed: bytes):
    return from_config(unpack_msg(config_packed, "codec config"))


DIGEST_STEP = 1 << 20  # bytes hashed at a time: no copy of a whole chunk just to checksum it


def digest(array: np.ndarray) -> int:
    """CRC-32C of the samples as little-endian bytes in C order (spec section 4.1)."""
    a = np.ascontiguousarray(array)
    flat = a.astype(a.dtype.newbyteorder("<"), copy=False).reshape(-1).view(np.uint8)
    crc = 0
    for start in range(0, flat.size, DIGEST_STEP):
        crc = google_crc32c.extend(crc, flat[start:start + DIGEST_STEP].tobytes())
    return crc


def check_digest(codec, block: np.ndarray, params: dict, rule: DigestRule) -> None:
    stored = params.get("d")
    if stored is None:
        if rule.required:
            raise MzcError("corrupt chunk: its digest is missing (the header says every chunk has one)")
        return
    if type(stored) is not int:
        raise MzcError("corrupt chunk: its digest is not an integer")
    if digest(block) == stored:
        return
    if isinstance(codec, ROLES):
        raise MzcError("corrupt chunk: the decoded samples do not match the chunk's digest")
    if not rule.allow_mismatch:
        raise MzcError(f"decoded samples differ from the encoder's (digest mismatch): a damaged stream, or this "
                       f"machine's {codec.id} decoder rounds differently; --allow-mismatch accepts them")


def decode_chunk(config_packed: bytes, body: bytes, shape: tuple[int, ...], dtype: str, params: dict,
                 rule: DigestRule = DigestRule()) -> np.ndarray:
    """Decode one chunk and check its digest; whatever a crafted (checksum-valid) chunk makes a library raise
    becomes a MzcError."""
    codec = codec_of(config_packed)
    try:
        block = codec.decode(body, shape, np.dtype(dtype), params)
    except (MzcError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - decoders raise many types; Rust panics derive from BaseException
        raise MzcError(f"{failure(exc)}: {type(exc).__name__}: {exc}") from None
    check_digest(codec, block, params, rule)
    return block


OUT_OF_MEMORY = re.compile(r"can't allocate memory|cannot allocate memory|bad_alloc|out of memory", re.I)


def failure(exc: BaseException) -> str:
    """What a decoder's exception says happened: an allocation that failed (torch's RuntimeError, C++ bad_alloc)
    is the memory limit's doing, not the file's; anything else is a corrupt chunk."""
    return "out of memory decoding the chunk" if OUT_OF_MEMORY.search(str(exc)) else "corrupt chunk"


def _whole(positions: list[np.ndarray], shape: tuple[int, ...]) -> bool:
    return all(len(p) == n and bool(np.array_equal(p, np.arange(n, dtype=p.dtype))) for p, n in zip(positions, shape))


def decode_chunk_at(config_packed: bytes, body: bytes, shape: tuple[int, ...], dtype: str, params: dict,
                    positions: list[np.ndarray], rule: DigestRule = DigestRule()) -> np.ndarray:
    """Sample one chunk at per-axis chunk coordinates (a region, another scale). Region decoders (fields) evaluate
    only those samples, so their digest is checked only when the samples are the whole chunk."""
    codec = codec_of(config_packed)
    if not isinstance(codec, RegionDecoder) or _whole(positions, shape):
        return resample(decode_chunk(config_packed, body, shape, dtype, params, rule), positions)
    try:
        return codec.decode_at(body, shape, np.dtype(dtype), params, positions)
    except (MzcError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - as decode_chunk
        raise MzcError(f"{failure(exc)}: {type(exc).__name__}: {exc}") from None


def limits(shape: tuple[int, ...], seconds_per_element: float | None = None,
           bytes_per_element: int | None = None) -> sandbox.Limits:
    """How long and how much memory one chunk's decode may take: proportional to the chunk (and to its codec's
    needs, where it says they exceed native decoders'), memory capped by the machine."""
    n = math.prod(shape)
    per_element = max(MEMORY_PER_ELEMENT, bytes_per_element or 0)
    memory = min(MEMORY_BASE + per_element * n, psutil.virtual_memory().available + MEMORY_BASE)
    return sandbox.Limits(DEADLINE_BASE_S + max(DEADLINE_PER_ELEMENT_S, seconds_per_element or 0.0) * n, memory)


def decode_many(fn: Callable, jobs: Iterable[tuple[int, tuple]], config_packed: bytes, workers: int = 1,
                raise_errors: bool = True) -> Iterator[tuple[int, object]]:
    """(chunk index, fn(*args)) for each (index, args) in order; args start like decode_chunk's. Chunks whose codec
    runs native code go to the sandbox, the others run here (or in a process pool). With raise_errors=False a
    failed chunk yields its MzcError instead of raising it."""
    codec = codec_of(config_packed)
    if not sandbox.enabled() or not codec.native:
        yield from _unsandboxed(fn, jobs, workers, raise_errors)
        return
    order: deque[int] = deque()
    needs = codec.decode_seconds_per_element(), codec.decode_bytes_per_element()

    def feed():  # a chunk of mzc's own code runs here with one worker; with more, in the sandbox's processes, so
        for index, args in jobs:  # that a default (context-coded) file decodes on every core
            order.append(index)
            yield args, (limits(args[2], *needs) if workers > 1 or _native(codec, args[4]) else None)

    results = sandbox.imap(fn, feed(), workers, raise_errors=False, runtime=codec.sandbox_runtime())
    try:
        for result in results:
            index = order.popleft()
            if isinstance(result, sandbox.SandboxError):  # the chunk number, unless the caller names it itself
                result = MzcError(f"corrupt chunk {index if raise_errors else ''}: {result}".replace(" :", ":"))
            if isinstance(result, MzcError) and raise_errors:
                raise result
            yield index, result
    finally:
        results.close()


def _native(codec, params: dict) -> bool:
    """Whether a chunk's decode runs native code; when its hostile params confuse the question, assume it does."""
    try:
        return bool(codec.native_chunk(params))
    except Exception:  # noqa: BLE001 - any doubt sends the chunk to the sandbox, where its decode fails safely
        return True


def _unsandboxed(fn: Callable, jobs, workers: int, raise_errors: bool) -> Iterator[tuple[int, object]]:
    if raise_errors:
        order: deque[int] = deque()

        def feed():
            for index, args in jobs:
                order.append(index)
                yield args

        for result in pmap(fn, feed(), workers):
            yield order.popleft(), result
        return
    for index, args in jobs:
        try:
            yield index, fn(*args)
        except MzcError as exc:
            yield index, exc
