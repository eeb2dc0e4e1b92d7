"""Learned codecs against classic ones on the 16-bit evaluation images, at equal real ratios; and what mzc's
container, tiling and determinism guard cost against bare CompressAI compress()/decompress().

For each file: every shipped model (its rate point gives a real .mzc ratio), then J2K, AVIF and SPERR through
mzc's imagecodecs back ends at exactly that ratio (-q Rx, real file) and at 20/50/100/200x. Learned PSNR at the round
ratios is interpolated linearly in log(ratio) between the two nearest rate points (marked ~; never extrapolated).
Speed: 1 worker, torch on 2 threads, wall time; MB/s of raw pixels. `bare` runs the same network's own CompressAI
compress()/decompress() on the same planes (padded to 64), without container, tiling, float64 entropy path or CRCs.
Stacks are sub-sampled in memory (STP: z 12-15, both channels; migration: first 16 frames) to keep the run short.

usage: python benchmarks/bench_learned.py            (writes benchmarks/results/learned.{md,json,png})
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from bench_scale import peak_rss
from common import DATA, RESULTS, machine, write_md
from mzc.codecs.neural import zoo
from mzc.codecs.neural.architectures import build
from mzc.codecs.neural.coding import PlaneCoder
from mzc.codecs.neural.modelfile import net_from, read
from mzc.errors import MzcError

FILES = {
    "nuclei2d_hoechst_u16.tif": None,
    "foci2d_h2ax_u16.tif": None,
    "multichannel_bbbc022_u16.tif": None,
    "brightfield_bbbc010_u16.tif": None,
    "stack3d_stp_brain_u16.tif": (slice(12, 16),),
    "timelapse_cellmigration_u16.tif": (slice(0, 16),),
}
CLASSIC = ["j2k", "avif", "sperr"]
RATIOS = [20, 50, 100, 200]


def subset(name: str, folder: Path) -> tuple[Path, np.ndarray]:
    with tifffile.TiffFile(DATA / name) as tif:
        data = tif.asarray()
        axes = tif.series[0].axes
    cut = FILES[name]
    if cut is not None:
        data = data[cut]
    path = folder / name
    tifffile.imwrite(path, data, metadata={"axes": axes}, photometric="minisblack")
    return path, data


def encode(path: Path, out: Path, **opts) -> dict:
    t = time.perf_counter()
    rep = mzc.encode(str(path), str(out), workers=1, **opts)
    rep["wall_encode"] = time.perf_counter() - t
    t = time.perf_counter()
    mzc.open(str(out)).read()
    rep["wall_decode"] = time.perf_counter() - t
    return rep


def bare_speed(model_name: str, data: np.ndarray) -> tuple[float, float, int]:
    """CompressAI's own compress()/decompress() on the same planes (min/max mapped, padded to 64)."""
    entry = zoo.find(model_name)
    net = net_from(read(entry.path), entry.path)
    lo, hi = float(data.min()), float(data.max())
    t_enc = t_dec = 0.0
    size = 0
    with torch.no_grad():
        for plane in data.reshape(-1, *data.shape[-2:]):
            x = torch.from_numpy(((plane.astype(np.float32) - lo) / max(hi - lo, 1))[None, None])
            h, w = x.shape[-2:]
            x = F.pad(x, (0, (-w) % 64, 0, (-h) % 64), mode="replicate")
            t = time.perf_counter()
            out = net.compress(x)
            t_enc += time.perf_counter() - t
            size += sum(len(s[0]) for s in out["strings"])
            t = time.perf_counter()
            net.decompress(out["strings"], out["shape"])
            t_dec += time.perf_counter() - t
    return data.nbytes / 1e6 / t_enc, data.nbytes / 1e6 / t_dec, size


def rss_rows(tmp: Path) -> list[dict]:
    """Peak RSS of learned encode/decode as the plane grows (tiles of 1024 px inside chunks of <= 2048 px)."""
    model = zoo.rate_points(zoo.DEFAULT_FAMILY)[-1].name
    rows = []
    for side in (1024, 2048, 4096):
        yy, xx = np.mgrid[:side, :side].astype(np.float32)
        img = (300 + 800 * (np.sin(yy / 37.0) * np.cos(xx / 53.0)) ** 2).astype(np.uint16)
        src, dst = tmp / f"p{side}.tif", tmp / f"p{side}.mzc"
        tifffile.imwrite(src, img)
        enc, t_enc = peak_rss(["encode", "-f", "--quiet", "-T", "1", "--codec", f"learned:{model}", str(src), "-o", str(dst)])
        dec, t_dec = peak_rss(["decode", "-f", "--quiet", "-T", "1", str(dst), "-o", str(tmp / "back.tif")])
        rows.append({"side": side, "encode_rss_mb": enc, "decode_rss_mb": dec, "encode_s": t_enc, "decode_s": t_dec})
        print("  rss", rows[-1], flush=True)
    return rows


def ar_speed() -> dict:
    """The autoregressive families decode latent by latent in Python (CompressAI's loop): seconds per 512^2 plane.
    Speed does not depend on training, so an untrained N=64/M=96 network is timed."""
    out = {}
    plane = np.random.default_rng(0).random((512, 512)).astype(np.float32)
    for arch in ("mbt2018", "cheng2020-anchor"):
        net = build(arch, 64, 96).eval()
        net.update(force=True)
        coder = PlaneCoder(net)
        t = time.perf_counter()
        records, _ = coder.encode(plane, reconstruct=False)
        t_enc = time.perf_counter() - t
        t = time.perf_counter()
        coder.decode(records, 512, 512)
        out[arch] = {"encode_s": t_enc, "decode_s": time.perf_counter() - t}
        print("  ar", arch, out[arch], flush=True)
    return out


def interpolate(points: list[tuple[float, float]], ratio: float) -> float | None:
    pts = sorted(points)
    for (r0, p0), (r1, p1) in zip(pts, pts[1:]):
        if r0 <= ratio <= r1:
            f = (math.log(ratio) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return p0 + f * (p1 - p0)
    return None


def main() -> None:
    torch.set_num_threads(2)
    models = [e.name for e in zoo.shipped()]
    results = {"machine": machine(), "torch_threads": 2, "models": zoo.manifest()["models"], "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in FILES:
            path, data = subset(name, tmp)
            entry = {"shape": list(data.shape), "learned": {}, "classic": {}, "speed": {}}
            print(name, data.shape, flush=True)
            for model in models:
                rep = encode(path, tmp / "l.mzc", codec=f"learned:{model}")
                nocheck = encode(path, tmp / "n.mzc", codec=f"learned:{model}", check=False)
                entry["learned"][model] = {k: rep[k] for k in ("ratio", "psnr_db", "ssim", "max_abs_error")}
                entry["learned"][model].update(
                    encode_mbs=data.nbytes / 1e6 / rep["wall_encode"],
                    encode_nocheck_mbs=data.nbytes / 1e6 / nocheck["wall_encode"],
                    decode_mbs=data.nbytes / 1e6 / rep["wall_decode"])
                print("  ", model, entry["learned"][model], flush=True)
            ratios = sorted({round(v["ratio"], 2) for v in entry["learned"].values()} | set(RATIOS))
            for codec in CLASSIC:
                for ratio in ratios:
                    try:
                        rep = encode(path, tmp / "c.mzc", codec=codec, quality=f"{ratio}x")
                        entry["classic"].setdefault(codec, {})[str(ratio)] = {
                            k: rep[k] for k in ("ratio", "psnr_db", "ssim")}
                    except MzcError as exc:
                        entry["classic"].setdefault(codec, {})[str(ratio)] = {"error": str(exc)}
                print("  ", codec, {r: v.get("psnr_db") for r, v in entry["classic"][codec].items()}, flush=True)
            for model in models:
                enc, dec, _ = bare_speed(model, data)
                entry["speed"][model] = {"bare_encode_mbs": enc, "bare_decode_mbs": dec}
            results["files"][name] = entry
        results["rss"] = rss_rows(tmp)
    results["autoregressive"] = ar_speed()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "learned.json").write_text(json.dumps(results, indent=1))
    report(results)


def report(results: dict) -> None:
    lines = [f"Machine: {results['machine']}; torch threads 2; 1 mzc worker. Produced by "
             "`python benchmarks/bench_learned.py`.", "",
             "Models (src/mzc/zoo/manifest.json): " + "; ".join(
                 f"{m['name']} (lambda {m['lambda']:g}, {m['iterations']} steps)" for m in results["models"]) + ". "
             "All were trained on 2 CPU cores (no GPU was lent); CompressAI's own models train for ~10^6 steps.", "",
             "## PSNR (dB, data range) at equal real ratio", "",
             "Learned rows: the model's own rate point. Classic codecs at exactly that ratio (real .mzc file).", ""]
    families = sorted({m["arch"] for m in results["models"]})
    for name, entry in results["files"].items():
        lines += [f"### {name} {tuple(entry['shape'])}", "",
                  "| model | ratio | PSNR | SSIM | J2K | AVIF | SPERR | best classic | gain dB |", "|---|---|---|---|---|---|---|---|---|"]
        for model, v in sorted(entry["learned"].items(), key=lambda kv: kv[1]["ratio"]):
            key = str(round(v["ratio"], 2))
            cl = {c: entry["classic"][c].get(key, {}).get("psnr_db") for c in CLASSIC}
            best = max((p for p in cl.values() if isinstance(p, (int, float))), default=None)
            gain = f"{v['psnr_db'] - best:+.2f}" if best is not None else "-"
            lines.append(f"| {model} | {v['ratio']:.1f}x | {v['psnr_db']:.2f} | {v['ssim']:.4f} | "
                         + " | ".join(f"{cl[c]:.2f}" if isinstance(cl[c], (int, float)) else "-" for c in CLASSIC)
                         + f" | {best if best is None else f'{best:.2f}'} | {gain} |")
        lines += ["", "At the round ratios (learned interpolated between its rate points, ~):", "",
                  "| ratio | " + " | ".join(families) + " | J2K | AVIF | SPERR |", "|---" * (4 + len(families)) + "|"]
        for ratio in RATIOS:
            row = [f"{ratio}x"]
            for fam in families:
                pts = [(v["ratio"], v["psnr_db"]) for m, v in entry["learned"].items()
                       if zoo.find(m).arch == fam]
                p = interpolate(pts, ratio)
                row.append(f"~{p:.2f}" if p is not None else "out of range")
            for c in CLASSIC:
                p = entry["classic"][c].get(str(ratio), {}).get("psnr_db")
                row.append(f"{p:.2f}" if isinstance(p, (int, float)) else "-")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Speed (MB/s of raw pixels, wall)", "",
              "| file | model | mzc encode (checked) | mzc encode --no-check | bare compress | ratio | mzc decode | "
              "bare decompress | ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results["files"].items():
        for model, v in entry["learned"].items():
            s = entry["speed"][model]
            lines.append(f"| {name.split('_')[0]} | {model} | {v['encode_mbs']:.2f} | {v['encode_nocheck_mbs']:.2f} | "
                         f"{s['bare_encode_mbs']:.2f} | {v['encode_nocheck_mbs'] / s['bare_encode_mbs']:.2f} | "
                         f"{v['decode_mbs']:.2f} | {s['bare_decode_mbs']:.2f} | "
                         f"{v['decode_mbs'] / s['bare_decode_mbs']:.2f} |")
    lines += ["", "## Peak RSS (learned, 1 worker, synthetic 16-bit planes)", "",
              "| plane | encode RSS MB | decode RSS MB | encode s | decode s |", "|---|---|---|---|---|"]
    for r in results.get("rss", []):
        lines.append(f"| {r['side']}x{r['side']} | {r['encode_rss_mb']:.0f} | {r['decode_rss_mb']:.0f} | "
                     f"{r['encode_s']:.1f} | {r['decode_s']:.1f} |")
    lines += ["", "## Autoregressive families (untrained N=64/M=96 network; speed only)", "",
              "| family | encode s per 512x512 | decode s per 512x512 |", "|---|---|---|"]
    for arch, v in results.get("autoregressive", {}).items():
        lines.append(f"| {arch} | {v['encode_s']:.1f} | {v['decode_s']:.1f} |")
    write_md("learned.md", "Learned codecs vs classic (16-bit evaluation images)", lines)
    plot(results)


def plot(results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = list(results["files"])
    fig, axes = plt.subplots(2, (len(files) + 1) // 2, figsize=(5 * ((len(files) + 1) // 2), 8))
    for ax, name in zip(axes.ravel(), files):
        entry = results["files"][name]
        for fam in sorted({m["arch"] for m in results["models"]}):
            pts = sorted((v["ratio"], v["psnr_db"]) for m, v in entry["learned"].items() if zoo.find(m).arch == fam)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"learned {fam}")
        for c in CLASSIC:
            pts = sorted((v["ratio"], v["psnr_db"]) for v in entry["classic"][c].values()
                         if isinstance(v.get("psnr_db"), (int, float)))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "s--", label=c.upper(), alpha=0.7)
        ax.set_xscale("log")
        ax.set_xlabel("real file ratio")
        ax.set_ylabel("PSNR dB (data range)")
        ax.set_title(name.replace(".tif", ""), fontsize=9)
        ax.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "learned_rd.png", dpi=90)


if __name__ == "__main__":
    main()
