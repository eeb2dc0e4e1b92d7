"""Sandbox processes started as a new interpreter instead of a fork, for decoders that cannot run in a fork.

torch is such a decoder: its OpenMP thread pool does not survive a fork of a process that used it, and its libraries
map more address space than a job's memory limit leaves (`import torch` under the limit fails to map libtorch). A
fresh process therefore runs its codec's set-up (`module:function`, e.g. importing torch) first, with no limit, and
says it is ready; from then on it serves jobs exactly like a forked one (worker.serve), each under its own limit.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

START_TIMEOUT_S = 300.0  # importing torch and CompressAI took 10-25 s on a loaded 2-core machine


def spawn(fd: int, runtime: str, threads: int) -> subprocess.Popen:
    """Start a new interpreter serving the socket `fd`; it inherits nothing else (close_fds)."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, int(threads))))  # its share of the cores, unless the user says
    path = [os.path.abspath(p) for p in sys.path if isinstance(p, str) and p]  # it imports as this process does
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    argv = [sys.executable, "-c", f"from {__name__} import main; main()", str(fd), runtime, str(os.getpid())]
    return subprocess.Popen(argv, pass_fds=(fd,), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True)


def run_setup(runtime: str) -> None:
    """Import `module` and call `function` of a `module:function` runtime (its warnings are nobody's business)."""
    from importlib import import_module
    module, _, function = runtime.partition(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = import_module(module)
        if function:
            getattr(target, function)()


def main() -> None:  # pragma: no cover - runs in the child
    from multiprocessing.connection import Connection

    from .worker import _detach, serve
    fd, runtime, parent = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    conn = Connection(fd)
    _detach([])  # die with the parent from now on, ignore Ctrl-C, no traceback dumps
    if os.getppid() != parent:  # the parent died before that
        os._exit(0)
    try:
        run_setup(runtime)
    except BaseException as exc:  # noqa: BLE001 - whatever stops the set-up is the parent's to report
        from ..errors import MzcError
        kind = "MzcError" if isinstance(exc, MzcError) else type(exc).__name__
        conn.send(("failed", kind, str(exc)[:2000]))
        os._exit(0)
    conn.send(("ready",))
    serve(conn, [])
