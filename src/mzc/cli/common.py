"""What every `mzc` command shares: gzip's exit status, one-line errors, the per-input loop, progress bars, JSON
and table printing (output naming is outputs.py)."""
from __future__ import annotations

import json
import math
import os
import sys
from contextlib import contextmanager
from typing import Callable, Iterable

import click
from rich.console import Console

from ..errors import MzcError

stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # a line per file, never cut at 80 columns


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


def each_input(inputs: Iterable, outcome: Outcome, handle: Callable) -> None:
    """Run `handle(input)` for every input (a path, or a planned job naming its input): one bad file must not stop
    the others, nor print a traceback."""
    for inp in inputs:
        try:
            handle(inp)
        except Exception as exc:  # noqa: BLE001 - reported as one line, the others go on
            outcome.fail(getattr(inp, "input", inp), exc)


def threads(value: int | None) -> int:
    """-T N: N worker processes; 0 or absent: all cores (zstd's -T0)."""
    from ..pool import default_workers  # (concurrent.futures and psutil: not for `mzc info`)
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
    speed = rate_text(rep.get("bytes_in") or 0, rep.get("encode_seconds") or 0)
    return f"{rep.get('input')} -> {rep.get('output')}: {rep.get('ratio', 0):.2f}x, {fidelity}{speed}"


def rate_text(nbytes: int, seconds: float) -> str:
    """", 61.3 MB/s" for a line's end; a slow run (a neural fit) keeps two significant digits and says how long it
    took (", 0.012 MB/s, 47.1 s"), so it never reads as 0.0 MB/s."""
    if seconds <= 0 or nbytes <= 0:
        return ""
    rate = nbytes / seconds / 1e6
    return f", {rate:.1f} MB/s" if rate >= 1 else f", {rate:.2g} MB/s, {seconds:.1f} s"


def connect(address: str):
    """A dask.distributed client for the scheduler at `address`, or a one-line error."""
    try:
        from distributed import Client
    except ImportError:
        from ..extras import install_hint
        raise MzcError(f"--scheduler needs dask.distributed: {install_hint('dask')}") from None
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
    from rich.table import Table
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
