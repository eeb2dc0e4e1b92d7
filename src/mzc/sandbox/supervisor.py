"""The parent's side of the sandbox: persistent forked processes, one job each at a time, results in order.

A job that outlives its deadline gets its process killed; a process that dies (abort, segfault) or exceeds its
address-space limit is reaped and replaced. Either way the job fails with a one-line `SandboxError` and the others
go on. Processes belong to the process and thread that forked them: a child of ours (a pool worker) starts its own, and
so does each thread (dask and napari decode from several), so no connection is ever shared.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator

from ..errors import MzcError
from .fresh import START_TIMEOUT_S, spawn
from .worker import serve


class SandboxError(MzcError):
    """A job's process crashed, hung, ran out of its memory or reported an error."""


@dataclass(frozen=True)
class Limits:
    seconds: float  # wall-clock deadline of one job
    memory: int | None  # bytes of address space one job may add to the process (None: no limit)


def enabled() -> bool:
    return hasattr(os, "fork") and sys.platform.startswith("linux") and os.environ.get("MZC_SANDBOX", "1") != "0"


def _signal_name(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return f"{name}, out of memory or a failed check" if sig == signal.SIGABRT else name
    return f"exit status {os.WEXITSTATUS(status)}"


def environment(runtime: str | None) -> dict | None:
    """What a fresh process was started with and keeps (a fork's is the parent's at that moment, not compared)."""
    return dict(os.environ) if runtime is not None else None


class Process:
    """One sandbox process and its connection: forked, or with a `runtime` (a codec's `module:function` set-up) a
    fresh interpreter that runs it first (fresh.py)."""

    def __init__(self, siblings: list[Connection], runtime: str | None = None, threads: int = 1):
        ours, theirs = socket.socketpair()
        self.popen, self.runtime = None, runtime
        self.env = environment(runtime)
        if runtime is not None:
            self.popen = spawn(theirs.fileno(), runtime, threads)
            pid = self.popen.pid
        else:
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child never returns from serve()
                ours.close()
                serve(Connection(theirs.detach()), siblings, parent)
        theirs.close()
        self.pid, self.conn = pid, Connection(ours.detach())
        self.deadline: float | None = None
        self.ready = runtime is None

    def _started(self) -> None:
        """Wait for a fresh process's set-up (not part of any job's deadline); its failure is this decode's error."""
        if self.ready:
            return
        try:
            head = self.conn.recv() if self.conn.poll(START_TIMEOUT_S) else ("failed", "timeout", "")
        except (EOFError, OSError):
            head = ("failed", "crash", "")
        if head[0] == "ready":
            self.ready = True
            return
        kind, message = head[1], head[2]
        how = self.reap(kill=True)
        if kind == "MzcError":
            raise MzcError(message)
        what = f"the sandbox for this decoder ({self.runtime})"
        if kind == "timeout":
            raise SandboxError(f"{what} did not start within {START_TIMEOUT_S:.0f} s (killed)")
        if kind == "crash":
            raise SandboxError(f"{what} died while starting ({how})")
        raise SandboxError(f"{what} could not start: {kind}: {message}")

    def submit(self, fn: Callable, args: tuple, limits: Limits) -> None:
        self._started()
        self.conn.send((fn, args, limits.memory))
        self.deadline = time.monotonic() + limits.seconds

    def receive(self):
        """The job's result; SandboxError/MzcError for a failure (the process may be gone: see `alive`)."""
        try:
            head = self.conn.recv()
            if head[0] in ("array", "shared"):
                return self._array(*head)
        except (EOFError, OSError):
            raise SandboxError(f"the decoder crashed ({self.reap()})") from None
        finally:
            self.deadline = None
        if head[0] == "ok":
            return head[1]
        if head[0] == "reported":
            raise SandboxError(f"the decoder reported an error: {head[1].splitlines()[0][:300]}")
        kind, message = head[1], head[2]
        if kind == "memory":
            self.reap()
            raise SandboxError(f"the decoder needed more than its memory limit of {message}")
        raise MzcError(message if kind == "MzcError" else f"{kind}: {message}")

    def _array(self, how: str, shape: tuple, dtype: str):
        import numpy as np
        if how == "array":
            out = np.empty(shape, np.dtype(dtype))
            if out.nbytes:
                self.conn.recv_bytes_into(memoryview(out.reshape(-1).view(np.uint8)))
            else:
                self.conn.recv_bytes()
            return out
        import mmap
        from multiprocessing.reduction import recv_handle
        fd = recv_handle(self.conn)
        try:
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            shared = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        return np.frombuffer(shared, np.dtype(dtype)).reshape(shape)  # the array keeps the mapping alive

    def reap(self, kill: bool = False) -> str:
        """Wait for (or kill) the process; return how it ended."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.conn.close()
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return "already reaped"
        if self.popen is not None:  # reaped here: the Popen must not wait for it (nor warn it is still running)
            self.popen.returncode = os.waitstatus_to_exitcode(status)
        self.pid = 0
        return _signal_name(status)

    @property
    def alive(self) -> bool:
        return self.pid != 0


class Pool:
    """The sandbox processes of one (parent) process, of one runtime (None: forked)."""

    def __init__(self, runtime: str | None = None):
        self.owner, self.runtime = os.getpid(), runtime
        self.procs: list[Process] = []

    def get(self, n: int, workers: int, busy: set[int] = frozenset()) -> list[Process]:
        """n live processes (started or replaced as needed) of the `workers` a job stream may use. An idle fresh
        process started under another environment is replaced: it would not see e.g. a new $MZC_MODELS."""
        env = environment(self.runtime)
        for p in self.procs:
            if p.alive and p.env != env and id(p) not in busy:
                p.reap(kill=True)
        self.procs = [p for p in self.procs if p.alive]
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))  # a fresh process's share of the cores
        while len(self.procs) < n:
            self.procs.append(Process([p.conn for p in self.procs], self.runtime, threads))
        return self.procs[:n]

    def close(self) -> None:
        for p in self.procs:
            if p.alive:
                p.reap(kill=True)
        self.procs.clear()


_local = threading.local()  # each thread has its own processes: a connection carries one job at a time
_pools: list[Pool] = []
_pools_lock = threading.Lock()


def _current(runtime: str | None = None) -> Pool:
    pools = getattr(_local, "pools", None)
    if pools is None:
        pools = _local.pools = {}
    pool = pools.get(runtime)
    if pool is None or pool.owner != os.getpid():  # a forked child does not own (nor kill) its parent's processes
        pool = pools[runtime] = Pool(runtime)
        with _pools_lock:
            _pools.append(pool)
    return pool


def shutdown() -> None:
    """End this process's sandbox processes, every thread's (they also end when it exits)."""
    with _pools_lock:
        mine = [p for p in _pools if p.owner == os.getpid()]
        _pools[:] = [p for p in _pools if p.owner != os.getpid()]
    for pool in mine:
        pool.close()


atexit.register(shutdown)


def run(fn: Callable, args: tuple, limits: Limits):
    """fn(*args) in a sandbox process (inline when sandboxing is unavailable)."""
    return next(imap(fn, [(args, limits)], 1))


class _Slot:
    __slots__ = ("fn", "args", "limits", "proc", "done", "value", "error")

    def __init__(self, fn: Callable, args: tuple, limits: Limits | None):
        self.fn, self.args, self.limits = fn, args, limits
        self.proc: Process | None = None
        self.done, self.value, self.error = False, None, None

    def run_here(self) -> None:
        try:
            self.finish(value=self.fn(*self.args))
        except MzcError as exc:
            self.finish(error=exc)

    def finish(self, value=None, error: MzcError | None = None) -> None:
        self.done, self.value, self.error, self.proc = True, value, error, None

    def result(self, raise_errors: bool):
        if self.error is not None and raise_errors:
            raise self.error
        return self.error if self.error is not None else self.value


def imap(fn: Callable, jobs: Iterable[tuple[tuple, Limits | None]], workers: int = 1, raise_errors: bool = True,
         ahead: int | None = None, runtime: str | None = None) -> Iterator:
    """Yield fn(*args) for each (args, limits), in order, on up to `workers` sandbox processes (limits None: this
    job runs inline, in this process). With a `runtime` (`module:function`, a codec's set-up) the processes are
    fresh interpreters that run it first (fresh.py), for decoders that cannot run in a fork (torch).

    A failed job raises its error at its turn (or, with raise_errors=False, yields the error instead of a value).
    At most `ahead` jobs (default 2 x workers) are taken from `jobs` before their results are yielded. Processes
    start only as jobs need them (a one-chunk file starts one)."""
    if not enabled():
        yield from _inline(fn, jobs, raise_errors)
        return
    workers = max(1, int(workers))
    ahead = max(ahead or 2 * workers, workers)
    pool = _current(runtime)
    pending: deque[_Slot] = deque()
    source = iter(jobs)
    try:
        while True:
            while len(pending) < ahead and (job := next(source, None)) is not None:
                pending.append(_Slot(fn, *job))
            if not pending:
                return
            while not pending[0].done:
                if pending[0].limits is None:  # a job that needs no sandbox runs here, at its turn
                    pending[0].run_here()
                    break
                _dispatch(pool, pending, workers)
                _collect(pending)
            yield pending.popleft().result(raise_errors)
    finally:
        for slot in pending:  # abandoned mid-run (an error, a closed generator): nobody will read these results
            if slot.proc is not None:
                slot.proc.reap(kill=True)


def _inline(fn: Callable, jobs, raise_errors: bool) -> Iterator:
    for args, _ in jobs:
        try:
            value = fn(*args)
        except MzcError as exc:
            if raise_errors:
                raise
            value = exc
        yield value


def _dispatch(pool: Pool, pending: deque, workers: int) -> None:
    """Give idle processes the oldest jobs not yet started."""
    busy = {id(s.proc) for s in pending if s.proc is not None}
    waiting = sum(1 for s in pending if s.proc is None and not s.done and s.limits is not None)
    idle = [p for p in pool.get(min(workers, len(busy) + waiting), workers, busy) if id(p) not in busy]
    for slot in pending:
        if not idle:
            return
        if slot.proc is None and not slot.done and slot.limits is not None:
            proc = idle.pop(0)
            try:
                proc.submit(slot.fn, slot.args, slot.limits)
                slot.proc = proc
            except (OSError, ValueError) as exc:  # the process died after its last job
                proc.reap(kill=True)
                slot.finish(error=SandboxError(f"the sandbox process was lost ({exc})"))


def _collect(pending: deque) -> None:
    """Wait until a running job finishes or a deadline passes; record what happened."""
    running = {s.proc.conn: s for s in pending if s.proc is not None}
    if not running:
        return
    now = time.monotonic()
    timeout = max(0.0, min(s.proc.deadline for s in running.values()) - now)
    for conn in wait(list(running), timeout):
        slot = running.pop(conn)
        try:
            slot.finish(value=slot.proc.receive())
        except MzcError as exc:
            slot.finish(error=exc)
    now = time.monotonic()
    for slot in running.values():
        if slot.proc.deadline is not None and now >= slot.proc.deadline:
            slot.proc.reap(kill=True)
            slot.finish(error=SandboxError(f"the decoder did not finish within its {slot.limits.seconds:.1f} s "
                                           "deadline (killed)"))
