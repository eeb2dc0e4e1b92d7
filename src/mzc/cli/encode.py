"""`mzc encode`: TIFF stacks to .mzc files, with gzip's manners."""
from __future__ import annotations

import os
import time

import click

from ..errors import MzcError
from ..io.atomic import make_durable
from ..names import TIFF_SUFFIXES
from ..pool import PARALLEL_MIN_BYTES, pmap
from .batchlog import BatchLog
from .common import (
    LazyHelpOption,
    Outcome,
    connect,
    each_input,
    print_table,
    progress_bar,
    stderr,
    summary_line,
    threads,
    to_json,
)
from .outputs import Job, expand, plan
from .resume import DONE, REDO, judge

REPORT_ROWS = ("codec", "shape", "dtype", "axes", "bytes_in", "bytes_out", "ratio", "bpp", "psnr_db", "psnr_dtype_db",
               "ssim", "max_abs_error", "pearson_r", "encode_seconds", "target", "checked")


def codec_help() -> str:
    from ..codecs import registry
    from ..codecs.base import AutoCandidate
    return f"auto|{'|'.join(registry.names())} (auto: lossless without -q, else the best of " \
           f"{', '.join(c.id for c in registry.providing(AutoCandidate))})."


def parse_chunks(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        chunks = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise MzcError(f"--chunk {text!r}: expected comma-separated integers, one per axis") from None
    if any(c < 1 for c in chunks):
        raise MzcError(f"--chunk {text!r}: sizes must be >= 1")
    return chunks


def print_report(rep: dict, as_json: bool, quiet: bool, verbose: bool = False) -> None:
    """--json: one object per file on stdout; -v: the full table; default: one line (zstd's); --quiet: nothing."""
    if as_json:
        click.echo(to_json(rep))
    elif verbose:
        print_table(f"{rep.get('input')} -> {rep.get('output')}",
                    ((k, rep[k]) for k in REPORT_ROWS if rep.get(k) is not None))
    elif not quiet:
        stderr.print(summary_line(rep), markup=False, soft_wrap=True)


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file (one input) or folder (several).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("-k", "--keep", is_flag=True, help="Keep the inputs (the default; gzip's -k).")
@click.option("--rm", "remove", is_flag=True, help="Delete each input after its output is written and verified.")
@click.option("-r", "--recursive", is_flag=True, help="Encode the TIFF files in folders and their subfolders.")
@click.option("-T", "--threads", "workers", type=click.IntRange(0, 256), default=None,
              help="Worker processes (default and 0: all cores).")
@click.option("--codec", default="auto", show_default=True, cls=LazyHelpOption, help_factory=codec_help)
@click.option("-q", "--quality", help="Target: ratio like 50x (real file size) or PSNR like 48dB (data range).")
@click.option("--max-error", type=float,
              help="Guarantee |decoded - original| <= E on every pixel (alone: near-lossless; with --codec: that "
                   "codec plus a coded residual).")
@click.option("--noise", type=float, metavar="K",
              help="Within noise: guarantee |decoded - original| <= K sigma(original) on every pixel, sigma from a "
                   "Poisson-Gaussian model fitted per channel (alone: the noise codec; with --codec: its base).")
@click.option("--noise-model", "noise_model", metavar="A,B",
              help="With --noise: a calibrated model Var = A*x + B (file units) instead of the fitted one.")
@click.option("--effort", type=click.Choice(["fastest", "fast", "max"]), default="fast", show_default=True,
              help="Lossless chunks and --noise/--max-error index images: fast uses mzc's context coder (and "
                   "JPEG-LS where that wins); fastest HTJ2K reversible (JPEG-LS on 8-bit data; several times faster, "
                   "about 10 percent larger); max also tries JPEG-LS, JPEG 2000/HTJ2K reversible and JPEG XL. max "
                   "also searches more in the classic and learned codecs.")
@click.option("--lossless", is_flag=True, help="Bit-exact (the default when no -q/--max-error is given).")
@click.option("--chunk", help="Chunk shape, one size per axis, e.g. 1,1024,1024.")
@click.option("--no-check", "no_check", is_flag=True,
              help="Do not decode every chunk back (about 2x faster; the report says checked: false and, for lossy "
                   "codecs, gives no fidelity figures).")
@click.option("--guide", metavar="segmentation",
              help="inr/hybrid: weight the fit toward segmented objects and their borders.")
@click.option("--time-budget", "time_budget", type=click.FloatRange(min=0, min_open=True),
              help="inr/hybrid: wall-clock seconds for the whole encode of a file; its fits stop early to keep to it "
                   "(default: no limit, each fit runs its 2000 steps). A corrective re-encode takes more.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Code the chunks on a dask.distributed cluster, e.g. tcp://host:8786 (needs the [dask] extra); "
                   "files are written here, byte for byte as a local run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report per file on stdout.")
@click.option("-v", "--verbose", is_flag=True, help="Print the full report table per file (default: one line).")
@click.option("--quiet", is_flag=True, help="No report or progress on stderr.")
@click.option("--log", "log_path", metavar="FILE",
              help="Append one JSON line per input (input, output, status, sizes, ratio, mode, sha256 of both "
                   "files, seconds, input removed) to FILE, for a facility's records.")
def encode(inputs, output, to_stdout, force, keep, remove, recursive, workers, codec, quality, max_error, noise,
           noise_model, effort, lossless, chunk, no_check, guide, time_budget, scheduler, as_json, verbose, quiet,
           log_path):
    """Compress TIFF stacks into .mzc files (INPUT may be - for stdin, or a folder with -r). Rerun after an
    interruption, a batch finishes: an existing output that verifies against its input counts as done."""
    if keep and remove:
        raise MzcError("-k/--keep and --rm contradict each other")
    outcome = Outcome()
    options = dict(codec=codec, quality=quality, max_error=max_error, noise=noise, noise_model=noise_model,
                   effort=effort, lossless=lossless, chunks=parse_chunks(chunk), check=not no_check, guide=guide,
                   time_budget=time_budget)
    log = BatchLog(log_path)
    client = connect_or_exit(scheduler, outcome)
    inputs = expand(inputs, recursive, TIFF_SUFFIXES, outcome)
    jobs = plan(inputs, output, to_stdout, lambda _: ".mzc", force, outcome, resume=not to_stdout)
    if jobs is None:
        outcome.exit()
    run = Batch(options, remove, threads(workers), (as_json, quiet, verbose), log, outcome, client)
    jobs = run.resumed(jobs)  # outputs an earlier run wrote: done, redone or kept, before any new work
    if client is None and run.workers > 1 and len(jobs) > 1 and not to_stdout and all(
            job.input != "-" and os.path.getsize(job.input) < PARALLEL_MIN_BYTES for job in jobs):
        run.small_files(jobs)
    else:
        each_input(jobs, outcome, run.logged(run.encode_one))
    log.close()
    outcome.exit()


class Batch:
    """One `mzc encode` run over its planned jobs: coding, --rm, the report lines and the --log records."""

    def __init__(self, options: dict, remove: bool, workers: int, show: tuple[bool, bool, bool], log: BatchLog,
                 outcome: Outcome, client=None):
        self.options, self.remove, self.workers, self.show = options, remove, workers, show
        self.log, self.outcome, self.client = log, outcome, client

    def logged(self, handle):
        """`handle(job)`, with a failure recorded in the log before each_input reports it."""
        def run(job: Job) -> None:
            started = time.perf_counter()
            try:
                handle(job)
            except Exception as exc:
                self.log.record(job.input, job.target, "failed", started, error=str(exc) or type(exc).__name__)
                raise
        return run

    def encode_one(self, job: Job) -> None:
        from .. import api
        started = time.perf_counter()
        source = api.stdin_source() if job.input == "-" else job.input
        quiet = self.show[1]
        with progress_bar(not quiet and stderr.is_terminal, f"encode {os.path.basename(job.input)}") as cb:
            rep = api.encode(source, job.target, workers=self.workers, progress=cb, client=self.client,
                             **self.options)
        self.finish(job, rep, started)

    def finish(self, job: Job, rep: dict, started: float, status: str = "encoded") -> None:
        """--rm (only after the output verifies and is on disk), the log record, the report."""
        from .. import api
        digest = self.log.input_digest(job.input)
        removed = False
        if self.remove and job.input != "-" and isinstance(job.target, str):
            if status == "encoded":
                result = api.verify(job.target)
                if not result["ok"]:
                    raise MzcError(f"{job.target}: verification failed, input kept: {result['errors'][0]}")
            make_durable(job.target)  # the output and its directory entry are on disk before the input goes
            os.unlink(job.input)
            removed = True
        self.log.record(job.input, job.target, status, started, rep, removed, input_sha256=digest)
        if status == "done":
            if not (self.show[0] or self.show[1]):
                stderr.print(f"{job.input} -> {job.target}: done before (verified against its input"
                             f"{'; input removed' if removed else ''})", markup=False)
            elif self.show[0]:
                click.echo(to_json(dict(rep, output=job.target, status="done", input_removed=removed)))
            return
        print_report(rep, *self.show)

    def resumed(self, jobs: list[Job]) -> list[Job]:
        """Judge each existing output (resume.py); return the jobs still to code."""
        todo = []
        for job in jobs:
            if not job.existing:
                todo.append(job)
                continue

            def check(job: Job = job) -> None:
                started = time.perf_counter()
                verdict = judge(job.input, job.target, self.options)
                if verdict.kind == DONE:
                    from .. import api
                    rep = dict(api.info(job.target).get("report") or {}, input=job.input, output=job.target)
                    self.finish(job, rep, started, status="done")
                elif verdict.kind == REDO:
                    self.outcome.warn(f"{job.target} is replaced: {verdict.reason}")
                    todo.append(job)
                else:
                    self.outcome.warn(f"{job.target} already exists; not overwritten (use -f): {verdict.reason}")
                    self.log.record(job.input, job.target, "skipped", started, note=verdict.reason)

            each_input([job], self.outcome, self.logged(check))
        return todo

    def small_files(self, jobs: list[Job]) -> None:
        """Many small files: one per worker process (a file below the chunk-parallel threshold would use one core).
        The outputs were planned for the whole run, so no two workers ever write one file."""
        results = pmap(encode_file_job, ((job.input, job.target, self.options) for job in jobs),
                       min(self.workers, len(jobs)))
        for job, (rep, error, seconds) in zip(jobs, results):
            def report_one(job: Job, rep=rep, error=error, seconds=seconds) -> None:
                if error is not None:
                    raise MzcError(error)
                self.finish(job, rep, time.perf_counter() - seconds)  # the log's seconds: the worker's

            each_input([job], self.outcome, self.logged(report_one))


def connect_or_exit(scheduler: str | None, outcome: Outcome):
    """The dask client for --scheduler (None without it); an unreachable scheduler ends the command."""
    if not scheduler:
        return None
    try:
        return connect(scheduler)
    except MzcError as exc:
        outcome.error(str(exc))
        outcome.exit()


def encode_file_job(inp: str, target: str, options: dict) -> tuple[dict | None, str | None, float]:
    """Worker process: encode one file; an error comes back as its one-line message."""
    from .. import api
    started = time.perf_counter()
    try:
        return api.encode(inp, target, workers=1, **options), None, time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - reported by the parent as mzc: error: ...
        return None, str(exc) or type(exc).__name__, time.perf_counter() - started
