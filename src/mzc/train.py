"""`mzc train`: fit a single-channel CompressAI model on microscopy patches, resumably.

The recipe is CompressAI's own (RateDistortionLoss, aux loss on the entropy bottleneck's quantiles, Adam 1e-4 / 1e-3,
ReduceLROnPlateau on a fixed validation set), fed with patches from TIFFs of any bit depth. Each plane is mapped to
[0, 1] by its own min/max, exactly as the codec maps a file, and augmented (flips, 90-degree turns, gamma, dimming,
dither) because public microscopy corpora are small and mostly 8-bit.
"""
from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import dataclass, fields, replace

import numpy as np
import tifffile
import torch

from .architectures import RateDistortionLoss, build
from .errors import MzcError
from .modelfile import FORMAT, atomic_save, freeze, read

VALIDATION_PATCHES = 32


@dataclass
class TrainOptions:
    output: str
    arch: str | None = None
    lmbda: float | None = None
    n: int = 64
    m: int = 96
    metric: str = "mse"
    iterations: int = 20000
    patch: int = 128
    batch: int = 8
    lr: float = 1e-4
    aux_lr: float = 1e-3
    seed: int = 0
    resume: str | None = None  # a checkpoint to continue from (its weights; iterations add up)
    init: str | None = None  # a checkpoint whose weights start a new run (e.g. another lambda)
    save_every: int = 500
    validate_every: int = 250
    threads: int | None = None


DEFAULTS = {f.name: f.default for f in fields(TrainOptions)}


def load_planes(data_dir: str, patch: int) -> tuple[list[np.ndarray], list[str]]:
    """Every 2-D plane of every TIFF under data_dir as float32 in [0, 1] (own min/max); tiny or flat planes skipped."""
    paths = sorted(p for ext in ("tif", "tiff") for p in glob.glob(os.path.join(data_dir, "**", f"*.{ext}"),
                                                                   recursive=True))
    if not paths:
        raise MzcError(f"{data_dir}: no .tif/.tiff files to train on")
    planes = []
    for path in paths:
        try:
            data = tifffile.imread(path)
        except Exception as exc:
            raise MzcError(f"{path}: cannot read ({exc})") from None
        if data.ndim == 3 and data.shape[-1] in (3, 4) and data.dtype == np.uint8:
            data = np.moveaxis(data, -1, 0)
        for plane in data.reshape(-1, *data.shape[-2:]):
            lo, hi = float(plane.min()), float(plane.max())
            if min(plane.shape) >= patch and hi > lo:
                planes.append(((plane.astype(np.float32) - lo) / (hi - lo)).astype(np.float32))
    if not planes:
        raise MzcError(f"{data_dir}: no plane is at least {patch}x{patch} with more than one value")
    return planes, [os.path.relpath(p, data_dir) for p in paths]


def sample_patches(planes: list[np.ndarray], n: int, patch: int, rng: np.random.Generator,
                   augment: bool = True) -> np.ndarray:
    out = np.empty((n, 1, patch, patch), np.float32)
    for k in range(n):
        plane = planes[rng.integers(len(planes))]
        y = rng.integers(plane.shape[0] - patch + 1)
        x = rng.integers(plane.shape[1] - patch + 1)
        p = plane[y:y + patch, x:x + patch]
        if augment:
            p = np.rot90(p, rng.integers(4))
            if rng.random() < 0.5:
                p = p[:, ::-1]
            p = p ** np.float32(math.exp(rng.uniform(-0.7, 0.7)))  # gamma: other histograms
            if rng.random() < 0.5:
                p = p * np.float32(rng.uniform(0.15, 1.0))  # dim objects in a wide (16-bit) range
            p = p + rng.uniform(-0.5, 0.5, p.shape).astype(np.float32) / 255  # 8-bit steps -> continuous levels
        out[k, 0] = np.clip(p, 0, 1)
    return out


def optimizers(net, opts: TrainOptions):
    main = [p for n, p in net.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    aux = [p for n, p in net.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    opt = torch.optim.Adam(main, lr=opts.lr)
    aux_opt = torch.optim.Adam(aux, lr=opts.aux_lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", factor=0.5, patience=8)
    return opt, aux_opt, sched


def settle(opts: TrainOptions, start: dict | None) -> TrainOptions:
    """Check the options and, on --resume, take the run's own hyperparameters from its checkpoint."""
    if opts.resume and opts.init:
        raise MzcError("--resume continues a run, --init starts a new one from its weights: give one")
    if not opts.lr > 0 or (opts.lmbda is not None and not opts.lmbda > 0):
        raise MzcError("--lr and --lambda must be > 0")
    folder = os.path.dirname(os.path.abspath(opts.output))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise MzcError(f"{opts.output}: cannot write there (no such folder, or not writable)")
    if opts.resume:
        if "optimizer" not in start:
            raise MzcError(f"{opts.resume} is a frozen model, not a training checkpoint: start from it with --init")
        for key, name in (("arch", "--arch"), ("lmbda", "--lambda"), ("metric", "--metric"), ("patch", "--patch")):
            given, saved = getattr(opts, key), start["lambda" if key == "lmbda" else key]
            if given is not None and given != saved and not (key in ("metric", "patch") and given == DEFAULTS[key]):
                raise MzcError(f"{name} {given} differs from the checkpoint's {saved}: a resumed run keeps its own")
        opts = replace(opts, arch=start["arch"], lmbda=start["lambda"], metric=start["metric"], patch=start["patch"])
    if opts.init:
        if opts.arch is not None and opts.arch != start["arch"]:
            raise MzcError(f"--arch {opts.arch} differs from {opts.init}'s {start['arch']}")
        opts = replace(opts, arch=start["arch"])
    if opts.arch is None or opts.lmbda is None:
        raise MzcError("--arch and --lambda are required (except with --resume)")
    if opts.metric == "ms-ssim" and opts.patch <= 160:
        raise MzcError("MS-SSIM needs patches larger than 160 px (--patch 192 or more)")
    return opts


def train(data_dir: str, opts: TrainOptions, progress=None) -> dict:
    """Train (or resume) and write opts.output: a checkpoint whose CDF tables are frozen with update(force=True)."""
    start_blob = read(opts.resume) if opts.resume else read(opts.init) if opts.init else None
    opts = settle(opts, start_blob)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    planes, files = load_planes(data_dir, opts.patch)
    rng = np.random.default_rng(opts.seed)
    val = torch.from_numpy(sample_patches(planes, VALIDATION_PATCHES, opts.patch, np.random.default_rng(12345), False))
    arch = start_blob["arch"] if start_blob else opts.arch
    n, m = (int(start_blob["N"]), int(start_blob["M"])) if start_blob else (opts.n, opts.m)
    net = build(arch, n, m)
    opt, aux_opt, sched = optimizers(net, opts)
    done, elapsed = 0, 0.0
    # a run started from another model's weights owes them its start: count and name them
    inherited = ({"from": os.path.basename(opts.init), "iterations": int(start_blob.get("iterations", 0))
                  + int((start_blob.get("inherited") or {}).get("iterations", 0))} if opts.init else None)
    history = []
    if start_blob:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in start_blob["state_dict"].items()})
        if opts.resume:
            opt.load_state_dict(start_blob["optimizer"])
            aux_opt.load_state_dict(start_blob["aux_optimizer"])
            sched.load_state_dict(start_blob["scheduler"])
            done = int(start_blob.get("iterations", 0))
            inherited = start_blob.get("inherited")
            history = list(start_blob.get("history", []))
            elapsed = history[-1]["seconds"] if history else 0.0
            rng = np.random.default_rng([opts.seed, done])
    loss_fn = RateDistortionLoss(lmbda=opts.lmbda, metric="ms-ssim" if opts.metric == "ms-ssim" else "mse")

    def snapshot(final: bool) -> dict:
        if final:
            net.update(force=True)
        data = {"dir": os.path.abspath(data_dir), "files": len(files), "planes": len(planes)}
        return {"format": FORMAT, "arch": arch, "N": n, "M": m, "lambda": opts.lmbda, "metric": opts.metric,
                "iterations": done, "inherited": inherited, "patch": opts.patch, "training_data": data,
                "state_dict": net.state_dict(), "optimizer": opt.state_dict(), "aux_optimizer": aux_opt.state_dict(),
                "scheduler": sched.state_dict(), "history": history, "frozen_cdfs": final}

    started = time.perf_counter()
    while done < opts.iterations:
        net.train()
        x = torch.from_numpy(sample_patches(planes, opts.batch, opts.patch, rng))
        opt.zero_grad()
        aux_opt.zero_grad()
        out = loss_fn(net(x), x)
        if not torch.isfinite(out["loss"]):
            raise MzcError(f"training diverged at step {done + 1} (loss is not finite); the last checkpoint in "
                           f"{opts.output} is kept: lower --lr or --lambda")
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        aux = net.aux_loss()
        aux.backward()
        aux_opt.step()
        done += 1
        if done % opts.validate_every == 0 or done == opts.iterations:
            net.eval()
            with torch.no_grad():
                v = loss_fn(net(val), val)
            sched.step(float(v["loss"]))
            mse = float(v.get("mse_loss", torch.tensor(float("nan"))))
            history.append({"it": done, "loss": float(v["loss"]), "bpp": float(v["bpp_loss"]),
                            "psnr": -10 * math.log10(max(mse, 1e-12)), "lr": opt.param_groups[0]["lr"],
                            "seconds": round(elapsed + time.perf_counter() - started, 1)})
        if progress:
            progress(done, opts.iterations, history[-1] if history else None)
        if done % opts.save_every == 0 and done < opts.iterations:
            atomic_save(snapshot(False), opts.output)
    blob = snapshot(True)
    atomic_save(blob, opts.output)
    return blob


def export(checkpoint: str, output: str) -> dict:
    """The frozen fp16 file for the zoo (see modelfile.freeze)."""
    blob = freeze(read(checkpoint))
    atomic_save(blob, output)
    return blob
