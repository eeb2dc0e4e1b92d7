"""`mzc encode`: TIFF stacks to .mzc files, with gzip's manners."""
from __future__ import annotations

import os

import click

from ..errors import MzcError
from ..names import TIFF_SUFFIXES
from ..pool import PARALLEL_MIN_BYTES, pmap
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
def encode(inputs, output, to_stdout, force, keep, remove, recursive, workers, codec, quality, max_error, noise,
           noise_model, effort, lossless, chunk, no_check, guide, time_budget, scheduler, as_json, verbose, quiet):
    """Compress TIFF stacks into .mzc files (INPUT may be - for stdin, or a folder with -r)."""
    from .. import api
    if keep and remove:
        raise MzcError("-k/--keep and --rm contradict each other")
    outcome = Outcome()
    options = dict(codec=codec, quality=quality, max_error=max_error, noise=noise, noise_model=noise_model,
                   effort=effort, lossless=lossless, chunks=parse_chunks(chunk), check=not no_check, guide=guide,
                   time_budget=time_budget)
    client = connect_or_exit(scheduler, outcome)
    inputs = expand(inputs, recursive, TIFF_SUFFIXES, outcome)
    jobs = plan(inputs, output, to_stdout, lambda _: ".mzc", force, outcome)
    if jobs is None:
        outcome.exit()
    n_workers, show = threads(workers), (as_json, quiet, verbose)
    if client is None and n_workers > 1 and len(jobs) > 1 and not to_stdout and all(
            job.input != "-" and os.path.getsize(job.input) < PARALLEL_MIN_BYTES for job in jobs):
        encode_small_files(jobs, remove, n_workers, options, show, outcome)
        outcome.exit()

    def one(job: Job) -> None:
        source = api.stdin_source() if job.input == "-" else job.input
        with progress_bar(not quiet and stderr.is_terminal, f"encode {os.path.basename(job.input)}") as cb:
            rep = api.encode(source, job.target, workers=n_workers, progress=cb, client=client, **options)
        finish_encoded(job.input, job.target, rep, remove, show)

    each_input(jobs, outcome, one)
    outcome.exit()


def connect_or_exit(scheduler: str | None, outcome: Outcome):
    """The dask client for --scheduler (None without it); an unreachable scheduler ends the command."""
    if not scheduler:
        return None
    try:
        return connect(scheduler)
    except MzcError as exc:
        outcome.error(str(exc))
        outcome.exit()


def finish_encoded(inp: str, target, rep: dict, remove: bool, show: tuple[bool, bool, bool]) -> None:
    """--rm (only after the output verifies) and the report."""
    from .. import api
    if remove and inp != "-" and isinstance(target, str):
        result = api.verify(target)
        if not result["ok"]:
            raise MzcError(f"{target}: verification failed, input kept: {result['errors'][0]}")
        os.unlink(inp)
    print_report(rep, *show)


def encode_small_files(jobs: list[Job], remove, workers, options, show, outcome) -> None:
    """Many small files: one per worker process (a file below the chunk-parallel threshold would use one core).
    The outputs were planned for the whole run, so no two workers ever write one file."""
    results = pmap(encode_file_job, ((job.input, job.target, options) for job in jobs), min(workers, len(jobs)))
    for job, (rep, error) in zip(jobs, results):
        def report_one(job: Job, rep=rep, error=error) -> None:
            if error is not None:
                raise MzcError(error)
            finish_encoded(job.input, job.target, rep, remove, show)

        each_input([job], outcome, report_one)


def encode_file_job(inp: str, target: str, options: dict) -> tuple[dict | None, str | None]:
    """Worker process: encode one file; an error comes back as its one-line message."""
    from .. import api
    try:
        return api.encode(inp, target, workers=1, **options), None
    except Exception as exc:  # noqa: BLE001 - reported by the parent as mzc: error: ...
        return None, str(exc) or type(exc).__name__
