"""Streaming at scale: peak RSS does not grow with the stack, and a small region decodes in a sliver of full time.

1. Peak RSS of `mzc encode` and `mzc decode` (separate processes, -T 1 and -T 2) on synthetic 16-bit stacks of
   ~100 MB and 5.4 GB (1024x1024 planes; over 4 GiB, so BigTIFF in and 64-bit offsets in the .mzc). Goals:
   RSS(5 GB) <= 1.1 x RSS(100 MB) per process, and the growth over a bare interpreter with mzc imported within
   1.5 x the largest chunk plus buffers (issue 26 item 6). The 5 GB decode is compared with its input, page by page.
   Peak RSS: the largest process (ru_maxrss), and the whole process tree summed (psutil, sampled every 0.1 s).
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
BIG_PLANES = 2560  # 5.4 GB raw: over 4 GiB


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


def tree_peak(args: list[str]) -> tuple[float, float, float]:
    """Run `python -m mzc ARGS`: (peak MB of its largest process, peak MB of the process tree summed, wall s)."""
    import psutil
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mzc", *args])
    root, largest, total = psutil.Process(proc.pid), 0, 0
    while proc.poll() is None:
        try:
            rss = [p.memory_info().rss for p in (root, *root.children(recursive=True))]
        except psutil.Error:
            rss = []
        largest, total = max(largest, *rss, 0), max(total, sum(rss))
        time.sleep(0.1)
    if proc.returncode:
        raise SystemExit(f"mzc {' '.join(args)} failed: {proc.returncode}")
    return largest / 2**20, total / 2**20, time.perf_counter() - t


def baseline_mb() -> float:
    """RSS of an interpreter that has imported mzc and its coder (what any run pays before its first chunk)."""
    code = "import resource, mzc.codecs.lossless, numpy; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    return int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) / 1024


def same_pixels(a: Path, b: Path) -> bool:
    """The decoded TIFF equals the input, compared plane by plane (never both whole in memory)."""
    x, y = tifffile.memmap(a, mode="r"), tifffile.memmap(b, mode="r")
    return x.shape == y.shape and all(np.array_equal(x[z], y[z]) for z in range(x.shape[0]))


def peak_rss(args: list[str]) -> tuple[float, float]:
    """Run `python -m mzc ARGS` and return (peak RSS MB of the largest process in it, wall seconds)."""
    code = ("import resource, subprocess, sys, time; t=time.perf_counter(); "
            "r=subprocess.run([sys.executable, '-m', 'mzc', *sys.argv[1:]]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter()-t); sys.exit(r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1024, float(out[1])


def main():
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("MZC_BENCH_TMP", "/tmp")))
    rows = ["| stack | raw GB | command | -T | peak RSS MB, largest process | peak RSS MB, all processes | wall s | "
            "MB/s |", "|---|---|---|---|---|---|---|---|"]
    rss, checks = {}, []
    base = baseline_mb()
    try:
        for name, planes in (("100MB", 50), ("5GB", BIG_PLANES)):
            src = tmp / f"{name}.tif"
            make_stack(src, planes)
            raw = planes * PLANE[0] * PLANE[1] * 2
            for workers in (1, 2):
                dst = tmp / f"{name}.mzc"
                mb, tree, secs = tree_peak(["encode", "-f", "--quiet", "-T", str(workers), str(src), "-o", str(dst)])
                rss[(name, "encode", workers)] = mb
                rows.append(f"| {name} | {raw / 1e9:.2f} | encode (default, lossless) | {workers} | {mb:.0f} | "
                            f"{tree:.0f} | {secs:.1f} | {raw / 1e6 / secs:.0f} |")
                back = tmp / f"{name}_back.tif"
                mb, tree, secs = tree_peak(["decode", "-f", "--quiet", "-T", str(workers), str(dst), "-o", str(back)])
                rss[(name, "decode", workers)] = mb
                rows.append(f"| {name} | {raw / 1e9:.2f} | decode to TIFF | {workers} | {mb:.0f} | {tree:.0f} | "
                            f"{secs:.1f} | {raw / 1e6 / secs:.0f} |")
                if name == "5GB" and workers == 2:
                    checks.append(f"- 5 GB decode equals its input, plane by plane: **{same_pixels(src, back)}**")
                back.unlink()
            if name == "5GB":
                info = mzc.info(str(tmp / f"{name}.mzc"))
                chunk_mb = float(np.prod(info["chunks"])) * 2 / 2**20
                roi_rows = roi_benchmark(tmp / f"{name}.mzc", raw)
            src.unlink()
        ratios = [f"- {cmd} -T {w}: RSS(5 GB) / RSS(100 MB) = **{rss[('5GB', cmd, w)] / rss[('100MB', cmd, w)]:.2f}**; "
                  f"above the {base:.0f} MB of an interpreter with mzc imported: {rss[('5GB', cmd, w)] - base:.0f} MB "
                  f"= **{(rss[('5GB', cmd, w)] - base) / chunk_mb:.2f} x** the largest chunk ({chunk_mb:.0f} MB raw, "
                  f"chunks {info['chunks']})" for cmd in ("encode", "decode") for w in (1, 2)]
        lines = [f"Machine: {machine()}. Command: `python benchmarks/bench_scale.py`.", "", __doc__.strip(), "",
                 "## Peak RSS", "", *ratios, *checks, "", *rows, "",
                 "## Region decode vs full decode (same file, same run)", "", *roi_rows]
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
