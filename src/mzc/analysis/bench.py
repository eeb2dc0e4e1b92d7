"""`mzc bench`: every mzc mode and the plain imagecodecs baselines on the user's own files, at equal real ratios.

Each row is one (file, codec, target): the real ratio (file or codestream bytes), PSNR on the data range, SSIM, max
error, Pearson r, end-to-end encode and decode MB/s, and with `tasks` the downstream agreement of evaluate.py (the
original's segmentation is computed once per file). Targets are ratios (`50x`) and each mode's default setting
(`default`: what `mzc encode --codec X` does without -q). The guaranteed-error modes have no ratio knob, so they are
measured at fixed bounds and their ratio follows from the data: nearlossless at +-1/4/16 grey levels, noise at
0.5/1/2 sigma(x) (1 sigma is `--noise 1`, the default in the table), bounded (a J2K base + the residual that keeps the
bound) at 1 sigma. `reference:noise` is no codec: the original plus one more sigma(x) of its own noise, the
yardstick for downstream agreement (what re-imaging would change). Results are written as JSON, a markdown table and
rate-distortion plots (benchreport.py)."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..codecs import registry
from ..codecs.base import Budgeted
from ..errors import MzcError
from ..metrics import Fidelity
from .baselines import plain_ids, run_plain
from .evaluate import Reference, compare, load_original

REFERENCE = "reference:noise"  # no codec: the original + one sigma(x) of fresh noise (noise_reference.py)
RATIOS = (10, 50, 200, 500)


def codec_names() -> list[str]:
    """What bench can measure, asked of the registry: the guaranteed modes (the role codecs), auto, every other
    codec with bench points, the plain library baselines and the noise reference."""
    classes = [cls for cls in registry.codecs().values() if cls.bench_points(RATIOS)]
    roles = [cls.id for cls in classes if registry.is_role(cls)]
    named = [cls.id for cls in classes if not registry.is_role(cls)]
    return roles + [registry.AUTO] + named + [f"plain:{c}" for c in plain_ids()] + [REFERENCE]


@dataclass
class BenchOptions:
    codecs: tuple[str, ...] = ()
    ratios: tuple[float, ...] = RATIOS
    defaults: bool = True  # also each mode at its default setting
    tasks: tuple[str, ...] = ()
    channel: int | None = None
    ratio_channels: tuple[int, int] = (0, 1)
    time_budget: float | None = None  # inr/hybrid fit seconds per file
    workers: int = 1
    command: str | None = None  # the command line, recorded in the report
    progress: Callable[[dict], None] | None = field(default=None, repr=False)

    def __post_init__(self):
        known = codec_names()
        self.codecs = tuple(self.codecs) or tuple(known)
        unknown = [c for c in self.codecs if c not in known]
        if unknown:
            raise MzcError(f"unknown codec {unknown[0]!r} for bench: choose from {', '.join(known)}")
        if not self.codecs:
            raise MzcError("no codecs to measure")
        if any(not (r > 1 and np.isfinite(r)) for r in self.ratios):
            raise MzcError("--ratios must be numbers > 1")


def is_fixed_mode(codec: str) -> bool:
    """A guaranteed mode measured at fixed bounds (its rows are not ratio targets)."""
    if codec == REFERENCE or codec == registry.AUTO or codec.startswith("plain:"):
        return False
    return registry.is_role(registry.lookup(codec)[0])


def points(codec: str, opts: BenchOptions) -> list[tuple[str, dict | float]]:
    """(target label, encode options or, for a plain baseline, the ratio) of every measurement of one codec."""
    if codec == REFERENCE:
        return [("1 sigma", None)]
    if codec.startswith("plain:"):
        return [(f"{r:g}x", float(r)) for r in opts.ratios]
    if codec == registry.AUTO:
        return [(f"{r:g}x", {"codec": codec, "quality": f"{r:g}x"}) for r in opts.ratios]
    cls = registry.lookup(codec)[0]
    found = cls.bench_points(tuple(opts.ratios))
    if registry.is_role(cls):
        return found  # the guaranteed modes are measured at fixed bounds, whatever the ratios
    extra = {"time_budget": opts.time_budget} if issubclass(cls, Budgeted) and opts.time_budget else {}
    return [(label, setting | extra) for label, setting in found if opts.defaults or label != "default"]


def measure(path: str, array: np.ndarray, axes: str, codec: str, setting, opts: BenchOptions,
            tmp: str) -> tuple[np.ndarray, dict]:
    """Encode and decode once; returns the decoded array and the size/speed fields of the row."""
    if codec == REFERENCE:
        from .noise_reference import renoise
        noisy, models = renoise(array, axes)
        return noisy, {"bytes": array.nbytes, "encode_seconds": None, "decode_seconds": None,
                       "noise_models": [m.as_dict() for m in models]}
    if codec.startswith("plain:"):
        res = run_plain(codec.partition(":")[2], array, axes, setting)
        return res.decoded, {"bytes": res.nbytes, "encode_seconds": res.encode_seconds,
                             "decode_seconds": res.decode_seconds, "knob": round(float(res.knob), 4)}
    from .. import api
    out = os.path.join(tmp, "bench.mzc")
    t = time.perf_counter()
    rep = api.encode(path, out, workers=opts.workers, **setting)
    encode_seconds = time.perf_counter() - t
    t = time.perf_counter()
    with api.open(out) as mz:
        decoded = mz.read(workers=opts.workers)
    decode_seconds = time.perf_counter() - t
    row = {"bytes": os.path.getsize(out), "encode_seconds": encode_seconds, "decode_seconds": decode_seconds,
           "chosen": rep["codec"]}
    os.unlink(out)
    return decoded, row


def bench_file(path: str, opts: BenchOptions) -> list[dict]:
    array, axes = load_original(path)
    data_range = float(array.max()) - float(array.min()) if array.size else 0.0
    ref = Reference(array, axes) if opts.tasks else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="mzc-bench-") as tmp:
        for codec in opts.codecs:
            for label, setting in points(codec, opts):
                row = {"file": os.path.basename(path), "codec": codec, "target": label}
                try:
                    decoded, sizes = measure(path, array, axes, codec, setting, opts, tmp)
                except Exception as exc:  # noqa: BLE001 - a target a codec cannot reach (or a library that
                    # refuses a setting) is a result of the bench, not its end
                    message = str(exc) if isinstance(exc, MzcError) else f"{type(exc).__name__}: {exc}"
                    rows.append(row | {"error": message})
                    _report(opts, rows[-1])
                    continue
                row |= fidelity_fields(array, decoded, data_range, sizes)
                if ref is not None:
                    row["eval"] = evaluate_fields(ref, decoded, opts)
                rows.append(row)
                _report(opts, row)
    return rows


def fidelity_fields(array: np.ndarray, decoded: np.ndarray, data_range: float, sizes: dict) -> dict:
    fid = Fidelity(data_range, array.dtype.str)
    fid.add(array, decoded)
    rep = fid.report()
    mb = array.nbytes / 1e6

    def speed(seconds):
        return None if seconds is None else round(mb / max(seconds, 1e-9), 3)
    return {"ratio": round(array.nbytes / sizes["bytes"], 3), "bpp": round(8 * sizes["bytes"] / array.size, 5),
            **{k: rep[k] for k in ("psnr_db", "ssim", "max_abs_error", "pearson_r")},
            "encode_MBps": speed(sizes["encode_seconds"]), "decode_MBps": speed(sizes["decode_seconds"]),
            **{k: v for k, v in sizes.items() if k in ("chosen", "knob", "noise_models")}, "bytes": sizes["bytes"]}


def evaluate_fields(ref: Reference, decoded: np.ndarray, opts: BenchOptions) -> dict:
    out = {}
    for task in opts.tasks:
        try:
            out |= compare(ref, decoded, (task,), opts.channel, opts.ratio_channels)
        except MzcError as exc:  # e.g. ratiometric on a one-channel file: stated in the row
            out[task] = {"error": str(exc)}
    return out


def _report(opts: BenchOptions, row: dict) -> None:
    if opts.progress is not None:
        opts.progress(row)


def data_paths(items: list[str]) -> list[str]:
    """Files as given; folders contribute their *.tif/*.tiff (sorted)."""
    out = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in (".tif", ".tiff") and f.is_file())
            if not found:
                raise MzcError(f"{item}: no .tif/.tiff files in this folder")
            out += found
        elif p.is_file():
            out.append(str(p))
        else:
            raise MzcError(f"{item}: no such file or folder")
    return out


def run(items: list[str], opts: BenchOptions, output: str | None = None) -> list[dict]:
    """Measure every file; with `output`, (re)write the report folder after each file so a long run shows progress."""
    from .benchreport import write_report
    paths = data_paths(items)
    rows: list[dict] = []
    for path in paths:
        rows += bench_file(path, opts)
        if output is not None:
            write_report(output, rows, opts)
    return rows
