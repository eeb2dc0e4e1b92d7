"""Helpers shared by the benchmark scripts (run by hand; results go to benchmarks/results/)."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("MZC_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def data_files() -> list[Path]:
    files = sorted(DATA.glob("*.tif"))
    if not files:
        raise SystemExit(f"no evaluation data in {DATA} (set MZC_SHARED_DATA)")
    return files


def psnr_data_range(a: np.ndarray, b: np.ndarray) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(d * d))
    peak = float(a.max()) - float(a.min())
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def cpu_seconds(fn, *args, repeat: int = 1):
    """Best-of-N process CPU time of fn(*args) (single-threaded codecs: CPU time = wall time, minus noise)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.process_time()
        out = fn(*args)
        best = min(best, time.process_time() - t)
    return best, out


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_md(name: str, title: str, lines: list[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(f"# {title}\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())
    return path
