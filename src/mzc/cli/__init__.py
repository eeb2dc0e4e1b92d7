"""The `mzc` command: a thin click shell over the API with gzip's manners.

Reports go to stderr (rich) or stdout (`--json`, one object per line); errors are one line `mzc: error: ...`.
Exit codes: 0 ok, 1 error, 2 warning (some inputs skipped); a run ended by a signal exits 128 + its number (SIGINT
130, SIGTERM 143, SIGHUP 129) having removed its temp files and its worker processes. Each command imports what it needs when it runs, so
`mzc --version` and `mzc info` start fast.
"""
from __future__ import annotations

import importlib
import sys

import click

from .._version import __version__
from ..errors import MzcError
from ..lifeline import Terminated, terminate_on_signals
from .common import stderr

# name -> (module, function): a command's module (and numpy, tifffile, the codecs) is imported only when that command
# runs or its help is shown, so `mzc --version` loads none of them
COMMANDS = {"encode": ("encode", "encode"), "decode": ("decode", "decode"), "info": ("inspection", "info"),
            "verify": ("inspection", "verify"), "eval": ("analysis", "evaluate"), "bench": ("analysis", "bench"),
            "recover": ("inspection", "recover"), "train": ("train", "train"), "models": ("inspection", "models")}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx, name: str):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name]
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    @property
    def all_commands(self) -> dict:
        """Every subcommand by name, imported (for tests and documentation checks)."""
        return {name: self.get_command(None, name) for name in COMMANDS}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mzc")
def cli():
    """mzc: gzip for microscopy. Compress TIFF stacks to .mzc and back, and measure what changed."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: click's usage errors become `mzc: error: ...` with exit 1 (2 means 'warning' here)."""
    terminate_on_signals()
    try:
        cli.main(args=argv, prog_name="mzc", standalone_mode=False)
    except MzcError as exc:
        stderr.print(f"mzc: error: {exc}", markup=False, soft_wrap=True)
        sys.exit(1)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # bare `mzc`: help, not an error
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        stderr.print(f"mzc: error: {exc.format_message()}", markup=False, soft_wrap=True)
        sys.exit(1)
    except Terminated as exc:
        ended(f"terminated ({exc.name})", exc.exit_status)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):  # click turns Ctrl-C into Abort
            ended("interrupted (SIGINT)", 130)
        stderr.print("mzc: error: aborted", markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        ended("interrupted (SIGINT)", 130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:
        stderr.print(f"mzc: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), markup=False)
        sys.exit(1)


def ended(why: str, status: int) -> None:
    """A signal ended the run: the temp files are gone (unwound); end the worker processes too, then exit."""
    import signal

    from .. import sandbox
    from ..pool import stop_all
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second signal must not interrupt the clean-up
        signal.signal(sig, signal.SIG_IGN)
    stop_all()
    sandbox.shutdown()
    stderr.print(f"mzc: error: {why}", markup=False)
    sys.exit(status)
