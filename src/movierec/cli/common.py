"""Shared CLI plumbing: loading data from --dataset/--data, progress bars, JSON output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from movierec.errors import ConfigError

console = Console(stderr=True)
out = Console()


def fetch_progress(name: str):
    """A context manager yielding a progress(done, total) callback drawing a download bar on stderr."""
    progress = Progress(
        TextColumn(f"fetching {name}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )

    class _Ctx:
        def __enter__(self):
            progress.__enter__()
            self.task = progress.add_task("download", total=None)
            return self.update

        def update(self, done: int, total: int | None) -> None:
            progress.update(self.task, completed=done, total=total)

        def __exit__(self, *exc):
            return progress.__exit__(*exc)

    return _Ctx()


def load_dataset(dataset: str | None, data: Path | None, **read_options):
    """The Dataset named by --dataset, or read from --data; exactly one must be given."""
    from movierec.data import load_movielens, load_ratings

    if (dataset is None) == (data is None):
        raise ConfigError("Give either a MovieLens dataset name (such as ml-100k) or --data PATH, not both or neither.")
    if data is not None:
        return load_ratings(data, **{k: v for k, v in read_options.items() if v is not None})
    with fetch_progress(dataset) as progress:
        return load_movielens(dataset, progress=progress)


def parse_range(value: str | None) -> tuple[float, float] | None:
    """'1,5' -> (1.0, 5.0)."""
    if value is None:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise ConfigError(f"--rating-range takes two numbers like 1,5, got {value!r}.") from None
    if low >= high:
        raise ConfigError(f"--rating-range needs low < high, got {value!r}.")
    return low, high


def _default(value: Any):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def print_json(obj: Any) -> None:
    """One JSON object on stdout (NaN becomes null)."""
    text = json.dumps(obj, default=_default, allow_nan=True)
    sys.stdout.write(text.replace("NaN", "null") + "\n")


DATASET_OPT = typer.Option(None, "--dataset", "-d", help="MovieLens dataset name, e.g. ml-100k.")
DATA_OPT = typer.Option(None, "--data", help="Your own ratings file (CSV, TSV, :: or Parquet).")
