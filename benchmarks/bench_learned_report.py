"""Tables and the rate-distortion plot of bench_learned.py (benchmarks/results/learned.{md,png})."""
from __future__ import annotations

import math

import numpy as np

from bench_learned import CLASSIC, interpolate
from common import RESULTS


def best_classic(entry: dict, ratio: float) -> tuple[str | None, float | None]:
    found = [(interpolate(entry["classic"][c], ratio), c) for c in CLASSIC]
    found = [(p, c) for p, c in found if p is not None]
    if not found:
        return None, None
    psnr, codec = max(found)
    return codec, psnr


def rows(results: dict) -> list[str]:
    lines = ["| file | family | target | real ratio | within 5% | rate t | learned dB | best classic | classic dB | "
             "gain dB | encode s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in results["files"].items():
        for family, points in entry["learned"].items():
            for p in points:
                if "error" in p:
                    lines.append(f"| {name} | {family} | {p['target']}x | not reached | | | | | | | |")
                    continue
                codec, classic = best_classic(entry, p["ratio"])
                gain = f"{p['psnr_db'] - classic:+.2f}" if classic is not None else "-"
                ok = abs(p["ratio"] / p["target"] - 1) <= 0.05
                lines.append(f"| {name} | {family} | {p['target']}x | {p['ratio']:.1f} | {'yes' if ok else 'NO'} | "
                             f"{p['rate']:.2f} | {p['psnr_db']:.2f} | {codec or '-'} | "
                             f"{classic if classic is None else round(classic, 2)} | {gain} | {p['encode_s']} |")
    return lines


def effort_rows(results: dict) -> list[str]:
    lines = ["| file | family | target | fast: ratio, dB, s | max: ratio, dB, s | dB gained |", "|---|---|---|---|---|---|"]
    for name, entry in results["files"].items():
        for family, points in entry["effort_max"].items():
            fast = {p["target"]: p for p in entry["learned"][family] if "error" not in p}
            for p in points:
                f = fast.get(p["target"])
                if "error" in p or f is None:
                    continue
                lines.append(f"| {name} | {family} | {p['target']}x | {f['ratio']:.1f}, {f['psnr_db']:.2f}, "
                             f"{f['encode_s']} | {p['ratio']:.1f}, {p['psnr_db']:.2f}, {p['encode_s']} | "
                             f"{p['psnr_db'] - f['psnr_db']:+.2f} |")
    return lines


def speed_rows(results: dict) -> list[str]:
    lines = ["| file | family | encode s (mzc / bare) | decode s (mzc / bare) | encode vs bare | decode vs bare |",
             "|---|---|---|---|---|---|"]
    for name, entry in results["files"].items():
        for family, s in entry["speed"].items():
            lines.append(f"| {name} | {family} | {s['mzc_encode_s']} / {s['bare_encode_s']} | {s['mzc_decode_s']} / "
                         f"{s['bare_decode_s']} | {s['encode_vs_bare']:.2f}x | {s['decode_vs_bare']:.2f}x |")
    return lines


def training_rows(results: dict) -> list[str]:
    lines = ["| family | CPU hours | validation PSNR at 0.1 bpp (dB) |", "|---|---|---|"]
    for family, curve in results["training"].items():
        for hours, psnr in curve["points"][:: max(1, len(curve["points"]) // 8)] + curve["points"][-1:]:
            lines.append(f"| {family} | {hours:.2f} | {psnr:.2f} |")
    return lines


def extrapolation(results: dict) -> list[str]:
    """dB per doubling of CPU hours over the last half of each curve: the hours a gap would take at that pace."""
    out = []
    for family, curve in results["training"].items():
        pts = [(h, p) for h, p in curve["points"] if h > 0]
        if len(pts) < 4:
            continue
        half = pts[len(pts) // 2:]
        slope = np.polyfit([math.log2(h) for h, _ in half], [p for _, p in half], 1)[0]
        out.append(f"- {family}: {slope:+.2f} dB per doubling of CPU hours over the last half of its curve "
                   f"(at {pts[-1][0]:.1f} h).")
    return out


def report(results: dict) -> None:
    lines = ["# Learned codecs (variable rate) against the best classic codec", "",
             f"`python benchmarks/bench_learned.py` on {results['machine']}. PSNR on the data range; the classic "
             "codecs' PSNR interpolated in log(ratio) at each learned file's exact real ratio.", "",
             "## Rate-distortion, 20x to 1000x", ""] + rows(results) + \
            ["", "## --effort max (encoder-side latent search)", ""] + effort_rows(results) + \
            ["", "## Speed against the bare network (--no-check, 1 worker)", ""] + speed_rows(results) + \
            ["", "## Training curve", ""] + training_rows(results) + [""] + extrapolation(results)
    (RESULTS / "learned.md").write_text("\n".join(lines) + "\n")


def plot(results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = list(results["files"])
    fig, axes = plt.subplots(1, len(files), figsize=(5 * len(files), 4.2), squeeze=False)
    for ax, name in zip(axes[0], files):
        entry = results["files"][name]
        for codec in CLASSIC:
            pts = sorted(entry["classic"][codec])
            ax.plot([r for r, _ in pts], [p for _, p in pts], "--", label=codec)
        for family, points in entry["learned"].items():
            pts = sorted((p["ratio"], p["psnr_db"]) for p in points if "error" not in p)
            ax.plot([r for r, _ in pts], [p for _, p in pts], "o-", label=f"learned {family}")
        ax.set_xscale("log")
        ax.set_xlabel("real ratio")
        ax.set_ylabel("PSNR (dB, data range)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "learned_rd.png", dpi=110)
