"""The public file-level API: encode, decode, open, info, verify. Every write is atomic (temp file + rename)."""
from __future__ import annotations

from typing import BinaryIO

import numpy as np

from .bounds.bound import channel_of
from .encoding.pipeline import FileEncoder
from .encoding.report import without_bytes
from .encoding.request import split_options
from .errors import MzcError
from .format.container import is_mzc
from .io.atomic import atomic_output
from .io.reader import MzcFile
from .io.tiff import open_tiff, write_tiff

__all__ = ["decode", "encode", "info", "is_mzc", "open", "verify"]


def encode(source, output: str | BinaryIO, **options) -> dict:
    """Encode a TIFF (path or binary file object) to `output`; return the fidelity report.

    Options: the request (`codec`, `quality`, `knob`, `max_error`, `noise`, `noise_model`, `effort`, `lossless`,
    `guide`, `time_budget`) and how to run (`workers`, `check`, `chunks`, `client`, `progress`). A ratio or PSNR
    target is checked on the real file; when the sampled knob search missed it, the budget is corrected and the
    file encoded again (at most twice). A target still missed is an error and nothing is written.
    """
    request, settings = split_options(options)
    vol = open_tiff(source)
    try:
        job = FileEncoder(vol, request, settings, source if isinstance(source, str) else "-")
        report = job.encode_to(lambda: atomic_output(output))
    finally:
        vol.close()
    report["output"] = output if isinstance(output, str) else "-"
    return report


def open(path: str) -> MzcFile:
    return MzcFile.open(path)


def decode(source: str, output: str | BinaryIO, roi: str | None = None, workers: int = 1,
           fmt: str | None = None, scale: float = 1.0) -> dict:
    """Decode `source` (all, or a region) to a TIFF, .npy or OME-Zarr; a full TIFF carries the original metadata.

    `output` is a path (written atomically) or a binary file object; `fmt` is "tif", "npy" or "zarr" (default: from
    the path's suffix, else "tif"). `scale` renders Y and X at that scale (a region then indexes the scaled array).
    """
    from .resample import check_scale
    scale = check_scale(scale)
    if fmt == "zarr" or (fmt is None and isinstance(output, str) and output.rstrip("/").lower().endswith(".zarr")):
        if roi is not None or scale != 1.0 or not isinstance(output, str):
            raise MzcError("OME-Zarr output is the whole array with its own pyramid: no --roi, --scale or stdout")
        from .io import omezarr
        with open(source) as mz:
            facts = omezarr.write(mz, output.rstrip("/"), workers)
        return {"input": source, "output": output, "shape": facts["shape"], "roi": None, "scale": 1.0,
                "ome_zarr": facts}
    if fmt is None:
        fmt = "npy" if isinstance(output, str) and output.lower().endswith(".npy") else "tif"
    if isinstance(output, str) or not output.seekable():  # TIFF writing seeks: spool pipes through a temp file
        with atomic_output(output) as fh:
            return dict(decode(source, fh, roi, workers, fmt, scale), output=output if isinstance(output, str) else "-")
    with open(source) as mz:
        if roi is not None or fmt == "npy" or scale != 1.0:
            data = mz.read(roi, workers, scale)
            if fmt == "npy":
                np.save(output, data)
            else:
                import tifffile
                axes = mz.axes if data.ndim == len(mz.shape) else None
                rgb = axes is not None and axes.endswith("S") and data.shape[-1] in (3, 4) \
                    and mz.metadata.get("photometric") == 2
                tifffile.imwrite(output, data, metadata={"axes": axes} if axes else None,
                                 photometric="rgb" if rgb else "minisblack")
            shape = data.shape
        else:
            write_tiff(output, mz.shape, mz.dtype, mz.axes, mz.metadata, mz.pages(workers))
            shape = mz.shape
    return {"input": source, "output": "-", "shape": list(shape), "roi": roi, "scale": scale}


def stdin_source() -> BinaryIO:
    """Standard input as a seekable buffer (TIFF needs random access)."""
    import io
    import sys
    return io.BytesIO(sys.stdin.buffer.read())


def info(path: str) -> dict:
    with open(path) as mz:
        h = mz.header
        return {"input": path, "format": ".".join(map(str, h["format"])), "shape": list(mz.shape),
                "dtype": mz.dtype.name, "axes": mz.axes, "chunks": list(mz.grid.chunks), "n_chunks": mz.grid.n_chunks,
                "codec": without_bytes(h["codec"]), **{k: h[k] for k in ("bound", "noise") if k in h},
                "software": h.get("software"), "file_bytes": mz.container.size,
                "tiff_kind": mz.metadata.get("kind"), "report": mz.report}


def verify(path: str, against: str | None = None) -> dict:
    """Check every record and chunk; with `against`, recompute fidelity chunk by chunk against the original TIFF."""
    from .metrics import Fidelity
    from .stats import scan
    with open(path) as mz:
        checked, errors = mz.verify()
        result = {"input": path, "ok": not errors, "chunks_checked": checked, "errors": errors}
        if against is None or errors:
            return result
        vol = open_tiff(against)
        try:
            if vol.shape != mz.shape:
                raise MzcError(f"--against shape {vol.shape} differs from the file's {mz.shape}")
            slices = [mz.grid.slices(i) for i in range(mz.grid.n_chunks)]
            fid = Fidelity(scan(vol.block(s) for s in slices).range, mz.dtype.str)
            bound = getattr(mz.codec, "bound", None)
            held = True
            for i, block in mz.decoded_chunks(list(range(mz.grid.n_chunks))):
                original = vol.block(slices[i])
                fid.add(original, block)
                if bound is not None:  # the file's promise, rechecked against the original on every pixel
                    channel = channel_of(mz.axes, slices[i]) if bound.per_channel else 0
                    err = np.abs(block.astype(np.float64) - original.astype(np.float64))
                    held &= bool(np.all(err <= bound.allowed(original, channel)))
                    if bound.models:
                        fid.max_sigma = max(fid.max_sigma, bound.sigma_units(original, block, channel))
        finally:
            vol.close()
        result.update({k: v for k, v in fid.report().items() if k != "mse"})
        if bound is not None:
            result["bound"], result["bound_held"] = bound.describe(), held
            if bound.models:
                result["max_error_sigma"] = round(fid.max_sigma, 4)
            if not held:
                result["ok"] = False
                result["errors"].append(f"error bound ({bound.describe()}) exceeded against {against}")
        return result
