"""Shared CLI plumbing: one vocabulary of options, --dataset/--data loading, --param parsing,
progress bars and JSON output."""

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

#: the `movierec` command; command modules add their commands to it (or to `data_app`)
app = typer.Typer(
    name="movierec",
    help="Build, evaluate and serve movie recommenders on MovieLens.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Fetch, describe and synthesise rating data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


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
    from movierec.experiments.data import load_data

    if (dataset is None) == (data is None):
        raise ConfigError("Give either --dataset NAME (such as ml-100k) or --data PATH, not both or neither.")
    if data is not None:
        return load_data(data=data, **read_options)
    with fetch_progress(dataset) as progress:
        return load_data(dataset, progress=progress)


def parse_value(text: str) -> Any:
    """A --param value: true/false, none/null, a JSON number/list/object, else the text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """--param key=value (repeatable) -> {key: value}."""
    params: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--param takes key=value, got {item!r}.")
        key, value = item.split("=", 1)
        params[key.strip()] = parse_value(value)
    return params


def model_params(config: Path | None, params: list[str] | None) -> tuple[str | None, dict, str | None]:
    """Hyperparameters from --config (a tuned config {"model", "params"} or a plain JSON
    object) overridden by --param key=value: (model named in the config or None, params,
    config path or None)."""
    named, merged = None, {}
    if config is not None:
        if not Path(config).is_file():
            raise ConfigError(f"Config file {config} does not exist.")
        try:
            doc = json.loads(Path(config).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"Config file {config} is not valid JSON.") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"Config file {config} must hold a JSON object.")
        if isinstance(doc.get("params"), dict):
            named, doc = doc.get("model"), doc["params"]
        merged.update(doc)
    merged.update(parse_params(params))
    return named, merged, (str(config) if config is not None else None)


def model_and_params(model: str | None, config: Path | None, params: list[str] | None
                     ) -> tuple[str, dict, str | None]:
    """(model name, hyperparameters, config path) from --model, --config and --param."""
    named, merged, path = model_params(config, params)
    name = model or named
    if name is None:
        raise ConfigError("Name a model with --model (or give a --config written by `movierec tune`).")
    if named is not None and named != name:
        raise ConfigError(f"The config {config} is for model {named!r}, not {name!r}.")
    return name, merged, path


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
TRAIN_OPT = typer.Option(None, "--train", help="Explicit training ratings file (with --test; no split is made).")
TEST_OPT = typer.Option(None, "--test", help="Explicit test ratings file (with --train).")
PARAM_OPT = typer.Option(None, "--param", "-p", help="Model hyperparameter key=value (repeatable), e.g. dim=64.")
CONFIG_OPT = typer.Option(None, "--config", help="JSON file of hyperparameters, e.g. written by `movierec tune`.")
SEED_OPT = typer.Option(42, "--seed", help="Seeds the split, the sampler and the models that take a seed.")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")
PROTOCOLS_HELP = ("temporal (global cut in time), leave-last (per user), random, ml100k-folds "
                  "(the five ML-100K folds) or files (with --train/--test)")
HOLDOUT_HELP = ("Test amount: temporal/random: the test share; leave-last: 1 = each user's last item, "
                "0.2 = each user's last 20%.")
