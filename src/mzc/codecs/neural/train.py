"""`mzc train`: fit a single-channel learned model on microscopy planes, resumably, on the CPU or a GPU.

Two kinds of model:
- variable-rate families (`*-vr`, gained.py): one network for every rate. Each sample of a batch draws its own rate
  parameter t and lambda(t), so one run trains the whole rate-distortion curve;
- fixed-rate CompressAI families (architectures.py): one lambda per model, CompressAI's own recipe.

Data: every 2-D plane of the TIFFs under the given folders, mapped to [0, 1] by its own min/max exactly as the codec
maps a file, 16-bit planes drawn first (`--sixteen`, default 70% of patches) because 16-bit fluorescence is what mzc
codes most, and augmented (flips, turns, gamma, dimming, dither). A few 16-bit files are held out for validation,
which reports (bpp, PSNR) at fixed rate parameters on the same crops for every run: runs and recipes compare there.
A thread prepares the next batches while the network trains, so the model never waits for data.

Resuming continues the optimizer, schedule and history; a run accumulates its CPU (or GPU) hours in the checkpoint.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from dataclasses import dataclass, fields, replace

import numpy as np
import tifffile
import torch

from ...errors import MzcError
from .corpus_files import tiff_paths
from .modelfile import FORMAT, atomic_save, build_model, is_variable_rate, lineage, read

VALIDATION_CROPS = 8
VALIDATION_CROP = 256
VALIDATION_T = (0.0, 1.75, 3.5, 5.25, 7.0)  # rate parameters at which a variable-rate model is validated
HELD_OUT_EVERY = 8  # every 8th 16-bit training file (sorted by name, from the 4th) validates instead of training


@dataclass
class TrainOptions:
    output: str
    data: tuple[str, ...] = ()
    arch: str | None = None
    lmbda: float | None = None  # fixed-rate families
    lambda_range: tuple[float, float] | None = None  # variable-rate families (default: the family's own)
    n: int = 64
    m: int = 96
    metric: str = "mse"
    iterations: int = 20000
    patch: int = 128
    batch: int = 8
    lr: float = 1e-4
    warmup: int = 0  # steps of linear learning-rate warm-up
    aux_lr: float = 1e-3
    sixteen: float = 0.7  # fraction of patches drawn from 16-bit planes (when there are both)
    bf16: bool = False  # autocast the forward pass to bfloat16
    device: str = "cpu"
    seed: int = 0
    resume: str | None = None  # a checkpoint to continue from (its weights, optimizers and history)
    init: str | None = None  # a checkpoint whose weights start a new run (e.g. another lambda)
    save_every: int = 500
    validate_every: int = 250
    threads: int | None = None


DEFAULTS = {f.name: f.default for f in fields(TrainOptions)}
RUN_KEYS = ("arch", "lmbda", "lambda_range", "metric", "patch")  # what a resumed run keeps from its checkpoint


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Corpus:
    planes: list[np.ndarray]  # float32 in [0, 1]
    sixteen: np.ndarray  # bool per plane: from a 16-bit file
    files: list[str]
    validation: list[np.ndarray]  # held-out 16-bit planes


def file_planes(path: str) -> tuple[list[np.ndarray], bool]:
    try:
        data = tifffile.imread(path)
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds on damaged files
        raise MzcError(f"{path}: cannot read ({exc})") from None
    if data.ndim == 3 and data.shape[-1] in (3, 4) and data.dtype == np.uint8:
        data = np.moveaxis(data, -1, 0)
    planes = []
    for plane in data.reshape(-1, *data.shape[-2:]):
        lo, hi = float(plane.min()), float(plane.max())
        if hi > lo:
            planes.append(((plane.astype(np.float32) - lo) / (hi - lo)).astype(np.float32))
    return planes, data.dtype.itemsize >= 2


def load_corpus(folders, patch: int) -> Corpus:
    """Every plane of at least patch x patch px; every HELD_OUT_EVERY-th 16-bit file held out for validation."""
    planes, sixteen, names, validation = [], [], [], []
    n16 = 0
    for path in tiff_paths(folders):
        got, is16 = file_planes(path)
        got = [p for p in got if min(p.shape) >= patch]
        if not got:
            continue
        if is16:
            n16 += 1
            if n16 % HELD_OUT_EVERY == 4 and min(got[0].shape) >= VALIDATION_CROP:
                validation += got
                continue
        planes += got
        sixteen += [is16] * len(got)
        names.append(os.path.basename(path))
    if not planes:
        raise MzcError(f"{', '.join(folders)}: no plane is at least {patch}x{patch} with more than one value")
    if not validation:  # no 16-bit file to hold out: validate on (fixed) crops of the training planes
        validation = planes[:: max(1, len(planes) // VALIDATION_CROPS)][:VALIDATION_CROPS]
    return Corpus(planes, np.asarray(sixteen), names, validation)


def augment(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p = np.rot90(p, rng.integers(4))
    if rng.random() < 0.5:
        p = p[:, ::-1]
    p = p ** np.float32(math.exp(rng.uniform(-0.7, 0.7)))  # gamma: other histograms
    if rng.random() < 0.5:
        p = p * np.float32(rng.uniform(0.15, 1.0))  # dim objects in a wide (16-bit) range
    p = p + rng.uniform(-0.5, 0.5, p.shape).astype(np.float32) / 255  # 8-bit steps -> continuous levels
    return np.clip(p, 0, 1)


def sample_patches(corpus: Corpus, n: int, patch: int, rng: np.random.Generator, sixteen: float) -> np.ndarray:
    out = np.empty((n, 1, patch, patch), np.float32)
    idx16, idx8 = np.flatnonzero(corpus.sixteen), np.flatnonzero(~corpus.sixteen)
    for k in range(n):
        pool = idx16 if len(idx16) and (not len(idx8) or rng.random() < sixteen) else idx8
        plane = corpus.planes[pool[rng.integers(len(pool))]]
        y, x = rng.integers(plane.shape[0] - patch + 1), rng.integers(plane.shape[1] - patch + 1)
        out[k, 0] = augment(plane[y:y + patch, x:x + patch], rng)
    return out


def validation_crops(corpus: Corpus, patch: int) -> torch.Tensor:
    """Fixed crops of the held-out planes (the same for every run with the same data)."""
    rng = np.random.default_rng(12345)
    size = min(VALIDATION_CROP, *(min(p.shape) for p in corpus.validation))
    size = max(64, size // 64 * 64)
    crops = []
    for k in range(VALIDATION_CROPS):
        plane = corpus.validation[k % len(corpus.validation)]
        y, x = rng.integers(plane.shape[0] - size + 1), rng.integers(plane.shape[1] - size + 1)
        crops.append(plane[y:y + size, x:x + size])
    return torch.from_numpy(np.stack(crops)[:, None].copy())


class Batches:
    """Patches prepared by a thread, a few batches ahead (numpy releases the GIL for most of the work)."""

    def __init__(self, corpus: Corpus, opts: TrainOptions, rng: np.random.Generator, ahead: int = 4):
        self._queue: queue.Queue = queue.Queue(ahead)
        self._stop = threading.Event()

        def work():
            while not self._stop.is_set():
                batch = sample_patches(corpus, opts.batch, opts.patch, rng, opts.sixteen)
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue

        self._thread = threading.Thread(target=work, daemon=True)
        self._thread.start()

    def next(self) -> np.ndarray:
        return self._queue.get()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------------------------ models
def rd_terms(out: dict, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample mean squared error and bits per pixel."""
    pixels = x.shape[-2] * x.shape[-1]
    mse = (out["x_hat"].float() - x).pow(2).flatten(1).mean(1)
    if "bits" in out:  # a model that counts its own bits (the learned wavelet)
        return mse, out["bits"].float() / pixels
    bits = sum(-torch.log2(lk.float()).flatten(1).sum(1) for lk in out["likelihoods"].values())
    return mse, bits / pixels


class Objective:
    """The loss of one batch and the validation figures, for either kind of model."""

    def __init__(self, net, opts: TrainOptions):
        self.net, self.opts = net, opts
        self.vr = is_variable_rate(opts.arch)
        if not self.vr:
            from .architectures import RateDistortionLoss
            self.fixed_loss = RateDistortionLoss(lmbda=opts.lmbda,
                                                 metric="ms-ssim" if opts.metric == "ms-ssim" else "mse")

    def loss(self, x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if not self.vr:
            return self.fixed_loss(self.net(x), x)["loss"]
        t = torch.from_numpy(rng.uniform(0, self.net.anchors - 1, x.shape[0]).astype(np.float32)).to(x.device)
        mse, bpp = rd_terms(self.net(x, t), x)
        return (self.net.lmbda(t) * 255 ** 2 * mse + bpp).mean()

    @torch.no_grad()
    def validate(self, crops: torch.Tensor) -> tuple[float, list[list[float]]]:
        """(loss, [[t or lambda, bpp, PSNR], ...]) on the validation crops with real rounding."""
        points, losses = [], []
        for t in (VALIDATION_T if self.vr else (None,)):
            if self.vr:
                tt = torch.full((crops.shape[0],), t, device=crops.device)
                mse, bpp = rd_terms(self.net(crops, tt), crops)
                lmbda = float(self.net.lmbda(tt[:1]))
            else:
                mse, bpp = rd_terms(self.net(crops), crops)
                lmbda = self.opts.lmbda
            mse, bpp = float(mse.mean()), float(bpp.mean())
            losses.append(lmbda * 255 ** 2 * mse + bpp)
            points.append([t if self.vr else lmbda, round(bpp, 5), round(-10 * math.log10(max(mse, 1e-12)), 3)])
        return float(np.mean(losses)), points


# ------------------------------------------------------------------------------------------------ options
def settle(opts: TrainOptions, start: dict | None) -> TrainOptions:
    """Check the options and, on --resume, take the run's own hyperparameters from its checkpoint."""
    if opts.resume and opts.init:
        raise MzcError("--resume continues a run, --init starts a new one from its weights: give one")
    if not opts.lr > 0 or (opts.lmbda is not None and not opts.lmbda > 0):
        raise MzcError("--lr and --lambda must be > 0")
    if opts.patch % 64:
        raise MzcError(f"--patch {opts.patch}: patches must be multiples of 64 px (the models' total stride)")
    folder = os.path.dirname(os.path.abspath(opts.output))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise MzcError(f"{opts.output}: cannot write there (no such folder, or not writable)")
    if opts.device != "cpu" and not (opts.device.startswith("cuda") and torch.cuda.is_available()):
        raise MzcError(f"--device {opts.device}: no such device here (torch sees no GPU)")
    if opts.resume:
        if "optimizer" not in start:
            raise MzcError(f"{opts.resume} is a frozen model, not a training checkpoint: start from it with --init")
        saved = {"arch": start["arch"], "lmbda": start.get("lambda"), "metric": start["metric"],
                 "patch": start["patch"], "lambda_range": start.get("lambda_range")}
        for key in RUN_KEYS:
            given = getattr(opts, key)
            if given is not None and given != saved[key] and not (key in ("metric", "patch")
                                                                  and given == DEFAULTS[key]):
                name = {"lmbda": "--lambda", "lambda_range": "--lambda-range"}.get(key, f"--{key}")
                raise MzcError(f"{name} {given} differs from the checkpoint's {saved[key]}: a resumed run keeps "
                               "its own")
        opts = replace(opts, **saved)
    if opts.init:
        if opts.arch is not None and opts.arch != start["arch"]:
            raise MzcError(f"--arch {opts.arch} differs from {opts.init}'s {start['arch']}")
        opts = replace(opts, arch=start["arch"], lambda_range=opts.lambda_range or start.get("lambda_range"))
    if opts.arch is None:
        raise MzcError("--arch is required (except with --resume)")
    if is_variable_rate(opts.arch):
        if opts.lmbda is not None:
            raise MzcError(f"{opts.arch} is variable-rate: give --lambda-range MIN,MAX (or nothing), not --lambda")
        if opts.lambda_range is not None:
            lo, hi = opts.lambda_range
            if not 0 < lo < hi:
                raise MzcError("--lambda-range must be two numbers 0 < MIN < MAX")
            opts = replace(opts, lambda_range=(float(lo), float(hi)))
        if opts.metric != "mse":
            raise MzcError("variable-rate models train on MSE")
    elif opts.lmbda is None:
        raise MzcError(f"--lambda is required for the fixed-rate family {opts.arch}")
    if opts.metric == "ms-ssim" and opts.patch <= 160:
        raise MzcError("MS-SSIM needs patches larger than 160 px (--patch 192 or more)")
    return opts


# ------------------------------------------------------------------------------------------------ loop
class Run:
    """Network, optimizers, schedule and history of one training run (new, resumed or initialised)."""

    def __init__(self, opts: TrainOptions, start: dict | None):
        self.opts = opts
        self.start = start
        n, m = (int(start["N"]), int(start["M"])) if start else (opts.n, opts.m)
        self.n, self.m = n, m
        self.net = build_model(opts.arch, n, m, opts.lambda_range)
        main = [p for k, p in self.net.named_parameters() if not k.endswith(".quantiles")]
        aux = [p for k, p in self.net.named_parameters() if k.endswith(".quantiles")]
        self.opt = torch.optim.Adam(main, lr=opts.lr)
        self.aux_opt = torch.optim.Adam(aux, lr=opts.aux_lr) if aux else None
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, "min", factor=0.5, patience=8)
        self.done, self.history, self.inherited = 0, [], None
        self.seconds = {"cpu": 0.0, "gpu": 0.0}
        if start:
            self._load(start)

    def _load(self, start: dict) -> None:
        opts = self.opts
        self.net.load_state_dict({k: v.float() if v.is_floating_point() else v
                                  for k, v in start["state_dict"].items()})
        if opts.init:  # a run started from another model's weights owes them its start: count and name them
            self.inherited = dict(lineage(start), **{"from": os.path.basename(opts.init)})
            return
        self.opt.load_state_dict(start["optimizer"])
        if self.aux_opt is not None:
            self.aux_opt.load_state_dict(start["aux_optimizer"])
        self.sched.load_state_dict(start["scheduler"])
        self.done = int(start.get("iterations", 0))
        self.inherited = start.get("inherited")
        self.history = list(start.get("history", []))
        self.seconds = dict(start.get("device_seconds") or {"cpu": self.history[-1]["seconds"] if self.history
                                                             else 0.0, "gpu": 0.0})

    def snapshot(self, final: bool, corpus_facts: dict) -> dict:
        if final:
            self.net.update(force=True)
        opts = self.opts
        return {"format": FORMAT, "arch": opts.arch, "N": self.n, "M": self.m, "lambda": opts.lmbda,
                "lambda_range": list(self.net.lambdas) if hasattr(self.net, "lambdas") else None,
                "anchors": getattr(self.net, "anchors", None), "metric": opts.metric, "iterations": self.done,
                "inherited": self.inherited, "patch": opts.patch, "training_data": corpus_facts,
                "recipe": {k: getattr(opts, k) for k in ("patch", "batch", "lr", "warmup", "sixteen", "bf16")},
                "state_dict": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                "aux_optimizer": self.aux_opt.state_dict() if self.aux_opt else None,
                "scheduler": self.sched.state_dict(), "history": self.history, "device_seconds": self.seconds,
                "frozen_cdfs": final}


class Clock:
    """Wall seconds on the run's device and CPU seconds of this process, added to what a resumed run had."""

    def __init__(self, run: Run, device: torch.device):
        self.run, self.key = run, "gpu" if device.type == "cuda" else "cpu"
        self.run.seconds.setdefault("process_cpu", 0.0)
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def tick(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.run.seconds[self.key] += wall - self.wall
        self.run.seconds["process_cpu"] += cpu - self.cpu
        self.wall, self.cpu = wall, cpu


def train(opts: TrainOptions, progress=None, stop=None, observe=None) -> dict:
    """Train (or resume) and write opts.output; the final checkpoint's CDF tables are frozen (update(force=True)).
    `stop()` returning True ends the run early at the next step (a checkpoint is written); `observe(run)` is called
    after each validation (benchmarks measure the network there)."""
    start = read(opts.resume) if opts.resume else read(opts.init) if opts.init else None
    opts = settle(opts, start)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    torch.manual_seed(opts.seed)
    corpus = load_corpus(opts.data, opts.patch)
    facts = {"dirs": [os.path.abspath(d) for d in opts.data], "files": len(corpus.files),
             "planes": len(corpus.planes), "sixteen_bit_planes": int(corpus.sixteen.sum()),
             "validation_planes": len(corpus.validation)}
    run = Run(opts, start)
    device = torch.device(opts.device)
    run.net.to(device)
    _optimizer_to(run.opt, device)
    objective = Objective(run.net, opts)
    crops = validation_crops(corpus, opts.patch).to(device)
    rng = np.random.default_rng([opts.seed, run.done])
    batches = Batches(corpus, opts, rng)
    clock = Clock(run, device)
    peak_lr = opts.lr if run.done < opts.warmup else run.opt.param_groups[0]["lr"]
    try:
        while run.done < opts.iterations and not (stop and stop()):
            warm_up(run, opts, peak_lr)
            step(run, objective, torch.from_numpy(batches.next()).to(device), rng, opts, device)
            run.done += 1
            if run.done % opts.validate_every == 0 or run.done == opts.iterations:
                validate(run, objective, crops, clock)
                if observe:
                    observe(run)
            if progress:
                progress(run.done, opts.iterations, run.history[-1] if run.history else None)
            if run.done % opts.save_every == 0 and run.done < opts.iterations:
                atomic_save(_cpu(run.snapshot(False, facts)), opts.output)
    finally:
        batches.close()
    clock.tick()
    run.net.to("cpu")
    blob = run.snapshot(run.done >= opts.iterations, facts)
    atomic_save(_cpu(blob), opts.output)
    return blob


def warm_up(run: Run, opts: TrainOptions, peak_lr: float) -> None:
    """Linear learning-rate warm-up over the first `opts.warmup` steps, then the plateau schedule's rate."""
    if opts.warmup and run.done <= opts.warmup:
        for group in run.opt.param_groups:
            group["lr"] = peak_lr * min(1.0, (run.done + 1) / opts.warmup)


def validate(run: Run, objective: "Objective", crops: torch.Tensor, clock: Clock) -> None:
    run.net.eval()
    loss, points = objective.validate(crops)
    if run.done >= run.opts.warmup:
        run.sched.step(loss)
    clock.tick()
    run.history.append({"it": run.done, "loss": round(loss, 5), "points": points,
                        "lr": run.opt.param_groups[0]["lr"], "seconds": round(clock.run.seconds[clock.key], 1),
                        "cpu_seconds": round(run.seconds["process_cpu"], 1), "device": clock.key})


def step(run: Run, objective: Objective, x: torch.Tensor, rng, opts: TrainOptions, device) -> None:
    run.net.train()
    run.opt.zero_grad()
    if run.aux_opt is not None:
        run.aux_opt.zero_grad()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=opts.bf16):
        loss = objective.loss(x, rng)
    if not torch.isfinite(loss):
        raise MzcError(f"training diverged at step {run.done + 1} (loss is not finite); the last checkpoint in "
                       f"{opts.output} is kept: lower --lr or the lambda")
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.net.parameters(), 1.0)
    run.opt.step()
    if run.aux_opt is not None:
        run.net.aux_loss().backward()
        run.aux_opt.step()


def _optimizer_to(opt, device) -> None:
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v):
                state[k] = v.to(device)


def _cpu(obj):
    """Tensors of a checkpoint on the CPU, so that it loads anywhere."""
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_cpu(v) for v in obj]
    return obj
