"""INR codec benchmark: fast grid vs INIF-faithful SIREN vs hybrid vs J2K-per-slice / SPERR (imagecodecs) at the
same real ratio; ROI decode; a 1024x1024x64 synthetic volume at 512x; guidance on nuclei segmentation.

Run by hand (about 35 minutes on 2 cores): python benchmarks/bench_inr.py [files,synthetic,guidance] ->
benchmarks/results/inr.md, inr.json, inr_rd.png (parts not named are kept from inr.json). 2-D images are whole
files; the 3-D stack is channel 0 of the STP brain stack (30x510x667).
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import imagecodecs
import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mzc
from common import DATA, RESULTS, machine, write_md
from mzc.analysis.segmentation import match, segment
from mzc.metrics import Fidelity

RATIOS = [64, 256, 512]
PARTS = {"files", "synthetic", "guidance"}
FIT_SECONDS = {"nuclei2d_hoechst_u16.tif": 30, "stack3d_stp_brain_u16.tif": 60}  # --time-budget of each inr/hybrid fit
SIREN_SECONDS = 240
ROI = 256


def load(name: str):
    with tifffile.TiffFile(DATA / name) as tif:
        data, axes = tif.asarray(), tif.series[0].axes
    if name.startswith("stack3d"):
        data, axes = data[:, 0], "ZYX"
    if name.startswith("multichannel"):
        data, axes = data[0], "YX"
    return data, axes


def fidelity(a: np.ndarray, b: np.ndarray) -> dict:
    fid = Fidelity(float(a.max()) - float(a.min()), a.dtype.str)
    for pa, pb in zip(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])):
        fid.add(pa, pb)
    r = fid.report()
    return {"psnr": r["psnr_db"], "ssim": r["ssim"]}


def run_mzc(path: Path, data: np.ndarray, codec: str, ratio: float, tmp: Path, **opts) -> dict:
    out = tmp / f"{path.stem}.{codec.replace(':', '_')}.{ratio}.mzc"
    t = time.perf_counter()
    rep = mzc.encode(str(path), str(out), codec=codec, quality=f"{ratio}x", workers=1, **opts)
    enc = time.perf_counter() - t
    with mzc.open(str(out)) as f:
        t = time.perf_counter()
        back = f.read()
        dec = time.perf_counter() - t
        roi = tuple(slice(None) for _ in data.shape[:-2]) if data.ndim == 2 else (data.shape[0] // 2,)
        yx = (slice(data.shape[-2] // 2 - ROI // 2, data.shape[-2] // 2 + ROI // 2),
              slice(data.shape[-1] // 2 - ROI // 2, data.shape[-1] // 2 + ROI // 2))
        region = (*roi, *yx) if data.ndim == 3 else yx
        t = time.perf_counter()
        part = f.read(region)
        dec_roi = time.perf_counter() - t
        assert np.array_equal(part, back[region]), "ROI differs from the full decode"
    return {"codec": codec, "target": ratio, "ratio": rep["ratio"], **fidelity(data, back),
            "encode_s": round(enc, 2), "decode_s": round(dec, 3), "decode_roi_s": round(dec_roi, 3), "back": back}


def j2k_slices(data: np.ndarray, ratio: float) -> dict:
    """JPEG 2000 per slice through imagecodecs at one PSNR level, bisected so the total size meets the ratio."""
    planes = data.reshape(-1, *data.shape[-2:])
    budget = data.nbytes / ratio
    lo, hi, best = 1.0, 120.0, None
    t0 = time.perf_counter()
    for _ in range(16):
        mid = (lo + hi) / 2
        streams = [imagecodecs.jpeg2k_encode(p, level=mid, codecformat="j2k") for p in planes]
        size = sum(len(s) for s in streams)
        if size <= budget:
            lo, best = mid, streams
        else:
            hi = mid
    enc = (time.perf_counter() - t0) / 16
    t = time.perf_counter()
    back = np.stack([imagecodecs.jpeg2k_decode(s) for s in best]).reshape(data.shape)
    dec = time.perf_counter() - t
    size = sum(len(s) for s in best)
    return {"codec": "j2k (imagecodecs, per slice)", "target": ratio, "ratio": round(data.nbytes / size, 2),
            **fidelity(data, back), "encode_s": round(enc, 2), "decode_s": round(dec, 3), "back": back}


def sperr(data: np.ndarray, ratio: float) -> dict:
    """SPERR at the bits per pixel the ratio allows (3-D for a stack)."""
    bpp = data.dtype.itemsize * 8 / ratio
    for _ in range(6):
        t = time.perf_counter()
        stream = imagecodecs.sperr_encode(data.astype(np.float32), level=bpp, mode="bpp")
        enc = time.perf_counter() - t
        if len(stream) <= data.nbytes / ratio:
            break
        bpp *= 0.97 * data.nbytes / ratio / len(stream)
    t = time.perf_counter()
    back = imagecodecs.sperr_decode(stream)
    dec = time.perf_counter() - t
    info = np.iinfo(data.dtype)
    back = np.clip(np.rint(back), info.min, info.max).astype(data.dtype).reshape(data.shape)
    return {"codec": f"sperr-{data.ndim}d (imagecodecs)", "target": ratio, "ratio": round(data.nbytes / len(stream), 2),
            **fidelity(data, back), "encode_s": round(enc, 2), "decode_s": round(dec, 3), "back": back}


def synthetic_volume(shape=(64, 1024, 1024), seed=0) -> np.ndarray:
    """Nuclei-like blobs (Gaussian-smoothed points) under Poisson + read noise, 16-bit."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    img = np.zeros(shape, np.float32)
    for _ in range(600):
        z, y, x = (rng.integers(0, n) for n in shape)
        img[z, y, x] = rng.uniform(0.5, 1.5)
    img = ndimage.gaussian_filter(img, (3, 8, 8))
    img *= 3000 / img.max()  # brightest blob ~3000 counts above the background
    img = rng.poisson(img + 200).astype(np.float32) + rng.normal(0, 4, shape).astype(np.float32)
    return np.clip(img, 0, 65535).astype(np.uint16)


def strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "back"}


def main(parts: set[str]) -> None:
    """parts: files, synthetic, guidance (results of the parts not run are kept from inr.json)."""
    saved = RESULTS / "inr.json"
    results: dict = json.loads(saved.read_text()) if saved.exists() and parts != PARTS else {"files": {}}
    results["machine"] = machine()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name, fit_s in (FIT_SECONDS.items() if "files" in parts else []):
            data, axes = load(name)
            path = tmp / name
            tifffile.imwrite(path, data, metadata={"axes": axes}, photometric="minisblack")
            rows = []
            for ratio in RATIOS:
                for codec in ("inr", "hybrid"):
                    row = run_mzc(path, data, codec, ratio, tmp, time_budget=fit_s)
                    rows.append(row)
                    print(name, strip(row), flush=True)
                real = rows[-2]["ratio"]  # classic baselines at the INR file's real ratio
                for fn in (j2k_slices, sperr):
                    row = fn(data, real)
                    rows.append(row)
                    print(name, strip(row), flush=True)
            if name.startswith("nuclei"):  # fast vs INIF-faithful, same data, same run
                for codec, seconds in (("inr:siren", SIREN_SECONDS), ("inr", SIREN_SECONDS / 10)):
                    row = run_mzc(path, data, codec, 64, tmp, time_budget=seconds)
                    row["time_budget"] = seconds
                    rows.append(row)
                    print(name, strip(row), flush=True)
            results["files"][name] = [strip(r) for r in rows]
            saved.write_text(json.dumps(results, indent=1))
        if "synthetic" in parts:
            results["synthetic"] = synthetic(tmp)
            saved.write_text(json.dumps(results, indent=1))
        if "guidance" in parts:
            results["guidance"] = guidance(tmp)
    saved.write_text(json.dumps(results, indent=1))
    report(results)


def synthetic(tmp: Path) -> dict:
    """Encode speed on a large volume."""
    vol = synthetic_volume()
    path = tmp / "synthetic_1024x1024x64.tif"
    tifffile.imwrite(path, vol, metadata={"axes": "ZYX"}, photometric="minisblack")
    t = time.perf_counter()
    rep = mzc.encode(str(path), str(tmp / "syn.mzc"), codec="inr", quality="512x", workers=1)
    out = {"shape": list(vol.shape), "ratio": rep["ratio"], "psnr": rep["psnr_db"], "ssim": rep["ssim"],
           "encode_s": round(time.perf_counter() - t, 1)}
    print(out, flush=True)
    return out


def guidance(tmp: Path) -> list:
    """Nuclei segmentation agreement at equal ratio, with and without --guide segmentation."""
    rows = []
    for name in ("multichannel_bbbc022_u16.tif",):  # channel 0: Hoechst nuclei
        data, axes = load(name)
        path = tmp / f"g_{name}"
        tifffile.imwrite(path, data, metadata={"axes": axes}, photometric="minisblack")
        ref = segment(data)
        for ratio in (64, 128, 256):  # 395x695: at 512x the file is ~1 KB, less than a field needs
            for guide in (None, "segmentation"):
                row = run_mzc(path, data, "inr", ratio, tmp, guide=guide, time_budget=20)
                m = match(ref, segment(row["back"]))
                g = {"file": name, "ratio_target": ratio, "guide": guide, "ratio": row["ratio"],
                     "psnr": row["psnr"], "f1": round(m.f1, 4), "mean_iou": round(m.mean_iou, 4),
                     "n_ref": m.n_ref, "n_test": m.n_test}
                rows.append(g)
                print(g, flush=True)
    return rows


def report(results: dict) -> None:
    lines = [f"Machine: {results['machine']}. `python benchmarks/bench_inr.py`; PSNR on the data range, SSIM 7x7 "
             "per plane; encode/decode are wall seconds with one process (torch on 2 threads); ROI = 256x256 "
             "(one plane of the stack). inr/hybrid fits ran under `--time-budget` (nuclei 30 s, stack 60 s); "
             "J2K and SPERR are coded at the INR file's real ratio.", ""]
    for name, rows in results["files"].items():
        lines += [f"## {name}", "", "| codec | target | real ratio | PSNR dB | SSIM | encode s | decode s | ROI s |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            extra = f" (fit budget {r['time_budget']:.0f} s)" if "time_budget" in r else ""
            lines.append(f"| {r['codec']}{extra} | {r['target']:.4g}x | {r['ratio']:.1f} | {r['psnr']:.2f} | "
                         f"{r['ssim']:.4f} | {r['encode_s']} | {r['decode_s']} | {r.get('decode_roi_s', '')} |")
        lines.append("")
    s = results["synthetic"]
    lines += ["## Large volume", "", f"Synthetic {s['shape']} uint16 (blobs + Poisson/read noise), `--codec inr -q "
              f"512x`: ratio {s['ratio']}, PSNR {s['psnr']} dB, SSIM {s['ssim']}, encode {s['encode_s']} s "
              "(fit + quantization + decode-back check).", "", "## Guidance (`--guide segmentation`)", "",
              "Segmentation (Gaussian, Otsu, distance-transform watershed) of the decoded image vs of the original; "
              "F1 at IoU >= 0.5.", "", "| file | target | guide | real ratio | PSNR dB | F1 | mean IoU | objects ref/test |",
              "|---|---|---|---|---|---|---|---|"]
    for g in results["guidance"]:
        lines.append(f"| {g['file']} | {g['ratio_target']}x | {g['guide'] or '-'} | {g['ratio']:.1f} | "
                     f"{g['psnr']:.2f} | {g['f1']:.3f} | {g['mean_iou']:.3f} | {g['n_ref']}/{g['n_test']} |")
    write_md("inr.md", "INR codec: fast grid, INIF-faithful SIREN, hybrid, classic baselines", lines)
    plot(results)


def plot(results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = results["files"]
    fig, axs = plt.subplots(1, len(files), figsize=(5 * len(files), 4))
    for ax, (name, rows) in zip(np.atleast_1d(axs), files.items()):
        by: dict = {}
        for r in rows:
            if "time_budget" in r:
                continue
            by.setdefault(r["codec"], []).append((r["ratio"], r["psnr"]))
        for codec, pts in by.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=codec)
        ax.set_xscale("log")
        ax.set_xlabel("real ratio")
        ax.set_ylabel("PSNR dB (data range)")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "inr_rd.png", dpi=110)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        report(json.loads((RESULTS / "inr.json").read_text()))
    else:
        main(set(sys.argv[1].split(",")) if len(sys.argv) > 1 else PARTS)
