"""Variable-rate learned codecs against the best classic codec at equal real ratios, 20x to 1000x, on the 2-D 16-bit
fluorescence files; rate-control accuracy; what --effort max buys; speed against the bare network; the training
curve.

For each file and family, `mzc encode --codec learned:FAMILY -q Rx` at R = 20..1000 (real .mzc ratio). The classic
side is J2K, AVIF (12-bit 4:0:0, values mapped into 12 bits) and SPERR through mzc at a grid of ratios, their PSNR
interpolated in log(ratio) at each learned file's exact real ratio; `best classic` is the best of the three there.
Speed: `--no-check` encode/decode wall time (1 worker, torch on 2 threads) against the bare PlaneCoder calls on the
same planes (no container, no rate search: the rate the file used). Training: validation PSNR at 0.1 bpp (the
held-out 16-bit crops) against CPU hours from each model's own history, with a log-linear extrapolation.

usage: python benchmarks/bench_learned.py [--files a.tif,b.tif] [--families mbt2018-mean,bmshj2018-factorized]
(writes benchmarks/results/learned.{md,json,png})
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
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from common import DATA, RESULTS, machine
from mzc.codecs.neural import zoo
from mzc.codecs.neural.learned import plane_coder
from mzc.codecs.neural.modelfile import read
from mzc.errors import MzcError

FILES = ("nuclei2d_hoechst_u16.tif", "foci2d_h2ax_u16.tif", "multichannel_bbbc022_u16.tif")
FAMILIES = ("mbt2018-mean", "bmshj2018-factorized")
CLASSIC = ("j2k", "avif", "sperr")
RATIOS = (20, 50, 100, 200, 500, 1000)
CLASSIC_GRID = (10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500)
EFFORT_RATIOS = (50, 200)


def encode(src: Path, out: Path, **opts) -> dict | None:
    try:
        t = time.perf_counter()
        rep = mzc.encode(str(src), str(out), workers=1, **opts)
        rep["wall_s"] = time.perf_counter() - t
        return rep
    except MzcError as exc:
        print(f"  {src.name} {opts}: {exc}", flush=True)
        return None


def interpolate(points: list[tuple[float, float]], ratio: float) -> float | None:
    pts = sorted(points)
    if not pts or ratio < pts[0][0] or ratio > pts[-1][0]:
        return None
    return float(np.interp(math.log(ratio), [math.log(r) for r, _ in pts], [p for _, p in pts]))


def classic_curves(src: Path, tmp: Path) -> dict:
    curves = {}
    for codec in CLASSIC:
        points = []
        for r in CLASSIC_GRID:
            rep = encode(src, tmp / "c.mzc", codec=codec, quality=f"{r}x", check=True)
            if rep is not None:
                points.append((rep["ratio"], rep["psnr_db"]))
        curves[codec] = points
    return curves


def learned_points(src: Path, family: str, tmp: Path, effort: str = "fast", ratios=RATIOS) -> list[dict]:
    rows = []
    for r in ratios:
        rep = encode(src, tmp / "l.mzc", codec=f"learned:{family}", quality=f"{r}x", effort=effort)
        if rep is None:
            rows.append({"target": r, "error": "not reached"})
            continue
        t = time.perf_counter()
        with mzc.open(str(tmp / "l.mzc")) as f:
            f.read()
        rows.append({"target": r, "ratio": rep["ratio"], "psnr_db": rep["psnr_db"], "rate": rep["codec_config"]["rate"],
                     "encode_s": round(rep["wall_s"], 2), "decode_s": round(time.perf_counter() - t, 2)})
    return rows


def speed(src: Path, family: str, tmp: Path) -> dict:
    """mzc --no-check encode/decode at a fixed rate vs the bare PlaneCoder on the same planes."""
    data = tifffile.imread(src)
    planes = data.reshape(-1, *data.shape[-2:]).astype(np.float32)
    lo, hi = float(data.min()), float(data.max())
    entry = zoo.family_model(family)
    coder = plane_coder(entry.name, entry.sha256, 1024, 64)[0]
    t = time.perf_counter()
    records = [coder.encode((p - lo) / (hi - lo), reconstruct=False, rate=4.0)[0] for p in planes]
    bare_enc = time.perf_counter() - t
    t = time.perf_counter()
    for rec in records:
        coder.decode(rec, *planes.shape[1:], rate=4.0)
    bare_dec = time.perf_counter() - t
    rep = encode(src, tmp / "s.mzc", codec=f"learned:{family}", knob=4.0, check=False)
    t = time.perf_counter()
    with mzc.open(str(tmp / "s.mzc")) as f:
        f.read()
    mzc_dec = time.perf_counter() - t
    return {"bare_encode_s": round(bare_enc, 2), "bare_decode_s": round(bare_dec, 2),
            "mzc_encode_s": round(rep["wall_s"], 2), "mzc_decode_s": round(mzc_dec, 2),
            "encode_vs_bare": round(bare_enc / rep["wall_s"], 2), "decode_vs_bare": round(bare_dec / mzc_dec, 2)}


def training_curve(family: str) -> dict:
    """Validation PSNR at 0.1 bpp against CPU hours, from the shipped model's history and that of the models it
    was started from (each run's hours counted after theirs)."""
    blob = read(zoo.family_model(family).path)
    inherited = blob.get("inherited") or {}
    seconds = inherited.get("device_seconds") or {}
    offset = seconds.get("cpu", 0.0) + seconds.get("gpu", 0.0)
    history = list(inherited.get("history") or []) + [
        dict(h, cpu_seconds=h.get("cpu_seconds", h["seconds"]) + offset) for h in blob.get("history") or []]
    points = []
    for h in history:
        curve = sorted((p[1], p[2]) for p in h["points"])
        if curve[0][0] <= 0.1 <= curve[-1][0]:
            hours = h.get("cpu_seconds", h["seconds"]) / 3600
            points.append((round(hours, 3), round(float(np.interp(math.log(0.1), [math.log(b) for b, _ in curve],
                                                                    [p for _, p in curve])), 3)))
    return {"points": points}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default=",".join(FILES))
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    parser.add_argument("--effort-ratios", default=",".join(map(str, EFFORT_RATIOS)),
                        help="targets of the --effort max rows ('' for none)")
    parser.add_argument("--effort-families", default=None, help="families with --effort max rows (default: all)")
    parser.add_argument("--part", help="write this run's files to benchmarks/results/learned.PART.json only "
                        "(several parts run side by side; --merge PART,... then writes the report)")
    parser.add_argument("--merge", help="merge learned.PART.json files and write learned.{md,json,png}")
    args = parser.parse_args()
    if args.merge:
        return merge(args.merge.split(","), args.families.split(","))
    results = {"machine": machine(), "files": {}, "training": {}}
    target = RESULTS / (f"learned.{args.part}.json" if args.part else "learned.json")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for name in args.files.split(","):
            src = DATA / name
            entry = {"classic": classic_curves(src, tmp), "learned": {}, "effort_max": {}, "speed": {}}
            ratios = [int(r) for r in args.ratios.split(",")]
            effort_ratios = [int(r) for r in args.effort_ratios.split(",") if r]
            effort_families = (args.effort_families or args.families).split(",")
            for family in args.families.split(","):
                entry["learned"][family] = learned_points(src, family, tmp, ratios=ratios)
                if family in effort_families and effort_ratios:
                    entry["effort_max"][family] = learned_points(src, family, tmp, "max", effort_ratios)
                entry["speed"][family] = speed(src, family, tmp)
            results["files"][name] = entry
            target.write_text(json.dumps(results, indent=1))
            print(name, "done", flush=True)
    if args.part:
        return
    for family in args.families.split(","):
        results["training"][family] = training_curve(family)
    (RESULTS / "learned.json").write_text(json.dumps(results, indent=1))
    from bench_learned_report import plot, report
    report(results)
    plot(results)


def merge(parts: list[str], families: list[str]) -> None:
    results = {"machine": machine(), "files": {}, "training": {}}
    for part in parts:
        results["files"].update(json.loads((RESULTS / f"learned.{part}.json").read_text())["files"])
    for family in families:
        results["training"][family] = training_curve(family)
    (RESULTS / "learned.json").write_text(json.dumps(results, indent=1))
    from bench_learned_report import plot, report
    report(results)
    plot(results)
    for part in parts:
        (RESULTS / f"learned.{part}.json").unlink()


if __name__ == "__main__":
    main()
