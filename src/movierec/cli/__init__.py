"""The `movierec` command: thin Typer commands over the library.

Errors raised on purpose (MovierecError) are printed as one sentence, exit code 1.
"""

from __future__ import annotations

import sys

import typer

from movierec.errors import MovierecError

app = typer.Typer(
    name="movierec",
    help="Build, evaluate and serve movie recommenders on MovieLens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch, describe and synthesise rating data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

from movierec.cli import data as _data  # noqa: E402,F401  (registers commands)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except MovierecError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
