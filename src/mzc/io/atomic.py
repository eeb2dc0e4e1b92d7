"""Atomic output: a temporary file beside the target, renamed onto it only when everything was written.

The rename never replaces something that is not a regular file: a device node or a FIFO turned into a file
destroys what the caller pointed at (the CLI refuses those before any work; this is the last guard, for the API).
The file and then its folder are synced, so a completed output and its directory entry are on disk before anything
(an input under --rm) is deleted. Temp names carry the host and process id: a run killed by SIGKILL (which no
handler sees) leaves its temp file, and the next run in that folder removes it once its process is gone."""
from __future__ import annotations

import builtins
import contextlib
import os
import socket
import stat
import tempfile
from typing import BinaryIO, Iterator

from .. import lifeline
from ..errors import MzcError


@contextlib.contextmanager
def atomic_output(path: str | BinaryIO) -> Iterator[BinaryIO]:
    """A temp file beside `path`, renamed onto it only if the block succeeds; removed otherwise.

    A binary stream (stdout) gets the temp file's bytes copied to it once complete.
    """
    if not isinstance(path, str):
        with tempfile.NamedTemporaryFile() as fh:
            yield fh
            fh.seek(0)
            while block := fh.read(1 << 20):
                path.write(block)
            path.flush()
        return
    refuse_special(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{temp_prefix()}{os.getpid()}-", suffix=TEMP_SUFFIX, dir=folder)
    except OSError as exc:  # a read-only or missing folder: the error is the output's, not the input's
        raise MzcError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    lifeline.TEMP_FILES.add(tmp)  # a worker ended by a signal removes it (lifeline.py)
    try:
        with builtins.open(tmp, "w+b") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        refuse_special(path)
        lifeline.check()  # a signal whose raise was swallowed (in a C callback) still stops the rename
        os.replace(tmp, path)
        sync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        lifeline.TEMP_FILES.discard(tmp)


TEMP_SUFFIX = ".part"


def temp_prefix() -> str:
    """`.mzc-HOST-`: a shared folder may hold the temp files of runs on other machines, whose pids mean nothing here."""
    host = "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname())[:64] or "host"
    return f".mzc-{host}-"


def sync_folder(folder: str) -> None:
    """fsync a directory, so that a rename or unlink in it is on disk (where the filesystem supports it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_durable(path: str) -> None:
    """fsync a finished file and its folder (an output an earlier run renamed into place, before --rm trusts it)."""
    with builtins.open(path, "rb") as fh:
        os.fsync(fh.fileno())
    sync_folder(os.path.dirname(os.path.abspath(path)))


def remove_stale_temps(folder: str) -> list[str]:
    """Remove the temp files this host's killed runs left in `folder` (their process no longer exists); return them."""
    prefix, removed = temp_prefix(), []
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
            continue
        pid_text = name[len(prefix):].split("-", 1)[0]
        if not pid_text.isdigit() or pid_alive(int(pid_text)):
            continue
        path = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.unlink(path)
                removed.append(path)
    return removed


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def refuse_special(path: str) -> None:
    """An existing `path` that is not a regular file (device, FIFO, socket, folder) is never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise MzcError(f"{path} is not a regular file: not replaced (write to a stream instead)")
