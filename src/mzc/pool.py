"""Order-keeping maps over a local process pool or a dask.distributed cluster, with a bounded number in flight.

Bounded look-ahead is what keeps peak memory independent of the stack size: at most `ahead` chunks (and their
encoded bytes) exist at once, whatever the number of chunks. Items are processed by the same function wherever they
run and come back in order, so a file's bytes do not depend on where it was coded.

Worker processes die with their parent and end on signals, removing their temp files (lifeline.py); a map left
early (an error, a signal, an abandoned generator) terminates its workers and waits for them, so none writes on.
Imports nothing from mzc but lifeline.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

from .lifeline import worker_init

PARALLEL_MIN_BYTES = 16 << 20  # below this, process start-up and chunk copies cost more than they save
STOP_WAIT_SECONDS = 10.0  # a terminated worker removes its temp files and exits at once; this is a safety margin
_live: set[ProcessPoolExecutor] = set()
_live_lock = threading.Lock()


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
    pool = ProcessPoolExecutor(workers, initializer=worker_init, initargs=(os.getpid(),))
    with _live_lock:
        _live.add(pool)
    try:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, *item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BaseException:
        stop(pool)
        raise
    finally:
        with _live_lock:
            _live.discard(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def stop(pool: ProcessPoolExecutor) -> None:
    """Terminate a pool's workers (each removes its temp files and exits) and wait until they are gone."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(STOP_WAIT_SECONDS)
            if proc.is_alive():
                proc.kill()


def stop_all() -> None:
    """Terminate every live pool's workers (the CLI's last act on a signal, whatever generator holds them)."""
    with _live_lock:
        pools = list(_live)
        _live.clear()
    for pool in pools:
        stop(pool)


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
