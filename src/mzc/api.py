"""The public file-level API: encode, decode, open, info, verify. Every write is atomic (temp file + rename)."""
from __future__ import annotations

import math
from typing import BinaryIO

import numpy as np

from .bounds.bound import channel_of
from .encoding.report import without_bytes
from .encoding.request import split_options
from .errors import MzcError
from .format.container import is_mzc
from .io.atomic import atomic_output
from .io.reader import MzcFile
from .io.tiff import open_tiff, write_tiff

__all__ = ["decode", "encode", "imread", "info", "is_mzc", "open", "verify"]


def encode(source, output: str | BinaryIO, **options) -> dict:
    """Encode a TIFF (path or binary file object) to `output`; return the fidelity report.

    Options: the request (`codec`, `quality`, `knob`, `max_error`, `noise`, `noise_model`, `effort`, `lossless`,
    `guide`, `time_budget`) and how to run (`workers`, `check`, `chunks`, `client`, `progress`). A ratio or PSNR
    target is checked on the real file; when the sampled knob search missed it, the budget is corrected and the
    file encoded again (at most twice). A target still missed is an error and nothing is written.
    """
    from .encoding.pipeline import FileEncoder  # the encoder's imports (metrics, codecs) only when encoding
    request, settings = split_options(options)
    vol = open_tiff(source)
    try:
        job = FileEncoder(vol, request, settings, source if isinstance(source, str) else "-")
        report = job.encode_to(lambda: atomic_output(output))
    finally:
        vol.close()
    report["output"] = output if isinstance(output, str) else "-"
    return report


def open(path: str, allow_mismatch: bool = False) -> MzcFile:
    """An open .mzc file. `allow_mismatch`: accept lossy chunks whose decoded samples differ from the encoder's
    digest (another machine's floating point); bit-exact and bounded chunks are never accepted so."""
    mz = MzcFile.open(path)
    mz.allow_mismatch = bool(allow_mismatch)
    return mz


def imread(path: str, roi: str | tuple | None = None, scale: float = 1.0, workers: int = 1) -> np.ndarray:
    """The decoded array, or a region of it (numpy slice syntax or slices), rendered at `scale` (tifffile's imread)."""
    with open(path) as mz:
        return mz.read(roi, workers, scale)


def decode(source: str | BinaryIO, output: str | BinaryIO, roi: str | None = None, workers: int = 1,
           fmt: str | None = None, scale: float = 1.0, ngff: str = "0.5", progress=None,
           allow_mismatch: bool = False) -> dict:
    """Decode `source` (all, or a region) to a TIFF, .npy or OME-Zarr; a full TIFF carries the original metadata.

    `source` is a path or a binary file object (stdin). `output` is a path (written atomically) or a binary file
    object; `fmt` is "tif", "npy" or "zarr" (default: from the path's suffix, else "tif"). `scale` renders Y and X at
    that scale (a region then indexes the scaled array). `ngff` is the OME-Zarr version ("0.5" on Zarr v3, or "0.4").
    `progress(done, total)` is called as TIFF pages are written. `allow_mismatch` as for `open`.
    """
    from .resample import check_scale
    scale = check_scale(scale)
    name = source if isinstance(source, str) else "-"
    if fmt == "zarr" or (fmt is None and isinstance(output, str) and output.rstrip("/").lower().endswith(".zarr")):
        if roi is not None or scale != 1.0 or not isinstance(output, str) or not isinstance(source, str):
            raise MzcError("OME-Zarr output is the whole array of a file with its own pyramid: no --roi, --scale, "
                           "stdin or stdout")
        from .io import omezarr
        with open(source, allow_mismatch) as mz:
            facts = omezarr.write(mz, output.rstrip("/"), workers, ngff)
            dtype = mz.dtype.name
        return {"input": name, "output": output, "shape": facts["shape"], "dtype": dtype, "roi": None, "scale": 1.0,
                "ome_zarr": facts}
    if fmt is None:
        fmt = "npy" if isinstance(output, str) and output.lower().endswith(".npy") else "tif"
    if isinstance(output, str) or not output.seekable():  # TIFF writing seeks: spool pipes through a temp file
        with atomic_output(output) as fh:
            result = decode(source, fh, roi, workers, fmt, scale, ngff, progress, allow_mismatch)
            return dict(result, output=output if isinstance(output, str) else "-")
    with _open_source(source, allow_mismatch) as mz:
        if roi is not None or fmt == "npy" or scale != 1.0:
            data = mz.read(roi, workers, scale)
            write_region(output, data, mz, fmt)
            shape = data.shape
        else:
            write_tiff(output, mz.shape, mz.dtype, mz.axes, mz.metadata, counted(mz, workers, progress))
            shape = mz.shape
        dtype = mz.dtype.name
    return {"input": name, "output": "-", "shape": list(shape), "dtype": dtype, "roi": roi, "scale": scale}


STORED_PSNR_SLACK_DB = 0.1  # another machine's lossy decoder may round a grey level differently (tests/test_golden)


def against_mismatch(mz: MzcFile, against: str, data_range: list, measured: dict) -> list[str]:
    """Why `against` is not the original this file promises to reproduce, if it is not: a bit-exact file must match
    it exactly; any file must find the data range it stored and come within its stored PSNR (a different image of
    the same shape measures far below it)."""
    from .codecs.base import Exact
    if isinstance(mz.codec, Exact) and measured["max_abs_error"] != 0:
        return [f"--against {against} differs from the decoded samples (max error {measured['max_abs_error']}) but "
                "the file is bit-exact: not its original"]
    stored_range = mz.header.get("data_range")
    if isinstance(stored_range, list) and len(stored_range) == 2 and not all(
            float(a) == float(b) or math.isnan(float(a)) and math.isnan(float(b))
            for a, b in zip(stored_range, data_range)):
        return [f"--against {against} has data range {data_range}, the file's original had {stored_range}: "
                "not its original"]
    stored = (mz.report or {}).get("psnr_db")
    got = measured.get("psnr_db")
    if isinstance(stored, (int, float)) and isinstance(got, (int, float)) and got < stored - STORED_PSNR_SLACK_DB:
        return [f"--against {against}: PSNR {got:.2f} dB, the encoder measured {stored:.2f} dB against its "
                "original: not its original, or decoded differently"]
    return []


def _open_source(source, allow_mismatch: bool = False) -> MzcFile:
    mz = MzcFile.open(source) if isinstance(source, str) else MzcFile(source)
    mz.allow_mismatch = bool(allow_mismatch)
    return mz


def counted(mz: MzcFile, workers: int, progress):
    """The file's pages, reporting (pages done, pages) to `progress` as they are decoded."""
    from .io.tiff import page_axes_start
    total = math.prod(mz.shape[:page_axes_start(mz.shape, mz.axes, mz.metadata)])
    for done, page in enumerate(mz.pages(workers), 1):
        yield page
        if progress is not None:
            progress(done, total)


def write_region(output: BinaryIO, data: np.ndarray, mz: MzcFile, fmt: str) -> None:
    """A region or rescaled decode: .npy, or a plain TIFF with the axes (the source's metadata describes the whole)."""
    if fmt == "npy":
        np.save(output, data)
        return
    import tifffile
    if data.ndim < 2:  # integers in --roi left a row or a single value: a TIFF image has at least two axes
        data = data.reshape(1, -1)
    axes = mz.axes if data.ndim == len(mz.shape) else None
    rgb = axes is not None and axes.endswith("S") and data.shape[-1] in (3, 4) and mz.metadata.get("photometric") == 2
    tifffile.imwrite(output, data, metadata={"axes": axes} if axes else None,
                     photometric="rgb" if rgb else "minisblack")


def original_suffix(path: str) -> str:
    """The suffix of the TIFF the file was encoded from (x.ome.tiff -> x.mzc -> x.ome.tiff), for default names."""
    from .names import TIFF_SUFFIXES
    with open(path) as mz:
        source = str((mz.report or {}).get("input") or "")
        kind = mz.metadata.get("kind")
    for suffix in TIFF_SUFFIXES:
        if source.lower().endswith(suffix):
            return source[-len(suffix):]
    return ".ome.tif" if kind == "ome" else ".tif"


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
                "tiff_kind": mz.metadata.get("kind"), **_chunk_facts(mz), **_report_or_why(mz)}


def _chunk_facts(mz: MzcFile) -> dict:
    """What a codec says about its chunks' parameters (e.g. which chunks a restoration runs on), when it says any."""
    try:
        summary = getattr(mz.codec, "chunk_summary", None)
    except MzcError:  # a codec this mzc lacks (a plug-in not installed): info still describes the file
        return {}
    if summary is None:
        return {}
    return summary([mz.container.chunk_payload(i, mz._chunk_cap(i))[0] for i in range(mz.grid.n_chunks)])


def _report_or_why(mz: MzcFile) -> dict:
    """The stored report; a damaged one (an ancillary record) is said, not fatal: the header facts still show."""
    try:
        return {"report": mz.report}
    except MzcError as exc:
        return {"report": None, "report_error": str(exc)}


def verify(path: str, against: str | None = None, progress=None) -> dict:
    """Check every record and chunk; with `against`, recompute fidelity chunk by chunk against the original TIFF.
    `progress(done, total)` is called as chunks are checked."""
    from .metrics import Fidelity
    from .stats import scan
    with open(path) as mz:
        checked, errors = mz.verify(progress)
        # damaged: the file itself failed (a record, a chunk); with `against`, an intact file can still fail to be
        # that image's encoding
        result = {"input": path, "ok": not errors, "chunks_checked": checked, "errors": errors,
                  "damaged": bool(errors)}
        if against is None or errors:
            return result
        vol = open_tiff(against)
        try:
            if vol.shape != mz.shape:
                raise MzcError(f"--against shape {vol.shape} differs from the file's {mz.shape}")
            slices = [mz.grid.slices(i) for i in range(mz.grid.n_chunks)]
            stats = scan(vol.block(s) for s in slices)
            fid = Fidelity(stats.range, mz.dtype.str)
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
        result["errors"] += against_mismatch(mz, against, [stats.min, stats.max], result)
        result["ok"] = not result["errors"]
        if bound is not None:
            result["bound"], result["bound_held"] = bound.describe(), held
            if bound.models:
                result["max_error_sigma"] = round(fid.max_sigma, 4)
            if not held:
                result["ok"] = False
                result["errors"].append(f"error bound ({bound.describe()}) exceeded against {against}")
        return result
