"""How long napari takes to open a large .mzc, and how much it decodes to show it (issue 21: a 4 GB stack opens in
seconds and only visible chunks are decoded).

    python benchmarks/napari_open.py [--frames 512] [--side 2048] [--path /tmp/big.mzc]

Writes a 16-bit T stack of side x side frames (synthetic: smooth blobs + Poisson noise, shifted per frame) with the
StackWriter (lossless), unless --path exists; then opens it in napari's model with its plug-ins discovered as the
viewer does, times the open and the first displayed slice, counts the chunks decoded, and prints a markdown row.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import numpy as np

import mzc
from mzc.io import reader as reader_module


def build(path: str, frames: int, side: int) -> float:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:side, :side]
    base = 300 + 2000 * np.exp(-(((yy - side / 2) / (side / 5)) ** 2 + ((xx - side / 2) / (side / 4)) ** 2))
    noisy = rng.poisson(base).astype(np.uint16)
    start = time.perf_counter()
    with mzc.StackWriter(path, (side, side), "uint16", "TYX") as writer:
        for t in range(frames):
            writer.append(np.roll(noisy, 7 * t, axis=1))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=512)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--path", default="/tmp/mzc-napari-big.mzc")
    args = ap.parse_args()
    if not os.path.exists(args.path):
        print(f"writing {args.path}: {build(args.path, args.frames, args.side):.0f} s", file=sys.stderr)
    decoded = []
    original = reader_module.decode_many

    def counting(fn, jobs, *a, **k):
        def tapped():
            for index, job in jobs:
                decoded.append(index)
                yield index, job
        return original(fn, tapped(), *a, **k)

    reader_module.decode_many = counting
    from napari.components import ViewerModel
    from napari.plugins import _initialize_plugins
    _initialize_plugins()
    viewer = ViewerModel()
    start = time.perf_counter()
    [layer] = viewer.open(args.path, plugin=None)
    opened = time.perf_counter() - start
    at_open = len(decoded)
    with mzc.open(args.path) as f:
        raw, n_chunks, size = f.nbytes, f.grid.n_chunks, os.path.getsize(args.path)
    start = time.perf_counter()
    viewer.dims.set_point(0, args.frames // 3)  # move the time slider: one more plane is decoded
    step = time.perf_counter() - start
    print("| raw array | .mzc file | chunks | open (incl. first slice) | chunks decoded to open | slider step | "
          "chunks decoded by the step |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {raw / 1e9:.2f} GB | {size / 1e9:.2f} GB | {n_chunks} | {opened:.2f} s | {at_open} | {step:.2f} s | "
          f"{len(decoded) - at_open} |")
    print(f"levels {layer.multiscale and len(layer.data)}, shape {layer.data[0].shape if layer.multiscale else ''}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
