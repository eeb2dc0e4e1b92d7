"""Streaming at scale: peak RSS does not grow with the stack, and a small region decodes in a sliver of full time.

1. Peak RSS of `mzc encode` and `mzc decode` (separate processes, -T 1 and -T 2) on synthetic 16-bit stacks of
   ~100 MB and >= 4 GB (1024x1024 planes). Goal: RSS(4 GB) <= 1.1 x RSS(100 MB).
2. A 256x256 region (`mzc.open(path).read(roi)`, opening included) from a >= 1 GB .mzc vs the full decode of the same
   file, same run. Goal: ROI time <= 1/100 of full decode time.
Synthetic data: smooth blobs + Poisson-like noise, generated plane by plane into a tifffile memmap (never whole).
Needs ~12 GB free disk in the temp folder (MZC_BENCH_TMP, default /tmp).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from common import machine, write_md

PLANE = (1024, 1024)


def make_stack(path: Path, n_planes: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:PLANE[0], 0:PLANE[1]].astype(np.float32)
    base = 300 + 800 * (np.sin(yy / 37.0) * np.cos(xx / 53.0)) ** 2
    out = tifffile.memmap(path, shape=(n_planes, *PLANE), dtype=np.uint16, metadata={"axes": "ZYX"})
    for z in range(n_planes):
        shift = np.roll(base, z * 3, axis=1)
        out[z] = np.clip(shift + rng.normal(0, 1, PLANE).astype(np.float32) * np.sqrt(shift), 0, 4095)
        if z % 256 == 255:
            out.flush()
    out.flush()
    del out


def peak_rss(args: list[str]) -> tuple[float, float]:
    """Run `python -m mzc ARGS` and return (peak RSS MB of the largest process in it, wall seconds)."""
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "r=subprocess.run([sys.executable, '-m', 'mzc', *sys.argv[1:]]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter()-t); sys.exit(r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1024, float(out[1])


def main():
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("MZC_BENCH_TMP", "/tmp")))
    rows = ["| stack | raw GB | command | -T | peak RSS MB | wall s | MB/s |", "|---|---|---|---|---|---|---|"]
    rss = {}
    try:
        for name, planes in (("100MB", 50), ("4GB", 2048)):
            src = tmp / f"{name}.tif"
            make_stack(src, planes)
            raw = planes * PLANE[0] * PLANE[1] * 2
            for workers in (1, 2):
                dst = tmp / f"{name}.mzc"
                mb, secs = peak_rss(["encode", "-f", "--quiet", "-T", str(workers), str(src), "-o", str(dst)])
                rss[(name, "encode", workers)] = mb
                rows.append(f"| {name} | {raw / 1e9:.2f} | encode --lossless | {workers} | {mb:.0f} | {secs:.1f} | "
                            f"{raw / 1e6 / secs:.0f} |")
                back = tmp / f"{name}_back.tif"
                mb, secs = peak_rss(["decode", "-f", "--quiet", "-T", str(workers), str(dst), "-o", str(back)])
                rss[(name, "decode", workers)] = mb
                rows.append(f"| {name} | {raw / 1e9:.2f} | decode to TIFF | {workers} | {mb:.0f} | {secs:.1f} | {raw / 1e6 / secs:.0f} |")
                back.unlink()
            if name == "4GB":
                roi_rows = roi_benchmark(tmp / f"{name}.mzc", raw)
            src.unlink()
        ratios = [f"- {cmd} -T {w}: RSS(4 GB) / RSS(100 MB) = **{rss[('4GB', cmd, w)] / rss[('100MB', cmd, w)]:.2f}**"
                  for cmd in ("encode", "decode") for w in (1, 2)]
        lines = [f"Machine: {machine()}. Command: `python benchmarks/bench_scale.py`.", "", __doc__.strip(), "",
                 "## Peak RSS", "", *ratios, "", *rows, "", "## Region decode vs full decode (same file, same run)", "",
                 *roi_rows]
        write_md("scale.md", "Streaming at scale: memory and region reads", lines)
    finally:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()


def roi_benchmark(path: Path, raw: int) -> list[str]:
    t = time.perf_counter()
    with mzc.open(str(path)) as mz:
        n = 0
        for slab in mz.slabs(workers=1):
            n += slab.size
    full = time.perf_counter() - t
    rng = np.random.default_rng(1)
    times = []
    with mzc.open(str(path)) as mz:
        shape = mz.shape
    for _ in range(20):
        z = int(rng.integers(0, shape[0]))
        y, x = (int(rng.integers(0, s - 256)) for s in shape[1:])
        t = time.perf_counter()
        with mzc.open(str(path)) as mz:
            part = mz.read(f"{z}:{z + 1},{y}:{y + 256},{x}:{x + 256}")
        times.append(time.perf_counter() - t)
        assert part.shape == (1, 256, 256)
    med = float(np.median(times))
    return [f"File: {path.stat().st_size / 1e9:.2f} GB .mzc of {raw / 1e9:.2f} GB raw, {shape}.", "",
            "| what | seconds |", "|---|---|", f"| full decode (all chunks, 1 worker, to memory slab by slab) | {full:.2f} |",
            f"| 256x256 ROI, open + read, median of 20 random positions | {med:.4f} |",
            f"| 256x256 ROI, worst of 20 | {max(times):.4f} |", "",
            f"ROI / full = **1/{full / med:.0f}** (median), 1/{full / max(times):.0f} (worst)."]


if __name__ == "__main__":
    main()
