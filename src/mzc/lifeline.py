"""Signals end a run the way Ctrl-C does, and worker processes never outlive their parent.

SIGTERM (what schedulers and systemd send) and SIGHUP (a closed terminal) used to kill mzc where it stood: the
temp file of the output being written stayed behind, and the worker processes, reparented to init, ran on for
minutes. Here both raise `Terminated` in the main thread, which unwinds like KeyboardInterrupt (atomic outputs
remove their temp files); the CLI then exits 128 + the signal number, as a shell reports a signal.

Raising is not enough alone: a signal that lands in a ctypes callback (numba's compiler cache, a library's hook)
raises there and is ignored (it is not printed: a traceback is not mzc's way to speak). So the parent also
remembers the signal, and `check()` (called by atomic_output before it renames a temp file into place) raises it
again: no output completes after the signal.

A worker process asks Linux to send it SIGTERM when its parent dies, whatever killed the parent (prctl
PR_SET_PDEATHSIG; SIGKILL included), and takes SIGTERM, SIGHUP and SIGINT as the end of its work: it removes the
temp files it has open (atomic_output registers them in `TEMP_FILES`) and exits at once, wherever it was.
Imports nothing from mzc.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys

TERMINATING = (signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1
_state: dict[str, int] = {}
TEMP_FILES: set[str] = set()  # temp files being written by this process (atomic_output adds and removes them)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind everything (a BaseException, so no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def _raise(signum, frame):
    _state["signum"] = signum
    raise Terminated(signum)


def check() -> None:
    """Raise Terminated if a terminating signal arrived (even one whose first raise was swallowed)."""
    if "signum" in _state:
        raise Terminated(_state["signum"])


def terminate_on_signals() -> None:
    """In the main thread of the command: SIGTERM and SIGHUP raise Terminated (a no-op elsewhere)."""
    with contextlib.suppress(ValueError):  # not the main thread: signals are the main thread's to handle
        for sig in TERMINATING:
            signal.signal(sig, _raise)
    previous = sys.unraisablehook

    def quiet(unraisable):
        if not isinstance(unraisable.exc_value, (Terminated, KeyboardInterrupt)):
            previous(unraisable)

    sys.unraisablehook = quiet


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Linux: get `sig` when the parent dies; a parent already gone (it died before this ran) ends us now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):  # best effort: libc or prctl may be missing
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(128 + sig)


def _worker_signal(signum, frame):
    for path in list(TEMP_FILES):
        with contextlib.suppress(OSError):
            os.unlink(path)
    os._exit(128 + signum)


def worker_init(parent_pid: int) -> None:
    """Initializer of a pool worker process: die with the parent, end on SIGTERM/SIGHUP/SIGINT."""
    for sig in (*TERMINATING, signal.SIGINT):
        signal.signal(sig, _worker_signal)
    die_with_parent(parent_pid)
