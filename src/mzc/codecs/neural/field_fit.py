"""Fit a neural field to one chunk under a byte budget (PyTorch, CPU): Adam with a cosine schedule and a wall-clock
budget, then quantization to the budget and a short quantization-aware fine-tune.

The grid network trains on tensor-product boxes: interpolation along each axis is a small dense matrix, so a box of
a million pixels costs three matrix products instead of a million gathers (measured ~10x faster per step than
sampling random points through grid_sample). The SIREN (INIF-faithful) trains on random pixel batches, as INIF does.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ...errors import MzcError
from ...progress import advance
from .field import Field, count_params, grid_nodes, pack, param_shapes, quantize, row_steps

GRID_FEATURES = 2
GRID_LEVELS = 4
GRID_HIDDEN = (16, 16)
SIREN_DEPTH = 3
BOX_ELEMENTS = 1 << 18      # grid: pixels per training step (measured: 2^18 reaches a PSNR ~3x sooner than 2^20)
SIREN_BATCH = 1 << 15       # siren: random pixels per step
BITS_PER_PARAM = {"grid": 3.0, "siren": 6.0}  # first guess of coded bits per parameter, to size the network
QAT_FRACTION = 0.15         # of the fit's steps: the quantization-aware fine-tune
QAT_RETUNE = 0.03           # a second (third) fine-tune, only when the first grew the stream past the budget
QAT_SECONDS = (0.12, 0.015, 0.015)  # under a time budget, the same three inside the last 15% of it
GRID_LR, MLP_LR, SIREN_LR = 1e-2, 5e-3, 1e-4  # Adam, cosine-decayed to 3% (grid: 1e-2 measured best of 5e-3..1e-1)
DEFAULT_STEPS = {"grid": 2000, "siren": 2000}  # the most a fit runs; its time budget usually stops it first
MAIN_SHARE = 0.85  # of a fit's progress: the main fit; the quantization-aware fine-tunes are the rest
FIELD_HEADER_BYTES = 120     # msgpack keys and values of a stored field besides its steps and weights
BUDGET_FILL = 0.985         # aim just under the byte budget: the fine-tune may grow the coded size a little


@dataclass
class FitOptions:
    budget_bytes: float
    net: str = "grid"
    steps: int | None = None
    seconds: float | None = None
    weights: np.ndarray | None = None  # per-pixel loss weights (guidance), same shape as the chunk, mean ~1
    seed: int = 0


# ------------------------------------------------------------------ architecture from the budget
def grid_layout(extent: tuple[int, ...], budget_bytes: float) -> tuple[tuple[float, ...], int, tuple[int, ...]]:
    """Cell sizes (coarse to fine) whose grid fills the budget at BITS_PER_PARAM['grid'], after what every field
    pays whatever its grid: the MLP (quantized 8x finer, about a byte a weight), a float16 step per row and the
    map's keys. At 1-2 KB that overhead is half the budget; counting it at 3 bits a weight left the quantizer a
    step of 1.4x the rows' RMS (brightfield at 500x and 1000x: 24.2 and 12.2 dB; with it 25.8 and 21.9 dB)."""
    def mlp_params(levels: int) -> int:
        fan, total = GRID_FEATURES * levels, 0
        for width in (*GRID_HIDDEN, 1):
            total, fan = total + fan * width + width, width
        return total

    rows = GRID_FEATURES * GRID_LEVELS + 2 * (sum(GRID_HIDDEN) + 1)
    overhead = mlp_params(GRID_LEVELS) + 2 * rows + FIELD_HEADER_BYTES
    target = max(budget_bytes - overhead, budget_bytes / 4) * 8 / BITS_PER_PARAM["grid"]

    def layout(c: float) -> tuple[float, ...]:
        cells = [c * 2 ** k for k in range(GRID_LEVELS)]
        kept = [x for x in cells if x <= max(extent) / 2] or [cells[0]]
        return tuple(sorted(kept, reverse=True))

    def params(c: float) -> int:  # grid nodes only
        cells = layout(c)
        return count_params(Field("grid", extent, 0, 1, cells, GRID_FEATURES, GRID_HIDDEN)) - mlp_params(len(cells))

    lo, hi = 0.5, float(max(extent))
    if params(hi) > target:
        return layout(hi), GRID_FEATURES, GRID_HIDDEN
    for _ in range(40):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if params(mid) > target else (lo, mid)
    return layout(hi), GRID_FEATURES, GRID_HIDDEN


def siren_widths(ndim: int, budget_bytes: float) -> tuple[int, ...]:
    target = budget_bytes * 8 / BITS_PER_PARAM["siren"]
    h = 2
    while True:
        f = Field("siren", (1,) * ndim, 0, 1, widths=(h + 1,) * SIREN_DEPTH, omegas=(30.0,) * SIREN_DEPTH)
        if count_params(f) > target:
            break
        h += 1
    return (h,) * SIREN_DEPTH


# ------------------------------------------------------------------ torch models
def _torch():
    try:
        import torch
    except ImportError:
        from ...extras import install_hint
        raise MzcError(f"encoding with the inr codec needs PyTorch: {install_hint('learned')} "
                       "(decoding needs numpy only)") from None
    return torch


def warm_up() -> None:
    """Import PyTorch and the part of it Adam loads on first use (torch._dynamo: ~2 s), so that fits forked after
    this pay neither inside their time budget."""
    _torch()
    import torch._dynamo  # noqa: F401


def interp_matrix(torch, positions: np.ndarray, n_nodes: int, cell: float):
    """Dense (len(positions), n_nodes) linear-interpolation matrix, same arithmetic as neural_field._lerp_axis."""
    g = (positions.astype(np.float32) + np.float32(0.5)) / np.float32(cell)
    i0 = np.clip(np.floor(g), 0, n_nodes - 2).astype(np.int64)
    t = np.clip(g - i0.astype(np.float32), 0, 1).astype(np.float32)
    a = np.zeros((len(positions), n_nodes), np.float32)
    rows = np.arange(len(positions))
    a[rows, i0] = 1 - t
    a[rows, i0 + 1] += t
    return torch.from_numpy(a)


class _Model:
    """The trainable parameters of a Field plus a forward pass; kept torch-free at import time."""

    def __init__(self, torch, f: Field, init_mean: float, rng: np.random.Generator):
        self.torch, self.f = torch, f
        shapes = param_shapes(f)
        self.params = []
        n_grids = len(f.cells) if f.net == "grid" else 0
        for i, shape in enumerate(shapes):
            if i < n_grids:
                p = rng.uniform(-1e-2, 1e-2, shape)
            elif len(shape) == 2:
                fan_in = shape[0]
                if f.net == "siren":
                    layer = (i - n_grids) // 2
                    bound = 1 / fan_in if layer == 0 else math.sqrt(6 / fan_in) / 30  # SIREN's initialisation
                else:
                    bound = math.sqrt(6 / fan_in)
                p = rng.uniform(-bound, bound, shape)
            else:
                p = np.zeros(shape)
                if i == len(shapes) - 1:
                    p[:] = init_mean
            self.params.append(torch.tensor(p, dtype=torch.float32, requires_grad=True))
        self.omegas = [torch.tensor(w, dtype=torch.float32, requires_grad=True) for w in f.omegas]
        self.n_grids = n_grids

    def mlp(self, x, params):
        torch = self.torch
        layers = list(zip(params[self.n_grids::2], params[self.n_grids + 1::2]))
        for li, (w, b) in enumerate(layers):
            x = x @ w + b
            if li < len(layers) - 1:
                x = torch.sin(self.omegas[li] * x) if self.f.net == "siren" else torch.relu(x)
        return x[:, 0]

    def box(self, mats, params):
        """Field values on a tensor-product box; mats[l][axis] is level l's interpolation matrix along that axis."""
        torch = self.torch
        feats = []
        for g, axis_mats in zip(params[:self.n_grids], mats):
            v = g  # (F, nodes_0, nodes_1[, nodes_2])
            for axis, a in enumerate(axis_mats):
                v = torch.tensordot(v, a, dims=([axis + 1], [1])).movedim(-1, axis + 1)
            feats.append(v.reshape(v.shape[0], -1))
        return self.mlp(torch.cat(feats, 0).T, params)

    def points(self, coords, params):
        return self.mlp(coords, params)


def _fake_quant(torch, params, steps, n_grids):
    """Straight-through rounding to the fixed per-row steps."""
    out = []
    for i, (p, st) in enumerate(zip(params, steps)):
        s = torch.from_numpy(st)
        s = s.reshape((-1,) + (1,) * (p.dim() - 1)) if i < n_grids else s.reshape((1,) * (p.dim() - 1) + (-1,))
        q = torch.round(p / s) * s
        out.append(p + (q - p).detach())
    return out


# ------------------------------------------------------------------ fitting
def new_field(extent: tuple[int, ...], opts: FitOptions, offset: float, scale: float) -> Field:
    """The network layout the byte budget affords."""
    if opts.net == "grid":
        cells, features, widths = grid_layout(extent, opts.budget_bytes)
        return Field("grid", extent, offset, scale, cells, features, widths)
    if opts.net == "siren":
        widths = siren_widths(len(extent), opts.budget_bytes)
        return Field("siren", extent, offset, scale, widths=widths, omegas=(30.0,) * len(widths))
    raise MzcError(f"unknown inr network {opts.net!r}: choose grid or siren")


class _Fit:
    """One fit: the model, its optimizer and sampler, and a training loop with a cosine schedule over either a
    number of steps or a wall-clock share of the time budget."""

    def __init__(self, u: np.ndarray, opts: FitOptions, offset: float, scale: float):
        torch = self.torch = _torch()
        torch.manual_seed(opts.seed)
        rng = np.random.default_rng(opts.seed)
        self.opts = opts
        self.f = new_field(tuple(u.shape), opts, offset, scale)
        self.model = _Model(torch, self.f, float(u.mean()), rng)
        self.target = torch.from_numpy(np.ascontiguousarray(u, np.float32))
        self.weights = None if opts.weights is None else torch.from_numpy(np.ascontiguousarray(opts.weights,
                                                                                             np.float32))
        self.steps = opts.steps or DEFAULT_STEPS[self.f.net]
        extent = tuple(u.shape)
        self.sampler = _BoxSampler(extent, self.f, rng, torch) if self.f.net == "grid" else \
            _PointSampler(extent, rng, torch)
        model = self.model
        groups = [{"params": model.params[:model.n_grids], "lr": GRID_LR},
                  {"params": model.params[model.n_grids:] + model.omegas,
                   "lr": MLP_LR if self.f.net == "grid" else SIREN_LR}]
        self.opt = torch.optim.Adam([g for g in groups if g["params"]])
        self.base_lr = [g["lr"] for g in self.opt.param_groups]
        self.started = time.perf_counter()

    def progress(self, step: int, total: int, seconds: float | None) -> float:
        p = step / total
        if seconds:
            p = max(p, (time.perf_counter() - self.started) / seconds)
        return p

    def run(self, n_steps: int, seconds: float | None, quant_steps=None, lr_scale: float = 1.0,
            share: tuple[float, float] = (0.0, 1.0)) -> None:
        """Adam with a cosine-decayed rate (to 3%); with quant_steps, straight-through quantization in the loop.
        `share`: where this phase sits in the whole fit, for progress reports."""
        model, torch = self.model, self.torch
        self.started = time.perf_counter() if quant_steps is not None else self.started
        step = 0
        while (p := self.progress(step, n_steps, seconds)) < 1:
            for g, lr in zip(self.opt.param_groups, self.base_lr):
                g["lr"] = lr * lr_scale * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * p)))
            params = model.params if quant_steps is None else _fake_quant(torch, model.params, quant_steps,
                                                                          model.n_grids)
            pred, ref, w = self.sampler.batch(model, params, self.target, self.weights)
            err = (pred - ref) ** 2
            loss = (err * w).mean() if w is not None else err.mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if not math.isfinite(loss.item()):
                raise MzcError("inr fit diverged (loss is not finite)")
            step += 1
            if step % 16 == 0:
                advance(share[0] + (share[1] - share[0]) * p)

    def values(self) -> list[np.ndarray]:
        return [p.detach().numpy().astype(np.float32) for p in self.model.params]

    def steps_for_budget(self, values) -> list[np.ndarray]:
        s = _step_for_budget(self.f, values, self.opts.budget_bytes * BUDGET_FILL)
        return row_steps(values, self.f.net, self.model.n_grids, s)

    def quantized(self) -> bytes:
        """Quantize to the byte budget with quantization-aware fine-tunes: when a fine-tune grew the stream past
        the budget, re-quantize and fine-tune at that step too (re-quantizing a fine-tuned field without it cost
        3.7 dB on brightfield at 64x, more than the whole fine-tune gains)."""
        budget_s = self.opts.seconds
        values = self.values()
        qsteps = self.steps_for_budget(values)
        for share, seconds in zip((QAT_FRACTION, QAT_RETUNE, QAT_RETUNE), QAT_SECONDS):
            self.run(max(1, int(self.steps * share)), budget_s * seconds if budget_s else None, qsteps, 0.2,
                     (MAIN_SHARE, 1.0))
            values = self.values()
            self.f.omegas = tuple(float(w.detach()) for w in self.model.omegas)
            body = _packed(self.f, values, qsteps, self.model.n_grids)
            if len(body) <= self.opts.budget_bytes:
                return body
            qsteps = self.steps_for_budget(values)
        return _packed(self.f, values, qsteps, self.model.n_grids)


def fit(u: np.ndarray, opts: FitOptions, offset: float, scale: float) -> bytes:
    """Fit normalised values u (2-D or 3-D float32 in ~[0, 1]) and return the packed field within budget_bytes."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(fit_threads(threads))
    try:
        job = _Fit(u, opts, offset, scale)
        job.run(job.steps, opts.seconds * (1 - sum(QAT_SECONDS)) if opts.seconds else None,
                share=(0.0, MAIN_SHARE))
        return job.quantized()
    finally:
        torch.set_num_threads(threads)


def fit_threads(threads: int) -> int:
    """One thread in a pool worker (the pool already uses every core); else the cores nobody else is using. A fit
    on more OpenMP threads than idle cores spins: measured 50 steps of a 256^2 field in 48 s on 2 threads with two
    other busy processes, 7 s on one."""
    import multiprocessing
    import os
    if multiprocessing.parent_process() is not None:
        return 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(threads, (os.cpu_count() or 1) - int(round(busy))))


def _packed(f: Field, values, steps, n_grids) -> bytes:
    ints = quantize(values, steps, n_grids)
    return pack(f, steps, ints)


def _step_for_budget(f: Field, values, budget: float) -> float:
    """The finest quantization step (relative to each row's RMS) whose packed field fits the budget."""
    n_grids = len(f.cells) if f.net == "grid" else 0

    def size(s: float) -> int:
        return len(_packed(f, values, row_steps(values, f.net, n_grids, s), n_grids))

    lo, hi = 1e-3, 4.0  # in units of RMS: 1e-3 is nearly float, 4 leaves most weights at zero
    if size(hi) > budget:
        return hi
    if size(lo) <= budget:
        return lo
    for _ in range(18):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if size(mid) <= budget else (mid, hi)
        if hi / lo < 1.02:
            break
    return hi


class _BoxSampler:
    """Random tensor-product boxes of at most BOX_ELEMENTS pixels (the whole chunk when it is smaller)."""

    def __init__(self, extent, f: Field, rng, torch):
        self.extent, self.f, self.rng, self.torch = extent, f, rng, torch
        box = list(extent)
        while math.prod(box) > BOX_ELEMENTS:
            k = int(np.argmax(box))
            box[k] = max(1, box[k] // 2)
        self.box = box
        self.full = box == list(extent)
        self._cache = None

    def batch(self, model, params, target, weights):
        torch = self.torch
        if self.full and self._cache is not None:
            mats = self._cache
            sl = tuple(slice(0, n) for n in self.extent)
        else:
            starts = [int(self.rng.integers(0, n - b + 1)) for n, b in zip(self.extent, self.box)]
            sl = tuple(slice(s, s + b) for s, b in zip(starts, self.box))
            mats = [[interp_matrix(torch, np.arange(s.start, s.stop, dtype=np.float32), grid_nodes(n, c), c)
                     for s, n in zip(sl, self.extent)] for c in self.f.cells]
            if self.full:
                self._cache = mats
        pred = model.box(mats, params)
        ref = target[sl].reshape(-1)
        w = weights[sl].reshape(-1) if weights is not None else None
        return pred, ref, w


class _PointSampler:
    """Random pixel batches, coordinates normalised to [-1, 1] at pixel centres (as neural_field.evaluate)."""

    def __init__(self, extent, rng, torch):
        self.extent, self.rng, self.torch = extent, rng, torch
        self.n = math.prod(extent)

    def batch(self, model, params, target, weights):
        torch = self.torch
        idx = self.rng.integers(0, self.n, min(SIREN_BATCH, self.n))
        pos = np.unravel_index(idx, self.extent)
        coords = np.stack([(2 * (p.astype(np.float32) + 0.5) / n - 1) for p, n in zip(pos, self.extent)], 1)
        pred = model.points(torch.from_numpy(coords.astype(np.float32)), params)
        t = torch.from_numpy(idx)
        ref = target.reshape(-1)[t]
        w = weights.reshape(-1)[t] if weights is not None else None
        return pred, ref, w
