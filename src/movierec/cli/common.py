"""Shared CLI plumbing: one vocabulary of options, --dataset/--data loading, --param parsing,
the --protocol help (from the protocol registry), progress bars and JSON output.

Progress bars go to stderr and are drawn only when stderr is a terminal (rich's
detection, so `TTY_COMPATIBLE=1` or `FORCE_COLOR=1` force them) and `--quiet` is not
given; stdout keeps only the answer (a table, or one JSON object with `--json`).
No heavy module (numpy, pandas, torch, the models) is imported here at start-up.
"""

from __future__ import annotations

import json
import math
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import typer
from rich.console import Console

from movierec.errors import ConfigError, MovierecError
from movierec.evaluation.protocols import available_protocols, get_protocol
from movierec.jsonable import json_default_finite

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


def bars_on(quiet: bool = False) -> bool:
    """Whether progress bars are drawn: stderr is a terminal and --quiet was not given."""
    return not quiet and Console(stderr=True).is_terminal


class Steps:
    """Progress over a known number of steps (folds, trials, model fits) on stderr.

    On a terminal: a transient rich bar with elapsed time; otherwise (or with `live`
    False, when something inside draws its own bar) one dim line per step; with `quiet`
    nothing at all.
    """

    def __init__(self, label: str, total: int | None, quiet: bool = False, live: bool = True):
        self.label, self.total, self.quiet = label, total, quiet
        self.done = 0
        self._bar = None
        # a console of its own: terminal detection as of now, not as of import
        self._console = Console(stderr=True)
        if not quiet and self._console.is_terminal and live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self._console, transient=True)
            self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> "Steps":
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def start(self, text: str) -> None:
        """A step begins (the previous one, if any, is done)."""
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=f"{self.label}: {text}")
        elif not self.quiet:
            self._console.print(f"[dim]{text}[/dim]", highlight=False, soft_wrap=True)
        self.done += 1

    def advance(self, text: str | None = None) -> None:
        """A step has finished (for steps reported when they end, such as tuning trials)."""
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done,
                             **({"description": f"{self.label}: {text}"} if text else {}))

    def note(self, text: str) -> None:
        """A line worth keeping (e.g. a trial's result): above the bar, or plain; not with --quiet."""
        if not self.quiet:
            self._console.print(text, highlight=False, soft_wrap=True)


def fetch_progress(name: str, quiet: bool = False):
    """A context manager yielding a progress(done, total) callback drawing a download bar on
    stderr (a terminal only, not with quiet)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    bar_console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"fetching {name}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=bar_console,
        transient=True,
        disable=quiet or not bar_console.is_terminal,
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


_LIBRARY_OPTIONS = re.compile(r"\b(user_col|item_col|rating_col|time_col|rating_range)\b")


def cli_words(text: str) -> str:
    """A library message with its reading options named as the CLI spells them
    ("name it with time_col" -> "name it with --time-col")."""
    return _LIBRARY_OPTIONS.sub(lambda m: "--" + m.group(1).replace("_", "-"), text)


def read_options(movies: Path | None = None, user_col: str | None = None, item_col: str | None = None,
                 rating_col: str | None = None, time_col: str | None = None, sep: str | None = None,
                 rating_range: str | None = None) -> dict[str, Any]:
    """The --data reading options given on the command line, as `load_ratings` keywords."""
    given = {"movies": movies, "user_col": user_col, "item_col": item_col, "rating_col": rating_col,
             "time_col": time_col, "sep": sep, "rating_range": parse_range(rating_range)}
    if sep is not None:
        given["sep"] = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
        if not given["sep"]:
            raise ConfigError("--sep needs a separator such as ',' or 'tab'.")
    return {k: v for k, v in given.items() if v is not None}


@contextmanager
def reading_data() -> Iterator[None]:
    """Around code that reads a --data file: its DataWarnings (ignored columns, untitled
    movies) are printed on stderr, and library option names in its errors are spelled as
    the CLI spells them."""
    import warnings

    from movierec.data.readers import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield
        except MovierecError as exc:
            if cli_words(str(exc)) == str(exc):
                raise
            raise type(exc)(cli_words(str(exc))) from None
        finally:
            for w in caught:
                if issubclass(w.category, DataWarning):
                    console.print(f"[yellow]warning:[/yellow] {cli_words(str(w.message))}", highlight=False,
                                  soft_wrap=True)


def check_read_options(dataset: str | None, options: dict[str, Any]) -> None:
    """Reading options (--movies, --user-col ...) belong to --data, never to --dataset."""
    if dataset is not None and options:
        flags = ", ".join("--" + k.replace("_", "-") for k in options)
        raise ConfigError(f"{flags} go{'es' if len(options) == 1 else ''} with --data (your own ratings file); "
                          f"{dataset} comes with its own movies and columns.")


def load_dataset(dataset: str | None, data: Path | None, quiet: bool = False, **options):
    """The Dataset named by --dataset, or read from --data; exactly one must be given.

    `options` are `read_options(...)` for --data (a movies file, column names ...);
    warnings about the file (ignored columns, untitled movies) are printed on stderr.
    """
    from movierec.experiments.data import load_data

    if (dataset is None) == (data is None):
        raise ConfigError("Give either --dataset NAME (such as ml-100k) or --data PATH, not both or neither.")
    options = {k: v for k, v in options.items() if v is not None}
    check_read_options(dataset, options)
    if data is None:
        with fetch_progress(dataset, quiet) as progress:
            return load_data(dataset, progress=progress)
    with reading_data():
        return load_data(data=data, **options)


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


def print_json(obj: Any) -> None:
    """One JSON object on stdout; a non-finite number (NaN, infinity) becomes null, so the
    output is valid JSON for any reader."""
    sys.stdout.write(json.dumps(_finite(obj), default=json_default_finite, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (in dicts, lists, tuples, numpy arrays and
    scalars) replaced by None."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


DATASET_OPT = typer.Option(None, "--dataset", "-d", help="MovieLens dataset name, e.g. ml-100k.")
DATA_OPT = typer.Option(None, "--data", help="Your own ratings file (CSV, TSV, :: or Parquet).")
MOVIES_OPT = typer.Option(None, "--movies",
                          help="With --data: a movies file for titles and genres (MovieLens movies.csv layout "
                               "movieId,title,genres, or a CSV with id, title and genres columns).")
USER_COL_OPT = typer.Option(None, "--user-col", help="With --data: the column holding user IDs.")
ITEM_COL_OPT = typer.Option(None, "--item-col", help="With --data: the column holding movie IDs.")
RATING_COL_OPT = typer.Option(None, "--rating-col", help="With --data: the column holding ratings.")
TIME_COL_OPT = typer.Option(None, "--time-col",
                            help="With --data: the column holding rating times (dates or Unix seconds); "
                                 "found by name or by its values when not given.")
SEP_OPT = typer.Option(None, "--sep", help="With --data: the field separator (default: from the file; 'tab' for tabs).")
RATING_RANGE_OPT = typer.Option(None, "--rating-range", help="With --data: valid ratings, e.g. 1,5.")
QUIET_OPT = typer.Option(False, "--quiet", "-q", help="No progress bars or progress lines on stderr.")
TRAIN_OPT = typer.Option(None, "--train", help="Explicit training ratings file (with --test; no split is made).")
TEST_OPT = typer.Option(None, "--test", help="Explicit test ratings file (with --train).")
PARAM_OPT = typer.Option(None, "--param", "-p", help="Model hyperparameter key=value (repeatable), e.g. dim=64.")
CONFIG_OPT = typer.Option(None, "--config", help="JSON file of hyperparameters, e.g. written by `movierec tune`.")
SEED_OPT = typer.Option(42, "--seed", help="Seeds the split, the sampler and the models that take a seed.")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")


def _protocols_help() -> str:
    """The registered protocols (`movierec.evaluation.protocols`), each in its own words."""
    return "One of: " + "; ".join(get_protocol(name).help for name in available_protocols())


#: the --protocol help: every registered protocol, what it holds out and what --holdout means
PROTOCOLS_HELP = _protocols_help()
HOLDOUT_HELP = "The protocol's test amount (see --protocol)."
