"""`mzc decode`: .mzc files back to TIFF (with the original metadata), .npy or OME-Zarr."""
from __future__ import annotations

import os

import click

from ..errors import MzcError
from ..pool import default_workers
from .common import Outcome, each_input, output_or_skip, refuse_same_file, stderr, to_json


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", help="Output .tif/.tiff, .npy or .zarr (OME-Zarr with a pyramid) for one input, or a "
                                   "folder (several).")
@click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write the TIFF to standard output.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--roi", help="Region in numpy slice syntax over the stored axes, e.g. 0:10,:,100:356,200:456 "
                            "(with --scale: over the scaled array).")
@click.option("--scale", type=float, default=1.0, show_default=True,
              help="Render Y and X at this scale (e.g. 0.5 or 2); inr/hybrid evaluate their fields there.")
@click.option("-T", "--threads", "workers", type=click.IntRange(1, 256), default=None,
              help="Worker processes (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per file on stdout.")
@click.option("--quiet", is_flag=True, help="Print nothing on stderr but errors.")
def decode(inputs, output, to_stdout, force, roi, scale, workers, as_json, quiet):
    """Decompress .mzc files back to TIFF (with the original metadata) or .npy."""
    from .. import api
    outcome = Outcome()
    many = len(inputs) > 1

    def one(inp: str) -> None:
        target = output_or_skip(inp, output, to_stdout, ".tif", force, many, outcome)
        if target is None:
            return
        if not os.path.isfile(inp):
            raise MzcError("no such file")
        refuse_same_file(inp, target)
        result = api.decode(inp, target, roi=roi, workers=workers or default_workers(), scale=scale)
        if as_json:
            click.echo(to_json(result))
        elif not quiet:
            stderr.print(f"{inp} -> {result['output']} {tuple(result['shape'])}", markup=False)

    each_input(inputs, outcome, one)
    outcome.exit()
