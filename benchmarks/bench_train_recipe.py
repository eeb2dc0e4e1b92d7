"""Training recipes side by side: validation PSNR at a fixed bpp versus CPU time, one run, one core each in turn.

Recipes (each from random weights, the same CPU-time budget, torch on one thread):
- `today`: the recipe that trained mzc 0.1's zoo: one fixed-lambda mbt2018-mean (lambda 1, the zoo's q3), patches
  128 px x 8, Adam 1e-4 without warm-up, the old corpus (../shared/data/train, mostly 8-bit);
- `new`: the variable-rate mbt2018-mean-vr, per-sample lambda over the whole range, Adam 3e-4 with 500 warm-up
  steps, ../shared/data/train16 + train with 70% of patches from 16-bit planes;
- `new-bf16`: `new` with the forward pass autocast to bfloat16 (kept only if it matches fp32);
- `new-small-patches`: `new` with 64 px x 32 patches (same pixels per step).
All are validated on the same crops of held-out 16-bit training files (never the evaluation set). The fixed bpp is
`today`'s own operating point at each validation; a variable-rate run's PSNR there is interpolated on its curve.
Results: benchmarks/results/train_recipe.md, .json, .png.

    python benchmarks/bench_train_recipe.py [--minutes 30] [--recipes today,new,new-bf16]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine
from mzc.codecs.neural.train import Objective, TrainOptions, load_corpus, train, validation_crops

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
NEW = dict(arch="mbt2018-mean-vr", data=(str(SHARED / "train16"), str(SHARED / "train")), lr=3e-4, warmup=500)
RECIPES = {
    "today": dict(arch="mbt2018-mean", lmbda=1.0, data=(str(SHARED / "train"),), lr=1e-4, warmup=0, sixteen=0.0),
    "new": NEW,
    "new-bf16": dict(NEW, bf16=True),
    "new-small-patches": dict(NEW, patch=64, batch=32),
}


def crops() -> torch.Tensor:
    """The validation crops every recipe is measured on (held-out 16-bit files of train16)."""
    corpus = load_corpus((str(SHARED / "train16"), str(SHARED / "train")), 128)
    return validation_crops(corpus, 128)


def run_recipe(name: str, minutes: float, val: torch.Tensor, folder: str, every: int = 250) -> list[dict]:
    """Train one recipe for `minutes` of process CPU time; (cpu s, wall s, steps, [[bpp, psnr], ...]) per check."""
    settings = dict(RECIPES[name])
    opts = TrainOptions(output=f"{folder}/{name}.pt", iterations=10 ** 7, threads=1, validate_every=every,
                        save_every=10 ** 7, **settings)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    measuring = [0.0]  # CPU seconds spent in this benchmark's own validations (not the recipe's cost)
    rows = []

    def spent() -> float:
        return time.process_time() - cpu0 - measuring[0]

    def observe(run) -> None:
        t = time.process_time()
        run.net.eval()
        _, points = Objective(run.net, run.opts).validate(val)
        measuring[0] += time.process_time() - t
        rows.append({"steps": run.done, "cpu_s": round(spent(), 1), "wall_s": round(time.perf_counter() - wall0, 1),
                     "points": [p[1:] for p in points]})
        print(name, rows[-1], flush=True)

    train(opts, observe=observe, stop=lambda: spent() > minutes * 60)
    return rows


def psnr_at(points: list[list[float]], bpp: float) -> float:
    """PSNR at `bpp` on a run's validation curve (linear in log bpp; a single point is its own value)."""
    pts = sorted(points)
    if len(pts) == 1:
        return pts[0][1]
    xs, ys = [math.log(max(p[0], 1e-6)) for p in pts], [p[1] for p in pts]
    return float(np.interp(math.log(bpp), xs, ys))


def summary(results: dict) -> list[str]:
    base = results["today"]
    final_bpp, final_psnr = base[-1]["points"][0]
    lines = [f"Fixed bpp: `today`'s operating point (final: {final_bpp:.4f} bpp, {final_psnr:.2f} dB on the "
             "validation crops).", "",
             "| recipe | steps | CPU min | PSNR at today's final bpp (dB) | CPU min to reach today's final PSNR "
             "| speed-up |", "|---|---|---|---|---|---|"]

    def reached(rows):
        return next((r["cpu_s"] for r in rows if psnr_at(r["points"], final_bpp) >= final_psnr), None)

    base_time = reached(base)
    for name, rows in results.items():
        reach, last = reached(rows), rows[-1]
        lines.append(f"| {name} | {last['steps']} | {last['cpu_s'] / 60:.1f} | "
                     f"{psnr_at(last['points'], final_bpp):.2f} | {f'{reach / 60:.1f}' if reach else '-'} | "
                     f"{f'{base_time / reach:.2f}x' if reach else 'not reached'} |")
    return lines


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    base = results["today"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, rows in results.items():
        ax.plot([r["cpu_s"] / 3600 for r in rows],
                [psnr_at(r["points"], b["points"][0][0]) for r, b in zip(rows, base)], label=name)
    ax.set_xlabel("CPU hours (one thread)")
    ax.set_ylabel("validation PSNR at today's bpp (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="CPU minutes per recipe")
    parser.add_argument("--recipes", default="today,new,new-bf16,new-small-patches")
    parser.add_argument("--validate-every", type=int, default=250, help="steps between validations")
    args = parser.parse_args()
    torch.set_num_threads(1)
    val = crops()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.recipes.split(","):
            results[name] = run_recipe(name, args.minutes, val, folder, args.validate_every)
    (RESULTS / "train_recipe.json").write_text(json.dumps({"machine": machine(), "minutes": args.minutes,
                                                           "recipes": RECIPES, "results": results}, indent=1))
    lines = ["# Training recipes side by side", "", f"`python benchmarks/bench_train_recipe.py --minutes "
             f"{args.minutes:g}` on {machine()}; each recipe {args.minutes:g} CPU minutes on one thread, validated on "
             "the same held-out 16-bit crops.", ""] + summary(results)
    (RESULTS / "train_recipe.md").write_text("\n".join(lines) + "\n")
    plot(results, RESULTS / "train_recipe.png")


if __name__ == "__main__":
    main()
