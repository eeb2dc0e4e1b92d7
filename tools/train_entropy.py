#!/usr/bin/env python
"""Train and measure a learned entropy model for the context coder (issue 20, goal 3): is it worth shipping?

    nice -n 19 python tools/train_entropy.py [--steps 3000] [--minutes 20] [-o benchmarks/results/learned_entropy]

The model is a small MLP (about 2,000 parameters) that refines the fitted model of each pass: from a pixel's
context (log activity, spread, level, the eight features scaled by the activity, the phase, the pass kind and
stride, the fitted bucket's sigma) it predicts a shift of the centre and a factor on sigma, both relative to the
fitted table. Trained with torch on one thread on ../shared/data/train and train16 (a few files held out), never on
the evaluation files, which are only measured. The fitted model's cost is the real table cost of every pixel; the
learned model's is the ideal code length of its discretized Gaussian (tables would add a little). The decision
rule: keep it only where it saves at least 1% of the bits on the evaluation files' 16-bit planes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from mzc.codecs.context import geometry, tables  # noqa: E402
from mzc.codecs.context.coder import _fit_pass  # noqa: E402
from mzc.codecs.context.model import FRAC_BITS  # noqa: E402

DATA = Path(os.environ.get("MZC_SHARED_DATA", ROOT.parent / "shared" / "data"))
HELD_OUT = 6  # train files per corpus kept for validation
PER_PASS = 4096  # pixels sampled per pass (all of the small ones)
MARGIN = 0.01


def planes_of(path: Path) -> list[np.ndarray]:
    a = tifffile.imread(path)
    if a.dtype not in (np.uint8, np.uint16):
        return []
    return [p for p in a.reshape(-1, *a.shape[-2:]) if min(p.shape) >= 16][:4]


def pixel_rows(image: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Per sampled pixel: network inputs, and (value - floor of the prediction, fitted centre, fitted sigma,
    fitted bits, the number of pixels of its pass it stands for)."""
    image = image.astype(np.int64)
    lo, hi = int(image.min()), int(image.max())
    if hi == lo:
        return np.zeros((0, 17)), np.zeros((0, 5))
    nbytes = 1 if hi - lo < 256 else 2
    xs, ys = [], []
    for p in geometry.passes(image.shape):
        model, (keys, v, y) = _fit_pass(image, p, lo, hi, 8 * nbytes)
        ctx = geometry.context(image, p, model.feature_set)
        pred = model.predict(ctx, lo, hi)
        rows = np.sort(rng.choice(y.size, min(PER_PASS, y.size), replace=False))
        bits, centre, sigma = fitted_cost(model, keys[rows], v[rows], 8 * nbytes)
        weight = np.full(rows.size, y.size / rows.size)
        act = ctx.activity[rows].astype(np.float64)
        f = ctx.features[:, rows][:-1]
        f = np.pad(f, ((0, 8 - f.shape[0]), (0, 0))) / (4.0 * (act + 8.0))
        kind = np.eye(3)["DHV".index(p.kind)][:, None].repeat(rows.size, 1)
        x = np.concatenate([np.log2(act + 1)[None], np.log2(ctx.spread[rows] + 1.0)[None],
                            np.log2(((pred[rows] >> FRAC_BITS) - lo + 1).astype(np.float64))[None],
                            np.clip(f, -4, 4), ((pred[rows] & 4095) / 4096.0)[None], kind,
                            np.full((1, rows.size), np.log2(p.stride)), np.log2(sigma)[None]]).T
        xs.append(x)
        ys.append(np.stack([v[rows].astype(np.float64), centre, sigma, bits, weight], 1))
    return np.concatenate(xs), np.concatenate(ys)


def fitted_cost(model, keys: np.ndarray, v: np.ndarray, escape_bits: int):
    """The fitted model's bits, table centre and sigma of each pixel (grouped by table key, like the coder)."""
    bits, centre, sigma = np.zeros(keys.size), np.zeros(keys.size), np.zeros(keys.size)
    for key in np.unique(keys):
        at = np.flatnonzero(keys == key)
        freq, half = model.table(int(key))
        sym = v[at] + half
        escaped = (sym < 0) | (sym > 2 * half)
        bits[at] = tables.bits(freq)[np.where(escaped, 2 * half + 1, sym)] + escaped * escape_bits
        b = int(key) >> 4
        phases = 1 << int(tables.phase_bits(int(model.sigmas[b])))
        centre[at] = model.means[b] / 16 + ((int(key) & 15) + 0.5) / phases
        sigma[at] = tables.sigma(int(model.sigmas[b]))
    return bits, centre, sigma


def corpus(paths: list[Path], rng) -> tuple[np.ndarray, np.ndarray, list[int]]:
    xs, ys, sizes = [], [], []
    for path in paths:
        for plane in planes_of(path):
            x, y = pixel_rows(plane, rng)
            xs.append(x)
            ys.append(y)
            sizes.append(len(x))
    return np.concatenate(xs), np.concatenate(ys), sizes


def network():
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(17, 32), torch.nn.SiLU(), torch.nn.Linear(32, 32), torch.nn.SiLU(),
                              torch.nn.Linear(32, 3))
    torch.nn.init.zeros_(net[-1].weight)
    torch.nn.init.zeros_(net[-1].bias)
    return net


def learned_bits(net, x, y):
    """Ideal code length (bits) of each pixel under the network's refinement of the fitted table."""
    import torch
    out = net(x)
    v, centre, sigma = y[:, 0], y[:, 1], y[:, 2]
    mu = centre + out[:, 0] * sigma
    s = sigma * torch.exp(torch.clamp(out[:, 1], -3, 3))
    eps = 0.25 * torch.sigmoid(out[:, 2] - 3)
    normal = torch.distributions.Normal(0.0, 1.0)

    def mass(width):
        return normal.cdf((v + 0.5 - mu) / (s * width)) - normal.cdf((v - 0.5 - mu) / (s * width))
    p = (1 - eps) * mass(1.0) + eps * mass(4.0)
    return -torch.log2(torch.clamp(p, min=2.0 ** -24))


def train(x: np.ndarray, y: np.ndarray, steps: int, minutes: float, seed: int = 0):
    import torch
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    net = network()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    start = time.time()
    for step in range(steps):
        batch = torch.tensor(rng.choice(len(x), 4096, replace=False))
        loss = learned_bits(net, xt[batch], yt[batch]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0:
            print(f"step {step}: {loss.item():.4f} bits/pixel", flush=True)
        if time.time() - start > 60 * minutes:
            break
    return net, step + 1, time.time() - start


def measure(net, x: np.ndarray, y: np.ndarray) -> dict:
    """Bits of the sampled pixels, each weighted by the pixels of its pass it stands for (a whole-file estimate)."""
    import torch
    with torch.no_grad():
        per = learned_bits(net, torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    learned, fitted = float((per.numpy() * y[:, 4]).sum()), float((y[:, 3] * y[:, 4]).sum())
    return {"pixels": float(y[:, 4].sum()), "fitted_bits": fitted, "learned_bits": learned,
            "saving": 1 - learned / fitted}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("-o", "--output", default=str(ROOT / "benchmarks" / "results" / "learned_entropy"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    train_files, held = [], []
    for folder in ("train", "train16"):
        files = sorted((DATA / folder).glob("*.tif"))
        train_files += files[:-HELD_OUT]
        held += files[-HELD_OUT:]
    evaluation = [f for f in sorted(DATA.glob("*.tif")) if "_u16" in f.name]
    t = time.time()
    x, y, _ = corpus(train_files, rng)
    print(f"{len(x)} training pixels from {len(train_files)} files in {time.time() - t:.0f} s", flush=True)
    net, steps, seconds = train(x, y, args.steps, args.minutes)
    results = {"parameters": sum(p.numel() for p in net.parameters()), "steps": steps, "seconds": seconds,
               "train": measure(net, x, y), "held_out": measure(net, *corpus(held, rng)[:2]), "evaluation": {}}
    for path in evaluation:
        results["evaluation"][path.name] = measure(net, *corpus([path], rng)[:2])
    total = {k: sum(r[k] for r in results["evaluation"].values()) for k in ("fitted_bits", "learned_bits")}
    results["evaluation_saving"] = 1 - total["learned_bits"] / total["fitted_bits"]
    results["kept"] = results["evaluation_saving"] >= MARGIN
    Path(args.output + ".json").write_text(json.dumps(results, indent=1))
    write_report(results, args.output + ".md")


def write_report(r: dict, path: str) -> None:
    lines = ["# Learned entropy model vs the fitted model (context coder)", "",
             "Command: `nice -n 19 python tools/train_entropy.py` (torch on one thread). What it measures:", "",
             " ".join(line.strip() for line in __doc__.strip().splitlines()[4:]), "",
             f"Network: {r['parameters']} parameters, {r['steps']} steps of 4096 pixels in {r['seconds']:.0f} s "
             "(torch, one thread).", "",
             "Bits per pixel over sampled pixels (4096 per pass, at most 4 planes per file), each weighted by the "
             "pixels of its pass.", "",
             "| set | pixels | fitted bits/pixel (real tables) | learned bits/pixel (ideal) | saving |",
             "|---|---|---|---|---|"]
    rows = [("train", r["train"]), ("held-out train files", r["held_out"])]
    rows += [(name, m) for name, m in r["evaluation"].items()]
    for name, m in rows:
        lines.append(f"| {name} | {m['pixels']:.0f} | {m['fitted_bits'] / m['pixels']:.4f} | "
                     f"{m['learned_bits'] / m['pixels']:.4f} | {100 * m['saving']:+.2f}% |")
    verdict = "kept" if r["kept"] else "not kept"
    lines += ["", f"Saving on the evaluation files' 16-bit planes: {100 * r['evaluation_saving']:+.2f}% "
              f"(margin required: {100 * MARGIN:.0f}%): **{verdict}**."]
    Path(path).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
