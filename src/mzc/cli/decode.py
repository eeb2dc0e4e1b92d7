"""`mzc decode`: .mzc files back to TIFF (with the original metadata and file suffix), .npy or OME-Zarr."""
from __future__ import annotations

import math
import os
import time

import click

from .common import Outcome, each_input, progress_bar, rate_text, stderr, threads, to_json
from .outputs import Job, expand, plan

OUTPUT_SUFFIXES = (".npy", ".zarr")  # besides the TIFF family's


def unwritable_suffix(output: str | None) -> str | None:
    """The suffix of an -o FILE that decode cannot write (r.png must not silently become a TIFF), else None."""
    import tifffile
    if output is None or output == "-" or os.path.isdir(output):
        return None
    name = os.path.basename(output.rstrip("/")).lower()
    suffix = os.path.splitext(name)[1]
    tiffs = tuple(f".{e}" for e in tifffile.TIFF.FILE_EXTENSIONS)
    return None if not suffix or name.endswith(tiffs + OUTPUT_SUFFIXES) else suffix


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output .tif/.tiff, .npy or .zarr (OME-Zarr with a pyramid) for one input, or a "
                                   "folder (several).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write the TIFF to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("-k", "--keep", is_flag=True, help="Keep the inputs (always; accepted for gzip's habit).")
@click.option("-r", "--recursive", is_flag=True, help="Decode the .mzc files in folders and their subfolders.")
@click.option("--roi", help="Region in numpy slice syntax over the stored axes, e.g. 0:10,:,100:356,200:456 or "
                            "0:10,::2,::2 (positive steps; with --scale: over the scaled array).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Render Y and X at this scale (e.g. 0.5 or 2); inr/hybrid evaluate their fields there.")
@click.option("--ngff", type=click.Choice(["0.5", "0.4"]), default="0.5", show_default=True,
              help="OME-Zarr version for .zarr outputs: 0.5 (Zarr v3) or 0.4 (Zarr v2).")
@click.option("-T", "--threads", "workers", type=click.IntRange(0, 256), default=None,
              help="Worker processes (default and 0: all cores).")
@click.option("--allow-mismatch", is_flag=True, help="Accept lossy chunks whose samples differ from the encoder's "
                                                    "digest (another machine's rounding); never bit-exact/bounded.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file on stdout.")
@click.option("--quiet", is_flag=True, help="Print nothing on stderr but errors.")
def decode(inputs, output, to_stdout, force, keep, recursive, roi, scale, ngff, workers, allow_mismatch, as_json,
           quiet):
    """Decompress .mzc files back to TIFF (with the original metadata), .npy or OME-Zarr (INPUT may be - for
    stdin, or a folder with -r)."""
    from .. import api
    outcome = Outcome()
    inputs = expand(inputs, recursive, (".mzc",), outcome)
    if (suffix := unwritable_suffix(None if to_stdout else output)) is not None:
        outcome.error(f"-o {output}: decode writes TIFF (.tif, .tiff, .ome.tif ...), .npy or .zarr, not {suffix}")
        outcome.exit()
    named_here = output is None or os.path.isdir(output)  # the output's name is derived from the input's

    def suffix_of(inp: str) -> str:
        return api.original_suffix(inp) if inp != "-" and named_here and not to_stdout else ".tif"

    jobs = plan(inputs, output, to_stdout, suffix_of, force, outcome)
    if jobs is None:
        outcome.exit()

    def one(job: Job) -> None:
        source = api.stdin_source() if job.input == "-" else job.input
        start = time.perf_counter()
        with progress_bar(not quiet and stderr.is_terminal, f"decode {os.path.basename(job.input)}") as cb:
            result = api.decode(source, job.target, roi=roi, workers=threads(workers), scale=scale, ngff=ngff,
                                progress=cb, allow_mismatch=allow_mismatch)
        seconds = time.perf_counter() - start
        import numpy as np
        bytes_out = math.prod(result["shape"]) * np.dtype(result["dtype"]).itemsize
        result = dict(result, bytes_out=bytes_out, decode_seconds=round(seconds, 3))
        if as_json:
            click.echo(to_json(result))
        elif not quiet:  # the rate is of the samples written: a --roi or --scale decode counts what it produced
            stderr.print(f"{job.input} -> {result['output']} {tuple(result['shape'])}{rate_text(bytes_out, seconds)}",
                         markup=False)

    each_input(jobs, outcome, one)
    outcome.exit()
