"""Lossy rate control and rate-distortion on ../shared/data: every mzc codec at target ratios, and PSNR targets.

For each file and target (`-q 20x/50x/200x`), each codec's real .mzc ratio (file size on disk), PSNR on the data range,
SSIM, max abs error, and end-to-end encode/decode MB/s (1 worker, wall time, including the knob search). `auto` is
mzc's choice by measurement. The `plain` columns call the same imagecodecs codec directly on whole planes with the knob
mzc chose: the difference is what the container, chunking and checks cost in ratio and speed.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from common import RESULTS, data_files, machine, psnr_data_range, write_md
from mzc.codecs import from_config
from mzc.errors import MzcError

CODECS = ["j2k", "htj2k", "jxl", "avif", "sperr", "auto"]
RATIOS = [20, 50, 200]
PSNR_TARGETS = [45, 50]


def plain(codec_config: dict, a: np.ndarray):
    codec = from_config(codec_config)
    size, t_enc = 0, 0.0
    for p in a.reshape(-1, *a.shape[-2:]):
        t = time.perf_counter()
        body, _ = codec.encode(np.ascontiguousarray(p))
        t_enc += time.perf_counter() - t
        size += len(body)
    return a.nbytes / size, a.nbytes / 1e6 / t_enc


def run(path: Path, codec: str, quality: str, tmp: Path) -> dict:
    out = tmp / "x.mzc"
    a = tifffile.imread(path)
    t = time.perf_counter()
    try:
        rep = mzc.encode(str(path), str(out), codec=codec, quality=quality)
    except MzcError as exc:
        return {"file": path.name, "codec": codec, "target": quality, "error": str(exc)}
    te = time.perf_counter() - t
    t = time.perf_counter()
    with mzc.open(str(out)) as mz:
        back = mz.read()
    td = time.perf_counter() - t
    real_ratio = a.nbytes / out.stat().st_size
    row = {"file": path.name, "codec": codec, "chosen": rep["codec"], "target": quality, "ratio": real_ratio,
           "psnr_db": psnr_data_range(a, back), "ssim": rep["ssim"], "max_abs_error": rep["max_abs_error"],
           "encode_MBps": a.nbytes / 1e6 / te, "decode_MBps": a.nbytes / 1e6 / td,
           "report_psnr": rep["psnr_db"]}
    row["plain_ratio"], row["plain_encode_MBps"] = plain(rep["codec_config"] | {"id": rep["codec"]}, a) \
        if rep["codec"] != "avif" else (float("nan"), float("nan"))
    return row


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in data_files():
            for ratio in RATIOS:
                for codec in CODECS:
                    rows.append(run(path, codec, f"{ratio}x", Path(tmp)))
                    print(json.dumps(rows[-1]), flush=True)
            for target in PSNR_TARGETS:
                for codec in ("j2k", "auto"):
                    rows.append(run(path, codec, f"{target}dB", Path(tmp)))
                    print(json.dumps(rows[-1]), flush=True)
    (RESULTS / "lossy.json").write_text(json.dumps(rows, indent=1))
    ok = [r for r in rows if "error" not in r]
    ratio_rows = [r for r in ok if r["target"].endswith("x")]
    within = sum(abs(r["ratio"] / float(r["target"][:-1]) - 1) <= 0.10 for r in ratio_rows)
    psnr_rows = [r for r in ok if r["target"].endswith("dB")]
    met = sum(r["psnr_db"] >= float(r["target"][:-2]) for r in psnr_rows)
    lines = [f"Machine: {machine()}. Command: `python benchmarks/bench_lossy.py` (raw rows: lossy.json).", "",
             __doc__.strip(), "",
             f"Ratio targets met within ±10% of the real file ratio: **{within}/{len(ratio_rows)}**; "
             f"PSNR targets met: **{met}/{len(psnr_rows)}**; targets refused as unmeetable: "
             f"{len(rows) - len(ok)} (listed at the end).", "",
             "| file | target | codec | real ratio | PSNR dB (data range) | SSIM | max err | enc MB/s | dec MB/s "
             "| plain ratio | plain enc MB/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        name = r["codec"] if r["codec"] != "auto" else f"auto→{r['chosen']}"
        lines.append(f"| {r['file']} | {r['target']} | {name} | {r['ratio']:.1f} | {r['psnr_db']:.2f} | {r['ssim']:.4f} | "
                     f"{r['max_abs_error']} | {r['encode_MBps']:.1f} | {r['decode_MBps']:.1f} | {r['plain_ratio']:.1f} | "
                     f"{r['plain_encode_MBps']:.1f} |")
    lines += ["", "Refused targets:", ""] + [f"- {r['file']} {r['codec']} {r['target']}: {r['error']}"
                                            for r in rows if "error" in r]
    write_md("lossy.md", "Lossy classic codecs: rate control and RD on ../shared/data", lines)


if __name__ == "__main__":
    main()
