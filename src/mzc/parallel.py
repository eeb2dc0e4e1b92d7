"""Parallelism: an order-keeping map over a local process pool or a dask.distributed cluster, with a bounded number
of chunks in flight, and `encode_many` for batches of files.

Bounded look-ahead is what keeps peak memory independent of the stack size: at most `ahead` chunks (and their
encoded bytes) exist at once, whatever the number of chunks. Chunks are coded by the same function wherever they
run and written in chunk order by one process, so a file's bytes do not depend on where it was coded.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence


PARALLEL_MIN_BYTES = 16 << 20  # below this, process start-up and chunk copies cost more than they save


def useful_workers(requested: int, nbytes: int, n_items: int) -> int:
    return 1 if nbytes < PARALLEL_MIN_BYTES else max(1, min(requested, n_items))


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def pmap(fn: Callable, items: Iterable[tuple], workers: int = 1, ahead: int | None = None) -> Iterator:
    """Yield fn(*item) for each item, in order, using `workers` processes (inline when workers <= 1)."""
    if workers <= 1:
        for item in items:
            yield fn(*item)
        return
    ahead = ahead or 2 * workers
    with ProcessPoolExecutor(workers) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, *item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def dask_map(client, fn: Callable, items: Iterable[tuple], ahead: int | None = None) -> Iterator:
    """pmap on a dask.distributed cluster: fn(*item) as tasks, results in order, at most `ahead` in flight
    (default: twice the cluster's threads)."""
    ahead = ahead or 2 * max(1, sum(client.nthreads().values()))
    pending: deque = deque()

    def take():
        future = pending.popleft()
        result = future.result()
        future.release()
        return result

    for item in items:
        pending.append(client.submit(fn, *item, pure=False))
        if len(pending) >= ahead:
            yield take()
    while pending:
        yield take()


def encode_many(paths: Sequence[str], client=None, outputs: Sequence[str] | None = None, workers: int | None = None,
                **options) -> list[dict]:
    """Encode TIFFs to .mzc files (default names: stack.tif -> stack.mzc); return their reports in order.

    Without a client the local cores are used: many small files one per process, large files chunk by chunk
    (`workers` processes, default all cores). With a dask.distributed `client` every chunk of every file is a task
    on its cluster (a few files at a time, so small files keep the workers busy too); the files are assembled and
    written on this machine, byte for byte as a local run writes them. Options are those of `mzc.encode`.
    """
    from concurrent.futures import ThreadPoolExecutor

    from . import files
    paths = [str(p) for p in paths]
    outputs = [str(o) for o in outputs] if outputs is not None else [mzc_name(p) for p in paths]
    if len(outputs) != len(paths):
        raise ValueError("encode_many: one output per input")
    if client is not None:
        lanes = max(1, min(len(paths), sum(client.nthreads().values())))
        with ThreadPoolExecutor(lanes) as pool:  # the dask client is thread-safe; each thread drives one file
            return list(pool.map(lambda io: files.encode(io[0], io[1], client=client, **options), zip(paths, outputs)))
    workers = workers or default_workers()
    small = all(os.path.getsize(p) < PARALLEL_MIN_BYTES for p in paths)
    if small and len(paths) > 1 and workers > 1:
        jobs = ((p, o, options) for p, o in zip(paths, outputs))
        return list(pmap(_encode_file, jobs, min(workers, len(paths))))
    return [files.encode(p, o, workers=workers, **options) for p, o in zip(paths, outputs)]


def _encode_file(path: str, output: str, options: dict) -> dict:
    from . import files
    return files.encode(path, output, workers=1, **options)


TIFF_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif")


def mzc_name(path: str) -> str:
    """stack.tif -> stack.mzc (an OME-TIFF loses its whole double suffix); other names get .mzc appended."""
    lower = path.lower()
    for suffix in TIFF_SUFFIXES:
        if lower.endswith(suffix):
            return path[: -len(suffix)] + ".mzc"
    return path + ".mzc"
