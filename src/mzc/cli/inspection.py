"""`mzc info`, `mzc verify`, `mzc recover` and `mzc models`: looking at files and models without decoding data."""
from __future__ import annotations

import os
import sys

import click
from rich.console import Console
from rich.table import Table

from ..errors import MzcError
from .common import Outcome, each_input, print_table, progress_bar, stderr, to_json

VERIFY_FIELDS = ("psnr_db", "ssim", "max_abs_error", "pearson_r", "bound", "bound_held", "max_error_sigma")


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def info(inputs, as_json):
    """Show header facts and the stored encode report."""
    from .. import api
    outcome = Outcome()

    def one(inp: str) -> None:
        rep = api.info(inp)
        if as_json:
            click.echo(to_json(rep))
            return
        rows = []
        for key, value in rep.items():
            if key == "report" and isinstance(value, dict):
                rows += [(f"  {k}", v) for k, v in value.items()]
            elif key != "input":
                rows.append((key, value))
        print_table(inp, rows, Console())

    each_input(inputs, outcome, one)
    outcome.exit()


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--against", type=click.Path(dir_okay=False), help="Original TIFF: recompute fidelity.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def verify(inputs, against, as_json, quiet):
    """Check every checksum and decode every chunk; with --against, measure fidelity to the original."""
    from .. import api
    outcome = Outcome()

    def one(inp: str) -> None:
        with progress_bar(not quiet and stderr.is_terminal, f"verify {os.path.basename(inp)}") as cb:
            rep = api.verify(inp, against, progress=cb)
        if as_json:
            click.echo(to_json(rep))
        else:
            stderr.print(f"{inp}: {'OK' if rep['ok'] else 'FAILED'} ({rep['chunks_checked']} chunks)", markup=False)
            for k in VERIFY_FIELDS:
                if k in rep:
                    exact = k == "psnr_db" and rep[k] is None and rep.get("max_abs_error") == 0
                    stderr.print(f"  {k}: {'inf (identical)' if exact else rep[k]}", markup=False)
        if not rep["ok"]:
            outcome.error(f"{inp}: {rep['errors'][0]}")

    each_input(inputs, outcome, one)
    outcome.exit()


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
def recover(inputs, as_json):
    """Finish .mzc files whose stack writer died: keep every complete, intact frame (in place)."""
    from ..format.recover import recover as recover_file
    outcome = Outcome()

    def one(inp: str) -> None:
        result = recover_file(inp)
        if as_json:
            click.echo(to_json(result))
        else:
            stderr.print(f"{inp}: recovered {result['frames']} frames ({result['dropped_bytes']} bytes of an "
                         f"unfinished frame dropped)", markup=False)

    each_input(inputs, outcome, one)
    outcome.exit()


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def models(as_json):
    """List the learned models shipped with mzc and check each file's sha256."""
    from ..codecs.neural import zoo
    rows = []
    for entry, meta in zip(zoo.shipped(), zoo.manifest()["models"]):
        ok = os.path.isfile(entry.path) and zoo.sha256_file(entry.path) == entry.sha256
        rows.append({**meta, "ok": ok})
    if as_json:
        click.echo(to_json({"models": rows}))
    else:
        table = Table("name", "arch", "N", "M", "lambda", "iterations", "bytes", "sha256")
        for r in rows:
            lmbda = f"{r['lambda']:g}" if r.get("lambda") is not None else "{:g}-{:g}".format(*r["lambda_range"])
            table.add_row(r["name"], r["arch"], str(r["N"]), str(r["M"]), lmbda, str(r["iterations"]),
                          str(r["bytes"]), (r["sha256"][:12] + "...") if r["ok"] else "DAMAGED")
        Console(width=None if sys.stdout.isatty() else 1000).print(table)  # piped: never cut a name
    if not all(r["ok"] for r in rows):
        raise MzcError("some shipped models do not match their sha256")
