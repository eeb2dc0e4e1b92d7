"""Per-chunk image back ends and the context coder on ../shared/data: the goals of issue 20, measured in one run.

  python benchmarks/bench_backends.py [--files SUBSTR,...] [--repeat N]

backends: every chunk (a plane; mapped to ranks first where mzc maps the file) coded by each image back end:
          the context coder `ctx`, JPEG-LS, JPEG 2000 and HTJ2K reversible, JPEG XL effort 7 (`jpegxl`) and, for
          reference, JPEG XL effort 1 and 3. Ratio = raw bytes / sum of streams; encode / decode MB/s of process
          CPU time, one thread, each call on its own; how often each back end gave the smallest stream among the
          default set (ctx, JPEG-LS) and among all of `--effort max`; what choosing costs (the default set's time
          over the context coder's alone).
lossless: `mzc.encode(lossless=True)` end to end (read, value scan, coding, decode-and-compare check unless
          --no-check, write), ratio of the real .mzc file, in process CPU seconds (best of --repeat; the machine
          is shared, so wall times are not comparable; native decoders run in this process, MZC_SANDBOX=0, so that
          their time counts), against bare JPEG XL effort 7 per plane (CPU, one thread).
noise:    `mzc.encode(noise=1.0)` now (index images: the smallest of ctx and JPEG-LS), as the previous release
          did it (JPEG-LS alone, reproduced by pinning the back-end list) and with --effort max; real file ratio,
          the achieved max error in sigma, encode CPU seconds.
Results: benchmarks/results/backends.md and backends.json.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

import mzc
from common import RESULTS, data_files, machine, write_md
from mzc.codecs import backends
from mzc.codecs.lossless import rank_table
from mzc.stats import scan

EXTRA = {"jpegxl-e1": 1, "jpegxl-e3": 3}  # low-effort JPEG XL, measured for reference only
FLUORESCENCE = ("nuclei2d", "foci2d", "bbbc022", "stp_brain")


def cpu(fn):
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def best_cpu(fn, repeat: int):
    runs = [cpu(fn) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[-1][1]


def planes_of(a: np.ndarray) -> list[np.ndarray]:
    """The chunks mzc codes (default tiling: one plane each here), mapped to ranks where mzc would."""
    stats = scan([a])
    table = rank_table(stats.min, stats.present)
    planes = [np.ascontiguousarray(p) for p in a.reshape(-1, *a.shape[-2:])]
    if table is None:
        return planes
    lookup = np.zeros(int(table[-1]) + 1, a.dtype)
    lookup[table] = np.arange(table.size, dtype=a.dtype)
    return [lookup[p] for p in planes]


def encoder(name: str):
    if name in EXTRA:
        return lambda p: imagecodecs.jpegxl_encode(p, lossless=True, effort=EXTRA[name], numthreads=1)
    return lambda p: backends.encode(name, p)


def decoder(name: str):
    real = "jpegxl" if name in EXTRA else name
    return lambda body, p: backends.decode(real, body, p.shape, p.dtype)


def back_ends(a: np.ndarray) -> dict:
    """Per back end: bytes, CPU seconds, and the per-chunk sizes (to count wins)."""
    planes, out = planes_of(a), {}
    for name in [*backends.EFFORTS["max"], *EXTRA]:
        enc, dec = encoder(name), decoder(name)
        sizes, te, td = [], 0.0, 0.0
        for p in planes:
            t, body = cpu(lambda: enc(p))
            te += t
            t, back = cpu(lambda: dec(body, p))
            td += t
            assert np.array_equal(back, p), name
            sizes.append(len(body))
        out[name] = {"bytes": sum(sizes), "encode_s": te, "decode_s": td, "sizes": sizes}
    for effort in ("fast", "max"):
        names = backends.EFFORTS[effort]
        wins = [min(names, key=lambda n: out[n]["sizes"][k]) for k in range(len(planes))]
        out[f"wins_{effort}"] = {n: wins.count(n) for n in names}
    out["chunks"] = len(planes)
    return out


def read(path: Path) -> np.ndarray:
    with mzc.open(str(path)) as mz:
        return mz.read()


def lossless(path: Path, a: np.ndarray, tmp: Path, repeat: int) -> dict:
    out, res = tmp / "l.mzc", {}
    for check in (True, False):
        seconds, _ = best_cpu(lambda: mzc.encode(str(path), str(out), lossless=True, check=check), repeat)
        res["encode_s" if check else "encode_nocheck_s"] = seconds
    res["bytes"] = out.stat().st_size
    seconds, back = best_cpu(lambda: read(out), repeat)
    assert np.array_equal(back, a)
    res["decode_s"] = seconds
    planes = [np.ascontiguousarray(p) for p in a.reshape(-1, *a.shape[-2:])]
    t, bodies = cpu(lambda: [imagecodecs.jpegxl_encode(p, lossless=True, effort=7, numthreads=1) for p in planes])
    res["jxl_e7"] = {"bytes": sum(len(b) for b in bodies), "encode_s": t}
    return res


def noise(path: Path, tmp: Path, repeat: int) -> dict:
    out, res = tmp / "n.mzc", {}
    fast = backends.EFFORTS["fast"]
    for label, effort, names in (("now", "fast", fast), ("before", "fast", ("jpegls",)), ("max", "max", fast)):
        backends.EFFORTS["fast"] = names
        try:
            seconds, report = best_cpu(lambda: mzc.encode(str(path), str(out), noise=1.0, effort=effort), repeat)
        finally:
            backends.EFFORTS["fast"] = fast
        res[label] = {"ratio": report["ratio"], "max_error_sigma": report["max_error_sigma"], "encode_s": seconds}
    return res


def main():
    os.environ["MZC_SANDBOX"] = "0"  # decode in this process, so that its CPU time is counted (sandbox: children)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default="", help="comma-separated substrings of the file names to run")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    wanted = [w for w in args.files.split(",") if w]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in data_files():
            if wanted and not any(w in path.name for w in wanted):
                continue
            a = tifffile.imread(path)
            print(path.name, flush=True)
            results[path.name] = {"raw_bytes": a.nbytes, "dtype": a.dtype.name, "back_ends": back_ends(a),
                                  "lossless": lossless(path, a, Path(tmp), args.repeat)}
            if a.dtype == np.uint16 and any(f in path.name for f in FLUORESCENCE):
                results[path.name]["noise"] = noise(path, Path(tmp), args.repeat)
    (RESULTS / "backends.json").write_text(json.dumps({"machine": machine(), "files": results}, indent=1))
    write_md("backends.md", "Per-chunk back ends and the context coder (issue 20)", report(results))


def report(results: dict) -> list[str]:
    from bench_backends_report import lines
    return lines(results, machine(), __doc__)


if __name__ == "__main__":
    main()
