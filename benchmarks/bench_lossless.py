"""Lossless: mzc --lossless vs plain imagecodecs (JPEG XL effort 7 and 1, JPEG-LS, HTJ2K) and zstd on ../shared/data.

Ratio = raw array bytes / bytes; for mzc the real .mzc file size (header, index, checksums included).
Speeds are MB/s of raw bytes. Codec rows: one thread, CPU time of the codec call on each plane. mzc rows: wall time of
the whole `mzc.encode` (TIFF read, pre-scan, coding, decode-and-compare check unless --no-check, report, file write
with fsync) with 1 and 2 worker processes (a pool is used only above 16 MB), and of `mzc.decode` to memory.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from common import cpu_seconds, data_files, machine, write_md

BASELINES = {
    "jxl-e7": (lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=7, numthreads=1),
               lambda b: imagecodecs.jpegxl_decode(b, numthreads=1)),
    "jxl-e1": (lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=1, numthreads=1),
               lambda b: imagecodecs.jpegxl_decode(b, numthreads=1)),
    "jpegls": (imagecodecs.jpegls_encode, imagecodecs.jpegls_decode),
    "htj2k": (lambda p: imagecodecs.htj2k_encode(p, reversible=True), imagecodecs.htj2k_decode),
    "zstd-3": (lambda p: zstandard.ZstdCompressor(level=3).compress(p.tobytes()), None),
}


def planes(a: np.ndarray):
    return a.reshape(-1, *a.shape[-2:])


def main():
    rows = ["| file | method | ratio | encode MB/s | decode MB/s |", "|---|---|---|---|---|"]
    summary = []
    for path in data_files():
        a = tifffile.imread(path)
        mb = a.nbytes / 1e6
        results = {}
        for name, (enc, dec) in BASELINES.items():
            size, te, td = 0, 0.0, 0.0
            for p in planes(a):
                p = np.ascontiguousarray(p)
                t, body = cpu_seconds(enc, p)
                te += t
                size += len(body)
                if dec is not None:
                    t, back = cpu_seconds(dec, body)
                    td += t
                    assert np.array_equal(back.reshape(p.shape), p), name
            results[name] = (a.nbytes / size, mb / te, mb / td if td else float("nan"))
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "x.mzc"
            for workers, check in ((1, True), (2, True), (1, False), (2, False)):
                t = time.perf_counter()
                mzc.encode(str(path), str(out), lossless=True, workers=workers, check=check)
                te = time.perf_counter() - t
                t = time.perf_counter()
                with mzc.open(str(out)) as mz:
                    back = mz.read(workers=workers)
                td = time.perf_counter() - t
                assert np.array_equal(back, a)
                results[f"mzc -T {workers}" + ("" if check else " --no-check")] = (a.nbytes / out.stat().st_size,
                                                                                 mb / te, mb / td)
        for name, (ratio, enc_speed, dec_speed) in results.items():
            rows.append(f"| {path.name} | {name} | {ratio:.3f} | {enc_speed:.1f} | {dec_speed:.1f} |")
        e7 = results["jxl-e7"]
        for name in ("mzc -T 1", "mzc -T 2", "mzc -T 1 --no-check", "mzc -T 2 --no-check"):
            m = results[name]
            summary.append(f"| {path.name} | {name[4:]} | {m[0] / e7[0] - 1:+.1%} | {m[1] / e7[1]:.1f}x |")
    lines = [f"Machine: {machine()}. Command: `python benchmarks/bench_lossless.py`.", "",
             __doc__.strip(), "", "## Goal check: mzc --lossless vs JPEG XL effort 7 lossless (same run)", "",
             "| file | options | ratio vs jxl-e7 | encode speed vs jxl-e7 |", "|---|---|---|---|", *summary,
             "", "## All methods", "", *rows]
    write_md("lossless.md", "Lossless: mzc vs imagecodecs baselines on ../shared/data", lines)


if __name__ == "__main__":
    main()
