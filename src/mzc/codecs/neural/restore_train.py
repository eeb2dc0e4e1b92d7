"""Train the restoration network (restore_net.py) on decoded/original pairs of 16-bit training planes, resumably.

    python -m mzc.codecs.neural.restore_train STATE_DIR [--data ../shared/data/train16] [--cpu-hours 2] [--export F]

Pairs: crops (up to 512^2, the size of a chunk's neighbourhood) of the 16-bit files of the training folder, coded by
mzc's own classic codecs (J2K, HTJ2K, AVIF, SPERR) at a ratio drawn log-uniformly in [40, 600] (the knob bisected
to it), then decoded - exactly what the stage sees after a decode. Never the evaluation set (../shared/data/*.tif).
Every 8th 16-bit file (by name) validates. Each crop is one "chunk": normalized by its decoded min..max, its
strength q from its own decode error, as the encoder does. The loss is the restored MSE relative to the decoded
MSE of its crop (the mean of 10^(-gain/10)), so that 50x and 500x pairs weigh alike.

State (pairs.npz, ckpt.pt, log.tsv) lives in STATE_DIR; a killed run resumes from its last checkpoint. The run stops
after --cpu-hours of its own CPU time (all runs of the state together) and exports integer weights with --export.
"""
from __future__ import annotations

import argparse
import glob
import math
import os
import time
import types

import numpy as np
import tifffile
import torch
import torch.nn.functional as F

from . import restore_net as rn


def _classes():
    from ..classic import AVIF, HTJ2K, J2K, SPERR
    return {cls.id: cls for cls in (J2K, HTJ2K, AVIF, SPERR)}


CODECS = tuple(_classes())
RATIOS = (40.0, 600.0)
CROP = 512
PATCH = 96
BATCH = 8
HELD_OUT_EVERY = 8


class RestoreNet(torch.nn.Module):
    """The float twin of restore_net.LAYERS: pad once by RADIUS (edge), valid dilated 3x3 convolutions, ReLU."""

    def __init__(self):
        super().__init__()
        self.convs = torch.nn.ModuleList(torch.nn.Conv2d(cin, cout, 3, dilation=d) for cin, cout, d in rn.LAYERS)
        torch.nn.init.zeros_(self.convs[-1].weight)  # starts as the identity: the decode itself
        torch.nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x):  # x: (N, 4, H + 2R, W + 2R) already padded
        for k, conv in enumerate(self.convs):
            x = conv(x)
            if k < len(self.convs) - 1:
                x = F.relu(x)
        return x


# ------------------------------------------------------------------------------------------------ pairs
def sixteen_bit_files(folder: str) -> list[str]:
    out = []
    for p in sorted(glob.glob(os.path.join(folder, "*.tif"))):
        with tifffile.TiffFile(p) as t:
            if t.series[0].dtype == np.uint16:
                out.append(p)
    return out


def _codec(cid: str, plane: np.ndarray):
    codec = _classes()[cid]()
    if hasattr(codec, "prepare"):  # AVIF maps the file's values into its 12 bits
        codec = codec.prepare(types.SimpleNamespace(min=float(plane.min()), range=float(plane.max() - plane.min())))
    return codec


def code_at_ratio(cid: str, crop: np.ndarray, file_plane: np.ndarray, ratio: float) -> np.ndarray:
    """The crop decoded after coding it at about `ratio` (knob bisected in 8 steps)."""
    codec = _codec(cid, file_plane)
    lo, hi = codec.knob_bounds
    if codec.restoration_family == 2:  # SPERR: bits per pixel set the size
        knob = 16.0 / ratio
        body, params = codec.with_knob(knob).encode(crop)
        return codec.with_knob(knob).decode(body, crop.shape, crop.dtype, params)
    budget = crop.nbytes / ratio
    log = getattr(codec, "knob_log", False)
    best = None
    for _ in range(8):
        k = math.sqrt(lo * hi) if log else (lo + hi) / 2
        c = codec.with_knob(k)
        body, params = c.encode(crop)
        if len(body) <= budget:
            best, lo = (c, body, params), k
        else:
            hi = k
    if best is None:
        best = (codec.with_knob(lo),) + codec.with_knob(lo).encode(crop)
    c, body, params = best
    return c.decode(body, crop.shape, crop.dtype, params)


def make_pairs(folder: str, path: str, per_codec: int = 3, seed: int = 0) -> None:
    """Write pairs.npz: orig, dec (uint16 crops, zero-padded to CROP), shape, family, q, validation flag."""
    rng = np.random.default_rng(seed)
    rows = []
    for n, p in enumerate(sixteen_bit_files(folder)):
        plane = tifffile.imread(p)
        plane = plane.reshape(-1, *plane.shape[-2:])[0]
        if plane.max() == plane.min():
            continue
        for cid in CODECS:
            for _ in range(per_codec):
                h, w = min(CROP, plane.shape[0]), min(CROP, plane.shape[1])
                y, x = rng.integers(0, plane.shape[0] - h + 1), rng.integers(0, plane.shape[1] - w + 1)
                crop = np.ascontiguousarray(plane[y: y + h, x: x + w])
                if crop.max() == crop.min():
                    continue
                ratio = float(np.exp(rng.uniform(*np.log(RATIOS))))
                dec = code_at_ratio(cid, crop, plane, ratio)
                rows.append((crop, dec, _classes()[cid].restoration_family, n % HELD_OUT_EVERY == 3, cid, ratio))
        print(f"pairs: {os.path.basename(p)} done ({len(rows)})", flush=True)
    orig = np.zeros((len(rows), CROP, CROP), np.uint16)
    dec = np.zeros_like(orig)
    shapes = np.zeros((len(rows), 2), np.int32)
    for k, r in enumerate(rows):
        h, w = r[0].shape
        orig[k, :h, :w], dec[k, :h, :w], shapes[k] = r[0], r[1], (h, w)
    np.savez(path + ".part.npz", orig=orig, dec=dec, shape=shapes, family=np.array([r[2] for r in rows]),
             val=np.array([r[3] for r in rows]), codec=np.array([r[4] for r in rows]),
             ratio=np.array([r[5] for r in rows]))
    os.replace(path + ".part.npz", path)


class Pairs:
    """Pairs as the network sees them (restore_net.features, in float), targets in error units 2^-p."""

    def __init__(self, path: str):
        z = np.load(path)
        self.orig, self.dec, self.shape = z["orig"], z["dec"], z["shape"]
        self.family, self.val, self.codec, self.ratio = z["family"], z["val"], z["codec"], z["ratio"]
        n = len(self.orig)
        self.q = np.zeros(n, np.int64)
        self.mse = np.ones(n)  # the whole crop's decode MSE in error units: the loss's scale
        self.img, self.target = [], []
        for k in range(n):
            h, w = self.shape[k]
            d, o = self.dec[k, :h, :w], self.orig[k, :h, :w]
            span = max(float(d.max()) - float(d.min()), 1.0)
            err = (o.astype(np.float64) - d) / span
            self.q[k] = rn.strength(float(np.sqrt(np.mean(err ** 2))))
            img, _, _ = rn.features(d, int(self.q[k])) if d.max() > d.min() else (np.zeros((2, h + 2 * rn.RADIUS,
                                                                                    w + 2 * rn.RADIUS)), 0, 0)
            self.img.append((img / (1 << rn.FA)).astype(np.float32))
            t = err * 2.0 ** rn.error_exponent(int(self.q[k]))
            self.target.append(t.astype(np.float32))
            self.mse[k] = max(float(np.mean(t ** 2)), 1e-6)

    def inputs(self, k: int, y: int, x: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(5, h + 2R, w + 2R) network input and (h, w) target residual for a window of pair k."""
        img = self.img[k][:, y: y + h + 2 * rn.RADIUS, x: x + w + 2 * rn.RADIUS]
        fam = self.family[k]
        const = [np.full_like(img[:1], v) for v in (self.q[k] / 64.0, float(fam == 1), float(fam == 2))]
        return np.concatenate([img] + const), self.target[k][y: y + h, x: x + w]

    def batch(self, rng, idx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xs, ts = [], []
        ks = rng.choice(idx, BATCH)
        for k in ks:
            hh, ww = self.shape[k]
            p = min(PATCH, hh, ww)
            y, x = rng.integers(0, hh - p + 1), rng.integers(0, ww - p + 1)
            a, t = self.inputs(k, y, x, p, p)
            if p < PATCH:  # small crops: pad the patch (target zero there is masked by the relative loss anyway)
                a = np.pad(a, ((0, 0), (0, PATCH - p), (0, PATCH - p)), mode="edge")
                t = np.pad(t, ((0, PATCH - p), (0, PATCH - p)))
            if rng.random() < 0.5:
                a, t = a[:, :, ::-1], t[:, ::-1]
            if rng.random() < 0.5:
                a, t = a[:, ::-1], t[::-1]
            xs.append(np.ascontiguousarray(a))
            ts.append(np.ascontiguousarray(t))
        scale = torch.tensor(self.mse[ks], dtype=torch.float32)
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ts))[:, None], scale


def relative_loss(net, x, t, scale):
    """Restored MSE over the crop's decoded MSE: per crop, not per patch (a flat patch decoded almost exactly
    would otherwise weigh a million times more and blow the first steps up)."""
    r = net(x)
    return (((r - t) ** 2).mean(dim=(1, 2, 3)) / scale).mean()


def validate(net, pairs: Pairs) -> dict:
    """Mean dB gain per codec over the held-out pairs (float network, gain 1)."""
    gains: dict[str, list[float]] = {}
    with torch.no_grad():
        for k in np.flatnonzero(pairs.val):
            h, w = pairs.shape[k]
            a, t = pairs.inputs(k, 0, 0, h, w)
            r = net(torch.from_numpy(np.ascontiguousarray(a))[None])[0, 0].numpy()
            g = 10 * np.log10(np.mean(t ** 2) / max(np.mean((r - t) ** 2), 1e-20))
            gains.setdefault(str(pairs.codec[k]), []).append(float(g))
    return {c: round(float(np.mean(v)), 3) for c, v in sorted(gains.items())}


# ------------------------------------------------------------------------------------------------ loop
def train(state: str, data: str, cpu_hours: float, steps: int) -> None:
    os.makedirs(state, exist_ok=True)
    pairs_path = os.path.join(state, "pairs.npz")
    if not os.path.exists(pairs_path):
        make_pairs(data, pairs_path)
    pairs = Pairs(pairs_path)
    train_idx = np.flatnonzero(~pairs.val)
    torch.manual_seed(0)
    net = RestoreNet()
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    ckpt, log = os.path.join(state, "ckpt.pt"), os.path.join(state, "log.tsv")
    step, cpu = 0, 0.0
    if os.path.exists(ckpt):
        blob = torch.load(ckpt, weights_only=False)
        net.load_state_dict(blob["net"])
        opt.load_state_dict(blob["opt"])
        step, cpu = blob["step"], blob["cpu_seconds"]
        print(f"resumed at step {step} ({cpu / 3600:.2f} CPU-hours)", flush=True)
    else:
        with open(log, "w") as fh:
            fh.write("step\tcpu_seconds\ttrain_loss\tval_gain_db\n")
    rng = np.random.default_rng(step + 1)
    t0, running = time.process_time(), []
    while step < steps and cpu + time.process_time() - t0 < cpu_hours * 3600:
        lr = 5e-4 * 0.5 * (1 + math.cos(math.pi * step / steps)) + 1e-5
        for g in opt.param_groups:
            g["lr"] = lr
        x, t, scale = pairs.batch(rng, train_idx)
        loss = relative_loss(net, x, t, scale)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        running.append(float(loss.detach()))
        step += 1
        if step % 100 == 0 or step == steps:
            elapsed = cpu + time.process_time() - t0
            val = validate(net, pairs) if step % 500 == 0 or step == steps else ""
            with open(log, "a") as fh:
                fh.write(f"{step}\t{elapsed:.0f}\t{np.mean(running):.5f}\t{val}\n")
            running = []
            blob = {"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "cpu_seconds": elapsed}
            torch.save(blob, ckpt + ".part")
            os.replace(ckpt + ".part", ckpt)
            print(f"step {step} loss {float(loss):.4f} cpu {elapsed:.0f}s {val}", flush=True)


def export(state: str, output: str) -> None:
    """Integer weights (restore_net.FW / FA scales) of the last checkpoint as the .npz the package ships, and its
    entry (sha256, recipe, CPU time, validation curve) in the zoo manifest's `restoration` list."""
    import hashlib
    import json
    blob = torch.load(os.path.join(state, "ckpt.pt"), weights_only=False)
    arrays = {}
    for k in range(len(rn.LAYERS)):
        w = blob["net"][f"convs.{k}.weight"].double().numpy()
        b = blob["net"][f"convs.{k}.bias"].double().numpy()
        arrays[f"w{k}"] = np.rint(w * 2 ** rn.FW).astype(np.int32)
        arrays[f"b{k}"] = np.rint(b * 2 ** (rn.FW + rn.FA)).astype(np.int64)
    rn.check_weights([(arrays[f"w{k}"], arrays[f"b{k}"]) for k in range(len(rn.LAYERS))])
    with open(output + ".part", "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(output + ".part", output)
    with open(output, "rb") as fh:
        data = fh.read()
    curve = []
    log = os.path.join(state, "log.tsv")
    if os.path.exists(log):
        with open(log) as fh:
            curve = [line.rstrip("\n").split("\t") for line in fh][1:]
    entry = {"name": os.path.basename(output)[:-4], "file": os.path.basename(output), "kind": "restoration",
             "layers": [list(x) for x in rn.LAYERS], "fa": rn.FA, "fw": rn.FW, "bytes": len(data),
             "sha256": hashlib.sha256(data).hexdigest(), "iterations": int(blob["step"]),
             "cpu_hours": round(blob["cpu_seconds"] / 3600, 2), "gpu_hours": 0.0,
             "recipe": {"patch": PATCH, "batch": BATCH, "lr": 5e-4, "schedule": "cosine", "crop": CROP,
                        "ratios": list(RATIOS), "codecs": list(CODECS), "loss": "MSE / crop's decode MSE"},
             "training_data": "../shared/data/train16: its 16-bit files, every 8th held out; never the evaluation "
                              "set (../shared/data/*.tif)",
             "validation": [row for row in curve if len(row) > 3 and row[3]]}
    mpath = os.path.join(os.path.dirname(output), "manifest.json")
    with open(mpath) as fh:
        manifest = json.load(fh)
    manifest["restoration"] = [m for m in manifest.get("restoration", []) if m["name"] != entry["name"]] + [entry]
    with open(mpath + ".part", "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    os.replace(mpath + ".part", mpath)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("state")
    ap.add_argument("--data", default="../shared/data/train16")
    ap.add_argument("--cpu-hours", type=float, default=2.0)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.export:
        export(args.state, args.export)
    else:
        train(args.state, args.data, args.cpu_hours, args.steps)


if __name__ == "__main__":
    main()
