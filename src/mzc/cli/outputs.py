"""The run's output plan: every input's output is decided before any work starts, so that no output is lost or
clobbered.

Why up front: deciding names per file as the work goes let two inputs of one run write one output (`x.tif` and
`x.ome.tif` both -> `x.mzc`; with several worker processes both wrote, and one file's data was silently gone).
Here two inputs mapping to one output refuse the whole run, naming both; `-r DIR -o OUT` mirrors DIR's tree under
OUT instead of flattening it; an existing output that is not a regular file (a device, a FIFO, a socket) is refused
even with -f, as gzip does (-c is the way to write to a stream); -c takes one input (members written one after the
other would not read back as one file).
"""
from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from typing import BinaryIO, Callable

from ..errors import MzcError
from ..io.atomic import remove_stale_temps
from ..names import default_output
from .common import Outcome, refuse_terminal


@dataclass(frozen=True)
class Input:
    """One input of the run: its path, and where -r found it (the folder under the walked root, '' at the top)."""
    path: str
    subdir: str = ""
    walked: bool = False


@dataclass(frozen=True)
class Job:
    input: str
    target: str | BinaryIO  # a path, or sys.stdout.buffer
    existing: bool = False  # the output is there already: a resumed batch checks it instead of coding (resume.py)


def expand(inputs, recursive: bool, suffixes: tuple[str, ...], outcome: Outcome) -> list[Input]:
    """gzip -r: a folder stands for the files under it whose names end in `suffixes` (sorted), each with its
    place in the tree; without -r a folder is skipped with a warning, as gzip does."""
    out: list[Input] = []
    for inp in inputs:
        if inp == "-" or not os.path.isdir(inp):
            out.append(Input(inp))
        elif not recursive:
            outcome.warn(f"{inp} is a directory -- ignored (use -r)")
        else:
            def unreadable(exc: OSError, root=inp) -> None:  # os.walk skips what it cannot list: here it is an error
                outcome.error(f"{exc.filename or root}: {exc.strerror or exc} (folder not read)")

            for folder, dirs, files in os.walk(inp, onerror=unreadable):
                dirs.sort()
                sub = os.path.relpath(folder, inp)
                out += [Input(os.path.join(folder, f), "" if sub == "." else sub, True)
                        for f in sorted(files) if f.lower().endswith(suffixes)]
    return out


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "FIFO"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "special file"


def refuse_non_regular(target: str, store: bool = False) -> None:
    """An existing output must be a regular file (or, for a .zarr store, a folder): replacing a device node or a
    FIFO by a file destroys what the user pointed at, -f or not."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) or (store and stat.S_ISDIR(mode)):
        return
    raise MzcError(f"{target} is a {kind_of(mode)}, not a regular file: not replaced, even with -f "
                   "(use -c to write to a stream)")


def target_path(inp: Input, output: str | None, suffix: str, many: bool) -> str:
    """Where `inp` goes: -o FILE, -o FOLDER (mirroring the tree -r walked), or the default name beside it."""
    store = output is not None and output.rstrip("/").lower().endswith(".zarr")
    if output is not None and not store and (os.path.isdir(output) or many):
        if not os.path.isdir(output):
            raise MzcError(f"-o {output}: with several inputs, -o must be an existing folder")
        return os.path.join(output, inp.subdir, os.path.basename(default_output(inp.path, suffix)))
    return output or default_output(inp.path, suffix)


def plan(inputs: list[Input], output: str | None, to_stdout: bool, suffix_of: Callable[[str], str], force: bool,
         outcome: Outcome, resume: bool = False) -> list[Job] | None:
    """One job per input that is to be done (an existing output without -f is a warning and no job; with `resume`,
    a job marked `existing` whose output the caller checks). Errors of one input are that input's; a clash between
    inputs (one output for two, an output that is another input) refuses the whole run before anything is written:
    returns None. Temp files that killed runs of this host left in the output folders are removed."""
    many = len(inputs) > 1 or any(i.walked for i in inputs)
    if to_stdout and len(inputs) > 1:
        outcome.error(f"-c writes one stream: {len(inputs)} inputs given (concatenated outputs would not read back "
                      "as one file); give one input, or -o FOLDER")
        return None
    planned: list[tuple[Input, str | BinaryIO, bool | None]] = []
    for inp in inputs:
        try:
            planned.append(plan_one(inp, output, to_stdout, suffix_of, force, many, outcome, resume))
        except Exception as exc:  # noqa: BLE001 - reported as that input's one line, the others go on
            outcome.fail(inp.path, exc)
    if not clashes_refused(planned, inputs, outcome):
        return None
    jobs, folders = [], set()
    for inp, target, todo in planned:
        if todo is not False:
            if isinstance(target, str) and inp.subdir:
                os.makedirs(os.path.dirname(target), exist_ok=True)
            if isinstance(target, str):
                folders.add(os.path.dirname(os.path.abspath(target)))
            jobs.append(Job(inp.path, target, existing=todo is None))
    for folder in sorted(folders):
        remove_stale_temps(folder)
    return jobs


def plan_one(inp: Input, output, to_stdout: bool, suffix_of, force: bool, many: bool, outcome: Outcome,
             resume: bool = False):
    """(input, target, True: to do | False: skipped | None: the output exists, to be checked by a resumed batch)."""
    if to_stdout or (inp.path == "-" and output is None):
        refuse_terminal()
        return inp, sys.stdout.buffer, True
    if inp.path != "-":
        check_readable(inp.path)
    target = target_path(inp, output, suffix_of(inp.path), many)
    if target == "-":
        refuse_terminal()
        return inp, sys.stdout.buffer, True
    refuse_non_regular(target, store=target.rstrip("/").lower().endswith(".zarr"))
    if inp.path != "-" and os.path.exists(target) and os.path.samefile(inp.path, target):
        raise MzcError(f"output {target} is the input file; choose another -o")
    if os.path.exists(target) and not force:
        if resume and inp.path != "-":
            return inp, target, None
        outcome.warn(f"{target} already exists; not overwritten (use -f)")
        return inp, target, False
    return inp, target, True


def check_readable(path: str) -> None:
    """The input is a regular file this user may read: "no such file" only when there is none."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise MzcError("no such file") from None
    except OSError as exc:
        raise MzcError(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise MzcError(f"not a regular file (a {kind_of(mode)})")
    if not os.access(path, os.R_OK):
        raise MzcError("cannot read: Permission denied")


def same_key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def clashes_refused(planned, inputs: list[Input], outcome: Outcome) -> bool:
    """False (after one error line per clash) when two inputs map to one output or an output is another input."""
    ok = True
    by_target: dict[str, str] = {}
    sources = {same_key(i.path): i.path for i in inputs if i.path != "-"}
    for inp, target, _ in planned:
        if not isinstance(target, str):
            continue
        key = same_key(target)
        if key in by_target:
            outcome.error(f"{by_target[key]} and {inp.path} would both be written to {target}: nothing done "
                          "(encode them in separate runs, or into separate -o folders)")
            ok = False
        elif key in sources and sources[key] != inp.path:
            outcome.error(f"{inp.path} would be written to {target}, which is another input of this run: "
                          "nothing done")
            ok = False
        by_target.setdefault(key, inp.path)
    return ok
