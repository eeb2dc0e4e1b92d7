"""Atomic output: a temporary file beside the target, renamed onto it only when everything was written.

The rename never replaces something that is not a regular file: a device node or a FIFO turned into a file
destroys what the caller pointed at (the CLI refuses those before any work; this is the last guard, for the API)."""
from __future__ import annotations

import builtins
import contextlib
import os
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
    fd, tmp = tempfile.mkstemp(prefix=".mzc-", suffix=".part", dir=folder)
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
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        lifeline.TEMP_FILES.discard(tmp)


def refuse_special(path: str) -> None:
    """An existing `path` that is not a regular file (device, FIFO, socket, folder) is never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise MzcError(f"{path} is not a regular file: not replaced (write to a stream instead)")
