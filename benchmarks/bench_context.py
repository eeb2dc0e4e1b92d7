"""The compiled context coder on its own, one core, in one run (issue 27): per real file of ../shared/data, its ratio
against JPEG XL effort 7 and JPEG-LS on the same planes, encode and decode MB/s against bare JPEG-LS, and where an
encode's time goes (cProfile of the default encode of a 510 x 667 STP plane and of a 2048 x 2048 plane).

Up to four planes per file, spread through it; each plane coded once to warm the process (numba's compiled code
and the tables are loaded on first use), then timed. Results: benchmarks/results/context.md, .json.

    python benchmarks/bench_context.py
"""
from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, machine
from mzc.codecs.context.coder import decode_image, encode_image


def timed(fn, *args) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def planes_of(path: Path) -> list[np.ndarray]:
    a = tifffile.imread(path)
    planes = a.reshape(-1, *a.shape[-2:])
    return [np.ascontiguousarray(p) for p in planes[::max(1, len(planes) // 4)][:4]]


def measure(planes: list[np.ndarray]) -> dict:
    raw = sum(p.nbytes for p in planes)
    sizes = {"ctx": 0, "jpegls": 0, "jxl7": 0}
    seconds = {"ctx_enc": 0.0, "ctx_dec": 0.0, "jpegls_enc": 0.0, "jpegls_dec": 0.0}
    for p in planes:
        encode_image(p)  # warm: compiled code and this plane's tables
        t, body = timed(encode_image, p)
        seconds["ctx_enc"] += t
        t, back = timed(decode_image, body, p.shape)
        seconds["ctx_dec"] += t
        assert np.array_equal(back, p)
        t, jls = timed(imagecodecs.jpegls_encode, p)
        seconds["jpegls_enc"] += t
        seconds["jpegls_dec"] += timed(imagecodecs.jpegls_decode, jls)[0]
        sizes["ctx"] += len(body)
        sizes["jpegls"] += len(jls)
        sizes["jxl7"] += len(imagecodecs.jpegxl_encode(p, lossless=True, effort=7, numthreads=1))
    mb = raw / 1e6
    return {"planes": len(planes), "shape": list(planes[0].shape), "dtype": str(planes[0].dtype),
            "ratio_ctx": round(raw / sizes["ctx"], 4), "ratio_jpegls": round(raw / sizes["jpegls"], 4),
            "ratio_jxl7": round(raw / sizes["jxl7"], 4), "ctx_vs_jxl7": round(sizes["jxl7"] / sizes["ctx"], 4),
            "ctx_encode_MBps": round(mb / seconds["ctx_enc"], 1), "ctx_decode_MBps": round(mb / seconds["ctx_dec"], 1),
            "jpegls_encode_MBps": round(mb / seconds["jpegls_enc"], 1),
            "jpegls_decode_MBps": round(mb / seconds["jpegls_dec"], 1),
            "encode_vs_jpegls": round(seconds["jpegls_enc"] / seconds["ctx_enc"], 3),
            "decode_vs_jpegls": round(seconds["jpegls_dec"] / seconds["ctx_dec"], 3), "raw": raw, **sizes}


def profile(plane: np.ndarray, top: int = 14) -> str:
    encode_image(plane)
    prof = cProfile.Profile()
    prof.enable()
    encode_image(plane)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    total = next(line for line in lines if "function calls" in line).strip()
    rows = [" ".join(line.split()[:5]) + " " + line.split(maxsplit=5)[-1].replace(str(Path.cwd()) + "/", "")
            for line in lines[start + 1:]]
    return total + "\n\n" + "\n".join(rows)


def main() -> None:
    files = sorted(DATA.glob("*.tif"))
    rows = {f.name: measure(planes_of(f)) for f in files}
    sixteen = [r for r in rows.values() if r["dtype"] == "uint16"]
    totals = {k: sum(r[k] for r in sixteen) for k in ("raw", "ctx", "jpegls", "jxl7")}
    stp = planes_of(DATA / "stack3d_stp_brain_u16.tif")[0]
    nuclei = tifffile.imread(DATA / "nuclei2d_hoechst_u16.tif")
    big = np.block([[nuclei, nuclei[:, ::-1]], [nuclei[::-1], nuclei[::-1, ::-1]]])[:2048, :2048].copy()
    result = {"machine": machine(), "files": rows,
              "sixteen_bit": {"ratio_ctx": round(totals["raw"] / totals["ctx"], 4),
                              "ratio_jxl7": round(totals["raw"] / totals["jxl7"], 4),
                              "ctx_vs_jxl7": round(totals["jxl7"] / totals["ctx"], 4)},
              "plane_2048": measure([big]),
              "profile_stp_plane": profile(stp), "profile_2048_plane": profile(big)}
    (RESULTS / "context.json").write_text(json.dumps(result, indent=1))
    (RESULTS / "context.md").write_text(report(result))
    print(report(result))


def report(r: dict) -> str:
    s = r["sixteen_bit"]
    lines = ["# The compiled context coder, one core", "", f"`python benchmarks/bench_context.py` on {r['machine']}.",
             "", f"16-bit files together: ratio {s['ratio_ctx']} against JPEG XL effort 7's {s['ratio_jxl7']} "
             f"(**{s['ctx_vs_jxl7']}x**).", "",
             "| file | planes | ratio ctx | JPEG-LS | JXL e7 | ctx / JXL e7 | ctx enc MB/s | dec MB/s | JPEG-LS enc | "
             "dec | enc vs JPEG-LS | dec vs JPEG-LS |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, x in [*r["files"].items(), ("2048 x 2048 plane (nuclei2d mirrored)", r["plane_2048"])]:
        lines.append(f"| {name} | {x['planes']} x {x['shape'][0]}x{x['shape'][1]} {x['dtype']} | {x['ratio_ctx']} | "
                     f"{x['ratio_jpegls']} | {x['ratio_jxl7']} | {x['ctx_vs_jxl7']} | {x['ctx_encode_MBps']} | "
                     f"{x['ctx_decode_MBps']} | {x['jpegls_encode_MBps']} | {x['jpegls_decode_MBps']} | "
                     f"{x['encode_vs_jpegls']} | {x['decode_vs_jpegls']} |")
    lines += ["", "## Where an encode's time goes (cProfile, tottime)", "", "A 510 x 667 STP plane:", "", "```",
              r["profile_stp_plane"], "```", "", "A 2048 x 2048 plane:", "", "```", r["profile_2048_plane"], "```", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
