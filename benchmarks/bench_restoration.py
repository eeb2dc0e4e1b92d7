"""The learned restoration stage (codec `restored`) against the plain classic decode of the same bytes, on the 16-bit
planes of ../shared/data -> benchmarks/results/restoration.md / .json.

    python benchmarks/bench_restoration.py [--ratios 50,200,500] [--files nuclei2d_hoechst_u16.tif,...]

Each plane is one chunk (mzc's default tiling keeps planes up to 2048 a side whole). Per codec and ratio the base
knob is bisected to the largest stream within raw bytes / ratio; the restored chunk has the same body plus its
`p.r` (about 6 bytes, counted in the ratio column). PSNR on the plane's data range (max - min).
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import sys
import time
import types
from pathlib import Path

import msgpack
import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, machine, psnr_data_range, write_md
from mzc.codecs.neural.restored import DEFAULT_MODEL, Restored, bases, restoration_models

# (file, planes as index tuples over the leading axes): the 16-bit fluorescence and brightfield planes
PLANES = {
    "brightfield_bbbc010_u16.tif": [()],
    "foci2d_h2ax_u16.tif": [()],
    "multichannel_bbbc022_u16.tif": [(0,), (1,), (2,)],
    "nuclei2d_hoechst_u16.tif": [()],
    "stack3d_stp_brain_u16.tif": [(15, 0), (15, 1)],
    "timelapse_cellmigration_u16.tif": [(24,)],
}


def at_ratio(codec: Restored, plane: np.ndarray, ratio: float) -> Restored:
    """The restored codec whose base knob gives the largest stream within plane bytes / ratio."""
    base = codec.base
    lo, hi = base.knob_bounds
    log = getattr(base, "knob_log", False)
    budget, best = plane.nbytes / ratio, None
    for _ in range(12):
        k = math.sqrt(lo * hi) if log else (lo + hi) / 2
        if len(base.with_knob(k).encode(plane)[0]) <= budget:
            best, lo = k, k
        else:
            hi = k
    return codec.with_knob(best if best is not None else lo)


def measure(plane: np.ndarray, cid: str, ratio: float) -> dict:
    codec = Restored(base={"id": cid}).bind()
    if cid == "avif":  # AVIF maps the file's values into 12 bits (prepared from the file's statistics)
        codec = codec.prepare(types.SimpleNamespace(min=float(plane.min()), range=float(np.ptp(plane)))).bind()
    codec = at_ratio(codec, plane, ratio)
    t = time.process_time()
    body, params, back = codec.encode_checked(plane)
    seconds = time.process_time() - t
    plain = codec.base.decode(body, plane.shape, plane.dtype, params["bp"])
    meta = len(msgpack.packb({"r": params["r"]})) - 1 if "r" in params else 0
    p0, p1 = psnr_data_range(plane, plain), psnr_data_range(plane, back)
    return {"codec": cid, "target": ratio, "ratio": round(plane.nbytes / (len(body) + meta), 1),
            "plain_db": round(p0, 3), "restored_db": round(p1, 3), "gain_db": round(p1 - p0, 3),
            "on": "r" in params, "r": params.get("r"), "encode_cpu_s": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ratios", default="50,200,500")
    ap.add_argument("--files", default=",".join(PLANES))
    args = ap.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    rows = []
    for name in args.files.split(","):
        data = tifffile.imread(DATA / name)
        for index in PLANES[name]:
            plane = np.ascontiguousarray(data[index])
            for cid in bases():
                for ratio in ratios:
                    row = {"file": name, "plane": list(index), **measure(plane, cid, ratio)}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    (RESULTS / "restoration.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
    report(rows, ratios)


def training_lines() -> list[str]:
    """The shipped model's recipe and validation curve (held-out train16 crops, float network, gain 1)."""
    m = next(m for m in restoration_models() if m["name"] == DEFAULT_MODEL)
    codecs = sorted(ast.literal_eval(m["validation"][-1][3])) if m["validation"] else []
    out = [f"Model `{m['name']}`: {m['iterations']} steps, {m['cpu_hours']} CPU-hours (1 thread, nice 19), "
           f"{m['bytes']} bytes, sha256 {m['sha256'][:16]}...; recipe {json.dumps(m['recipe'])}; data: "
           f"{m['training_data']}. Resume or retrain: `python -m mzc.codecs.neural.restore_train STATE_DIR "
           "--steps N`, export with `--export src/mzc/codecs/neural/zoo/restore-v1.npz`.", "",
           "Validation curve (mean gain in dB on the held-out crops, per codec):", "",
           "| step | CPU s | train loss | " + " | ".join(codecs) + " |", "|---|---|---|" + "---|" * len(codecs)]
    for step, cpu, loss, val in m["validation"]:
        v = ast.literal_eval(val)
        out.append(f"| {step} | {cpu} | {loss} | " + " | ".join(f"{v[c]:+.3f}" for c in codecs) + " |")
    return out


def report(rows: list[dict], ratios: list[float]) -> None:
    lines = ["Codec `restored` (spec 6.6) against the plain decode of the same stream, one plane = one chunk, on the "
             "16-bit planes of ../shared/data (never trained on). PSNR on the plane's data range. Gain = restored − "
             "plain in dB; the chunk keeps the plain decode where restoration would not lower its error (gain 0).",
             f"`python benchmarks/bench_restoration.py`; {machine()}.", "",
             "| codec | " + " | ".join(f"{r:g}x mean gain (min..max), on" for r in ratios) + " |",
             "|---|" + "---|" * len(ratios)]
    for cid in dict.fromkeys(r["codec"] for r in rows):
        cells = []
        for ratio in ratios:
            here = [r for r in rows if r["codec"] == cid and r["target"] == ratio and r["ratio"] >= 0.8 * ratio]
            g = [r["gain_db"] for r in here]
            on = sum(r["on"] for r in here)
            cells.append(f"+{np.mean(g):.2f} dB ({min(g):.2f}..{max(g):.2f}), {on}/{len(g)}" if g else "")
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    lines += ["", "Means over the planes whose stream reached at least 0.8 x the target ratio (a 130 x 130 plane cannot "
              "reach 500x: the codecs' own headers exceed the budget; its rows are listed below all the same).",
              "", *training_lines(), "", "Per plane (ratio = raw bytes / (stream + p.r bytes)):", "",
              "| file | plane | codec | target | ratio | plain dB | restored dB | gain dB | q, gain | encode CPU s |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        qg = f"{r['r'][0]}, {r['r'][1] / 64:.2f}" if r["r"] else "off"
        lines.append(f"| {r['file']} | {r['plane']} | {r['codec']} | {r['target']:g}x | {r['ratio']} | "
                     f"{r['plain_db']} | {r['restored_db']} | {r['gain_db']:+.3f} | {qg} | {r['encode_cpu_s']} |")
    write_md("restoration.md", "Learned restoration after classic decoders", lines)


if __name__ == "__main__":
    main()
