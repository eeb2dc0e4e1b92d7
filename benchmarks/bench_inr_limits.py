"""Why the INR goal on 3-D data ("INR/hybrid PSNR above J2K-per-slice and SPERR-3D at 256x-512x") is not met on this
machine, and whether --guide segmentation changes segmentation agreement: four measurements.

  fit_time       the shipped grid field on the STP stack (channel 0, 30x510x667) at 512x with 60 s and 240 s fits
  rd_grid        a rate-constrained latent grid (Cool-chic-like prototype below: integer latents with a learned step
                 per level, a Laplace rate term, a lambda controller toward the budget, levels down to 4 px) against
                 the shipped field at the same real ratio and fit time
  sperr_hybrid   SPERR-3D at 80% / 90% of the budget + a grid field of its residual, against SPERR-3D alone
  guidance       unguided vs --guide segmentation at a fixed number of steps, 4 seeds: Cell Painting nuclei (2-D,
                 512x) and 10 planes of the STP stack (3-D, 256x); segmentation F1 against the original's

Run by hand (about 40 minutes, torch on one thread): python benchmarks/bench_inr_limits.py [part,...] ->
benchmarks/results/inr_limits.md, inr_limits.json (parts not named are kept from the json).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
import torch
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, machine, psnr_data_range, write_md
from mzc.analysis.segmentation import match, segment
from mzc.codecs.neural.field import evaluate, unpack
from mzc.codecs.neural.field_fit import FitOptions, fit
from mzc.codecs.neural.inr import Inr

PARTS = ("fit_time", "rd_grid", "sperr_hybrid", "guidance")
OUT_JSON = RESULTS / "inr_limits.json"


def stp_ch0() -> np.ndarray:
    return tifffile.imread(DATA / "stack3d_stp_brain_u16.tif")[:, 0]


def field_decode(body: bytes) -> np.ndarray:
    f = unpack(body)
    u = evaluate(f, [np.arange(n, dtype=np.float32) for n in f.extent]).astype(np.float64)
    return u * f.scale + f.offset


def fit_field(values: np.ndarray, budget: float, seconds: float) -> tuple[bytes, np.ndarray]:
    lo, span = float(values.min()), max(float(values.max() - values.min()), 1.0)
    body = fit(((values - lo) / span).astype(np.float32), FitOptions(budget, "grid", 10 ** 9, seconds), lo, span)
    return body, field_decode(body)


def as_values(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 65535)


# ------------------------------------------------------------------ fit_time
def part_fit_time() -> list[dict]:
    a = stp_ch0()
    rows = []
    for seconds in (60, 240):
        t = time.perf_counter()
        body, dec = fit_field(a.astype(np.float32), a.nbytes / 512, seconds)
        rows.append({"fit_s": seconds, "ratio": round(a.nbytes / len(body), 1),
                     "psnr": round(psnr_data_range(a, as_values(dec)), 2), "wall_s": round(time.perf_counter() - t)})
        print(rows[-1], flush=True)
    return rows


# ------------------------------------------------------------------ rd_grid (prototype, not shipped)
class LatentGrid:
    """Integer latents y_l (features = y_l * step_l) on levels of `finest` * 2^k px, ReLU MLP 16-16, trained with
    distortion + lambda * (Laplace bits of y + uniform noise) / pixels; lambda steered toward the byte budget."""

    def __init__(self, extent, finest: float, features: int = 2, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.extent = extent
        self.cells = [finest * 2 ** k for k in range(8) if finest * 2 ** k <= max(extent) / 2]
        nodes = [[int(math.ceil(n / c - 1e-9)) + 1 for n in extent] for c in self.cells]
        self.grids = [torch.tensor(rng.uniform(-1e-2, 1e-2, (features, *nd)), dtype=torch.float32,
                                   requires_grad=True) for nd in nodes]
        self.log_step = torch.full((len(self.cells),), math.log(2e-3), requires_grad=True)
        self.log_b = torch.zeros((len(self.cells), features), requires_grad=True)
        fan, self.mlp = features * len(self.cells), []
        for width in (16, 16, 1):
            bound = math.sqrt(6 / fan)
            self.mlp += [torch.tensor(rng.uniform(-bound, bound, (fan, width)), dtype=torch.float32,
                                      requires_grad=True), torch.zeros(width, requires_grad=True)]
            fan = width
        self.rng = rng

    def latents(self, li: int, mode: str):
        y = self.grids[li] / torch.exp(self.log_step[li])
        if mode == "noise":
            return y + torch.empty_like(y).uniform_(-0.5, 0.5)
        if mode == "ste":
            return y + (torch.round(y) - y).detach()
        return torch.round(y)

    def forward(self, sl, mode: str):
        feats = []
        for li, c in enumerate(self.cells):
            v = self.latents(li, mode) * torch.exp(self.log_step[li])
            mats = []
            for axis, s in enumerate(sl):
                pos = np.arange(s.start, s.stop, dtype=np.float32)
                g = (pos + 0.5) / c
                n_nodes = v.shape[axis + 1]
                i0 = np.clip(np.floor(g), 0, n_nodes - 2).astype(np.int64)
                t = np.clip(g - i0, 0, 1).astype(np.float32)
                first, last = int(i0.min()), int(i0.max()) + 2
                m = np.zeros((len(pos), last - first), np.float32)
                m[np.arange(len(pos)), i0 - first] = 1 - t
                m[np.arange(len(pos)), i0 + 1 - first] += t
                v = v.narrow(axis + 1, first, last - first)
                mats.append(torch.from_numpy(m))
            for axis, m in enumerate(mats):
                v = torch.tensordot(v, m, dims=([axis + 1], [1])).movedim(-1, axis + 1)
            feats.append(v.reshape(v.shape[0], -1))
        x = torch.cat(feats, 0).T
        for i in range(0, len(self.mlp), 2):
            x = x @ self.mlp[i] + self.mlp[i + 1]
            if i < len(self.mlp) - 2:
                x = torch.relu(x)
        return x[:, 0]

    def bits(self, mode: str):
        total = 0
        for li in range(len(self.cells)):
            y = self.latents(li, mode)
            b = torch.exp(self.log_b[li]).reshape(-1, *([1] * (y.dim() - 1)))

            def cdf(x):
                return 0.5 + 0.5 * torch.sign(x) * (1 - torch.exp(-torch.abs(x) / b))
            total = total + (-torch.log2((cdf(y + 0.5) - cdf(y - 0.5)).clamp_min(1e-9))).sum()
        return total

    def coded_bytes(self) -> int:
        """zstd of the zigzagged integer latents (one byte each, clipped) + float16 MLP and steps."""
        out = 0
        for li in range(len(self.cells)):
            q = self.latents(li, "round").detach().to(torch.int64).numpy()
            z = np.clip(np.where(q >= 0, 2 * q, -2 * q - 1), 0, 255).astype(np.uint8)
            out += len(zstandard.ZstdCompressor(level=19).compress(z.tobytes()))
        return out + 2 * sum(p.numel() for p in self.mlp) + 2 * len(self.cells) * 3


def rd_grid_fit(a: np.ndarray, budget: float, seconds: float, finest: float = 4.0) -> tuple[int, np.ndarray]:
    lo, span = float(a.min()), float(a.max() - a.min())
    target = torch.from_numpy(((a - lo) / span).astype(np.float32))
    net = LatentGrid(a.shape, finest)
    box = list(a.shape)
    while math.prod(box) > 1 << 18:
        k = int(np.argmax(box))
        box[k] //= 2
    opt = torch.optim.Adam([{"params": net.grids, "lr": 2e-2}, {"params": [net.log_step], "lr": 1e-2},
                            {"params": net.mlp, "lr": 5e-3}, {"params": [net.log_b], "lr": 2e-2}])
    base = [g["lr"] for g in opt.param_groups]
    target_bits = budget * 8 * 0.97 - 16 * sum(p.numel() for p in net.mlp)
    log_lam, n_pix, step, t0 = math.log(1e-4), a.size, 0, time.perf_counter()
    while (p := (time.perf_counter() - t0) / seconds) < 1:
        for g, lr in zip(opt.param_groups, base):
            g["lr"] = lr * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * p)))
        starts = [int(net.rng.integers(0, n - b + 1)) for n, b in zip(a.shape, box)]
        sl = tuple(slice(s, s + b) for s, b in zip(starts, box))
        pred = net.forward(sl, "ste" if p > 0.3 else "noise")
        loss = ((pred - target[sl].reshape(-1)) ** 2).mean() + math.exp(log_lam) * net.bits("noise") / n_pix
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 5 == 0:
            with torch.no_grad():
                log_lam += 0.1 * math.log(max(float(net.bits("round")), 1.0) / target_bits)
        step += 1
    with torch.no_grad():
        for i in range(len(net.mlp)):
            net.mlp[i].copy_(net.mlp[i].half().float())
        out = np.empty(a.shape, np.float64)
        for z in range(a.shape[0]):
            sl = (slice(z, z + 1), slice(0, a.shape[1]), slice(0, a.shape[2]))
            out[z] = net.forward(sl, "round").reshape(a.shape[1:]).numpy() * span + lo
        return net.coded_bytes(), out


def part_rd_grid() -> list[dict]:
    torch.manual_seed(0)
    a = stp_ch0()
    nbytes, dec = rd_grid_fit(a.astype(np.float32), a.nbytes / 512, 60)
    ratio = a.nbytes / nbytes
    rows = [{"variant": "rate-constrained latent grid (prototype)", "fit_s": 60, "ratio": round(ratio, 1),
             "psnr": round(psnr_data_range(a, as_values(dec)), 2)}]
    print(rows[-1], flush=True)
    body, dec = fit_field(a.astype(np.float32), a.nbytes / ratio, 60)  # the shipped field at that real ratio
    rows.append({"variant": "shipped grid field", "fit_s": 60, "ratio": round(a.nbytes / len(body), 1),
                 "psnr": round(psnr_data_range(a, as_values(dec)), 2)})
    print(rows[-1], flush=True)
    return rows


# ------------------------------------------------------------------ sperr_hybrid
def sperr_at(a: np.ndarray, nbytes: float) -> tuple[int, np.ndarray]:
    lo, hi = 1e-3, 10.0
    for _ in range(30):
        mid = math.sqrt(lo * hi)
        if len(imagecodecs.sperr_encode(a.astype(np.float64), mode="bpp", level=mid)) > nbytes:
            hi = mid
        else:
            lo = mid
    b = imagecodecs.sperr_encode(a.astype(np.float64), mode="bpp", level=lo)
    return len(b), as_values(imagecodecs.sperr_decode(b, shape=a.shape, dtype=np.float64))


def part_sperr_hybrid() -> list[dict]:
    a = stp_ch0()
    rows = []
    for ratio in (256, 512):
        total = a.nbytes / ratio
        n, dec = sperr_at(a, total)
        rows.append({"ratio_target": ratio, "variant": "SPERR-3D alone", "ratio": round(a.nbytes / n, 1),
                     "psnr": round(psnr_data_range(a, dec), 2)})
        print(rows[-1], flush=True)
        for share in (0.9, 0.8):
            n, dec = sperr_at(a, total * share)
            body, res = fit_field((a - dec).astype(np.float32), total - n, 60)
            rows.append({"ratio_target": ratio, "variant": f"SPERR-3D at {share:.0%} + field (60 s)",
                         "ratio": round(a.nbytes / (n + len(body)), 1),
                         "psnr_base": round(psnr_data_range(a, dec), 2),
                         "psnr": round(psnr_data_range(a, as_values(dec + res)), 2)})
            print(rows[-1], flush=True)
    return rows


# ------------------------------------------------------------------ guidance
def f1_of(original: np.ndarray, decoded: np.ndarray) -> float:
    tp = n_ref = n_test = 0
    for p0, p1 in zip(original.reshape(-1, *original.shape[-2:]), decoded.reshape(-1, *decoded.shape[-2:])):
        m = match(segment(p0), segment(p1))
        tp, n_ref, n_test = tp + m.pairs.shape[1], n_ref + m.n_ref, n_test + m.n_test
    precision, recall = tp / max(n_test, 1), tp / max(n_ref, 1)
    return 2 * precision * recall / max(precision + recall, 1e-12)


def part_guidance() -> list[dict]:
    cases = [("Cell Painting nuclei (2-D)", tifffile.imread(DATA / "multichannel_bbbc022_u16.tif")[0], 512),
             ("STP planes 10-19 (3-D)", stp_ch0()[10:20], 256)]
    rows = []
    for name, a, ratio in cases:
        for guide in (None, "segmentation"):
            for seed in range(4):
                codec = Inr(bpe=a.dtype.itemsize / ratio, steps=600, guide=guide, seed=seed)
                body, params = codec.encode(a)
                dec = codec.decode(body, a.shape, a.dtype, params)
                rows.append({"data": name, "ratio_target": ratio, "guide": guide or "-", "seed": seed,
                             "ratio": round(a.nbytes / len(body), 1), "psnr": round(psnr_data_range(a, dec), 2),
                             "f1": round(f1_of(a, dec), 4)})
                print(rows[-1], flush=True)
    return rows


def report(results: dict) -> list[str]:
    lines = [f"{machine()}. `python benchmarks/bench_inr_limits.py`; torch on one thread; PSNR on the data range; "
             "STP = channel 0 of the STP brain stack (30x510x667).",
             "What was tried against the 3-D goal (INR/hybrid above J2K-per-slice and SPERR-3D at 256x-512x) and "
             "whether guidance changes segmentation agreement."]
    if "fit_time" in results:
        lines += ["", "## Fit time: shipped grid field, STP, 512x", "", "| fit s | real ratio | PSNR dB |",
                  "|---|---|---|"]
        lines += [f"| {r['fit_s']} | {r['ratio']} | {r['psnr']} |" for r in results["fit_time"]]
    if "rd_grid" in results:
        lines += ["", "## Rate-constrained latent grid (prototype) vs the shipped field, STP, 60 s fits", "",
                  "| variant | real ratio | PSNR dB |", "|---|---|---|"]
        lines += [f"| {r['variant']} | {r['ratio']} | {r['psnr']} |" for r in results["rd_grid"]]
    if "sperr_hybrid" in results:
        lines += ["", "## SPERR-3D base + a field of its residual, STP", "",
                  "| target | variant | real ratio | base PSNR dB | PSNR dB |", "|---|---|---|---|---|"]
        lines += [f"| {r['ratio_target']}x | {r['variant']} | {r['ratio']} | {r.get('psnr_base', '-')} | "
                  f"{r['psnr']} |" for r in results["sperr_hybrid"]]
    if "guidance" in results:
        lines += ["", "## Guidance at a fixed 600 steps, 4 seeds", "",
                  "| data | target | guide | seed | real ratio | PSNR dB | seg F1 |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['data']} | {r['ratio_target']}x | {r['guide']} | {r['seed']} | {r['ratio']} | {r['psnr']} | "
                  f"{r['f1']} |" for r in results["guidance"]]
        lines += ["", "| data | guide | mean F1 | min | max |", "|---|---|---|---|---|"]
        for name in dict.fromkeys(r["data"] for r in results["guidance"]):
            for guide in ("-", "segmentation"):
                f1 = [r["f1"] for r in results["guidance"] if r["data"] == name and r["guide"] == guide]
                lines.append(f"| {name} | {guide} | {np.mean(f1):.3f} | {min(f1):.3f} | {max(f1):.3f} |")
    return lines


def main() -> None:
    torch.set_num_threads(1)
    parts = sys.argv[1].split(",") if len(sys.argv) > 1 else list(PARTS)
    results = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {}
    for part in parts:
        results[part] = globals()[f"part_{part}"]()
        OUT_JSON.write_text(json.dumps(results, indent=1))
        write_md("inr_limits.md", "Limits of the neural fields on this machine", report(results))


if __name__ == "__main__":
    main()
