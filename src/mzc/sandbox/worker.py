"""The sandbox process's side: take one job at a time, run it under its memory limit, send back the result or why
it failed. What native code prints and the exceptions it can only "ignore" are collected, never shown."""
from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import tempfile
import warnings

try:
    import resource
except ImportError:  # not POSIX: no address-space limit (the supervisor only forks on Linux anyway)
    resource = None

REPORT_LIMIT = 2000  # characters of captured output sent back


class Capture:
    """fd 1 and fd 2 of this process redirected to one anonymous file, read and emptied after every job."""

    def __init__(self):
        self.fd = os.memfd_create("mzc-sandbox-output") if hasattr(os, "memfd_create") \
            else tempfile.TemporaryFile().detach()
        for target in (1, 2):
            os.dup2(self.fd, target)
        # fresh Python streams on the redirected descriptors: the inherited ones may hold a lock taken at fork time
        sys.stdout = open(1, "w", closefd=False)  # lives as long as the process
        sys.stderr = open(2, "w", closefd=False)
        self.ignored: list[str] = []
        sys.unraisablehook = self._unraisable

    def _unraisable(self, unraisable) -> None:
        self.ignored.append(f"{type(unraisable.exc_value).__name__}: {unraisable.exc_value}")

    def take(self) -> str:
        """Everything reported since the last call (ignored exceptions first), then empty."""
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stream has nothing more to say
                stream.flush()
        size = os.lseek(self.fd, 0, os.SEEK_END)
        os.lseek(self.fd, 0, os.SEEK_SET)
        text = os.read(self.fd, min(size, 4 * REPORT_LIMIT)).decode("utf-8", "replace") if size else ""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        found = "\n".join(self.ignored + [line for line in text.splitlines() if line.strip()])
        self.ignored.clear()
        return found[:REPORT_LIMIT]


def _address_space() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def memory_limit(extra: int | None):
    """Address space limited to what the process maps now plus `extra` bytes, for the duration of one job."""
    if resource is None or extra is None or not os.path.exists("/proc/self/statm"):
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _address_space() + int(extra)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _detach(siblings, parent: int | None = None) -> None:
    """Forget the parent's other sandbox connections; ignore Ctrl-C (the parent handles it and ends us); die with
    the parent (Linux prctl PR_SET_PDEATHSIG, and at once if it died before that); dump no traceback on a crash."""
    for conn in siblings:
        with contextlib.suppress(OSError):
            conn.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handlers (lifeline.py) are not ours
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    faulthandler.disable()  # a crash here is the parent's to report, in one line, not a traceback dump
    with contextlib.suppress(Exception):  # best effort: libc or prctl may be missing
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(0)


def run_job(fn, args, extra_memory: int | None, capture: Capture) -> tuple:
    """("ok", value) | ("error", kind, message) | ("reported", message): one job's outcome, never an exception."""
    try:
        with memory_limit(extra_memory), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's warnings on a hostile chunk are not the decoder's report
            value = fn(*args)
    except MemoryError:
        capture.take()
        return "error", "memory", f"{(extra_memory or 0) / 2**20:.0f} MiB"
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent, which raises it there
        capture.take()
        return "error", type(exc).__name__, str(exc)
    said = capture.take()
    if said:
        return "reported", said
    return "ok", value


SHARED_FROM = 1 << 20  # arrays from this size travel through shared memory, smaller ones through the socket


def send(conn, outcome: tuple) -> None:
    """Arrays travel as a small header plus their bytes: through a memfd whose pages the parent maps (no copy on its
    side; a socket moves 512 MB at ~250 MB/s here), or through the socket when small."""
    value = outcome[1] if outcome[0] == "ok" else None
    if value is None or type(value).__module__ != "numpy" or type(value).__name__ != "ndarray" \
            or value.dtype.hasobject:
        conn.send(outcome)
        return
    import numpy as np
    value = np.ascontiguousarray(value)
    flat = value.reshape(-1).view(np.uint8)
    if flat.size < SHARED_FROM or not hasattr(os, "memfd_create"):
        conn.send(("array", value.shape, value.dtype.str))
        conn.send_bytes(memoryview(flat))
        return
    import mmap
    from multiprocessing.reduction import send_handle
    fd = os.memfd_create("mzc-sandbox-result")
    try:
        os.ftruncate(fd, flat.size)
        with mmap.mmap(fd, flat.size) as shared:
            np.frombuffer(shared, np.uint8)[:] = flat
        conn.send(("shared", value.shape, value.dtype.str))
        send_handle(conn, fd, os.getppid())
    finally:
        os.close(fd)


def serve(conn, siblings, parent: int | None = None) -> None:
    """The sandbox process's loop; it only ends by os._exit (parent gone, or a job that hit its memory limit)."""
    code = 0
    try:
        _detach(siblings, parent)
        capture = Capture()
        while True:
            try:
                fn, args, extra_memory = conn.recv()
            except (EOFError, OSError):
                break
            except Exception as exc:  # noqa: BLE001 - a job that cannot be unpickled here (made after the fork)
                send(conn, ("error", type(exc).__name__, f"the sandbox could not take the job ({exc})"))
                continue
            outcome = run_job(fn, args, extra_memory, capture)
            send(conn, outcome)
            if outcome[:2] == ("error", "memory"):
                break  # the heap may be fragmented or half-initialised: start afresh
    except BaseException:  # noqa: BLE001 - nothing may escape into the parent's code that fork copied
        code = 70
    os._exit(code)
