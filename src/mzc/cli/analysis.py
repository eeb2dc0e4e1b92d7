"""`mzc eval` (does the analysis still agree?) and `mzc bench` (every codec on the user's files)."""
from __future__ import annotations

import os
import shlex
import sys

import click
from rich.table import Table

from ..analysis import TASKS
from ..errors import MzcError
from .common import LazyHelpOption, parse_list, parse_pair, progress_bar, stderr, threads, to_json


def print_eval(result: dict) -> None:
    """One rich table per task: the agreement figures first, then the paired shape tests."""
    head = f"{result['original']} vs {result['input']}"
    if "ratio" in result:
        head += f" ({result.get('codec')}, {result['ratio']:.1f}x)"
    stderr.print(head, markup=False)
    for task in TASKS:
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


@click.command("eval")
@click.argument("original", type=click.Path(dir_okay=False))
@click.argument("decoded", type=click.Path(dir_okay=False))
@click.option("--task", "tasks", multiple=True, type=click.Choice(TASKS),
              help="Analysis to compare (repeatable; default segmentation).")
@click.option("--channel", type=click.IntRange(0), help="Segment/measure this channel only (default: every channel).")
@click.option("--channels", "ratio_channels", default="0,1", show_default=True, metavar="A,B",
              help="Ratiometric: numerator and denominator channels.")
@click.option("--segmenter", default="classic", show_default=True,
              help="classic, stardist, cellpose (when installed with weights) or package.module:function.")
@click.option("--png", type=click.Path(dir_okay=False), help="Write a side-by-side PNG of one plane.")
@click.option("--min-f1", "min_f1", type=click.FloatRange(0, 1),
              help="Exit 1 when the segmentation F1 agreement is below this (for scripts).")
@click.option("-T", "--threads", "workers", type=click.IntRange(0, 256), default=None,
              help="Decode workers (default and 0: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="Print nothing on stderr but errors (--min-f1 still sets the exit status).")
def evaluate(original, decoded, tasks, channel, ratio_channels, segmenter, png, min_f1, workers, as_json, quiet):
    """Does the analysis still agree? Compare ORIGINAL.tif with DECODED (.mzc, or a TIFF from any tool)."""
    from ..analysis.evaluate import evaluate as run_eval
    tasks = tasks or ("segmentation",)
    if min_f1 is not None and "segmentation" not in tasks:
        raise MzcError("--min-f1 needs --task segmentation")
    if png is not None and os.path.isdir(png):
        raise MzcError(f"--png {png} is a folder; give a file name")
    try:
        with progress_bar(not quiet and stderr.is_terminal, f"eval {os.path.basename(decoded)}") as cb:
            result = run_eval(original, decoded, tasks, channel, parse_pair(ratio_channels, "--channels"), segmenter,
                              png, threads(workers), progress=cb)
    except (MzcError, OSError):
        raise
    except Exception as exc:
        if os.environ.get("MZC_DEBUG"):
            raise
        raise MzcError(f"eval failed: {type(exc).__name__}: {exc}; set MZC_DEBUG=1 for a traceback") from None
    if as_json:
        click.echo(to_json(result))
    elif not quiet:
        print_eval(result)
    if min_f1 is not None and result["segmentation"]["f1"] < min_f1:
        raise MzcError(f"segmentation F1 agreement {result['segmentation']['f1']:.4f} is below --min-f1 {min_f1:g}")


def bench_codecs_help() -> str:
    from ..analysis.bench import codec_names
    return f"Comma-separated, from: {', '.join(codec_names())}. Default: all. (plain:X are one imagecodecs call " \
           "per plane; reference:noise is the original + 1 sigma of its own noise, the yardstick for --eval.)"


def show_row(row: dict, as_json: bool, quiet: bool) -> None:
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
    fidelity = "lossless" if row.get("max_abs_error") == 0 else f"{row['psnr_db']} dB"
    stderr.print(f"{row['file']} {row['codec']} {row['target']}: {row['ratio']:.1f}x, {fidelity}, "
                 f"SSIM {row['ssim']}{extra}", markup=False, soft_wrap=True)


@click.command()
@click.argument("data", nargs=-1, required=True)
@click.option("--codecs", cls=LazyHelpOption, help_factory=bench_codecs_help)
@click.option("--ratios", default="10,50,200,500", show_default=True, help="Target ratios (real bytes).")
@click.option("--no-defaults", "no_defaults", is_flag=True, help="Skip each mode's default-setting point.")
@click.option("--eval", "tasks", default="", metavar="TASKS",
              help="Also measure downstream agreement: segmentation,intensity,ratiometric.")
@click.option("--channel", type=click.IntRange(0), help="eval: segment/measure this channel only.")
@click.option("--channels", "ratio_channels", default="0,1", show_default=True, metavar="A,B",
              help="eval ratiometric: numerator and denominator channels.")
@click.option("--time-budget", "time_budget", type=click.FloatRange(min=0, min_open=True),
              help="inr/hybrid: wall-clock seconds per encode of a file (as for mzc encode).")
@click.option("-o", "--output", default="mzc-bench", show_default=True,
              help="Report folder: bench.md, bench.json, rd_psnr.png, rd_ssim.png.")
@click.option("-T", "--threads", "workers", type=click.IntRange(0, 256), default=1, show_default=True,
              help="Workers for mzc encode/decode (1 compares codecs fairly with the one-thread baselines; 0: all "
                   "cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON row per measurement on stdout.")
@click.option("--quiet", is_flag=True, help="No per-row lines on stderr.")
def bench(data, codecs, ratios, no_defaults, tasks, channel, ratio_channels, time_budget, output, workers, as_json,
          quiet):
    """Rate-distortion (and downstream agreement) of every codec on DATA files or folders, at equal real ratios."""
    from ..analysis.bench import BenchOptions, codec_names
    from ..analysis.bench import run as run_bench
    task_list = parse_list(tasks, "--eval")
    for t in task_list:
        if t not in TASKS:
            raise MzcError(f"--eval {t!r}: choose from {', '.join(TASKS)}")
    opts = BenchOptions(codecs=parse_list(codecs, "--codecs") if codecs else tuple(codec_names()),
                        ratios=parse_list(ratios, "--ratios", float), defaults=not no_defaults, tasks=task_list,
                        channel=channel, ratio_channels=parse_pair(ratio_channels, "--channels"),
                        time_budget=time_budget, workers=threads(workers),
                        progress=lambda row: show_row(row, as_json, quiet),
                        command=" ".join(["mzc", *map(shlex.quote, sys.argv[1:])]))
    run_bench(list(data), opts, output)
    if not quiet:
        stderr.print(f"report: {os.path.join(output, 'bench.md')} (+ bench.json, rd_psnr.png, rd_ssim.png)",
                     markup=False)
