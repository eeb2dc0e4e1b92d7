"""Batches of files: `encode_many` codes many TIFFs locally or on a dask.distributed cluster.

The order-keeping maps it uses are in pool.py; this module is the batch layer above the file API.
"""
from __future__ import annotations

import os
from typing import Sequence

from .names import mzc_name
from .pool import PARALLEL_MIN_BYTES, default_workers, pmap

__all__ = ["encode_many", "mzc_name"]


def encode_many(paths: Sequence[str], client=None, outputs: Sequence[str] | None = None, workers: int | None = None,
                **options) -> list[dict]:
    """Encode TIFFs to .mzc files (default names: stack.tif -> stack.mzc); return their reports in order.

    Without a client the local cores are used: many small files one per process, large files chunk by chunk
    (`workers` processes, default all cores). With a dask.distributed `client` every chunk of every file is a task
    on its cluster (a few files at a time, so small files keep the workers busy too); the files are assembled and
    written on this machine, byte for byte as a local run writes them. Options are those of `mzc.encode`.
    """
    from concurrent.futures import ThreadPoolExecutor

    from . import api
    paths = [str(p) for p in paths]
    outputs = [str(o) for o in outputs] if outputs is not None else [mzc_name(p) for p in paths]
    if len(outputs) != len(paths):
        raise ValueError("encode_many: one output per input")
    if client is not None:
        lanes = max(1, min(len(paths), sum(client.nthreads().values())))
        with ThreadPoolExecutor(lanes) as pool:  # the dask client is thread-safe; each thread drives one file
            return list(pool.map(lambda io: api.encode(io[0], io[1], client=client, **options), zip(paths, outputs)))
    workers = workers or default_workers()
    small = all(os.path.getsize(p) < PARALLEL_MIN_BYTES for p in paths)
    if small and len(paths) > 1 and workers > 1:
        jobs = ((p, o, options) for p, o in zip(paths, outputs))
        return list(pmap(_encode_file, jobs, min(workers, len(paths))))
    return [api.encode(p, o, workers=workers, **options) for p, o in zip(paths, outputs)]


def _encode_file(path: str, output: str, options: dict) -> dict:
    from . import api
    return api.encode(path, output, workers=1, **options)
