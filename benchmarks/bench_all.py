"""Every codec on all of ../shared/data through `mzc bench`, with downstream agreement -> benchmarks/results/bench/
(bench.md, bench.json, rd_psnr.png, rd_ssim.png).

Run by hand (about 4 hours on 2 cores; the STP stack is most of it):
    python benchmarks/bench_all.py                      # everything
    python benchmarks/bench_all.py --files foci2d_h2ax_u16.tif --codecs hybrid,reference:noise
    python benchmarks/bench_all.py --codecs inr --ratios 50,200      # only those targets (and default) again
Rows of files, codecs and targets not measured again are kept from bench.json, so one file or codec can be measured
again after a change; the report is rewritten from the merged rows. Settings are those of
    mzc bench DATA --eval segmentation,intensity,ratiometric --time-budget 60   (ratios 10,50,200,500, defaults)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, data_files
from mzc.analysis.bench import BenchOptions, codec_names, is_fixed_mode, run
from mzc.analysis.benchreport import write_report

OUT = RESULTS / "bench"
TASKS = ("segmentation", "intensity", "ratiometric")
TIME_BUDGET = 60.0
COMMAND = "mzc bench ../shared/data --eval segmentation,intensity,ratiometric --time-budget 60"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", help="comma-separated file names of ../shared/data (default: all)")
    ap.add_argument("--codecs", help="comma-separated codecs (default: all)")
    ap.add_argument("--ratios", help="comma-separated ratio targets (default: 10,50,200,500); other targets' rows are kept")
    args = ap.parse_args()
    files = data_files()
    if args.files:
        wanted = set(args.files.split(","))
        files = [f for f in files if f.name in wanted]
        if len(files) != len(wanted):
            raise SystemExit(f"not in the data folder: {sorted(wanted - {f.name for f in data_files()})}")
    codecs = tuple(args.codecs.split(",")) if args.codecs else tuple(codec_names())
    ratios = {"ratios": tuple(float(r) for r in args.ratios.split(","))} if args.ratios else {}
    opts = BenchOptions(codecs=codecs, tasks=TASKS, **ratios, time_budget=TIME_BUDGET, command=COMMAND,
                        progress=lambda row: print(json.dumps(row, default=str)[:200], flush=True))
    saved = OUT / "bench.json"
    old = json.loads(saved.read_text())["rows"] if saved.exists() else []
    for path in files:
        new = run([str(path)], opts)
        old = merge(old, new, [f.name for f in data_files()], by_target=bool(args.ratios))
        write_report(str(OUT), old, BenchOptions(tasks=TASKS, time_budget=TIME_BUDGET, command=COMMAND))


def merge(old: list[dict], new: list[dict], file_order: list[str], by_target: bool = False) -> list[dict]:
    """Replace the (file, codec) pairs measured again, or only their (file, codec, target) rows when `by_target`;
    order rows by file, then codec, then target as `mzc bench` does."""
    key = (lambda r: (r["file"], r["codec"], r["target"])) if by_target else (lambda r: (r["file"], r["codec"]))
    again = {key(r) for r in new}
    rows = [r for r in old if key(r) not in again] + new
    rank = {c: i for i, c in enumerate(codec_names())}
    return sorted(rows, key=lambda r: (file_order.index(r["file"]) if r["file"] in file_order else len(file_order),
                                       rank.get(r["codec"], len(rank)),
                                       target_rank(r["target"]) if by_target and not is_fixed_mode(r["codec"]) else 0))


def target_rank(target: str) -> float:
    """default first, then ratio targets (`50x`) in increasing order; a codec's other settings keep their order."""
    if target == "default":
        return -1.0
    try:
        return float(target.removesuffix("x"))
    except ValueError:
        return 0.0


if __name__ == "__main__":
    main()
