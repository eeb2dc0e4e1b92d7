"""`mzc train`: train a single-channel learned model on the user's own microscopy (never on evaluation data)."""
from __future__ import annotations

import click

from ..errors import MzcError
from .common import stderr


def parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise MzcError(f"--lambda-range {text!r}: expected MIN,MAX like 0.004,16") from None
    return lo, hi


def architectures() -> list[str]:
    from ..codecs.neural.zoo import ARCHITECTURES
    return list(ARCHITECTURES)


@click.command()
@click.argument("data_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--arch", type=click.Choice(architectures()),
              help="Model family: *-vr are variable-rate (one model, every rate), the others fixed-rate.")
@click.option("--lambda", "lmbda", type=click.FloatRange(min=0, min_open=True),
              help="Fixed-rate families: the rate-distortion trade-off (larger = better quality, larger files).")
@click.option("--lambda-range", "lambda_range", metavar="MIN,MAX",
              help="Variable-rate families: the lambdas at the lowest and highest rate (default 0.004,16).")
@click.option("-o", "--output", required=True, help="Checkpoint to write (rewritten every --save-every steps).")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False),
              help="Continue this checkpoint's run (its arch, N/M, lambda(s), metric and patch are kept).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False),
              help="Start from these weights (e.g. a shipped model) with fresh optimizers.")
@click.option("-N", "n", type=click.IntRange(8, 512), default=64, show_default=True, help="Channels N.")
@click.option("-M", "m", type=click.IntRange(8, 512), default=96, show_default=True, help="Latent channels M.")
@click.option("--metric", type=click.Choice(["mse", "ms-ssim"]), default="mse", show_default=True)
@click.option("--iterations", type=click.IntRange(1), default=20000, show_default=True, help="Total steps.")
@click.option("--patch", type=click.IntRange(64, 1024), default=128, show_default=True,
              help="Patch size (a multiple of 64).")
@click.option("--batch", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True,
              help="Adam learning rate (aux: 1e-3); halved when validation stalls.")
@click.option("--warmup", type=click.IntRange(0), default=0, show_default=True,
              help="Steps of linear learning-rate warm-up.")
@click.option("--sixteen", type=click.FloatRange(0, 1), default=0.7, show_default=True,
              help="Fraction of patches drawn from 16-bit planes.")
@click.option("--bf16", is_flag=True, help="Autocast the forward pass to bfloat16 (faster on CPUs with AVX512-BF16).")
@click.option("--device", default="cpu", show_default=True, help="cpu, or cuda / cuda:N on a GPU machine.")
@click.option("--save-every", type=click.IntRange(1), default=500, show_default=True)
@click.option("-T", "--threads", type=click.IntRange(1, 256), default=None, help="torch threads.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(data_dirs, arch, lmbda, lambda_range, output, resume, init, n, m, metric, iterations, patch, batch, lr,
          warmup, sixteen, bf16, device, save_every, threads, quiet):
    """Train a single-channel learned model on the TIFFs under DATA_DIRS (never on your evaluation data)."""
    from ..codecs.neural.corpus_files import tiff_paths
    from ..codecs.neural.learned import require_torch
    tiff_paths(data_dirs)  # a wrong folder is said at once, before torch loads
    require_torch()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..codecs.neural.train import TrainOptions
    from ..codecs.neural.train import train as run_training
    opts = TrainOptions(output=output, data=tuple(data_dirs), arch=arch, lmbda=lmbda,
                        lambda_range=parse_range(lambda_range), n=n, m=m, metric=metric, iterations=iterations,
                        patch=patch, batch=batch, lr=lr, warmup=warmup, sixteen=sixteen, bf16=bf16, device=device,
                        resume=resume, init=init, save_every=save_every, threads=threads)
    show = not quiet and stderr.is_terminal
    with Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                  TimeRemainingColumn(), console=stderr, disable=not show) as bar:
        task = bar.add_task("train", total=iterations, status="")

        def cb(done, total, last):
            status = f"loss {last['loss']:.4g}" if last else ""
            bar.update(task, completed=done, status=status)

        try:
            blob = run_training(opts, cb)
        except (MzcError, OSError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - a library failure is one line, not a traceback
            raise MzcError(f"training failed: {type(exc).__name__}: {exc}") from None
    last = blob["history"][-1] if blob["history"] else {}
    if not quiet:
        points = ", ".join(f"{bpp:.4f} bpp {psnr:.2f} dB" for _, bpp, psnr in last.get("points", []))
        stderr.print(f"{output}: {blob['arch']} after {blob['iterations']} steps: validation {points}", markup=False)
