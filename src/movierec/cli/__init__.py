"""The `movierec` command: thin Typer commands over the library.

Errors raised on purpose (MovierecError) and file-system errors are printed as one
sentence with exit code 1; anything else is a bug, reported in one line as well
(set MOVIEREC_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import os
import sys

import typer

from movierec.cli.common import app, data_app  # noqa: F401  (the Typer apps live in common: no import cycle)
from movierec.errors import MovierecError

# Command modules register themselves on `app` / `data_app` (from cli.common) when imported.
from movierec.cli import data as _data  # noqa: E402,F401  (data fetch, data describe)
from movierec.cli import synth as _synth  # noqa: E402,F401  (data synth)
from movierec.cli import models as _models  # noqa: E402,F401  (train, evaluate, tune, plot)
from movierec.cli import recommend as _recommend  # noqa: E402,F401  (recommend, similar: the answer layer)
from movierec.cli import compare as _compare  # noqa: E402,F401  (compare)
from movierec.cli import registry as _registry  # noqa: E402,F401  (models list/show/promote/rollback/verify/available)
from movierec.cli import movies as _movies  # noqa: E402,F401  (movies search)
from movierec.cli import serve as _serve  # noqa: E402,F401  (serve, feedback export)
from movierec.cli import retrain as _retrain  # noqa: E402,F401  (retrain)
from movierec.cli import ab as _ab  # noqa: E402,F401  (ab report)


def _print_version(value: bool) -> None:
    if value:
        from movierec import __version__

        typer.echo(f"movierec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_print_version, is_eager=True,
                                 help="Print movierec's version and exit."),
) -> None:
    """Build, evaluate and serve movie recommenders on MovieLens."""


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    sys.exit(code)


def _quiet_unless_rank_zero() -> None:
    """Under torchrun, ranks other than 0 print nothing (rank 0 reports for the run)."""
    from movierec.training import distributed

    if distributed.launched() and not distributed.is_main_process():
        devnull = os.open(os.devnull, os.O_WRONLY)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)


def _leave_process_group() -> None:
    """Under torchrun, meet the other ranks and leave the group before exiting."""
    from movierec.training import distributed

    if distributed.launched():
        distributed.shutdown()


def main() -> None:
    """Console entry point."""
    try:
        _quiet_unless_rank_zero()
        app()
    except MovierecError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        if os.environ.get("MOVIEREC_DEBUG"):
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _fail(f"{exc.strerror or exc}{where}.")
    except Exception as exc:  # a bug: still one line, traceback on request
        if os.environ.get("MOVIEREC_DEBUG"):
            raise
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug in movierec; rerun with MOVIEREC_DEBUG=1 for details).")
    finally:
        _leave_process_group()
