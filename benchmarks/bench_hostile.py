#!/usr/bin/env python
"""What reading possibly hostile files safely costs (issue 17): decode throughput with the sandbox, without it
(MZC_SANDBOX=0: stream-header checks and digests only) and at the commit before (HEAD's src, given as --before),
the latency of small region reads, the start-up of the CLI, and how much memory legitimate decodes need (the
smallest address-space allowance, per chunk element, under which each codec still decodes its chunk).

    python benchmarks/bench_hostile.py [--before /tmp/mzc-head/src]   # results/hostile.{md,json}

--before: a checkout of the commit before this work (e.g. `git archive HEAD src | tar -x -C /tmp/mzc-head`).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, RESULTS, ROOT, machine

FILES = {  # name: (source, encode options)
    "lossless": ("nuclei2d_hoechst_u16.tif", {}),
    "noise K=1": ("nuclei2d_hoechst_u16.tif", {"noise": 1.0}),
    "j2k 20x": ("nuclei2d_hoechst_u16.tif", {"codec": "j2k", "quality": "20x"}),
    "htj2k 20x": ("nuclei2d_hoechst_u16.tif", {"codec": "htj2k", "quality": "20x"}),
    "jxl 20x": ("nuclei2d_hoechst_u16.tif", {"codec": "jxl", "quality": "20x"}),
    "avif 20x": ("nuclei2d_hoechst_u16.tif", {"codec": "avif", "quality": "20x"}),
    "sperr 20x": ("nuclei2d_hoechst_u16.tif", {"codec": "sperr", "quality": "20x"}),
    "STP lossless": ("stack3d_stp_brain_u16.tif", {}),
    "STP noise K=1": ("stack3d_stp_brain_u16.tif", {"noise": 1.0}),
    "tiny lossless": (None, {}),
}

MEASURE = r'''
import json, statistics, sys, time
import mzc
out = {}
for name, path in json.loads(sys.argv[1]).items():
    times = []
    for _ in range(3):
        t = time.perf_counter()
        with mzc.open(path) as mz:
            a = mz.read()
        times.append(time.perf_counter() - t)
    row = {"mb_per_s": round(a.nbytes / min(times) / 1e6, 1), "first_s": round(times[0], 4)}
    if a.nbytes > 16 << 20:
        t = time.perf_counter()
        with mzc.open(path) as mz:
            mz.read(workers=2)
        row["mb_per_s_2_workers"] = round(a.nbytes / (time.perf_counter() - t) / 1e6, 1)
    with mzc.open(path) as mz:
        lat = []
        for k in range(30):
            t = time.perf_counter()
            mz.read(tuple(slice(0, 1) for _ in mz.shape[:-2]) + (slice(100, 356), slice(200, 456))
                    if min(mz.shape[-2:]) > 456 else None)
            lat.append(time.perf_counter() - t)
    row["roi_ms_median"] = round(1000 * statistics.median(lat[1:]), 2)
    out[name] = row
print(json.dumps(out))
'''


def encode_all(folder: str) -> dict[str, str]:
    import numpy as np
    import tifffile

    import mzc
    paths = {}
    for name, (source, options) in FILES.items():
        src = os.path.join(DATA, source) if source else os.path.join(folder, "tiny.tif")
        if source is None:
            tifffile.imwrite(src, np.random.default_rng(0).integers(0, 4000, (64, 64)).astype(np.uint16))
        paths[name] = os.path.join(folder, name.replace(" ", "_").replace("=", "") + ".mzc")
        mzc.encode(src, paths[name], **options)
    return paths


def measure(paths: dict[str, str], env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(paths)], capture_output=True, text=True,
                          env=env, check=True)
    return json.loads(proc.stdout)


ROUNDS = 3


def best(runs: list[dict]) -> dict:
    """Per file and metric, the best of several rounds (highest speed, lowest time)."""
    out = {}
    for name in runs[0]:
        rows = [r[name] for r in runs]
        out[name] = {k: (max if k.startswith("mb_per_s") else min)(row[k] for row in rows) for k in rows[0]}
    return out


def cli_seconds(path: str, env: dict, folder: str, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mzc", "decode", "-f", "--quiet", path, "-o",
                        os.path.join(folder, "out.tif")], env=env, check=True)
        times.append(time.perf_counter() - t)
    return round(statistics.median(times), 3)


ALLOWANCE = r'''
import sys
from mzc import sandbox
from mzc.io import decoding
mz = __import__("mzc").open(sys.argv[1])
(_, args), = list(mz._jobs([0]))
n = 1
for s in args[2]:
    n *= s
def ok(extra):
    sandbox.shutdown()
    try:
        sandbox.run(decoding.decode_chunk, args, sandbox.Limits(60, extra))
        return True
    except Exception:  # a limit too tight shows as any error (even a failed import of the codec's library)
        return False
lo, hi = 0, 64 << 30
while hi - lo > (1 << 20):
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if ok(mid) else (mid, hi)
print(hi, n)
'''


def allowance(path: str) -> dict:
    """The smallest address-space allowance (MiB, and bytes per element) under which chunk 0 still decodes."""
    proc = subprocess.run([sys.executable, "-c", ALLOWANCE, path], capture_output=True, text=True, check=True)
    extra, n = (int(v) for v in proc.stdout.split())
    return {"mib": round(extra / 2**20, 1), "bytes_per_element": round(extra / n, 1), "elements": n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", help="src folder of the commit before issue 17")
    args = parser.parse_args()
    base = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    modes = {"sandbox": dict(base, MZC_SANDBOX="1"), "inline": dict(base, MZC_SANDBOX="0")}
    if args.before:
        modes["before"] = dict(os.environ, PYTHONPATH=args.before)
    with tempfile.TemporaryDirectory() as folder:
        paths = encode_all(folder)
        runs = {m: [] for m in modes}
        for _ in range(ROUNDS):  # modes interleaved, best of each: the machine's other load varies over minutes
            for m, env in modes.items():
                runs[m].append(measure(paths, env))
        result = {"machine": machine(), "read": {m: best(r) for m, r in runs.items()},
                  "cli_decode_tiny_s": {m: cli_seconds(paths["tiny lossless"], env, folder)
                                        for m, env in modes.items()},
                  "allowance": {n: allowance(p) for n, p in paths.items() if not n.startswith("tiny")}}
    (RESULTS / "hostile.json").write_text(json.dumps(result, indent=1))
    write_markdown(result)


def write_markdown(result: dict) -> None:
    modes = list(result["read"])
    lines = ["# Reading hostile files safely: what it costs", "", f"`python benchmarks/bench_hostile.py` on "
             f"{result['machine']}. Modes: " + ", ".join(modes) + " (sandbox: native decoders in a forked process "
             "with limits; inline: MZC_SANDBOX=0, stream-header checks and digests only; before: the commit "
             "before issue 17).", "", "| file | " + " | ".join(f"{m} MB/s" for m in modes) + " | " +
             " | ".join(f"{m} 256² ROI ms" for m in modes) + " |", "|---" * (1 + 2 * len(modes)) + "|"]
    for name in result["read"][modes[0]]:
        rows = [result["read"][m][name] for m in modes]
        speed = [f"{r['mb_per_s']}" + (f" ({r['mb_per_s_2_workers']} -T2)" if "mb_per_s_2_workers" in r else "")
                 for r in rows]
        lines.append(f"| {name} | " + " | ".join(speed) + " | " + " | ".join(str(r["roi_ms_median"]) for r in rows)
                     + " |")
    lines += ["", "`mzc decode` of a 64x64 file (process start to exit, median of 7): " + ", ".join(
        f"{m} {s} s" for m, s in result["cli_decode_tiny_s"].items()), "", "Smallest address-space allowance "
              "under which chunk 0 still decodes (the sandbox grants 512 MiB + 64 bytes per element):", "",
              "| file | elements | MiB | bytes/element |", "|---|---|---|---|"]
    for name, a in result["allowance"].items():
        lines.append(f"| {name} | {a['elements']} | {a['mib']} | {a['bytes_per_element']} |")
    (RESULTS / "hostile.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
