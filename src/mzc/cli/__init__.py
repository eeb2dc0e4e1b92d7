"""The `mzc` command: a thin click shell over the API with gzip's manners.

Reports go to stderr (rich) or stdout (`--json`, one object per line); errors are one line `mzc: error: ...`.
Exit codes: 0 ok, 1 error, 2 warning (some inputs skipped).
"""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__, files
from .errors import MzcError
from .parallel import PARALLEL_MIN_BYTES, default_workers, mzc_name, pmap
from .zoo import FAMILY_NAMES

stderr = Console(stderr=True, highlight=False)


class Outcome:
    """Collects per-file outcomes into gzip's exit status."""

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


def default_output(path: str, suffix: str) -> str:
    if suffix == ".mzc":
        return mzc_name(path)
    return (path[:-4] if path.lower().endswith(".mzc") else path) + suffix


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
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
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


def print_report(rep: dict, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(to_json(rep))
        return
    if quiet:
        return
    table = Table(title=f"{rep.get('input')} -> {rep.get('output')}", show_header=False, box=None)
    for key in ("codec", "shape", "dtype", "axes", "bytes_in", "bytes_out", "ratio", "bpp", "psnr_db", "psnr_dtype_db",
                "ssim", "max_abs_error", "pearson_r", "encode_seconds", "target", "checked"):
        if key in rep and rep[key] is not None:
            table.add_row(key, str(rep[key]))
    stderr.print(table)


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mzc")
def cli():
    """mzc: gzip for microscopy. Compress TIFF stacks to .mzc and back, and measure what changed."""


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output file (one input) or folder (several).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--rm", "remove", is_flag=True, help="Delete each input after its output is written and verified.")
@click.option("-T", "--threads", "workers", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: all cores).")
@click.option("--codec", default="auto", show_default=True,
              help="auto|lossless|j2k|htj2k|jxl|avif|sperr|nearlossless|noise|learned[:FAMILY|:MODEL]|inr[:siren]|hybrid")
@click.option("-q", "--quality", help="Target: ratio like 50x (real file size) or PSNR like 48dB (data range).")
@click.option("--max-error", type=float,
              help="Guarantee |decoded - original| <= E on every pixel (alone: near-lossless; with --codec: that "
                   "codec plus a coded residual).")
@click.option("--noise", type=float, metavar="K",
              help="Within noise: guarantee |decoded - original| <= K sigma(original) on every pixel, sigma from a "
                   "Poisson-Gaussian model fitted per channel (alone: the noise codec; with --codec: its base).")
@click.option("--noise-model", "noise_model", metavar="A,B",
              help="With --noise: a calibrated model Var = A*x + B (file units) instead of the fitted one.")
@click.option("--effort", type=click.Choice(["fast", "max"]), default="fast", show_default=True,
              help="--noise/--max-error residuals: max also tries JPEG XL (10-17%% smaller, ~15x slower).")
@click.option("--lossless", is_flag=True, help="Bit-exact (the default when no -q/--max-error is given).")
@click.option("--chunk", help="Chunk shape, one size per axis, e.g. 1,1024,1024.")
@click.option("--no-check", "no_check", is_flag=True,
              help="Do not decode every chunk back (about 2x faster; the report says checked: false and, for lossy "
                   "codecs, gives no fidelity figures).")
@click.option("--guide", type=click.Choice(["segmentation"]),
              help="inr/hybrid: weight the fit toward segmented objects and their borders.")
@click.option("--time-budget", "time_budget", type=click.FloatRange(min=0, min_open=True),
              help="inr/hybrid: wall-clock seconds for fitting the whole file (default: a fixed number of steps).")
@click.option("--scheduler", metavar="ADDRESS",
              help="Code the chunks on a dask.distributed cluster, e.g. tcp://host:8786 (needs the [dask] extra); "
                   "files are written here, byte for byte as a local run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON report per file on stdout.")
@click.option("--quiet", is_flag=True, help="No report or progress on stderr.")
def encode(inputs, output, to_stdout, force, remove, workers, codec, quality, max_error, noise, noise_model, effort,
           lossless, chunk, no_check, guide, time_budget, scheduler, as_json, quiet):
    """Compress TIFF stacks into .mzc files (INPUT may be - for stdin)."""
    outcome = Outcome()
    chunks = parse_chunks(chunk)
    client = None
    if scheduler:
        try:
            client = connect(scheduler)
        except MzcError as exc:
            outcome.error(str(exc))
            sys.exit(outcome.status)
    many = len(inputs) > 1
    options = dict(codec=codec, quality=quality, max_error=max_error, noise=noise, noise_model=noise_model,
                   effort=effort, lossless=lossless, chunks=chunks, check=not no_check, guide=guide,
                   time_budget=time_budget)
    n_workers = workers or default_workers()
    if client is None and n_workers > 1 and many and not to_stdout and all(
            inp != "-" and os.path.isfile(inp) and os.path.getsize(inp) < PARALLEL_MIN_BYTES for inp in inputs):
        encode_small_files(inputs, output, force, remove, n_workers, options, as_json, quiet, outcome)
        sys.exit(outcome.status)
    for inp in inputs:
        try:
            target = resolve_output(inp, output, to_stdout, ".mzc", force, many)
            if target is None:
                outcome.warn(f"{default_output(inp, '.mzc') if output is None else output} already exists; "
                             "not overwritten (use -f)")
                continue
            if inp != "-" and not os.path.isfile(inp):
                raise MzcError("no such file")
            refuse_same_file(inp, target)
            source = files.stdin_source() if inp == "-" else inp
            with progress_bar(not quiet and stderr.is_terminal, f"encode {os.path.basename(inp)}") as cb:
                rep = files.encode(source, target, workers=n_workers, progress=cb, client=client, **options)
            finish_encoded(inp, target, rep, remove, as_json, quiet)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others, nor print a traceback
            outcome.fail(inp, exc)
    sys.exit(outcome.status)


def finish_encoded(inp: str, target, rep: dict, remove: bool, as_json: bool, quiet: bool) -> None:
    """--rm (only after the output verifies) and the report."""
    if remove and inp != "-" and isinstance(target, str):
        result = files.verify(target)
        if not result["ok"]:
            raise MzcError(f"{target}: verification failed, input kept: {result['errors'][0]}")
        os.unlink(inp)
    print_report(rep, as_json, quiet)


def encode_small_files(inputs, output, force, remove, workers, options, as_json, quiet, outcome) -> None:
    """Many small files: one per worker process (a file below the chunk-parallel threshold would use one core)."""
    jobs = []
    for inp in inputs:
        try:
            target = resolve_output(inp, output, False, ".mzc", force, True)
            if target is None:
                outcome.warn(f"{default_output(inp, '.mzc') if output is None else output} already exists; "
                             "not overwritten (use -f)")
                continue
            refuse_same_file(inp, target)
            jobs.append((inp, target))
        except Exception as exc:  # noqa: BLE001
            outcome.fail(inp, exc)
    results = pmap(encode_file_job, ((inp, target, options) for inp, target in jobs), min(workers, len(jobs)))
    for (inp, target), (rep, error) in zip(jobs, results):
        try:
            if error is not None:
                raise MzcError(error)
            finish_encoded(inp, target, rep, remove, as_json, quiet)
        except Exception as exc:  # noqa: BLE001
            outcome.fail(inp, exc)


def encode_file_job(inp: str, target: str, options: dict) -> tuple[dict | None, str | None]:
    """Worker process: encode one file; an error comes back as its one-line message."""
    try:
        return files.encode(inp, target, workers=1, **options), None
    except Exception as exc:  # noqa: BLE001 - reported by the parent as mzc: error: ...
        return None, str(exc) or type(exc).__name__


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output .tif/.tiff, .npy or .zarr (OME-Zarr with a pyramid) for one input, or a "
                                   "folder (several).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write the TIFF to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--roi", help="Region in numpy slice syntax over the stored axes, e.g. 0:10,:,100:356,200:456 "
                            "(with --scale: over the scaled array).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Render Y and X at this scale (e.g. 0.5 or 2); inr/hybrid evaluate their fields there.")
@click.option("-T", "--threads", "workers", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file on stdout.")
@click.option("--quiet", is_flag=True, help="Print nothing on stderr but errors.")
def decode(inputs, output, to_stdout, force, roi, scale, workers, as_json, quiet):
    """Decompress .mzc files back to TIFF (with the original metadata) or .npy."""
    outcome = Outcome()
    many = len(inputs) > 1
    for inp in inputs:
        try:
            target = resolve_output(inp, output, to_stdout, ".tif", force, many)
            if target is None:
                outcome.warn(f"{output or default_output(inp, '.tif')} already exists; not overwritten (use -f)")
                continue
            if not os.path.isfile(inp):
                raise MzcError("no such file")
            refuse_same_file(inp, target)
            result = files.decode(inp, target, roi=roi, workers=workers or default_workers(), scale=scale)
            if as_json:
                click.echo(to_json(result))
            elif not quiet:
                stderr.print(f"{inp} -> {result['output']} {tuple(result['shape'])}", markup=False)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others, nor print a traceback
            outcome.fail(inp, exc)
    sys.exit(outcome.status)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def info(inputs, as_json):
    """Show header facts and the stored encode report."""
    outcome = Outcome()
    for inp in inputs:
        try:
            rep = files.info(inp)
            if as_json:
                click.echo(to_json(rep))
                continue
            table = Table(title=inp, show_header=False, box=None)
            for key, value in rep.items():
                if key == "report" and value:
                    for k, v in value.items():
                        table.add_row(f"  {k}", str(v))
                elif key != "input":
                    table.add_row(key, str(value))
            Console().print(table)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others, nor print a traceback
            outcome.fail(inp, exc)
    sys.exit(outcome.status)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--against", type=click.Path(dir_okay=False), help="Original TIFF: recompute fidelity.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def verify(inputs, against, as_json):
    """Check every checksum and decode every chunk; with --against, measure fidelity to the original."""
    outcome = Outcome()
    for inp in inputs:
        try:
            rep = files.verify(inp, against)
            if as_json:
                click.echo(to_json(rep))
            else:
                state = "OK" if rep["ok"] else "FAILED"
                stderr.print(f"{inp}: {state} ({rep['chunks_checked']} chunks)", markup=False)
                for k in ("psnr_db", "ssim", "max_abs_error", "pearson_r", "bound", "bound_held", "max_error_sigma"):
                    if k in rep:
                        stderr.print(f"  {k}: {rep[k]}", markup=False)
            if not rep["ok"]:
                outcome.error(f"{inp}: {rep['errors'][0]}")
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others, nor print a traceback
            outcome.fail(inp, exc)
    sys.exit(outcome.status)


def parse_pair(text: str, option: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.split(","))
    except ValueError:
        raise MzcError(f"{option} {text!r}: expected two channel indices like 0,1") from None
    return a, b


def print_eval(result: dict) -> None:
    """One rich table per task: the agreement figures first, then the paired shape tests."""
    head = f"{result['original']} vs {result['input']}"
    if "ratio" in result:
        head += f" ({result.get('codec')}, {result['ratio']:.1f}x)"
    stderr.print(head, markup=False)
    for task in ("segmentation", "intensity", "ratiometric"):
        if task not in result:
            continue
        rep = result[task]
        table = Table(title=task, show_header=False, box=None, title_justify="left")
        for key, value in rep.items():
            if key != "shape_tests":
                table.add_row(key, str(value))
        stderr.print(table)
        if "shape_tests" in rep:
            tests = Table("feature", "n", "mean ref", "mean test", "mean rel. diff", "paired t p", "Wilcoxon p",
                          title="paired tests on matched objects", title_justify="left", box=None)
            for name, t in rep["shape_tests"].items():
                tests.add_row(name, str(t["n"]), *(f"{t[k]:.4g}" if t[k] is not None else "-" for k in
                                                   ("mean_ref", "mean_test", "mean_rel_diff", "t_p", "wilcoxon_p")))
            stderr.print(tests)


@cli.command("eval")
@click.argument("original", type=click.Path(dir_okay=False))
@click.argument("decoded", type=click.Path(dir_okay=False))
@click.option("--task", "tasks", multiple=True, type=click.Choice(["segmentation", "intensity", "ratiometric"]),
              help="Analysis to compare (repeatable; default segmentation).")
@click.option("--channel", type=click.IntRange(0), help="Segment/measure this channel only (default: every channel).")
@click.option("--channels", "ratio_channels", default="0,1", show_default=True, metavar="A,B",
              help="Ratiometric: numerator and denominator channels.")
@click.option("--segmenter", default="classic", show_default=True,
              help="classic, stardist, cellpose (when installed with weights) or package.module:function.")
@click.option("--png", type=click.Path(dir_okay=False), help="Write a side-by-side PNG of one plane.")
@click.option("--min-f1", "min_f1", type=click.FloatRange(0, 1),
              help="Exit 1 when the segmentation F1 agreement is below this (for scripts).")
@click.option("-T", "--threads", "workers", type=click.IntRange(1, 256), default=None, help="Decode workers.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def evaluate(original, decoded, tasks, channel, ratio_channels, segmenter, png, min_f1, workers, as_json):
    """Does the analysis still agree? Compare ORIGINAL.tif with DECODED (.mzc, or a TIFF from any tool)."""
    from .evaluate import evaluate as run_eval
    tasks = tasks or ("segmentation",)
    if min_f1 is not None and "segmentation" not in tasks:
        raise MzcError("--min-f1 needs --task segmentation")
    if png is not None and os.path.isdir(png):
        raise MzcError(f"--png {png} is a folder; give a file name")
    try:
        result = run_eval(original, decoded, tasks, channel, parse_pair(ratio_channels, "--channels"), segmenter, png,
                          workers or default_workers())
    except (MzcError, OSError):
        raise
    except Exception as exc:  # noqa: BLE001 - a library failure (a segmenter plug-in, say) is one line
        if os.environ.get("MZC_DEBUG"):
            raise
        raise MzcError(f"eval failed: {type(exc).__name__}: {exc}; set MZC_DEBUG=1 for a traceback") from None
    if as_json:
        click.echo(to_json(result))
    else:
        print_eval(result)
    if min_f1 is not None and result["segmentation"]["f1"] < min_f1:
        raise MzcError(f"segmentation F1 agreement {result['segmentation']['f1']:.4f} is below --min-f1 {min_f1:g}")


def parse_list(text: str, option: str, kind=str) -> tuple:
    try:
        return tuple(kind(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise MzcError(f"{option} {text!r}: expected a comma-separated list") from None


@cli.command()
@click.argument("data", nargs=-1, required=True)
@click.option("--codecs", help="Comma-separated: mzc modes (lossless, nearlossless, noise, bounded, auto, j2k, htj2k, "
              "jxl, avif, sperr, learned, inr, hybrid), baselines (plain:j2k, plain:htj2k, plain:jxl, plain:avif, "
              "plain:sperr, plain:jpegls) and reference:noise (the original + 1 sigma of its own noise, the "
              "yardstick for --eval). Default: all.")
@click.option("--ratios", default="10,50,200,500", show_default=True, help="Target ratios (real bytes).")
@click.option("--no-defaults", "no_defaults", is_flag=True, help="Skip each mode's default-setting point.")
@click.option("--eval", "tasks", default="", metavar="TASKS",
              help="Also measure downstream agreement: segmentation,intensity,ratiometric.")
@click.option("--channel", type=click.IntRange(0), help="eval: segment/measure this channel only.")
@click.option("--channels", "ratio_channels", default="0,1", show_default=True, metavar="A,B",
              help="eval ratiometric: numerator and denominator channels.")
@click.option("--time-budget", "time_budget", type=click.FloatRange(min=0, min_open=True),
              help="inr/hybrid: fit seconds per file.")
@click.option("-o", "--output", default="mzc-bench", show_default=True,
              help="Report folder: bench.md, bench.json, rd_psnr.png, rd_ssim.png.")
@click.option("-T", "--threads", "workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Workers for mzc encode/decode (1 compares codecs fairly with the one-thread baselines).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON row per measurement on stdout.")
@click.option("--quiet", is_flag=True, help="No per-row lines on stderr.")
def bench(data, codecs, ratios, no_defaults, tasks, channel, ratio_channels, time_budget, output, workers, as_json,
          quiet):
    """Rate-distortion (and downstream agreement) of every codec on DATA files or folders, at equal real ratios."""
    from .bench import CODECS, BenchOptions, run as run_bench
    from .evaluate import TASKS
    task_list = parse_list(tasks, "--eval")
    for t in task_list:
        if t not in TASKS:
            raise MzcError(f"--eval {t!r}: choose from {', '.join(TASKS)}")

    def show(row):
        if as_json:
            click.echo(to_json(row))
        if quiet:
            return
        if "error" in row:
            stderr.print(f"{row['file']} {row['codec']} {row['target']}: not reached ({row['error']})", markup=False,
                         soft_wrap=True)
            return
        seg = row.get("eval", {}).get("segmentation", {})
        extra = f", F1 {seg['f1']:.4f}" if "f1" in seg else ""
        stderr.print(f"{row['file']} {row['codec']} {row['target']}: {row['ratio']:.1f}x, {row['psnr_db']} dB, "
                     f"SSIM {row['ssim']}{extra}", markup=False, soft_wrap=True)

    opts = BenchOptions(codecs=parse_list(codecs, "--codecs") if codecs else CODECS,
                        ratios=parse_list(ratios, "--ratios", float), defaults=not no_defaults, tasks=task_list,
                        channel=channel, ratio_channels=parse_pair(ratio_channels, "--channels"),
                        time_budget=time_budget, workers=workers, progress=show,
                        command=" ".join(["mzc", *map(shlex.quote, sys.argv[1:])]))
    run_bench(list(data), opts, output)
    if not quiet:
        stderr.print(f"report: {os.path.join(output, 'bench.md')} (+ bench.json, rd_psnr.png, rd_ssim.png)",
                     markup=False)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def recover(inputs, as_json):
    """Finish .mzc files whose stack writer died: keep every complete, intact frame (in place)."""
    from .stackwriter import recover as recover_file
    outcome = Outcome()
    for inp in inputs:
        try:
            result = recover_file(inp)
            if as_json:
                click.echo(to_json(result))
            else:
                stderr.print(f"{inp}: recovered {result['frames']} frames ({result['dropped_bytes']} bytes of an "
                             f"unfinished frame dropped)", markup=False)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others, nor print a traceback
            outcome.fail(inp, exc)
    sys.exit(outcome.status)


@cli.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--arch", type=click.Choice(FAMILY_NAMES), help="Model family (single-channel CompressAI).")
@click.option("--lambda", "lmbda", type=click.FloatRange(min=0, min_open=True),
              help="Rate-distortion trade-off (RateDistortionLoss lambda; larger = better quality, larger files).")
@click.option("-o", "--output", required=True, help="Checkpoint to write (rewritten every --save-every steps).")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False),
              help="Continue this checkpoint's run (its arch, N/M, lambda, metric and patch are kept).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (e.g. another lambda's model) with fresh optimizers.")
@click.option("-N", "n", type=click.IntRange(8, 512), default=64, show_default=True, help="Channels N.")
@click.option("-M", "m", type=click.IntRange(8, 512), default=96, show_default=True, help="Latent channels M.")
@click.option("--metric", type=click.Choice(["mse", "ms-ssim"]), default="mse", show_default=True)
@click.option("--iterations", type=click.IntRange(1), default=20000, show_default=True, help="Total steps.")
@click.option("--patch", type=click.IntRange(64, 1024), default=128, show_default=True)
@click.option("--batch", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
              help="Adam learning rate (aux: 1e-3).")
@click.option("--save-every", type=click.IntRange(1), default=500, show_default=True)
@click.option("-T", "--threads", type=click.IntRange(1, 256), default=None, help="torch threads.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(data_dir, arch, lmbda, output, resume, init, n, m, metric, iterations, patch, batch, lr, save_every,
          threads, quiet):
    """Train a single-channel learned model on the TIFFs under DATA_DIR (never on your evaluation data)."""
    from .codecs.learned import require_torch
    require_torch()
    from .train import TrainOptions, train as run_training
    opts = TrainOptions(arch=arch, lmbda=lmbda, output=output, n=n, m=m, metric=metric, iterations=iterations,
                        patch=patch, batch=batch, lr=lr, resume=resume, init=init, save_every=save_every,
                        threads=threads)
    show = not quiet and stderr.is_terminal
    with Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                  TimeRemainingColumn(), console=stderr, disable=not show) as bar:
        task = bar.add_task("train", total=iterations, status="")

        def cb(done, total, last):
            status = f"bpp {last['bpp']:.3f} PSNR {last['psnr']:.2f} dB" if last else ""
            bar.update(task, completed=done, status=status)

        try:
            blob = run_training(data_dir, opts, cb)
        except (MzcError, OSError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a library failure is one line, not a traceback
            raise MzcError(f"training failed: {type(exc).__name__}: {exc}") from None
    last = blob["history"][-1] if blob["history"] else {}
    if not quiet:
        stderr.print(f"{output}: {blob['arch']} lambda={blob['lambda']:g} after {blob['iterations']} steps: "
                     f"validation bpp {last.get('bpp', float('nan')):.4f}, PSNR {last.get('psnr', float('nan')):.2f} dB",
                     markup=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def models(as_json):
    """List the learned models shipped with mzc and check each file's sha256."""
    from . import zoo
    from .zoo import sha256_file
    rows = []
    for entry, meta in zip(zoo.shipped(), zoo.manifest()["models"]):
        ok = os.path.isfile(entry.path) and sha256_file(entry.path) == entry.sha256
        rows.append({**meta, "ok": ok})
    if as_json:
        click.echo(to_json({"models": rows}))
    else:
        table = Table("name", "arch", "N", "M", "lambda", "iterations", "bytes", "sha256")
        for r in rows:
            table.add_row(r["name"], r["arch"], str(r["N"]), str(r["M"]), f"{r['lambda']:g}", str(r["iterations"]),
                          str(r["bytes"]), (r["sha256"][:12] + "...") if r["ok"] else "DAMAGED")
        Console().print(table)
    if not all(r["ok"] for r in rows):
        raise MzcError("some shipped models do not match their sha256")


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become `mzc: error: ...` with exit 1 (2 means 'warning' here)."""
    try:
        cli.main(args=argv, prog_name="mzc", standalone_mode=False)
    except MzcError as exc:
        stderr.print(f"mzc: error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # bare `mzc`: help, not an error
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        stderr.print(f"mzc: error: {exc.format_message()}", markup=False, soft_wrap=True)
        sys.exit(1)
    except click.exceptions.Abort:
        stderr.print("mzc: error: aborted", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        stderr.print("mzc: error: interrupted", markup=False)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        stderr.print(f"mzc: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), markup=False)
        sys.exit(1)
