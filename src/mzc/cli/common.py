"""What every `mzc` command shares: gzip's exit status, one-line errors, the per-input loop, output naming,
progress bars, JSON and table printing."""
from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterable

import click
from rich.console import Console
from rich.table import Table

from ..errors import MzcError
from ..names import default_output
from ..pool import default_workers

stderr = Console(stderr=True, highlight=False)


class Outcome:
    """Collects per-file outcomes into gzip's exit status: 0 ok, 1 error, 2 warning."""

    def __init__(self):
        self.status = 0

    def error(self, message: str) -> None:
        stderr.print(f"mzc: error: {message}", markup=False, soft_wrap=True)
        self.status = 1

    def fail(self, inp: str, exc: Exception) -> None:
        if isinstance(exc, MzcError):
            self.error(f"{inp}: {exc}")
        elif isinstance(exc, OSError):
            self.error(f"{inp}: {exc.strerror or exc}")
        else:
            if os.environ.get("MZC_DEBUG"):
                raise exc
            self.error(f"{inp}: internal error ({type(exc).__name__}: {exc}); set MZC_DEBUG=1 for a traceback")

    def warn(self, message: str) -> None:
        stderr.print(f"mzc: warning: {message}", markup=False, soft_wrap=True)
        if self.status == 0:
            self.status = 2

    def exit(self) -> None:
        sys.exit(self.status)


def each_input(inputs: Iterable[str], outcome: Outcome, handle: Callable[[str], None]) -> None:
    """Run `handle(input)` for every input: one bad file must not stop the others, nor print a traceback."""
    for inp in inputs:
        try:
            handle(inp)
        except Exception as exc:  # noqa: BLE001 - reported as one line, the others go on
            outcome.fail(inp, exc)


def expand_inputs(inputs: Iterable[str], recursive: bool, suffixes: tuple[str, ...], outcome: Outcome) -> list[str]:
    """gzip -r: a folder stands for the files under it whose names end in `suffixes` (sorted); without -r a folder is
    skipped with a warning, as gzip does."""
    out: list[str] = []
    for inp in inputs:
        if inp == "-" or not os.path.isdir(inp):
            out.append(inp)
        elif not recursive:
            outcome.warn(f"{inp} is a directory -- ignored (use -r)")
        else:
            for folder, dirs, files in os.walk(inp):
                dirs.sort()
                out += [os.path.join(folder, f) for f in sorted(files) if f.lower().endswith(suffixes)]
    return out


def threads(value: int | None) -> int:
    """-T N: N worker processes; 0 or absent: all cores (zstd's -T0)."""
    return value or default_workers()


def summary_line(rep: dict) -> str:
    """zstd's one line per file: name, ratio, fidelity (PSNR on the data range, or lossless), speed."""
    psnr = rep.get("psnr_db")
    if rep.get("max_abs_error") == 0:
        fidelity = "lossless"
    elif isinstance(psnr, (int, float)) and math.isfinite(psnr):
        fidelity = f"PSNR {psnr:.2f} dB"
    else:
        fidelity = "not checked" if rep.get("checked") is False else "lossy"
    seconds = rep.get("encode_seconds") or 0
    speed = f", {rep['bytes_in'] / seconds / 1e6:.1f} MB/s" if seconds > 0 and rep.get("bytes_in") else ""
    return f"{rep.get('input')} -> {rep.get('output')}: {rep.get('ratio', 0):.2f}x, {fidelity}{speed}"


def connect(address: str):
    """A dask.distributed client for the scheduler at `address`, or a one-line error."""
    try:
        from distributed import Client
    except ImportError:
        raise MzcError("--scheduler needs dask.distributed: pip install 'mzc[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise MzcError(f"cannot reach the dask scheduler at {address} ({exc})") from None


@contextmanager
def progress_bar(enabled: bool, label: str):
    """A rich progress bar on stderr (None when disabled); yields `update(done, total)`."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
    # a percentage, not M/N chunks: a neural fit reports its steps within a chunk, so one chunk moves the bar too
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def refuse_terminal() -> None:
    if sys.stdout.isatty():
        raise MzcError("refusing to write binary data to a terminal (use -o FILE or redirect stdout)")


def resolve_output(inp: str, output: str | None, to_stdout: bool, suffix: str, force: bool, many: bool):
    """Return a path, sys.stdout.buffer, or None (skip: exists and no -f)."""
    if to_stdout or (inp == "-" and output is None):
        refuse_terminal()
        return sys.stdout.buffer
    store = output is not None and output.rstrip("/").lower().endswith(".zarr")  # a .zarr folder is an output
    if output is not None and not store and (os.path.isdir(output) or many):
        if not os.path.isdir(output):
            raise MzcError(f"-o {output}: with several inputs, -o must be an existing folder")
        target = os.path.join(output, os.path.basename(default_output(inp, suffix)))
    else:
        target = output or default_output(inp, suffix)
    if target == "-":
        refuse_terminal()
        return sys.stdout.buffer
    if os.path.exists(target) and not force:
        return None
    return target


def output_or_skip(inp: str, output: str | None, to_stdout: bool, suffix: str, force: bool, many: bool,
                   outcome: Outcome):
    """resolve_output, warning (exit 2) when an existing output is kept; None means skip this input."""
    target = resolve_output(inp, output, to_stdout, suffix, force, many)
    if target is None:
        outcome.warn(f"{default_output(inp, suffix) if output is None else output} already exists; "
                     "not overwritten (use -f)")
    return target


def refuse_same_file(inp: str, target) -> None:
    """Writing over the input would destroy it (and --rm would then delete the output)."""
    if isinstance(target, str) and inp != "-" and os.path.exists(target) and os.path.samefile(inp, target):
        raise MzcError(f"output {target} is the input file; choose another -o")


def to_json(obj) -> str:
    """Strict JSON: non-finite floats (float data with inf/NaN) become the strings "inf", "-inf", "nan"."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, bytes):
            return f"<{len(v)} bytes>"
        return v
    return json.dumps(clean(obj), default=str, allow_nan=False)


def print_table(title: str, rows: Iterable[tuple[str, object]], console: Console = stderr) -> None:
    table = Table(title=title, show_header=False, box=None)
    for key, value in rows:
        table.add_row(key, str(value))
    console.print(table)


def parse_list(text: str, option: str, kind=str) -> tuple:
    try:
        return tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise MzcError(f"{option} {text!r}: expected a comma-separated list") from None


def parse_pair(text: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise MzcError(f"{option} {text!r}: expected two channel indices like 0,1") from None
    return a, b


class LazyHelpOption(click.Option):
    """An option whose help text is computed when help is shown (codec lists come from the registry, which is
    not loaded for ordinary runs)."""

    def __init__(self, *args, help_factory: Callable[[], str], **kwargs):
        super().__init__(*args, **kwargs)
        self.help_factory = help_factory

    def get_help_record(self, ctx):
        self.help = self.help_factory()
        return super().get_help_record(ctx)
