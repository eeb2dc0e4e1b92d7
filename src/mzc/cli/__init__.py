"""The `mzc` command: a thin click shell over the API with gzip's manners.

Reports go to stderr (rich) or stdout (`--json`, one object per line); errors are one line `mzc: error: ...`.
Exit codes: 0 ok, 1 error, 2 warning (some inputs skipped); a run ended by a signal exits 128 + its number (SIGINT
130, SIGTERM 143, SIGHUP 129) having removed its temp files and its worker processes. Each command imports what it needs when it runs, so
`mzc --version` and `mzc info` start fast.
"""
from __future__ import annotations

import sys

import click

from .._version import __version__
from ..errors import MzcError
from ..lifeline import Terminated, terminate_on_signals
from .analysis import bench, evaluate
from .common import stderr
from .decode import decode
from .encode import encode
from .inspection import info, models, recover, verify
from .train import train


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mzc")
def cli():
    """mzc: gzip for microscopy. Compress TIFF stacks to .mzc and back, and measure what changed."""


for command in (encode, decode, info, verify, evaluate, bench, recover, train, models):
    cli.add_command(command)


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
